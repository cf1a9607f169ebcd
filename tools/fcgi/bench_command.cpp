#include "bench_command.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "bench_setup.hpp"
#include "error_names.hpp"
#include "exit_codes.hpp"
#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fpm_status_poller.hpp"
#include "latency_histogram.hpp"
#include "output.hpp"

namespace fcgi_cli {
namespace {

using namespace std::chrono;
using clock_type = steady_clock;

constexpr std::uint64_t max_requests = 100'000'000;
constexpr double max_seconds = 3600;
constexpr std::size_t warn_connections = 64;
// --multiplex auto waits this long for GET_VALUES_RESULT (libfcgi never answers a lone one).
constexpr milliseconds probe_timeout{1000};

// The signals that end a run early.
sigset_t stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}

clock_type::duration seconds_to(double s) {
    return duration_cast<clock_type::duration>(duration<double>(s));
}

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

double ms(microseconds us) {
    return double(us.count()) / 1000.0;
}

// --multiplex auto: one GET_VALUES exchange on a connection of its own, before the clock
// starts, so that neither its round trip nor a server that never answers shows in the run.
void probe_server(const fcgi::endpoint& ep, milliseconds request_timeout, bench_setup& s) {
    fcgi::get_values_options options;
    options.timeout = probe_timeout;
    if (request_timeout.count() > 0)
        options.timeout = std::min(options.timeout, request_timeout);
    // Connecting gets a millisecond less, so that a connect that hangs is reported as such
    // rather than as a server that did not answer.
    options.connect_timeout = std::max(milliseconds(1), options.timeout - milliseconds(1));
    s.probe_limit = options.timeout;
    asio::io_context ctx{1};
    fcgi::async_get_values(ctx.get_executor(), ep, options,
                           [&](std::error_code ec, fcgi::protocol::get_values_result r) {
                               s.probe_ec = ec;
                               s.probe = std::move(r);
                           });
    ctx.run();
    s.probed = true;
    s.multiplexed = !s.probe_ec && s.probe.mpxs_conns.value_or(false);
}

// Everything a run counts. Only requests intended to start after the warmup are counted.
struct bench_counts {
    std::uint64_t sent = 0;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t unanswered = 0;
    // Connections with a request out and not one byte back when the run ended: beyond
    // pm.max_children, php-fpm leaves them in its listen backlog.
    std::size_t unserved_connections = 0;
    std::map<std::string, std::uint64_t, std::less<>> errors;
    // The first failure of each name, in words: a run where every request fails should say
    // why ("cannot connect: No such file or directory"), not only how often.
    std::map<std::string, std::string, std::less<>> first_error;
    std::map<int, std::uint64_t> status;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    latency_histogram latency;  // responses only: a failure's time says nothing of the server
    bool interrupted = false;   // SIGINT or SIGTERM ended the run before its end
    int signal = 0;             // which one
    // Responses to requests written twice: the first connection closed under them (a worker
    // recycled or died), so the pool sent them again; a crash rate hides here.
    std::uint64_t resent = 0;
    // Open loop: requests that found every connection busy and waited in the client, their
    // latency including that wait (the pace asks more than --concurrency can carry).
    std::uint64_t waited_in_client = 0;
    // Of the never-answered, those that never left the client (queued for a connection).
    std::uint64_t unsent = 0;
    // Responses that came before the measured period ended: a closed loop's throughput.
    std::uint64_t ok_in_period = 0;
    // Responses with status 400 or more, 500 or more.
    std::uint64_t status_4xx_5xx = 0, status_5xx = 0;
};

// One benchmark on one single-threaded io_context. Every handler captures `this`: the run
// outlives ctx.run(), which returns only once the clients are stopped and the timers cancelled.
class bench_run {
  public:
    bench_run(asio::io_context& ctx, const bench_flags& f, fcgi::client_options options,
              fcgi::prepared_request req, fpm_status_poller* poller)
        : ctx_(ctx),
          flags_(f),
          capacity_(
              options.max_connections_per_endpoint *
              (options.mode == fcgi::multiplexing::on ? options.max_requests_per_connection : 1)),
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

