// `fcgi bench`: one run of load, closed loop or open loop, on one single-threaded io_context.
#pragma once

#include <signal.h>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>

#include "bench_command.hpp"
#include "bench_counts.hpp"
#include "fcgi/client.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/response.hpp"
#include "fpm_status_poller.hpp"

namespace fcgi_cli {

/// The signals that end a run early (SIGINT, SIGTERM). run_bench() blocks them until the run
/// catches them, so that one sent before it starts still ends in a report.
sigset_t stop_signals();

/// One benchmark on one single-threaded io_context. Every handler captures `this`: the run
/// outlives ctx.run(), which returns only once the clients are stopped and the timers cancelled.
class bench_run {
  public:
    /// The clock that times the run.
    using clock_type = std::chrono::steady_clock;

    /// A run of `f` through a client made of `options` on `ctx`, sending `req`; `poller`
    /// (may be null) polls php-fpm's status page alongside. `f` must outlive the run.
    bench_run(asio::io_context& ctx, const bench_flags& f, fcgi::client_options options,
              fcgi::prepared_request req, fpm_status_poller* poller);

    /// Starts the load (the clock, the timers, Ctrl-C handling). ctx.run() then returns once
    /// the run has finished and its clients are stopped.
    void start();

    /// What the run counted; final once ctx.run() has returned.
    const bench_counts& counts() const noexcept { return counts_; }
    /// The measured period: to the last response for a closed loop of --requests (its end
    /// is the answers, as in ab), else to the end of sending (--duration, Ctrl-C, an open
    /// loop's schedule), so that a slow last batch does not stretch the whole run.
    double duration_s() const;
    /// Responses per second of duration_s(), counting those that came within it (the drain
    /// after it is not throughput; an open loop's counted too would make an overloaded server
    /// look as fast as the schedule), but all of them for a closed loop of --requests, whose
    /// period runs to its last answer. Without --warmup the period's first latency has none.
    double rps() const;
    /// How long after the measured period the last response came (0: none after it).
    double drain_s() const;
    /// Connections the run's client has open or connecting now.
    std::size_t open_connections() const;
    /// When rps() counts the responses within the period: from its start to the first one
    /// counted (the whole period when none was), a stretch with none to count. Else -1.
    double start_gap_s() const;
    /// The process's CPU seconds over the measured period (the warmup's excluded).
    double cpu_s() const noexcept { return cpu_end_ - cpu_start_; }
    /// True when the run stopped because no connection could be made before any response.
    bool unreachable() const noexcept { return unreachable_; }
    /// Unreachable because no connect had completed when the run ended (none had failed yet
    /// either: a host down, SYNs dropped), rather than because the pool gave up.
    bool never_connected() const noexcept { return never_connected_; }
    /// True when the run stopped because the server broke the protocol before any response.
    bool protocol_broken() const noexcept { return protocol_broken_; }

  private:
    bool limit_reached() const noexcept;  // --requests sent
    void launch(clock_type::time_point now);
    void pace();
    void send(clock_type::time_point intended);
    /// Open loop: when request k is due.
    clock_type::time_point due(double k) const;
    /// Open loop: the index of the first request due at or after `t`.
    double first_due_from(clock_type::time_point t) const;
    void on_complete(clock_type::time_point intended, bool counted, std::error_code ec,
                     const fcgi::response& r);
    void pause_then_launch();
    void catch_signals();
    static int take_blocked_signal();
    void arm_signal();
    void stop_sending();
    void finish();
    void schedule_progress();

    asio::io_context& ctx_;
    const bench_flags& flags_;
    std::size_t capacity_;     // requests the connections carry at once
    std::size_t max_pending_;  // what the pool queues beyond them
    fcgi::client client_;
    fcgi::prepared_request req_;
    fpm_status_poller* poller_;
    asio::steady_timer end_timer_, pace_timer_, grace_timer_, progress_timer_, warmup_timer_,
        resume_timer_;
    asio::signal_set signals_;
    clock_type::duration grace_{};
    bool progress_ = false;
    clock_type::time_point start_, measure_start_, end_, stop_time_, last_completion_;
    std::optional<clock_type::time_point> first_in_period_;  // the first response rps() counts
    double interval_ = 0;
    std::uint64_t next_k_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t counted_in_flight_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    bool answered_ = false;     // any response so far, warmup included
    bool unreachable_ = false;  // see on_complete() and finish()
    bool never_connected_ = false;
    bool protocol_broken_ = false;
    bool resume_armed_ = false;  // see pause_then_launch()
    double cpu_start_ = 0, cpu_end_ = 0;
    bench_counts counts_;
};

}  // namespace fcgi_cli
