// Durations from options and requests, made safe to add to a clock reading.
#pragma once

#include <algorithm>
#include <chrono>

namespace fcgi::detail {

/// Longer than any run, so a longer duration means "never" in effect. Capping at it keeps
/// `steady_clock::now() + d` (in nanoseconds) from overflowing.
inline constexpr std::chrono::milliseconds forever = std::chrono::hours(24 * 365 * 100);

/// `d`, at most `forever`.
constexpr std::chrono::milliseconds capped(std::chrono::milliseconds d) {
    return std::min(d, forever);
}

}  // namespace fcgi::detail
