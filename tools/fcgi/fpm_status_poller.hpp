// Polling php-fpm's status page during `fcgi bench --fpm-status`, through a client of its own.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"
#include "fpm_status.hpp"

namespace fcgi_cli {

/// Polls the status page through its own one-connection client. The connection is closed
/// after each poll (idle timeout of 1 ms): php-fpm pins a worker to each open connection, so a
/// kept-alive poller would steal a worker from the load it measures. Polls never overlap: a
/// poll still waiting when the next is due is not doubled, and during the run one waits as
/// long as it takes (so the poller adds at most one connection to the queue it measures).
/// Single-threaded: call everything on `ex`'s thread; the poller must outlive the io_context's
/// run().
class fpm_status_poller {
  public:
    fpm_status_poller(asio::any_io_executor ex, fcgi::endpoint where, std::string path);

    /// One poll now; `done` runs when it has been answered or failed.
    void poll_once(std::function<void()> done);
    /// Polls every `every` until stop().
    void start(std::chrono::milliseconds every);
    /// During the run, skips each poll due while `skip()` is true (the run's connections hold
    /// every worker: a poll could not be answered before the run ends, and would only wait in
    /// the queue it measures); counted in summary().polls_skipped.
    void skip_polls_while(std::function<bool()> skip) { skip_ = std::move(skip); }
    /// Stops polling and abandons a poll in flight.
    void stop();
    /// After stop() and the run: one more poll on a fresh connection, counted with
    /// fpm_status_summary::add_after_run; `done` runs when it has been answered or failed.
    void poll_after_run(std::function<void()> done);

    const fpm_status_summary& summary() const noexcept { return summary_; }

  private:
    void poll(std::function<void()> done);
    void schedule();
    /// Sets summary().poll_waited when the poll in flight during the run has waited long
    /// enough to have been in php-fpm's backlog.
    void note_wait();

    fcgi::client& make_client();

    asio::any_io_executor ex_;
    fcgi::endpoint where_;
    std::optional<fcgi::client> client_;  // remade for the poll after the run (stop() ends it)
    asio::steady_timer timer_;
    std::string path_;
    std::chrono::milliseconds every_{500};
    bool busy_ = false;
    std::chrono::steady_clock::time_point poll_started_;
    std::chrono::steady_clock::time_point run_started_;
    bool stopped_ = false;
    bool after_run_ = false;
    bool started_ = false;  // start() was called: a poll before it is the baseline only
    std::function<bool()> skip_;
    fpm_status_summary summary_;
};

}  // namespace fcgi_cli
