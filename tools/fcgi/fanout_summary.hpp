// The closing summary of `fcgi fanout`: counts, failures by code, throughput and latency.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fcgi_cli {

/// Collects one entry per job as results arrive.
class fanout_summary {
  public:
    /// A job that got a response (any status) after `took`.
    void add_response(std::chrono::microseconds took);
    /// A request that was sent and failed with the error named `code` after `took`.
    void add_failure(std::string_view code, std::chrono::microseconds took);
    /// A failed job without a request to time: one that never reached a server (invalid_job, a
    /// request rejected before sending, no_endpoint, pool_exhausted) or was stopped unfinished
    /// (client_stopped). Counted, but not in requests sent, rate or latency.
    void add_untimed(std::string_view code);

    std::size_t jobs() const noexcept { return ok_ + failed_; }
    std::size_t failed() const noexcept { return failed_; }
    /// Jobs that failed with the error named `code`.
    std::size_t failures(std::string_view code) const;

    /// Two lines for stderr, e.g.
    ///   fanout: 300 jobs, 298 ok, 2 failed (invalid_job 1, request_timeout 1)
    ///   fanout: 298 requests sent in 1.234 s, 241.5 req/s, latency p50 3.1 ms, p99 9.8 ms
    /// Latency percentiles (nearest rank) cover every request sent, failures included.
    std::string text(std::chrono::steady_clock::duration wall) const;

  private:
    std::size_t ok_ = 0;
    std::size_t failed_ = 0;
    std::map<std::string, std::size_t, std::less<>> failures_;  // sorted: stable output
    std::vector<std::int64_t> latencies_us_;                    // 8 bytes a request
};

}  // namespace fcgi_cli
