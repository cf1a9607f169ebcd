#include "bench_run.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "error_names.hpp"
#include "fcgi/error.hpp"
#include "output.hpp"

namespace fcgi_cli {

using namespace std::chrono;
using clock_type = bench_run::clock_type;

namespace {

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}

clock_type::duration seconds_to(double s) {
    return duration_cast<clock_type::duration>(duration<double>(s));
}

}  // namespace

sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

bench_run::bench_run(asio::io_context& ctx, const bench_flags& f, fcgi::client_options options,
                     fcgi::prepared_request req, fpm_status_poller* poller)
    : ctx_(ctx),
      flags_(f),
      capacity_(options.max_connections_per_endpoint *
                (options.mode == fcgi::multiplexing::on ? options.max_requests_per_connection : 1)),
      max_pending_(options.max_pending),
      client_(ctx.get_executor(), std::move(options)),
      req_(std::move(req)),
      poller_(poller),
      end_timer_(ctx),
      pace_timer_(ctx),
      grace_timer_(ctx),
      progress_timer_(ctx),
      warmup_timer_(ctx),
      resume_timer_(ctx),
      signals_(ctx) {
    const double timeout = f.request.timeout;
    // Requests still out after this grace are counted as never answered. A run of
    // --requests alone ends when the last is sent: wait for the answers as ab does (30 s).
    grace_ = timeout > 0                          ? seconds_to(timeout) + milliseconds(100)
             : f.requests != 0 && f.duration <= 0 ? seconds(30)
                                                  : seconds(2);
    progress_ = isatty(STDERR_FILENO) == 1;
}

void bench_run::start() {
    start_ = clock_type::now();
    measure_start_ = start_ + seconds_to(flags_.warmup);
    if (flags_.rate > 0)
        interval_ = 1.0 / flags_.rate;
    cpu_start_ = cpu_seconds();
    double run = flags_.duration > 0 ? flags_.duration : (flags_.requests ? max_bench_seconds : 10);
    end_ = measure_start_ + seconds_to(run);
    stop_time_ = end_;
    end_timer_.expires_at(end_);
    end_timer_.async_wait([this](std::error_code ec) {
        if (!ec)
            stop_sending();
    });
    if (flags_.warmup > 0) {
        warmup_timer_.expires_at(measure_start_);
        warmup_timer_.async_wait([this](std::error_code ec) {
            if (!ec)
                cpu_start_ = cpu_seconds();  // the warmup's CPU is not the measurement's
        });
    }
    if (poller_)
        poller_->start(milliseconds(500));
    if (progress_)
        schedule_progress();
    catch_signals();
    if (int sig = take_blocked_signal()) {
        // Ctrl-C during the probe or the first status poll: the report of nothing.
        counts_.interrupted = true;
        counts_.signal = sig;
        stop_sending();
        return;
    }
    if (flags_.rate > 0) {
        pace();
    } else {
        launch(clock_type::now());
    }
}

double bench_run::duration_s() const {
    auto last =
        flags_.rate <= 0 && limit_reached() ? std::max(stop_time_, last_completion_) : stop_time_;
    return std::max(0.0, duration<double>(last - measure_start_).count());
}

double bench_run::rps() const {
    double d = duration_s();
    // Responses within the period, but for a closed loop of --requests, whose period runs to its
    // last answer: an open loop's drain counted too would make an overloaded server look as
    // fast as the schedule.
    auto n = flags_.rate > 0 || !limit_reached() ? counts_.ok_in_period : counts_.ok;
    return d > 0 ? double(n) / d : 0.0;
}

double bench_run::drain_s() const {
    if (flags_.rate <= 0 && limit_reached())
        return 0.0;  // the period runs to the last response
    double d = duration<double>(last_completion_ - stop_time_).count();
    return stopping_ && d > 0 ? d : 0.0;
}

std::size_t bench_run::open_connections() const {
    std::size_t n = 0;
    for (const auto& e : client_.stats().endpoints)
        n += e.open;
    return n;
}

