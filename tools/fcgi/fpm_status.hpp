// php-fpm's status page (pm.status_path) as `fcgi bench --fpm-status` reads it: parsing one
// page and the maxima over a run.
#pragma once

#include <cstddef>
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
    /// "listen queue len", the backlog's size: 0 where php-fpm cannot read the queue (a unix
    /// socket on Linux), whose "listen queue" then always says 0. -1 when absent.
    std::int64_t listen_queue_len = -1;
    std::string process_manager;  ///< "static", "dynamic", "ondemand"; empty when absent
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
    /// Polls answered before the run started (the one that sizes the pool): when `polls` is no
    /// more, none was answered during the run and the maxima say nothing of it.
    std::uint64_t polls_before_run = 0;
    /// Polls answered after the run (at most one): its max listen queue covers the run even
    /// when every poll during it waited behind the load.
    std::uint64_t polls_after_run = 0;
    /// The longest listen queue this run is known to have caused: the largest polled "listen
    /// queue", or php-fpm's "max listen queue" once it rose above the first poll's.
    std::int64_t max_listen_queue = 0;
    std::int64_t max_active_processes = 0;  ///< the largest active count a poll saw
    std::int64_t total_processes = 0;       ///< from the last successful poll
    /// False when php-fpm cannot tell its listen queue (a unix socket): max_listen_queue is 0
    /// whatever waits.
    bool listen_queue_known = true;
    /// A poll during the run waited behind the load in php-fpm's backlog (the poller sets it):
    /// a max_listen_queue taken from php-fpm's count may include that poll's own connection.
    bool poll_waited = false;
    /// Polls not made during the run while its connections held every worker of a static pool.
    std::uint64_t polls_skipped = 0;
    std::string process_manager;  ///< from the last successful poll
    std::string last_error;       ///< why the last failed poll failed

    /// Counts a parsed poll. php-fpm's "max listen queue" counts since the pool started, so
    /// before the run's first poll it may hold an earlier run's queue: it counts only when it
    /// rises above what the first poll saw. php-fpm samples "listen queue" once a second: in
    /// the run's first second it may be from before the run (an earlier run's leftovers), and
    /// is not counted unless `queue_is_current`.
    void add(const fpm_status_sample& s, bool queue_is_current = true);
    /// Counts the poll before the run (the one that sizes the pool): a baseline only. Its queue
    /// and active processes are other load's, not the run's maxima.
    void add_before_run(const fpm_status_sample& s);
    /// Counts the poll after the run: only its "max listen queue" (php-fpm's, kept by the
    /// kernel's count) says something of the run; its active processes do not.
    void add_after_run(const fpm_status_sample& s);
    /// Counts a failed poll.
    void add_failure(std::string why);
    /// Whether a poll was answered while the load ran (max_active_processes is the run's).
    bool seen_during_run() const noexcept { return polls > polls_before_run + polls_after_run; }
    /// Whether any poll was answered, before, during or after the run: total_processes and
    /// process_manager are known.
    bool answered() const noexcept { return polls > 0; }
    /// Whether max_listen_queue says something of the run, on a socket whose queue php-fpm can
    /// read: a poll during the run, or one after it that saw php-fpm's count rise. (Both are
    /// php-fpm's samples, taken once a second: a shorter queue can pass unseen.)
    bool queue_known() const noexcept {
        return listen_queue_known && (queue_sampled_ || from_count_ || after_run_rose_);
    }
    /// When the queue is not known because php-fpm's count, a high-water mark since it started,
    /// did not rise during the run: the count it stayed at.
    std::optional<std::int64_t> count_stayed_at() const noexcept {
        if (queue_known() || !listen_queue_known || !after_run_queue_)
            return std::nullopt;
        return first_max_listen_queue_;
    }
    /// Whether max_listen_queue is php-fpm's count (it rose during the run), not a polled queue.
    bool queue_from_count() const noexcept { return from_count_; }
    /// Whether max_listen_queue may count the status poll's own connection: it is php-fpm's
    /// count, and a poll waited in the backlog.
    bool queue_may_include_poll() const noexcept {
        return queue_known() && from_count_ && poll_waited;
    }

  private:
    std::optional<std::int64_t> first_max_listen_queue_;
    bool after_run_queue_ = false;  // the poll after the run had a first poll to compare with
    bool after_run_rose_ = false;   // ... and php-fpm's count had risen past it
    bool from_count_ = false;       // max_listen_queue came from php-fpm's count
    bool queue_sampled_ = false;    // a poll during the run counted its "listen queue"

    void take_count(std::int64_t count) noexcept;
};

/// Whether `connections` kept-alive connections hold every worker of the pool the first poll
/// saw (static only: dynamic and ondemand start more, up to a limit the page does not tell).
bool holds_every_worker(const fpm_status_summary& s, std::size_t connections);
/// Whether the pool the first poll saw is one whose every worker a run's connections can hold
/// (static, and answered): holds_every_worker() can be true for some number of connections.
bool pool_is_fixed(const fpm_status_summary& s);

/// The report's "fpm status:" line, newline included: the maxima, or why they are unknown. An
/// answered poll after the run counts, also on a unix socket, whose queue php-fpm cannot read.
std::string fpm_status_line(const fpm_status_summary& st);

}  // namespace fcgi_cli
