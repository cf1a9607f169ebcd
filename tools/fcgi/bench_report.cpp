#include "bench_report.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "error_names.hpp"
#include "output.hpp"
#include "run_hints.hpp"

namespace fcgi_cli {
namespace {

using std::chrono::microseconds;

double ms(microseconds us) {
    return double(us.count()) / 1000.0;
}

// A flag's value as the user gave it ("0.04", "2.5", "1000"), not rounded to a fixed width.
std::string as_given(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
}

// A short time in the unit that shows it: milliseconds under a second.
std::string seconds_or_ms(double s) {
    return s < 1 ? fixed(s * 1000, 3) + " ms" : fixed(s, 3) + " s";
}

}  // namespace

std::string human_report(const bench_flags& f, const bench_setup& setup, const bench_counts& c,
                         const bench_times& t, const fpm_status_summary* st) {
    const double cpu = t.cpu_s;
    std::ostringstream o;
    o << "bench: " << f.request.target << " on " << f.request.connect << ", ";
    if (f.rate > 0)
        o << "open loop at " << as_given(f.rate) << " req/s, at most "
          << setup.connections * setup.per_connection << " in flight";
    else
        o << "closed loop, " << f.concurrency << " in flight";
    o << ", " << setup.connections << (setup.connections == 1 ? " connection" : " connections");
    if (setup.multiplexed)
        o << " multiplexed (up to " << setup.per_connection
          << (setup.per_connection == 1 ? " request" : " requests") << " each)";
    if (f.warmup > 0)
        o << ", " << as_given(f.warmup) << " s warmup";
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
    if (c.resent_failed > 0)
        o << "resent:      " << c.resent_failed
          << " failed after a second send (counted among the failed)\n";
    if (!c.errors.empty()) {
        o << "errors:     ";
        for (const auto& [name, n] : c.errors)
            o << " " << name << " " << n;
        o << "\n";
        for (const auto& [name, text] : c.first_error)
            o << "first " << name << ": " << text << "\n";
    }
    // Responses only: a failure that comes back at once is not throughput.
    if (c.ok == 0) {
        o << "throughput:  none (no responses)\n";
    } else {
        o << "throughput:  " << fixed(t.rps, 1) << " req/s over " << fixed(t.duration_s, 3) << " s";
        if (t.drain_s > 0)
            o << " (the last response came " << seconds_or_ms(t.drain_s) << " after it)";
        o << "\n";
    }
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
    // "count x status", as the no-2xx warning says it: "200 600 404 200" read as four numbers.
    o << "status:      ";
    if (c.status.empty())
        o << "none";
    const char* sep = "";
    for (const auto& [code, n] : c.status) {
        o << sep << n << " x " << code;
        sep = ", ";
    }
    o << "\n";
    o << "bytes:       in " << c.bytes_in << " (body+stderr), out " << c.bytes_out << " (body)\n";
    o << "client cpu:  " << fixed(cpu, 3) << " s, "
      << fixed(completed ? cpu * 1e6 / double(completed) : 0, 1) << " us/request\n";
    if (st)
        o << fpm_status_line(*st);
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
    j["resent_failed"] = c.resent_failed;
    if (f.rate > 0) {
        j["waited_in_client"] = c.waited_in_client;
        j["behind_schedule"] = c.behind_schedule;
    }
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
        // null where unknown: no poll answered (at all, or during the run), or a unix socket's
        // queue.
        auto known = [&](std::int64_t v, bool ok) {
            return ok ? nlohmann::ordered_json(v) : nullptr;
        };
        j["fpm_status"] = {
            {"polls", st->polls},
            {"failures", st->failures},
            {"max_listen_queue", known(st->max_listen_queue, st->queue_known())},
            // Why the queue is unknown: php-fpm's count did not rise; or whose it may be.
            {"listen_queue_count_stayed_at",
             known(st->count_stayed_at().value_or(0), st->count_stayed_at().has_value())},
            {"max_listen_queue_may_include_poll", st->queue_may_include_poll()},
            {"polls_skipped", st->polls_skipped},
            {"max_active_processes", known(st->max_active_processes, st->seen_during_run())},
            {"total_processes", known(st->total_processes, st->answered())},
            {"process_manager",
             st->answered() ? nlohmann::ordered_json(st->process_manager) : nullptr}};
        if (!st->last_error.empty())
            j["fpm_status"]["last_error"] = st->last_error;
    }
    // Error messages name the endpoint, which may hold any bytes: U+FFFD, not an exception.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::vector<std::string> count_warnings(const bench_counts& c, const bench_setup& setup,
                                        std::uint64_t recycle_after) {
    std::vector<std::string> lines;
    if (c.interrupted)
        lines.push_back("interrupted: the report covers the run until then");
    if (c.unanswered > 0)
        lines.push_back(std::to_string(c.unanswered) +
                        " requests were never answered (still in flight at the end of the run" +
                        (c.unsent > 0 ? "; " + std::to_string(c.unsent) +
                                            " of them still waited in the client for a connection"
                                      : std::string()) +
                        ")");
    if (c.waited_in_client > 0)
        lines.push_back("warning: " + std::to_string(c.waited_in_client) + " of " +
                        std::to_string(c.sent) + " requests found all " +
                        std::to_string(setup.connections * setup.per_connection) +
                        " in flight and waited in the client, so their latency includes that "
                        "wait: the pace needs more in flight than --concurrency (rate x "
                        "latency); raise it, and --connections up to php-fpm's pm.max_children");
    if (c.behind_schedule > 0)
        lines.push_back(
            "warning: the client fell behind the pace: " + std::to_string(c.behind_schedule) +
            " requests due before the end were never sent (" + std::to_string(c.sent) +
            " were), so the rate asked was not offered; ask less of one client, or "
            "run several");
    if (c.unserved_connections > 0)
        // An interrupt, not --timeout, ended the wait of an interrupted run: no advice on it.
        lines.push_back("warning: " + std::to_string(c.unserved_connections) + " of " +
                        std::to_string(setup.connections) +
                        " connections never received a byte: the script wrote nothing before " +
                        (c.interrupted ? "the interrupt"
                                       : "the run ended (give a --timeout longer than it runs)") +
                        ", the server stalled, or the connections were beyond pm.max_children "
                        "and waited in php-fpm's listen backlog (php-fpm keeps a worker per "
                        "kept-alive connection; use --connections at most its number of workers: "
                        "--fpm-status shows it)");
    // The pool's queue of waiting requests is bounded: an open loop far beyond the server fails
    // the rest at once, and the library's advice (raise max_pending) has no flag here.
    if (auto full = c.errors.find("pool_exhausted"); full != c.errors.end())
        lines.push_back("warning: " + std::to_string(full->second) +
                        " requests failed unsent: the client's queue of waiting requests was "
                        "full, the pace far beyond what the server answered (lower --rate, or "
                        "raise --concurrency and --connections)");
    // The usual cause of connection_lost on a run that sends nothing twice (POST, --no-retry).
    if (auto lost = c.errors.find("connection_lost"); lost != c.errors.end())
        if (auto hint = recycle_hint(lost->second, recycle_after, setup.multiplexed); !hint.empty())
            lines.push_back(std::move(hint));
    if (c.ok > 0 && c.status.lower_bound(200) == c.status.lower_bound(300)) {
        // Throughput counts any status, so a run of 404s (a mistyped script) looks healthy.
        std::string seen;
        for (const auto& [code, n] : c.status)
            seen += (seen.empty() ? "" : ", ") + std::to_string(n) + " x " + std::to_string(code);
        // php-fpm answers 404 for a script it cannot find, 403 for an extension outside
        // security.limit_extensions, 500 for a script that failed.
        std::string advice;
        auto also = [&](const char* more) {
            advice += std::string(advice.empty() ? "" : "; ") + more;
        };
        if (c.status.contains(404))
            also("check the script path and --root");
        if (c.status.contains(403))
            also("a 403 is php-fpm refusing the script's extension (security.limit_extensions)");
        if (auto five = c.status.lower_bound(500); five != c.status.end() && five->first < 600)
            also("a 5xx is usually the script failing: `fcgi request` on it shows its stderr");
        if (advice.empty())
            advice = "check the script and the request (--method, --data, --header)";
        lines.push_back("warning: no response had a 2xx status (" + seen + "): " + advice);
    } else if (c.status_5xx > 0) {
        lines.push_back("warning: " + std::to_string(c.status_5xx) + " of " + std::to_string(c.ok) +
                        " responses had a 5xx status; throughput counts them (--fail exits 22)");
    }
    return lines;
}

std::string slow_start_warning(const bench_counts& c, const bench_times& t) {
    // The gap, not the latency: a queued response's wait was spent within the period, with
    // other responses counted meanwhile.
    if (t.start_gap_s < 0 || t.duration_s <= 0 || c.ok == 0 || t.start_gap_s < t.duration_s / 20)
        return {};
    const long share = std::min(100L, std::lround(100 * t.start_gap_s / t.duration_s));
    // No response within the period at all: the responses' own time is the warmup to give.
    const bool none = t.start_gap_s >= t.duration_s;
    const double warmup_s = none ? double(c.latency.percentile(50).count()) / 1e6 : t.start_gap_s;
    return "warning: " +
           (none
                ? "no response came within the " + seconds_or_ms(t.duration_s) + " measured"
                : "the first response counted came " + seconds_or_ms(t.start_gap_s) + " into the " +
                      seconds_or_ms(t.duration_s) + " measured (" + std::to_string(share) + " %)") +
           ": the throughput reads low by up to that much (give --warmup " +
           as_given(std::ceil(warmup_s * 10) / 10) + " or more, or a longer --duration)";
}

}  // namespace fcgi_cli