double bench_run::start_gap_s() const {
    if (flags_.rate <= 0 && limit_reached())
        return -1;  // rps() counts every response, over a period that runs to the last
    if (!first_in_period_)
        return duration_s();
    return std::max(0.0, duration<double>(*first_in_period_ - measure_start_).count());
}

bool bench_run::limit_reached() const noexcept {
    return flags_.requests != 0 && counts_.sent >= flags_.requests;
}

// Closed loop: keep `concurrency` requests in flight. `now` is the clock read just before
// (one read per completion, not two: it shows at these rates).
void bench_run::launch(clock_type::time_point now) {
    while (!stopping_ && in_flight_ < flags_.concurrency) {
        if (now >= end_) {
            stop_sending();
            return;
        }
        send(now);
    }
}

// Open loop: request k is due at start + k/rate; a late tick sends every overdue request
// with its own intended time, so a stalled server shows up in the latency (wrk2's
// correction for coordinated omission). At most pace_batch at a time, then a turn of the event
// loop: at a rate the client cannot keep, one call sent the whole schedule at once, the end and
// grace timers waited behind it, and every request and its rejection sat in memory (GBs).
void bench_run::pace() {
    constexpr int pace_batch = 256;
    auto now = clock_type::now();
    for (int sent = 0; !stopping_; ++sent) {
        if (sent == pace_batch) {
            pace_timer_.expires_at(now);  // due at once, behind what is already queued
            pace_timer_.async_wait([this](std::error_code ec) {
                if (!ec)
                    pace();
            });
            return;
        }
        auto due = this->due(double(next_k_));
        if (due >= end_) {
            // The period runs to its end, not to the last send: at 1 req/s over 5 s the
            // rate is 5 / 5 s, not 5 / 4 s.
            if (now < end_) {
                pace_timer_.expires_at(end_);
                pace_timer_.async_wait([this](std::error_code ec) {
                    if (!ec)
                        stop_sending();
                });
                return;
            }
            stop_sending();
            return;
        }
        if (due > now) {
            pace_timer_.expires_at(due);
            pace_timer_.async_wait([this](std::error_code ec) {
                if (!ec)
                    pace();
            });
            return;
        }
        ++next_k_;
        send(due);
    }
}

clock_type::time_point bench_run::due(double k) const {
    return start_ + seconds_to(interval_ * k);
}

double bench_run::first_due_from(clock_type::time_point t) const {
    // By pace()'s own sum, not a division that rounds.
    double k = std::max(0.0, std::ceil(duration<double>(t - start_).count() / interval_));
    while (k > 0 && due(k - 1) >= t)
        --k;
    while (due(k) < t)
        ++k;
    return k;
}

void bench_run::send(clock_type::time_point intended) {
    const bool counted = intended >= measure_start_;
    if (counted) {
        ++counts_.sent;
        ++counted_in_flight_;
        counts_.bytes_out += req_.get().body.size();
    }
    // Only what the pool's queue took: beyond max_pending a request fails at once instead.
    if (counted && flags_.rate > 0 && in_flight_ >= capacity_ &&
        in_flight_ - capacity_ < max_pending_)
        ++counts_.waited_in_client;
    ++in_flight_;
    client_.async_request(req_, [this, intended, counted](std::error_code ec, fcgi::response&& r) {
        on_complete(intended, counted, ec, r);
    });
    if (counted && limit_reached())
        stop_sending();
}

