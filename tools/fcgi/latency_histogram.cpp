#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fcgi_cli {

std::size_t latency_histogram::index_of(std::int64_t us) noexcept {
    us = std::clamp<std::int64_t>(us, 0, max_tracked_us);
    if (us < sub_count)
        return static_cast<std::size_t>(us);
    const int exp = std::bit_width(static_cast<std::uint64_t>(us)) - 1;  // >= sub_bits
    const int shift = exp - sub_bits;
    const auto sub = static_cast<std::size_t>((us >> shift) & (sub_count - 1));
    return static_cast<std::size_t>(sub_count) + static_cast<std::size_t>(shift) * sub_count + sub;
}

std::int64_t latency_histogram::value_of(std::size_t i) noexcept {
    if (i < static_cast<std::size_t>(sub_count))
        return static_cast<std::int64_t>(i);
    const auto shift = static_cast<int>((i - sub_count) / sub_count);
    const auto sub = static_cast<std::int64_t>((i - sub_count) % sub_count);
    const std::int64_t lower = (sub_count + sub) << shift;
    const std::int64_t width = std::int64_t{1} << shift;
    return lower + (width - 1) / 2;
}

void latency_histogram::record(std::chrono::microseconds value) noexcept {
    const std::int64_t us = std::max<std::int64_t>(0, value.count());
    ++buckets_[index_of(us)];
    if (count_ == 0 || us < min_)
        min_ = us;
    if (count_ == 0 || us > max_)
        max_ = us;
    ++count_;
    sum_ += static_cast<double>(us);
}

std::chrono::microseconds latency_histogram::min() const noexcept {
    return std::chrono::microseconds(min_);
}

std::chrono::microseconds latency_histogram::max() const noexcept {
    return std::chrono::microseconds(max_);
}

double latency_histogram::mean_us() const noexcept {
    return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

std::uint64_t nearest_rank(double p, std::uint64_t count) noexcept {
    p = std::clamp(p, 0.0, 100.0);
    // Less a hair: 99.9 / 100 * 1000 is 999.0000000000001 in doubles, and a ceil of that would
    // make p99.9 of every thousand samples their maximum.
    auto rank =
        static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count) - 1e-6));
    return std::clamp<std::uint64_t>(rank, 1, count);
}

std::chrono::microseconds latency_histogram::percentile(double p) const noexcept {
    if (count_ == 0)
        return std::chrono::microseconds(0);
    auto rank = nearest_rank(p, count_);
    if (rank == count_)
        return std::chrono::microseconds(max_);  // exact, also beyond max_tracked_us
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        seen += buckets_[i];
        if (seen >= rank)
            return std::chrono::microseconds(std::clamp(value_of(i), min_, max_));
    }
    return std::chrono::microseconds(max_);
}

}  // namespace fcgi_cli
