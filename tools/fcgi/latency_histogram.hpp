// A fixed-size log-linear latency histogram: ~1% relative precision from 1 µs to 100 s.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace fcgi_cli {

/// The 1-based nearest rank of percentile `p` (0..100) among `count` samples (count > 0).
std::uint64_t nearest_rank(double p, std::uint64_t count) noexcept;

/// Counts latencies in microsecond buckets: exact below 128 µs, then 128 buckets per power of
/// two, so a bucket is at most 1/128 (0.8%) of its values wide (HdrHistogram's layout with two
/// significant digits). Memory is fixed (~22 KB) whatever the number of samples: a long run
/// cannot grow it. Values above 100 s land in the last bucket; max() stays exact.
class latency_histogram {
  public:
    /// The largest value with ~1% precision; larger ones count as this in percentiles.
    static constexpr std::int64_t max_tracked_us = 100'000'000;

    /// Adds one sample; negative durations count as 0.
    void record(std::chrono::microseconds value) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    /// Exact smallest and largest samples; 0 when empty.
    std::chrono::microseconds min() const noexcept;
    std::chrono::microseconds max() const noexcept;
    /// Exact arithmetic mean; 0 when empty.
    double mean_us() const noexcept;

    /// The nearest-rank percentile `p` (0..100): a value within 0.8% of the sample of that
    /// rank, clamped to [min, max] so p100 is max exactly. 0 when empty.
    std::chrono::microseconds percentile(double p) const noexcept;

  private:
    static constexpr int sub_bits = 7;  // 128 sub-buckets per power of two
    static constexpr std::int64_t sub_count = std::int64_t{1} << sub_bits;
    // 100 s < 2^27 µs: exponents 7..26 above the exact range.
    static constexpr std::size_t bucket_count = sub_count + (27 - sub_bits) * sub_count;

    static std::size_t index_of(std::int64_t us) noexcept;
    // The value reported for bucket `i`: its middle, rounded down.
    static std::int64_t value_of(std::size_t i) noexcept;

    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    std::int64_t min_ = 0;
    std::int64_t max_ = 0;
    double sum_ = 0;
};

}  // namespace fcgi_cli
