#include "bench_command.hpp"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "bench_report.hpp"
#include "bench_run.hpp"
#include "bench_setup.hpp"
#include "error_names.hpp"
#include "exit_codes.hpp"
#include "fcgi/client_options.hpp"
#include "fcgi/connection_options.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fpm_status_poller.hpp"
#include "output.hpp"
#include "request_options.hpp"

namespace fcgi_cli {
namespace {

using namespace std::chrono;

constexpr std::uint64_t max_requests = 100'000'000;
constexpr std::size_t warn_connections = 64;
// --multiplex auto waits this long for GET_VALUES_RESULT (libfcgi never answers a lone one).
constexpr milliseconds probe_timeout{1000};

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

// The server and the request from the flags, the request prepared once; false (after saying
// why) on a usage error.
bool prepare_bench(const bench_flags& f, fcgi::endpoint& ep, fcgi::prepared_request& prepared) {
    if (!parse_connect_flag(f.request.connect, ep))
        return false;
    if (!f.fpm_status.empty() && !f.fpm_status.starts_with('/')) {
        print_error("--fpm-status '" + f.fpm_status + "' must be an absolute path like /status");
        return false;
    }
    if (f.fpm_status.find_first_of("?#") != std::string::npos) {
        // The polls send the path as SCRIPT_NAME and ask for ?json&full themselves.
        print_error("--fpm-status '" + f.fpm_status +
                    "' must be pm.status_path alone, without a query or fragment: bench asks "
                    "for ?json&full");
        return false;
    }
    fcgi::request req;
    std::string why;
    // Prepared once: every send then skips the checks and the params' encoding, which were a
    // third of the client's instructions per request (docs/benchmarks.md).
    const bool built = build_request(f.request, req, why);
    if (f.no_retry)
        req.idempotent = false;
    if (!built || fcgi::prepare_request(std::move(req), prepared, why)) {
        print_error(why);
        return false;
    }
    return true;
}

// Whether to multiplex (asking the server under --multiplex auto) and how many connections
// carry how many requests each; its warnings printed.
bench_setup plan_connections(const bench_flags& f, const fcgi::endpoint& ep,
                             milliseconds request_timeout) {
    bench_setup setup;
    if (f.multiplex == "auto")
        probe_server(ep, request_timeout, setup);
    else
        setup.multiplexed = f.multiplex == "on";
    size_bench(f.concurrency, f.connections, f.rate > 0, setup);
    for (const auto& w : setup.warnings)
        print_error("warning: " + w);
    return setup;
}

// The client's pool, sized by `setup`, with the flags' limits and deadline.
fcgi::client_options pool_options(const bench_flags& f, const fcgi::endpoint& ep,
                                  const bench_setup& setup, milliseconds request_timeout) {
    fcgi::client_options options;
    options.endpoints.push_back(ep);
    options.max_connections_per_endpoint = setup.connections;
    if (setup.multiplexed) {
        options.mode = fcgi::multiplexing::on;
        options.max_requests_per_connection = static_cast<std::uint16_t>(setup.per_connection);
    }
    // Measure the pool as configured: connections beyond php-fpm's workers are reported as
    // unserved, not relieved by closing served ones.
    options.backlog_relief = milliseconds(0);
    options.max_requests_per_connection_lifetime = f.recycle_after;
    options.connection.max_stdout_size = f.max_output;
    options.connection.max_stderr_size = f.request.max_stderr;
    if (request_timeout.count() > 0) {
        options.connection.request_timeout = request_timeout;
        options.connection.connect_timeout =
            std::min(options.connection.connect_timeout, options.connection.request_timeout);
    }
    return options;
}

// After the first --fpm-status poll: whether the pool has a worker left for the polls, and for
// every connection.
void warn_about_pool(const fpm_status_summary& s, const std::string& status_path,
                     std::size_t connections) {
    // Only a static pool's size is its limit: dynamic and ondemand start workers as
    // connections come, up to a pm.max_children the page does not tell.
    const bool sized = s.process_manager == "static";
    if (s.polls == 0) {
        print_error("warning: --fpm-status " + status_path + ": " + s.last_error);
    } else if (sized && std::int64_t(connections) > s.total_processes) {
        print_error("warning: " + std::to_string(connections) + " connections > the pool's " +
                    std::to_string(s.total_processes) +
                    " processes: connections beyond pm.max_children wait in the "
                    "listen backlog, and no status poll is made while they hold every worker");
    } else if (sized && std::int64_t(connections) == s.total_processes) {
        print_error("warning: " +
                    (connections == 1 ? std::string("the connection takes the pool's only process")
                                      : std::to_string(connections) +
                                            " connections take all of the pool's processes") +
                    ": no status poll is made while they hold every worker" +
                    (connections > 1 ? "; --connections " + std::to_string(connections - 1) +
                                           " leaves one for them"
                                     : std::string()));
    }
}

// The exit status of a run that reached the server and spoke FastCGI with it.
int exit_code(const bench_flags& f, const bench_counts& c) {
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

// Prints the report on stdout, then what went wrong or needs a word on stderr; the exit status.
int report_bench(const bench_flags& f, const bench_setup& setup, const bench_run& run,
                 const fpm_status_summary* st) {
    const auto& c = run.counts();
    const bench_times times{run.duration_s(), run.rps(), run.drain_s(), run.cpu_s(),
                            run.start_gap_s()};
    std::string report =
        f.json ? json_report(f, setup, c, times, st) : human_report(f, setup, c, times, st);
    if (!write_stdout(report)) {
        print_error("cannot write the report to stdout");
        return request_failure;
    }
    if (run.unreachable()) {
        auto first = c.first_error.find(error_name(fcgi::error::no_endpoint));
        print_error(f.request.connect + ": cannot connect; stopped before any response" +
                    (run.never_connected()
                         ? ": no connect completed before the run ended: nothing accepted them "
                           "(a host down, SYNs dropped, a full accept queue)"
                     : first != c.first_error.end() ? ": " + first->second
                                                    : std::string()));
        return connect_failure;
    }
    if (run.protocol_broken()) {
        print_error(f.request.connect +
                    ": the server broke the FastCGI protocol before any response; stopped (is "
                    "it a FastCGI responder, not an HTTP port?)");
        return protocol_failure;
    }
    for (const auto& line : count_warnings(c, setup, f.recycle_after))
        print_error(line);
    if (auto line = slow_start_warning(c, times); !line.empty())
        print_error(line);
    return exit_code(f, c);
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
        "connection can be made, or the server breaks the protocol, before the first response\n"
        "(a malformed CGI head is the script's failure: counted, the run goes on).\n"
        "Ctrl-C ends the run early and still reports it; a second Ctrl-C stops waiting for the\n"
        "requests out; SIGTERM does not wait.\n"
        "Exit: 0 when every counted request got a response (any status, unless --fail), 3 when\n"
        "the server could not be reached, 5 when it broke the protocol before any response, 6\n"
        "when any request failed or was never answered or none was counted, 22 with --fail\n"
        "and a status of 400 or more, 130 / 143 when SIGINT / SIGTERM ended the run (the\n"
        "report still printed), 2 on usage errors.\n");
    cmd.add_option("-c,--connect", r.connect, connect_help)->envname("FCGI_CONNECT");
    cmd.add_option("-X,--method", r.method, "REQUEST_METHOD (default GET, or POST with --data)");
    cmd.add_option_function<std::string>(
        "-d,--data", [&r](const std::string& v) { r.data = v; },
        "Request body: DATA, @FILE, or @- for stdin");
    cmd.add_option("-H,--header", r.headers, "Request header 'Name: value' (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-p,--param", r.params, "Raw FastCGI param NAME=VALUE (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-r,--root", r.root, root_help);
    cmd.add_option("-t,--timeout", r.timeout,
                   "Deadline of each request in SECONDS, queueing included (default 0: none)");
    check_number(*cmd.get_option("--timeout"), 0, max_timeout_seconds, "seconds");
    check_count(*cmd.add_option(
                    "-C,--concurrency", f.concurrency,
                    "Requests in flight (default 4); when multiplexing, each connection carries "
                    "up to --concurrency / --connections of them (also with --rate)"),
                std::size_t{1}, std::size_t{100000});
    check_count(
        *cmd.add_option("-n,--requests", f.requests, "Stop after this many counted requests"),
        std::uint64_t{1}, max_requests);
    check_number(
        *cmd.add_option("-D,--duration", f.duration,
                        "Run for SECONDS after the warmup (default 10, or until --requests)"),
        0.001, max_bench_seconds, "seconds");
    check_count(*cmd.add_option(
                    "--connections", f.connections,
                    "Connections to the server (default: --concurrency; when multiplexing, 1, or "
                    "more beyond " +
                        std::to_string(fcgi::max_in_flight_limit) +
                        " requests or the server's FCGI_MAX_REQS per connection); keep it <= "
                        "php-fpm's pm.max_children"),
                std::size_t{1}, std::size_t{1} << 16);
    cmd.add_option("--multiplex", f.multiplex,
                   "auto (default): ask the server (GET_VALUES, before the run) and send "
                   "several requests per connection if it reports FCGI_MPXS_CONNS=1; on: do "
                   "so without asking; off: one request per connection (php-fpm)")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    check_number(
        *cmd.add_option("--warmup", f.warmup, "SECONDS of load before counting starts (default 0)"),
        0, max_bench_seconds, "seconds");
    check_number(*cmd.add_option("--rate", f.rate, "Open loop: send REQ/S at a constant pace"),
                 0.001, 1e7, "requests per second");
    cmd.add_flag("--json", f.json, "Print the report as one JSON object");
    cmd.add_flag("-f,--fail", r.fail, "Exit 22 when any response had a status of 400 or more");
    cmd.add_flag("--no-retry", f.no_retry,
                 "Never send a request twice: one whose kept-alive connection closes under it "
                 "fails (connection_lost) instead of going again on a new connection, so every "
                 "worker that dies mid-request shows");
    add_recycle_flag(cmd, f.recycle_after);
    add_response_limit_flags(cmd, f.max_output, r.max_stderr, "response");
    cmd.add_option("--fpm-status", f.fpm_status,
                   "php-fpm's pm.status_path (e.g. /status): poll it every 500 ms (not while "
                   "the run's connections hold every worker) and report the largest listen "
                   "queue and active process count");
    cmd.add_option("script", r.target, "SCRIPT[?QUERY]: the script to run")->required();
}

int run_bench(const bench_flags& f) {
    // Held until the run catches them (bench_run::start): a Ctrl-C during the probe or the
    // first status poll then still ends in a report, not in the default action.
    sigset_t stop = stop_signals();
    ::pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    fcgi::endpoint ep;
    fcgi::prepared_request prepared;
    if (!prepare_bench(f, ep, prepared))
        return usage_error;
    // The run's deadline per request; --multiplex auto's question waits no longer either.
    const milliseconds request_timeout =
        f.request.timeout > 0 ? seconds_to_ms(f.request.timeout) : milliseconds(0);
    const bench_setup setup = plan_connections(f, ep, request_timeout);

    // One thread runs it and touches the sockets: Asio may skip the lock per socket operation
    // (about 3 lock pairs a request; callgrind: 1.5 % of the instructions). The scheduler keeps
    // its lock (not ASIO_CONCURRENCY_HINT_UNSAFE): resolutions complete from Asio's resolver
    // thread, and under UNSAFE async_resolve fails with operation_not_supported.
    asio::io_context ctx{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::optional<fpm_status_poller> poller;
    if (!f.fpm_status.empty())
        poller.emplace(ctx.get_executor(), ep, f.fpm_status);
    bench_run run(ctx, f, pool_options(f, ep, setup, request_timeout), std::move(prepared),
                  poller ? &*poller : nullptr);
    if (poller) {
        // One poll first: the pool's size tells whether --connections can be served at all.
        poller->poll_once([&] {
            warn_about_pool(poller->summary(), f.fpm_status, setup.connections);
            // While the run's connections hold every worker, a poll could only wait in the
            // backlog, counted in the queue it would measure. (The pool opens connections as it
            // needs them: an open loop may never open as many as it may.)
            if (pool_is_fixed(poller->summary()))
                poller->skip_polls_while([&run, &p = *poller] {
                    return holds_every_worker(p.summary(), run.open_connections());
                });
            run.start();
        });
    } else {
        if (!setup.multiplexed && setup.connections > warn_connections)
            print_error("warning: " + std::to_string(setup.connections) + " connections" +
                        ": php-fpm's pm.max_children limits concurrency; connections beyond "
                        "it wait in the listen backlog");
        run.start();
    }
    ctx.run();

    if (poller && run.counts().signal != SIGTERM && !run.unreachable()) {
        // The polls during a saturating run wait behind it; php-fpm's own "max listen queue",
        // read once the load is gone, still tells what queued (SIGTERM does not wait for it).
        poller->poll_after_run(nullptr);
        ctx.restart();
        ctx.run();
    }
    return report_bench(f, setup, run, poller ? &poller->summary() : nullptr);
}

}  // namespace fcgi_cli
