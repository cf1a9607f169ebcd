// Durations from options and requests, made safe to add to a clock reading; a negative
// request timeout is a deadline already passed.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>

namespace fcgi::detail {

/// Longer than any run, so a longer duration means "never" in effect. Capping at it keeps
/// `steady_clock::now() + d` (in nanoseconds) from overflowing.
inline constexpr std::chrono::milliseconds forever = std::chrono::hours(24 * 365 * 100);

/// `d`, at most `forever`.
constexpr std::chrono::milliseconds capped(std::chrono::milliseconds d) {
    return std::min(d, forever);
}

/// The diagnostics of a request whose `timeout` is negative: `deadline - now` computed by a
/// caller whose deadline had passed. It fails with error::request_timeout at once, unsent.
inline std::string expired_before_the_call(std::chrono::milliseconds timeout) {
    return "request::timeout is " + std::to_string(timeout.count()) +
           " ms: its deadline had passed when the request was made, so it was not sent";
}

}  // namespace fcgi::detail
