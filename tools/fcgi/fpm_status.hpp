// Watching php-fpm's status page (pm.status_path) during `fcgi bench`: parse and track maxima.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"

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
    std::int64_t max_listen_queue = 0;
    std::int64_t max_active_processes = 0;  ///< the largest active count a poll saw
    std::int64_t total_processes = 0;       ///< from the last successful poll
    std::string last_error;                 ///< why the last failed poll failed
};

/// Polls the status page through its own one-connection client. The connection is closed
/// after each poll (idle timeout of 1 ms): php-fpm pins a worker to each open connection, so a
/// kept-alive poller would steal a worker from the load it measures. Polls never overlap: a
/// poll still waiting when the next is due is not doubled. Single-threaded: call everything
/// on `ex`'s thread; the poller must outlive the io_context's run().
class fpm_status_poller {
  public:
    fpm_status_poller(asio::any_io_executor ex, fcgi::endpoint where, std::string path);

    /// One poll now; `done` runs when it has been answered or failed.
    void poll_once(std::function<void()> done);
    /// Polls every `every` until stop().
    void start(std::chrono::milliseconds every);
    /// Stops polling and abandons a poll in flight.
    void stop();

    const fpm_status_summary& summary() const noexcept { return summary_; }

  private:
    void poll(std::function<void()> done);
    void schedule();

    fcgi::client client_;
    asio::steady_timer timer_;
    std::string path_;
    std::chrono::milliseconds every_{500};
    bool busy_ = false;
    bool stopped_ = false;
    fpm_status_summary summary_;
};

}  // namespace fcgi_cli
