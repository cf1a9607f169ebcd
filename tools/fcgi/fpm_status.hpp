// php-fpm's status page (pm.status_path) as `fcgi bench --fpm-status` reads it: parsing one
// page and the maxima over a run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fcgi_cli {

/// The fields of one `?json&full` status page that bench reports.
struct fpm_status_sample {
    std::int64_t listen_queue = 0;
    std::int64_t max_listen_queue = 0;  ///< since the pool started (the kernel's, reliable)
    std::int64_t active_processes = 0;  ///< busy workers, the poll's own excluded
    std::int64_t total_processes = 0;
};

/// Parses php-fpm's `?json` (or `?json&full`) status body. With `full`, active and total
/// processes are counted from the process list, skipping the worker running `own_uri` (the
/// poll itself); without it php-fpm's counters are used, active clamped to total. php-fpm's
/// "max active processes" is not used: the same race corrupts it for good. On failure returns
/// false and sets `why`.
bool parse_fpm_status(std::string_view body, std::string_view own_uri, fpm_status_sample& out,
                      std::string& why);

/// What the polls saw over a run.
struct fpm_status_summary {
    std::uint64_t polls = 0;     ///< polls answered and parsed
    std::uint64_t failures = 0;  ///< polls that failed (error, bad status, unparsable)
    /// The longest listen queue this run is known to have caused: the largest polled "listen
    /// queue", or php-fpm's "max listen queue" once it rose above the first poll's.
    std::int64_t max_listen_queue = 0;
    std::int64_t max_active_processes = 0;  ///< the largest active count a poll saw
    std::int64_t total_processes = 0;       ///< from the last successful poll
    std::string last_error;                 ///< why the last failed poll failed

    /// Counts a parsed poll. php-fpm's "max listen queue" counts since the pool started, so
    /// before the run's first poll it may hold an earlier run's queue: it counts only when it
    /// rises above what the first poll saw.
    void add(const fpm_status_sample& s);
    /// Counts a failed poll.
    void add_failure(std::string why);

  private:
    std::optional<std::int64_t> first_max_listen_queue_;
};

}  // namespace fcgi_cli
