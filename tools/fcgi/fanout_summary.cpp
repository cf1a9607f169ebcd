#include "fanout_summary.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "latency_histogram.hpp"
#include "output.hpp"

namespace fcgi_cli {
namespace {

// Nearest-rank percentile of sorted values, in milliseconds.
double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
    return static_cast<double>(sorted[nearest_rank(p, sorted.size()) - 1]) / 1000.0;
}

}  // namespace

void fanout_summary::add_response(std::chrono::microseconds took) {
    ++ok_;
    latencies_us_.push_back(took.count());
}

void fanout_summary::add_failure(std::string_view code, std::chrono::microseconds took) {
    add_untimed(code);
    latencies_us_.push_back(took.count());
}

std::size_t fanout_summary::failures(std::string_view code) const {
    auto it = failures_.find(code);
    return it == failures_.end() ? 0 : it->second;
}

void fanout_summary::add_untimed(std::string_view code) {
    ++failed_;
    auto it = failures_.find(code);
    if (it == failures_.end())
        failures_.emplace(std::string(code), 1);
    else
        ++it->second;
}

std::string fanout_summary::text(std::chrono::steady_clock::duration wall) const {
    std::string s = "fanout: " + std::to_string(jobs()) + (jobs() == 1 ? " job, " : " jobs, ") +
                    std::to_string(ok_) + " ok, " + std::to_string(failed_) + " failed";
    if (!failures_.empty()) {
        s += " (";
        bool first = true;
        for (const auto& [code, n] : failures_) {
            if (!first)
                s += ", ";
            first = false;
            s += code + " " + std::to_string(n);
        }
        s += ")";
    }
    s += "\n";

    double secs = std::chrono::duration<double>(wall).count();
    const std::size_t sent = latencies_us_.size();
    s += "fanout: " + std::to_string(sent) + (sent == 1 ? " request" : " requests") + " sent in " +
         fixed(secs, 3) + " s";
    if (!latencies_us_.empty()) {
        if (secs > 0)
            s += ", " + fixed(static_cast<double>(latencies_us_.size()) / secs, 1) + " req/s";
        auto sorted = latencies_us_;
        std::sort(sorted.begin(), sorted.end());
        s += ", latency p50 " + fixed(percentile_ms(sorted, 50), 3) + " ms, p99 " +
             fixed(percentile_ms(sorted, 99), 3) + " ms";
    }
    s += "\n";
    return s;
}

}  // namespace fcgi_cli