    void start() {
        start_ = clock_type::now();
        measure_start_ = start_ + seconds_to(flags_.warmup);
        cpu_start_ = cpu_seconds();
        double run = flags_.duration > 0 ? flags_.duration : (flags_.requests ? max_seconds : 10);
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
            interval_ = 1.0 / flags_.rate;
            pace();
        } else {
            launch(clock_type::now());
        }
    }

    const bench_counts& counts() const noexcept { return counts_; }
    /// The measured period: to the last response for a closed loop of --requests (its end
    /// is the answers, as in ab), else to the end of sending (--duration, Ctrl-C, an open
    /// loop's schedule), so that a slow last batch does not stretch the whole run.
    double duration_s() const {
        auto last = flags_.rate <= 0 && limit_reached() ? std::max(stop_time_, last_completion_)
                                                        : stop_time_;
        return std::max(0.0, duration<double>(last - measure_start_).count());
    }
    /// Responses per second of duration_s(): a timed closed loop counts those that came
    /// within it (the drain after it is not throughput); an open loop, every response to a
    /// request its schedule sent, since at a fixed pace what is sent is the load.
    double rps() const {
        double d = duration_s();
        auto n = flags_.rate <= 0 && !limit_reached() ? counts_.ok_in_period : counts_.ok;
        return d > 0 ? double(n) / d : 0.0;
    }
    /// How long after the measured period the last response came (0: none after it).
    double drain_s() const {
        if (flags_.rate <= 0 && limit_reached())
            return 0.0;  // the period runs to the last response
        double d = duration<double>(last_completion_ - stop_time_).count();
        return stopping_ && d > 0 ? d : 0.0;
    }
    double cpu_s() const noexcept { return cpu_end_ - cpu_start_; }
    /// True when the run stopped because no connection could be made before any response.
    bool unreachable() const noexcept { return unreachable_; }
    /// True when the run stopped because the server broke the protocol before any response.
    bool protocol_broken() const noexcept { return protocol_broken_; }

  private:
    bool limit_reached() const noexcept {
        return flags_.requests != 0 && counts_.sent >= flags_.requests;
    }