void bench_run::on_complete(clock_type::time_point intended, bool counted, std::error_code ec,
                            const fcgi::response& r) {
    if (finished_)
        return;  // abandoned by finish(): already counted as unanswered
    --in_flight_;
    auto now = clock_type::now();
    if (!ec)
        answered_ = true;
    // Throughput is every response in the period: a warmup request's answered within it too,
    // or the first latency's worth of the period would hold none (rps low by latency/duration).
    if (!counted && !ec && now >= measure_start_ && (!stopping_ || now <= stop_time_)) {
        ++counts_.ok_in_period;
        first_in_period_ = first_in_period_.value_or(now);
    }
    if (counted) {
        --counted_in_flight_;
        last_completion_ = now;
        if (ec) {
            ++counts_.failed;
            counts_.resent_failed += r.times_sent > 1;
            auto [it, first] = counts_.errors.try_emplace(std::string(error_name(ec)), 0);
            ++it->second;
            if (first)
                counts_.first_error[it->first] = error_text(ec, in_flag_terms(r.diagnostics, true));
        } else {
            ++counts_.ok;
            // An open loop of --requests stops sending at its last send; its period runs on to
            // when the next one would have been due (stop_sending).
            if (!stopping_ || now <= stop_time_) {
                ++counts_.ok_in_period;
                first_in_period_ = first_in_period_.value_or(now);
            }
            counts_.resent += r.times_sent > 1;
            counts_.status_4xx_5xx += r.status >= 400;
            counts_.status_5xx += r.status >= 500;
            ++counts_.status[r.status];
            counts_.bytes_in += r.body.size() + r.stderr_text.size() + r.stderr_dropped;
            counts_.latency.record(duration_cast<microseconds>(now - intended));
        }
    }
    // The pool gave up connecting before the server ever answered: every further send
    // would fail at once, so the closed loop would spin on failures until the end.
    if (ec == fcgi::error::no_endpoint && !answered_) {
        unreachable_ = true;
        stop_sending();
    }
    // Nor when the peer is not a FastCGI responder (an HTTP port): every request would open
    // a connection to fail the same way, thousands a second, for the whole run. A bad CGI head
    // came in well-formed records: the script's output is at fault, and it is counted (its
    // reason and first message in the report) like any failing script. The cheap tests come
    // first: comparing with a condition is a virtual call, and this runs for every answer.
    if (ec && !answered_ && !protocol_broken_ && ec == fcgi::condition::protocol_error &&
        ec != fcgi::error::bad_response_head && ec != fcgi::error::response_head_too_large) {
        protocol_broken_ = true;
        stop_sending();
    }
    if (stopping_) {
        if (counted_in_flight_ == 0)
            finish();
        return;
    }
    if (flags_.rate > 0)
        return;
    if (ec == fcgi::error::no_endpoint) {
        // The server went down after answering (a restart): the pool fails every send at
        // once until its backoff ends, and the loop would count a million failures a
        // second. Send again after the pool's first backoff instead.
        pause_then_launch();
        return;
    }
    launch(now);
}

void bench_run::pause_then_launch() {
    if (resume_armed_)
        return;
    resume_armed_ = true;
    resume_timer_.expires_after(fcgi::client_options{}.initial_backoff);
    resume_timer_.async_wait([this](std::error_code ec) {
        resume_armed_ = false;
        if (!ec && !stopping_)
            launch(clock_type::now());
    });
}

// Ctrl-C ends the run as its end time would, so the report still comes (wrk does the
// same); a second one stops waiting for the requests still out. SIGTERM (timeout(1), CI,
// docker stop) does not wait: what is out counts as never answered.
void bench_run::catch_signals() {
    for (int sig : {SIGINT, SIGTERM}) {
        std::error_code ec;
        if (!signal_ignored(sig))
            signals_.add(sig, ec);  // if it fails, the signal keeps its default action
    }
    arm_signal();
}

// run_bench() blocks SIGINT and SIGTERM until catch_signals() has run, so that one sent
// during the probe or the first status poll is not lost to its default action (no report).
// Takes one that came meanwhile (0 if none) and unblocks them.
int bench_run::take_blocked_signal() {
    sigset_t set = stop_signals();
    timespec zero{};
    int sig = ::sigtimedwait(&set, nullptr, &zero);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return sig > 0 ? sig : 0;
}