    // Closed loop: keep `concurrency` requests in flight. `now` is the clock read just before
    // (one read per completion, not two: it shows at these rates).
    void launch(clock_type::time_point now) {
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
    // correction for coordinated omission).
    void pace() {
        auto now = clock_type::now();
        while (!stopping_) {
            auto due = start_ + seconds_to(interval_ * double(next_k_));
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

    void send(clock_type::time_point intended) {
        const bool counted = intended >= measure_start_;
        if (counted) {
            ++counts_.sent;
            ++counted_in_flight_;
            counts_.bytes_out += req_.get().body.size();
        }
        if (counted && flags_.rate > 0 && in_flight_ >= capacity_)
            ++counts_.waited_in_client;
        ++in_flight_;
        client_.async_request(req_,
                              [this, intended, counted](std::error_code ec, fcgi::response&& r) {
                                  on_complete(intended, counted, ec, r);
                              });
        if (counted && limit_reached())
            stop_sending();
    }

    void on_complete(clock_type::time_point intended, bool counted, std::error_code ec,
                     const fcgi::response& r) {
        if (finished_)
            return;  // abandoned by finish(): already counted as unanswered
        --in_flight_;
        auto now = clock_type::now();
        if (!ec)
            answered_ = true;
        if (counted) {
            --counted_in_flight_;
            last_completion_ = now;
            if (ec) {
                ++counts_.failed;
                auto [it, first] = counts_.errors.try_emplace(std::string(error_name(ec)), 0);
                ++it->second;
                if (first)
                    counts_.first_error[it->first] =
                        error_text(ec, in_flag_terms(r.diagnostics, true));
            } else {
                ++counts_.ok;
                if (!stopping_)
                    ++counts_.ok_in_period;
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
        // a connection to fail the same way, thousands a second, for the whole run.
        if (ec == fcgi::condition::protocol_error && !answered_ && !protocol_broken_) {
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

    void pause_then_launch() {
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
    void catch_signals() {
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
    static int take_blocked_signal() {
        sigset_t set = stop_signals();
        timespec zero{};
        int sig = ::sigtimedwait(&set, nullptr, &zero);
        ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
        return sig > 0 ? sig : 0;
    }

    void arm_signal() {
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

    void stop_sending() {
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

    void finish() {
        if (finished_)
            return;
        finished_ = true;
        cpu_end_ = cpu_seconds();
        counts_.unanswered = counted_in_flight_;
        std::size_t handed = 0;  // to connections; the rest still wait in the client's queue
        for (const auto& e : client_.stats().endpoints) {
            counts_.unserved_connections += e.unserved;
            handed += e.in_flight;
        }
        counts_.unsent = std::min<std::uint64_t>(counts_.unanswered,
                                                 in_flight_ > handed ? in_flight_ - handed : 0);
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
        client_.cancel();
    }

    void schedule_progress() {
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

    asio::io_context& ctx_;
    const bench_flags& flags_;
    std::size_t capacity_;  // requests the connections carry at once
    fcgi::client client_;
    fcgi::prepared_request req_;
    fpm_status_poller* poller_;
    asio::steady_timer end_timer_, pace_timer_, grace_timer_, progress_timer_, warmup_timer_,
        resume_timer_;
    asio::signal_set signals_;
    clock_type::duration grace_{};
    bool progress_ = false;
    clock_type::time_point start_, measure_start_, end_, stop_time_, last_completion_;
    double interval_ = 0;
    std::uint64_t next_k_ = 0;
    std::size_t in_flight_ = 0;
    std::uint64_t counted_in_flight_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    bool answered_ = false;     // any response so far, warmup included
    bool unreachable_ = false;  // see on_complete()
    bool protocol_broken_ = false;
    bool resume_armed_ = false;  // see pause_then_launch()
    double cpu_start_ = 0, cpu_end_ = 0;
    bench_counts counts_;
};

// What the reports take from the run besides its counts.
struct bench_times {
    double duration_s = 0;  // the measured period
    double rps = 0;
    double drain_s = 0;  // how long after it the last response came
    double cpu_s = 0;
};

std::string human_report(const bench_flags& f, const bench_setup& setup, const bench_counts& c,
                         const bench_times& t, const fpm_status_summary* st) {
    const double cpu = t.cpu_s;
    std::ostringstream o;
    o << "bench: " << f.request.target << " on " << f.request.connect << ", ";
    if (f.rate > 0)
        o << "open loop at " << fixed(f.rate, 1) << " req/s, at most "
          << setup.connections * setup.per_connection << " in flight";
    else
        o << "closed loop, " << f.concurrency << " in flight";
    o << ", " << setup.connections << (setup.connections == 1 ? " connection" : " connections");
    if (setup.multiplexed)
        o << " multiplexed (up to " << setup.per_connection
          << (setup.per_connection == 1 ? " request" : " requests") << " each)";
    if (f.warmup > 0)
        o << ", " << fixed(f.warmup, 1) << " s warmup";
    o << "\n";
    const std::uint64_t completed = c.ok + c.failed;
    o << "requests:    " << c.sent << " sent, " << c.ok << " ok, " << c.failed << " failed, "
      << c.unanswered << " never answered";
    if (c.unsent > 0)
        o << " (" << c.unsent << " of them never left the client)";
    o << "\n";
    if (c.resent > 0)
        o << "resent:      " << c.resent
          << " ok after a second send: php-fpm closed their kept-alive connection first (a "
             "worker at pm.max_requests: the script did not run; or one that died mid-request: "
             "it may have run twice; --no-retry fails them instead)\n";
    if (!c.errors.empty()) {
        o << "errors:     ";
        for (const auto& [name, n] : c.errors)
            o << " " << name << " " << n;
        o << "\n";
        for (const auto& [name, text] : c.first_error)
            o << "first " << name << ": " << text << "\n";
    }
    // Responses only: a failure that comes back at once is not throughput.
    o << "throughput:  " << fixed(t.rps, 1) << " req/s over " << fixed(t.duration_s, 3) << " s";
    if (t.drain_s > 0)
        o << " (the last response came " << fixed(t.drain_s, 3) << " s after it)";
    o << "\n";
    const auto& h = c.latency;
    if (h.count() == 0) {
        o << "latency:     none (no responses)\n";
    } else {
        o << "latency:     p50 " << fixed(ms(h.percentile(50)), 3) << " ms, p90 "
          << fixed(ms(h.percentile(90)), 3) << " ms, p99 " << fixed(ms(h.percentile(99)), 3)
          << " ms, p99.9 " << fixed(ms(h.percentile(99.9)), 3) << " ms, max "
          << fixed(ms(h.max()), 3) << " ms";
        if (f.rate > 0)
            o << " (from the intended send time)";
        if (c.failed + c.unanswered > 0)
            o << " (over " << h.count() << " responses: the " << c.failed + c.unanswered
              << " failed or never answered are not in it)";
        o << "\n";
    }
    o << "status:     ";
    if (c.status.empty())
        o << " none";
    for (const auto& [code, n] : c.status)
        o << " " << code << " " << n;
    o << "\n";
    o << "bytes:       in " << c.bytes_in << " (body+stderr), out " << c.bytes_out << " (body)\n";
    o << "client cpu:  " << fixed(cpu, 3) << " s, "
      << fixed(completed ? cpu * 1e6 / double(completed) : 0, 1) << " us/request\n";
    if (st && !st->seen_during_run() && !st->queue_known()) {
        // Only the poll before the run was answered: its figures are not the run's maxima.
        o << "fpm status:  unknown: no poll was answered during or after the run";
        if (st->failures)
            o << ", " << st->failures << " failed (" << st->last_error << ")\n";
        else
            o << " (shorter than the 500 ms between polls)\n";
    } else if (st) {
        o << "fpm status:  max listen queue ";
        if (st->queue_known())
            o << st->max_listen_queue;
        else if (!st->listen_queue_known)
            o << "n/a (php-fpm cannot read a unix socket's queue)";
        else
            o << "unknown";
        o << ", max active processes ";
        if (st->seen_during_run())
            o << st->max_active_processes << " of " << st->total_processes;
        else
            o << "unknown (every poll during the run waited behind it)";
        o << ", " << st->polls << " polls";
        if (st->failures)
            o << ", " << st->failures << " failed (" << st->last_error << ")";
        o << "\n";
    }
    return o.str();
}

std::string json_report(const bench_flags& f, const bench_setup& setup, const bench_counts& c,
                        const bench_times& t, const fpm_status_summary* st) {
    nlohmann::ordered_json j;
    const double cpu = t.cpu_s;
    const std::uint64_t completed = c.ok + c.failed;
    // What was asked, so that an archived report can be read on its own.
    j["script"] = f.request.target;
    j["connect"] = f.request.connect;
    j["mode"] = f.rate > 0 ? "open" : "closed";
    if (f.rate > 0)
        j["rate"] = f.rate;
    // An open loop's pace sets what is in flight, up to what the connections carry.
    j["concurrency"] = f.concurrency;
    j["warmup_s"] = f.warmup;
    j["timeout_s"] = f.request.timeout > 0 ? nlohmann::ordered_json(f.request.timeout) : nullptr;
    j["connections"] = setup.connections;
    j["multiplexed"] = setup.multiplexed;
    j["requests_per_connection"] = setup.per_connection;
    if (setup.probed) {
        // What --multiplex auto learnt; null where the server did not say.
        auto opt = [](const auto& v) { return v ? nlohmann::ordered_json(*v) : nullptr; };
        j["probe"] = {{"mpxs_conns", opt(setup.probe.mpxs_conns)},
                      {"max_conns", opt(setup.probe.max_conns)},
                      {"max_reqs", opt(setup.probe.max_reqs)}};
        if (setup.probe_ec)
            j["probe"]["error"] = std::string(error_name(setup.probe_ec));
    }
    j["requests"] = c.sent;
    j["ok"] = c.ok;
    j["failed"] = c.failed;
    j["errors"] = nlohmann::ordered_json::object();
    for (const auto& [name, n] : c.errors)
        j["errors"][name] = n;
    j["error_messages"] = nlohmann::ordered_json::object();
    for (const auto& [name, text] : c.first_error)
        j["error_messages"][name] = text;
    j["unanswered"] = c.unanswered;
    j["unsent"] = c.unsent;
    j["resent"] = c.resent;
    if (f.rate > 0)
        j["waited_in_client"] = c.waited_in_client;
    j["interrupted"] = c.interrupted;
    j["unserved_connections"] = c.unserved_connections;
    j["duration_s"] = t.duration_s;
    j["rps"] = t.rps;  // responses only, as in the human report
    j["drain_s"] = t.drain_s;
    const auto& h = c.latency;
    // No response, no latency: null, not a 0 ms a dashboard would take for the best time.
    auto lat = [&](double v) { return h.count() ? nlohmann::ordered_json(v) : nullptr; };
    j["latency_ms"] = {{"p50", lat(ms(h.percentile(50)))},
                       {"p90", lat(ms(h.percentile(90)))},
                       {"p99", lat(ms(h.percentile(99)))},
                       {"p999", lat(ms(h.percentile(99.9)))},
                       {"max", lat(ms(h.max()))},
                       {"mean", lat(h.mean_us() / 1000.0)},
                       {"count", h.count()}};
    j["status"] = nlohmann::ordered_json::object();
    for (const auto& [code, n] : c.status)
        j["status"][std::to_string(code)] = n;
    j["bytes_in"] = c.bytes_in;
    j["bytes_out"] = c.bytes_out;
    j["client_cpu_s"] = cpu;
    j["client_cpu_us_per_request"] = completed ? cpu * 1e6 / double(completed) : 0.0;
    if (st) {
        // null where unknown: no poll answered during the run, or a unix socket's queue.
        auto known = [&](std::int64_t v, bool ok) {
            return ok ? nlohmann::ordered_json(v) : nullptr;
        };
        j["fpm_status"] = {
            {"polls", st->polls},
            {"failures", st->failures},
            {"max_listen_queue", known(st->max_listen_queue, st->queue_known())},
            {"max_active_processes", known(st->max_active_processes, st->seen_during_run())},
            {"total_processes", st->total_processes},
            {"process_manager", st->process_manager}};
        if (!st->last_error.empty())
            j["fpm_status"]["last_error"] = st->last_error;
    }
    // Error messages name the endpoint, which may hold any bytes: U+FFFD, not an exception.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void add_bench_flags(CLI::App& cmd, bench_flags& f) {
    auto& r = f.request;
    cmd.footer(
        "Closed loop (default): --concurrency requests in flight. Open loop (--rate): requests\n"
        "sent on a fixed schedule, latency measured from each one's intended send time.\n"
        "Requests still out when the run ends get a grace of --timeout (or 2 s; 30 s for a run\n"
        "of --requests alone), then count as never answered. Latency covers responses (any\n"
        "status), not failures (counted by name) nor never-answered requests.\n"
        "Throughput counts responses (any status), not failures, over the measured period:\n"
        "a timed closed loop counts those that came within it. A run stops early when no\n"
        "connection can be made, or the server breaks the protocol, before the first response.\n"
        "Ctrl-C ends the run early and still reports it; a second Ctrl-C stops waiting for the\n"
        "requests out; SIGTERM does not wait.\n"
        "Exit: 0 when every counted request got a response (any status, unless --fail), 3 when\n"
        "the server could not be reached, 5 when it broke the protocol before any response, 6\n"
        "when any request failed or was never answered or none was counted, 22 with --fail\n"
        "and a status of 400 or more, 130 / 143 when SIGINT / SIGTERM ended the run (the\n"
        "report still printed), 2 on usage errors.\n");
    cmd.add_option("-c,--connect", r.connect,
                   "Server address: unix:/path.sock, /path.sock, host:port, [v6]:port "
                   "(default: $FCGI_CONNECT)")
        ->envname("FCGI_CONNECT");
    cmd.add_option("-X,--method", r.method, "REQUEST_METHOD (default GET, or POST with --data)");
    cmd.add_option_function<std::string>(
        "-d,--data", [&r](const std::string& v) { r.data = v; },
        "Request body: DATA, @FILE, or @- for stdin");
    cmd.add_option("-H,--header", r.headers, "Request header 'Name: value' (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-p,--param", r.params, "Raw FastCGI param NAME=VALUE (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-r,--root", r.root,
                   "DOCUMENT_ROOT; a relative SCRIPT is resolved against it, and SCRIPT must "
                   "be below it (default: the current directory)");
    cmd.add_option("-t,--timeout", r.timeout,
                   "Deadline of each request in SECONDS, queueing included (default 0: none)");
    check_number(*cmd.get_option("--timeout"), 0, max_timeout_seconds, "seconds");
    cmd.add_option("-C,--concurrency", f.concurrency,
                   "Requests in flight (default 4); when multiplexing, each connection carries "
                   "up to --concurrency / --connections of them (also with --rate)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
    cmd.add_option("-n,--requests", f.requests, "Stop after this many counted requests")
        ->check(CLI::Range(std::uint64_t{1}, max_requests));
    check_number(
        *cmd.add_option("-D,--duration", f.duration,
                        "Run for SECONDS after the warmup (default 10, or until --requests)"),
        0.001, max_seconds, "seconds");
    cmd.add_option("--connections", f.connections,
                   "Connections to the server (default: --concurrency; when multiplexing, 1, or "
                   "more beyond 65535 requests or the server's FCGI_MAX_REQS per connection); "
                   "keep it <= php-fpm's pm.max_children")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16));
    cmd.add_option("--multiplex", f.multiplex,
                   "auto (default): ask the server (GET_VALUES, before the run) and send "
                   "several requests per connection if it reports FCGI_MPXS_CONNS=1; on: do "
                   "so without asking; off: one request per connection (php-fpm)")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    check_number(
        *cmd.add_option("--warmup", f.warmup, "SECONDS of load before counting starts (default 0)"),
        0, max_seconds, "seconds");
    check_number(*cmd.add_option("--rate", f.rate, "Open loop: send REQ/S at a constant pace"),
                 0.001, 1e7, "requests per second");
    cmd.add_flag("--json", f.json, "Print the report as one JSON object");
    cmd.add_flag("-f,--fail", r.fail, "Exit 22 when any response had a status of 400 or more");
    cmd.add_flag("--no-retry", f.no_retry,
                 "Never send a request twice: one whose kept-alive connection closes under it "
                 "fails (connection_lost) instead of going again on a new connection, so every "
                 "worker that dies mid-request shows");
    add_response_limit_flags(cmd, f.max_output, r.max_stderr, "response");
    cmd.add_option("--fpm-status", f.fpm_status,
                   "php-fpm's pm.status_path (e.g. /status): poll it every 500 ms and report "
                   "the largest listen queue and active process count");
    cmd.add_option("script", r.target, "SCRIPT[?QUERY]: the script to run")->required();
}

int run_bench(const bench_flags& f) {
    // Held until the run catches them (bench_run::start): a Ctrl-C during the probe or the
    // first status poll then still ends in a report, not in the default action.
    sigset_t stop = stop_signals();
    ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    if (f.request.connect.empty()) {
        print_error("no server address: give --connect ADDR or set FCGI_CONNECT");
        return usage_error;
    }
    fcgi::endpoint ep;
    if (auto ec = fcgi::parse_endpoint(f.request.connect, ep)) {
        print_error("'" + f.request.connect + "': " + ec.message());
        return usage_error;
    }
    if (!f.fpm_status.empty() && !f.fpm_status.starts_with('/')) {
        print_error("--fpm-status '" + f.fpm_status + "' must be an absolute path like /status");
        return usage_error;
    }
    fcgi::request req;
    std::string why;
    // Prepared once: every send then skips the checks and the params' encoding, which were a
    // third of the client's instructions per request (docs/benchmarks.md).
    fcgi::prepared_request prepared;
    const bool built = build_request(f.request, req, why);
    if (f.no_retry)
        req.idempotent = false;
    if (!built || fcgi::prepare_request(std::move(req), prepared, why)) {
        print_error(why);
        return usage_error;
    }
    // The run's deadline per request; --multiplex auto's question waits no longer either.
    const milliseconds request_timeout =
        f.request.timeout > 0 ? milliseconds(std::max<long long>(
                                    1, std::llround(std::ceil(f.request.timeout * 1000.0))))
                              : milliseconds(0);
    bench_setup setup;
    if (f.multiplex == "auto")
        probe_server(ep, request_timeout, setup);
    else
        setup.multiplexed = f.multiplex == "on";
    size_bench(f.concurrency, f.connections, f.rate > 0, setup);
    for (const auto& w : setup.warnings)
        print_error("warning: " + w);
    const std::size_t connections = setup.connections;
    fcgi::client_options options;
    options.endpoints.push_back(ep);
    options.max_connections_per_endpoint = connections;
    if (setup.multiplexed) {
        options.mode = fcgi::multiplexing::on;
        options.max_requests_per_connection = static_cast<std::uint16_t>(setup.per_connection);
    }
    // Measure the pool as configured: connections beyond php-fpm's workers are reported as
    // unserved, not relieved by closing served ones.
    options.backlog_relief = milliseconds(0);
    options.connection.max_stdout_size = f.max_output;
    options.connection.max_stderr_size = f.request.max_stderr;
    if (request_timeout.count() > 0) {
        options.connection.request_timeout = request_timeout;
        options.connection.connect_timeout =
            std::min(options.connection.connect_timeout, options.connection.request_timeout);
    }

    asio::io_context ctx{1};  // one thread runs it: posts from handlers skip Asio's lock
    std::optional<fpm_status_poller> poller;
    if (!f.fpm_status.empty())
        poller.emplace(ctx.get_executor(), ep, f.fpm_status);
    bench_run run(ctx, f, std::move(options), std::move(prepared), poller ? &*poller : nullptr);

    if (poller) {
        // One poll first: the pool's size tells whether --connections can be served at all.
        poller->poll_once([&] {
            const auto& s = poller->summary();
            // Only a static pool's size is its limit: dynamic and ondemand start workers as
            // connections come, up to a pm.max_children the page does not tell.
            const bool sized = s.process_manager == "static";
            if (s.polls == 0) {
                print_error("warning: --fpm-status " + f.fpm_status + ": " + s.last_error);
            } else if (sized && std::int64_t(connections) > s.total_processes) {
                print_error("warning: " + std::to_string(connections) +
                            " connections > the pool's " + std::to_string(s.total_processes) +
                            " processes: connections beyond pm.max_children wait in the "
                            "listen backlog, and status polls wait for a free worker");
            } else if (sized && std::int64_t(connections) == s.total_processes) {
                print_error(
                    "warning: " +
                    (connections == 1 ? std::string("the connection takes the pool's only process")
                                      : std::to_string(connections) +
                                            " connections take all of the pool's processes") +
                    ": each status poll waits for a free worker" +
                    (connections > 1 ? "; --connections " + std::to_string(connections - 1) +
                                           " leaves one for them"
                                     : std::string()));
            }
            run.start();
        });
    } else {
        if (!setup.multiplexed && connections > warn_connections)
            print_error("warning: " + std::to_string(connections) + " connections" +
                        ": php-fpm's pm.max_children limits concurrency; connections beyond "
                        "it wait in the listen backlog");
        run.start();
    }
    ctx.run();

    const auto& c = run.counts();
    if (poller && c.signal != SIGTERM && !run.unreachable()) {
        // The polls during a saturating run wait behind it; php-fpm's own "max listen queue",
        // read once the load is gone, still tells what queued (SIGTERM does not wait for it).
        poller->poll_after_run(nullptr);
        ctx.restart();
        ctx.run();
    }
    const fpm_status_summary* st = poller ? &poller->summary() : nullptr;
    const bench_times times{run.duration_s(), run.rps(), run.drain_s(), run.cpu_s()};
    std::string report =
        f.json ? json_report(f, setup, c, times, st) : human_report(f, setup, c, times, st);
    if (!write_stdout(report)) {
        print_error("cannot write the report to stdout");
        return request_failure;
    }
    if (run.unreachable()) {
        auto first = c.first_error.find(error_name(fcgi::error::no_endpoint));
        print_error(f.request.connect + ": cannot connect; stopped before any response" +
                    (first != c.first_error.end() ? ": " + first->second : std::string()));
        return connect_failure;
    }
    if (run.protocol_broken()) {
        print_error(f.request.connect +
                    ": the server broke the FastCGI protocol before any response; stopped (is "
                    "it a FastCGI responder, not an HTTP port?)");
        return protocol_failure;
    }
    if (c.interrupted)
        print_error("interrupted: the report covers the run until then");
    if (c.unanswered > 0)
        print_error(std::to_string(c.unanswered) +
                    " requests were never answered (still in flight at the end of the run" +
                    (c.unsent > 0 ? "; " + std::to_string(c.unsent) +
                                        " of them still waited in the client for a connection"
                                  : std::string()) +
                    ")");
    if (c.waited_in_client > 0)
        print_error("warning: " + std::to_string(c.waited_in_client) + " of " +
                    std::to_string(c.sent) + " requests found all " +
                    std::to_string(setup.connections * setup.per_connection) +
                    " in flight and waited in the client, so their latency includes that "
                    "wait: the pace needs more in flight than --concurrency (rate x latency); "
                    "raise it, and --connections up to php-fpm's pm.max_children");

    if (c.unserved_connections > 0)
        print_error("warning: " + std::to_string(c.unserved_connections) + " of " +
                    std::to_string(connections) +
                    " connections never received a byte: the script wrote nothing before the "
                    "run ended (give a --timeout longer than it runs), the server stalled, or the "
                    "connections were beyond pm.max_children and waited in php-fpm's listen "
                    "backlog (php-fpm "
                    "keeps a worker per kept-alive connection; use --connections at most its "
                    "number of workers: --fpm-status shows it)");
    if (c.ok > 0 && c.status.lower_bound(200) == c.status.lower_bound(300)) {
        // Throughput counts any status, so a run of 404s (a mistyped script) looks healthy.
        std::string seen;
        for (const auto& [code, n] : c.status)
            seen += (seen.empty() ? "" : ", ") + std::to_string(n) + " x " + std::to_string(code);
        print_error("warning: no response had a 2xx status (" + seen +
                    "): check the script path and --root");
    } else if (c.status_5xx > 0) {
        print_error("warning: " + std::to_string(c.status_5xx) + " of " + std::to_string(c.ok) +
                    " responses had a 5xx status; throughput counts them (--fail exits 22)");
    }
    if (c.interrupted)
        return 128 + c.signal;
    if (c.sent == 0) {
        // Exit 0 would pass a run that measured nothing (a --rate slower than the measured
        // period) as a clean one.
        print_error(
            "no request was sent in the measured period (after --warmup): nothing was "
            "measured");
        return request_failure;
    }
    if (c.ok != c.sent)
        return request_failure;
    return f.request.fail && c.status_4xx_5xx > 0 ? http_failure : ok;
}

}  // namespace fcgi_cli