void bench_run::arm_signal() {
    signals_.async_wait([this](std::error_code ec, int sig) {
        if (ec || finished_)
            return;
        counts_.interrupted = true;
        counts_.signal = sig;
        if (stopping_ || sig == SIGTERM) {
            stop_sending();
            finish();
            return;
        }
        stop_sending();
        // Nothing counted was out: stop_sending() finished the run, and a wait armed now
        // would keep ctx.run() going for a signal that never comes.
        if (!finished_)
            arm_signal();
    });
}

void bench_run::stop_sending() {
    if (stopping_)
        return;
    stopping_ = true;
    stop_time_ = std::min(clock_type::now(), end_);
    // An open loop's period runs to when the next request would be due, not to the last
    // send: N requests at R/s take N/R seconds.
    if (flags_.rate > 0 && limit_reached())
        stop_time_ = std::min(end_, start_ + seconds_to(interval_ * double(next_k_)));
    end_timer_.cancel();
    pace_timer_.cancel();
    if (flags_.rate > 0 && !limit_reached() && !counts_.interrupted) {
        // Due in the measured period and never sent: the client fell behind the pace.
        double first = std::max(double(next_k_), first_due_from(measure_start_));
        double end = first_due_from(stop_time_);
        if (end > first)
            counts_.behind_schedule = static_cast<std::uint64_t>(end - first);
    }
    if (counted_in_flight_ == 0) {
        finish();
        return;
    }
    grace_timer_.expires_after(grace_);
    grace_timer_.async_wait([this](std::error_code ec) {
        if (!ec)
            finish();
    });
}

void bench_run::finish() {
    if (finished_)
        return;
    finished_ = true;
    cpu_end_ = cpu_seconds();
    counts_.unanswered = counted_in_flight_;
    std::size_t handed = 0;  // to connections; the rest still wait in the client's queue
    bool connecting_only = !answered_ && counts_.ok == 0;
    for (const auto& e : client_.stats().endpoints) {
        counts_.unserved_connections += e.unserved;
        handed += e.in_flight;
        // Every connect either failed or is still pending: none ever completed.
        const std::size_t connecting = e.open - e.idle - e.busy;
        connecting_only =
            connecting_only && connecting > 0 && e.connects == e.connect_failures + connecting;
    }
    // A run shorter than the connect timeout against a server that drops connects: as
    // unreachable as one whose connects failed, not a server that left requests unanswered.
    // Not a run a signal cut short: that one exits 128 + the signal, what is out unanswered.
    if (connecting_only && counts_.unanswered > 0 && !unreachable_ && !counts_.interrupted) {
        unreachable_ = true;
        never_connected_ = true;
    }
    counts_.unsent =
        std::min<std::uint64_t>(counts_.unanswered, in_flight_ > handed ? in_flight_ - handed : 0);
    for (auto* t : {&end_timer_, &pace_timer_, &grace_timer_, &progress_timer_, &warmup_timer_,
                    &resume_timer_})
        t->cancel();
    std::error_code ignored;
    signals_.cancel(ignored);
    if (poller_)
        poller_->stop();
    if (progress_)
        write_stderr("\r\033[K");
    // Fails whatever is still out (warmup stragglers, unanswered) and closes the
    // connections, so ctx.run() returns.
    client_.stop();
}

void bench_run::schedule_progress() {
    progress_timer_.expires_after(seconds(1));
    progress_timer_.async_wait([this](std::error_code ec) {
        if (ec || finished_)
            return;
        auto now = clock_type::now();
        double t = duration<double>(now - start_).count();
        double measured = duration<double>(now - measure_start_).count();
        std::string line = "\rbench: " + fixed(t, 0) + " s, " + std::to_string(counts_.sent) +
                           " sent, " + std::to_string(counts_.ok) + " ok, " +
                           std::to_string(counts_.failed) + " failed, " +
                           std::to_string(in_flight_) + " in flight";
        if (measured > 0)
            line += ", " + fixed(double(counts_.ok) / measured, 1) + " req/s";
        else
            line += " (warming up)";
        write_stderr(line + "\033[K");
        schedule_progress();
    });
}

}  // namespace fcgi_cli
