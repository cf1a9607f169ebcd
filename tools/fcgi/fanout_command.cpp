#include "fanout_command.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "error_names.hpp"
#include "exit_codes.hpp"
#include "fanout_jobs.hpp"
#include "fanout_summary.hpp"
#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "json_output.hpp"
#include "output.hpp"
#include "request_options.hpp"
#include "run_hints.hpp"

namespace fcgi_cli {
namespace {

using namespace std::chrono;

// What --multiplex auto came to for one endpoint, and why; `cap` is what --concurrency /
// --connections allows per connection.
std::string multiplexing_line(const fcgi::endpoint_stats& e, std::uint16_t cap) {
    std::string head = "fanout: " + e.where.to_string();
    if (e.max_in_flight_per_connection > 1)
        return head + " multiplexed, up to " + std::to_string(e.max_in_flight_per_connection) +
               " requests per connection\n";
    std::string why;
    switch (e.probe) {
        case fcgi::probe_result::multiplexes:
            why = cap == 1 ? "it multiplexes, but --concurrency / --connections is 1"
                           : "it takes one request at a time, FCGI_MAX_REQS=1";
            break;
        case fcgi::probe_result::declined:
            why = "it does not multiplex, FCGI_MPXS_CONNS is not 1";
            break;
        case fcgi::probe_result::no_answer:
            why = e.probe_error == fcgi::error::request_timeout
                      ? "no answer to FCGI_GET_VALUES in time"
                      : "no answer to FCGI_GET_VALUES: " + e.probe_error.message();
            break;
        case fcgi::probe_result::not_asked:
            why = "no answer to FCGI_GET_VALUES yet";
            break;
    }
    return head + " not multiplexed (" + why + "): one request per connection\n";
}

// Connections that waited in php-fpm's listen backlog until the pool closed an idle one: each
// cost its first job `relief`, and only --connections above pm.max_children makes them.
std::string backlog_line(const fcgi::endpoint_stats& e, milliseconds relief) {
    const auto n = std::to_string(e.backlog_reliefs);
    const bool one = e.backlog_reliefs == 1;
    return "warning: " + e.where.to_string() + ": " + n + (one ? " connection" : " connections") +
           " got no answer for " + std::to_string(relief.count()) +
           " ms, waiting in php-fpm's listen backlog behind this pool's idle connections, so " + n +
           (one ? " idle one was closed to free a worker"
                : " idle ones were closed to free workers") +
           "; keep --connections at most pm.max_children";
}

bool read_all(const std::string& name, std::string& out, std::string& why) {
    const bool from_stdin = name.empty() || name == "-";
    std::FILE* f = from_stdin ? stdin : std::fopen(name.c_str(), "rb");
    if (!f) {
        why = "cannot open '" + name + "': " + std::strerror(errno);
        return false;
    }
    char buf[1 << 16];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
    bool ok = !std::ferror(f);
    int err = errno;
    if (!from_stdin)
        std::fclose(f);
    if (!ok)
        why = "cannot read " + (from_stdin ? std::string("stdin") : "'" + name + "'") + ": " +
              std::strerror(err);
    return ok;
}

}  // namespace

void add_fanout_flags(CLI::App& cmd, fanout_flags& f) {
    cmd.footer(
        "Job (one JSON object per line; blank lines skipped):\n"
        "  {\"id\": any, \"script\": \"x.php[?QUERY]\", \"method\": \"GET\", \"query\": \"a=1\",\n"
        "   \"params\": {\"NAME\": \"v\"}, \"headers\": {\"Name\": \"v\"},\n"
        "   \"body\": \"text\" | \"body_base64\": \"...\", \"timeout\": SECONDS,\n"
        "   \"idempotent\": true|false}\n"
        "  Only \"script\" is required; unknown fields make the job invalid.\n"
        "Result (one line per job, in completion order):\n"
        "  {\"id\", \"status\": 200|null, \"headers\": {\"Name\": [values]},\n"
        "   \"body\" | \"body_base64\", \"stderr\" | \"stderr_base64\", \"stderr_dropped\",\n"
        "   \"duration_ms\","
        " \"times_sent\", \"error\": null | {\"code\": \"request_timeout\", \"message\": "
        "\"...\"}}\n"
        "  Body and stderr are base64 under *_base64 when they are not valid UTF-8.\n"
        "  times_sent: 1 as a rule, 2 when sent again (its script may have run twice), 0 when\n"
        "  never sent.\n"
        "Exit: 0 when every job got a response (any status), 6 when any job failed or was\n"
        "invalid (error.code \"invalid_job\", message naming the line), 2 on usage errors.\n"
        "Ctrl-C or SIGTERM: unfinished jobs fail with client_stopped, the summary is printed;\n"
        "a second one kills.\n");
    cmd.add_option("-c,--connect", f.connect,
                   std::string(connect_help) + "; repeatable, to balance over several")
        ->envname("FCGI_CONNECT")
        ->allow_extra_args(false);  // one value per occurrence, so FILE is never swallowed
    check_count(*cmd.add_option("-C,--concurrency", f.concurrency,
                                "Requests handed to the client at once (default 16)"),
                std::size_t{1}, std::size_t{100000});  // the client's max_pending
    check_count(*cmd.add_option(
                    "--connections", f.connections,
                    "Connections per endpoint; keep it <= php-fpm's pm.max_children (default 4)"),
                std::size_t{1}, std::size_t{1} << 16);
    cmd.add_option("--multiplex", f.multiplex,
                   "off (default): one request per connection (php-fpm); auto: ask each "
                   "endpoint once (GET_VALUES; its jobs wait for the answer, 1 s at most) and "
                   "send several requests per connection where it reports FCGI_MPXS_CONNS=1, up "
                   "to --concurrency / --connections; on: do so without asking")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    cmd.add_option("-t,--timeout", f.timeout,
                   "Default deadline of each request in SECONDS (fractional), queueing and "
                   "connecting included; a job's \"timeout\" overrides it (default: none)");
    check_number(*cmd.get_option("--timeout"), 0, max_timeout_seconds, "seconds", true);
    cmd.add_option("-r,--root", f.root, root_help);
    cmd.add_flag("--wait-when-down", f.wait_when_down,
                 "When every server refuses connections or resets new ones (php-fpm "
                 "restarting), keep jobs waiting for one to come back, up to their deadline, "
                 "instead of failing them at once with no_endpoint (GET jobs: connection_lost); "
                 "give a --timeout");
    add_recycle_flag(cmd, f.recycle_after);
    add_response_limit_flags(cmd, f.max_output, f.max_stderr, "job");
    cmd.add_option("file", f.input, "Jobs, one JSON object per line (default or '-': stdin)");
}

int run_fanout(const fanout_flags& flags) {
    if (flags.connect.empty()) {
        print_missing_connect();
        return usage_error;
    }
    fcgi::client_options options;
    for (const auto& text : flags.connect) {
        if (text.empty() && flags.connect.size() > 1) {
            print_error("one of the " + std::to_string(flags.connect.size()) +
                        " --connect values is empty: each names a server address");
            return usage_error;
        }
        fcgi::endpoint ep;
        if (!parse_connect_flag(text, ep))
            return usage_error;
        // Each endpoint gets a pool of --connections: one named twice would get twice that,
        // more than php-fpm has workers for. A socket path is compared resolved (x.sock,
        // ./x.sock, a symlink to it); two names of one host are not known here.
        auto server = [](const fcgi::endpoint& e) {
            if (e.type != fcgi::endpoint::kind::unix_socket)
                return e;
            std::error_code ignored;
            auto resolved = std::filesystem::weakly_canonical(e.path, ignored);
            return ignored ? e : fcgi::endpoint::unix_socket(resolved.string());
        };
        auto earlier =
            std::find_if(options.endpoints.begin(), options.endpoints.end(),
                         [&](const fcgi::endpoint& e) { return server(e) == server(ep); });
        if (earlier != options.endpoints.end()) {
            print_error("'" + text + "' names the same server as an earlier --connect (" +
                        earlier->to_string() +
                        "); give each server once: each gets --connections connections of its "
                        "own");
            return usage_error;
        }
        options.endpoints.push_back(std::move(ep));
    }
    options.max_connections_per_endpoint = flags.connections;
    options.wait_when_down = flags.wait_when_down;
    options.max_requests_per_connection_lifetime = flags.recycle_after;
    options.connection.max_stdout_size = flags.max_output;
    options.connection.max_stderr_size = flags.max_stderr;
    options.mode = flags.multiplex == "on"    ? fcgi::multiplexing::on
                   : flags.multiplex == "off" ? fcgi::multiplexing::off
                                              : fcgi::multiplexing::auto_detect;
    // What --concurrency spread over the connections needs, within the library's limit.
    options.max_requests_per_connection = static_cast<std::uint16_t>(
        std::min<std::size_t>(fcgi::max_in_flight_limit,
                              (flags.concurrency + flags.connections - 1) / flags.connections));
    if (flags.timeout > 0) {
        options.connection.request_timeout = seconds_to_ms(flags.timeout);
        // Connecting counts against the deadline anyway; waiting longer than it is pointless.
        options.connection.connect_timeout =
            std::min(options.connection.connect_timeout, options.connection.request_timeout);
    }

    std::string input;
    std::string why;
    if (!read_all(flags.input, input, why)) {
        print_error(why);
        return usage_error;
    }
    std::vector<fanout_job> jobs = parse_jobs(input, flags.root);
    input = std::string();  // the jobs hold what they need
    if (auto repeated = repeated_ids(jobs); !repeated.empty())
        print_error("warning: " + repeated);
    if (options.mode == fcgi::multiplexing::auto_detect) {
        // The first --concurrency jobs wait for an endpoint's answer while their deadlines run:
        // the question gets half of the shortest of those deadlines at most.
        std::chrono::milliseconds shortest{0};
        std::size_t first = 0;
        for (const auto& job : jobs) {
            if (!job.error.empty())
                continue;
            if (first++ == flags.concurrency)
                break;
            auto own =
                job.req.timeout.count() > 0 ? job.req.timeout : options.connection.request_timeout;
            if (own.count() > 0 && (shortest.count() == 0 || own < shortest))
                shortest = own;
        }
        if (shortest.count() > 0)
            options.probe_timeout = std::min(options.probe_timeout,
                                             std::max(shortest / 2, std::chrono::milliseconds(1)));
    }

    fanout_summary summary;
    bool output_failed = false;
    auto emit = [&](const std::string& line) {
        if (output_failed)
            return;
        if (!write_stdout(line + "\n")) {
            output_failed = true;
            print_error("cannot write results to stdout: " + std::string(std::strerror(errno)));
        }
    };

    // Invalid jobs complete at once; the valid ones keep their id for when they complete.
    std::vector<fcgi::request> requests;
    std::vector<ordered_json> ids;
    requests.reserve(jobs.size());
    ids.reserve(jobs.size());
    for (auto& job : jobs) {
        if (!job.error.empty()) {
            summary.add_untimed(invalid_job_name);
            emit(invalid_job_line(job.id, job.error));
            continue;
        }
        requests.push_back(std::move(job.req));
        ids.push_back(std::move(job.id));
    }
    jobs = std::vector<fanout_job>();

    asio::io_context ctx{ASIO_CONCURRENCY_HINT_UNSAFE_IO};  // one thread: as fcgi bench's
    fcgi::client client(ctx.get_executor(), std::move(options));
    const auto start = steady_clock::now();
    auto finish = start;
    // Runs on the client's executor, one result at a time: no locking around stdout.
    auto on_result = [&](std::size_t index, fcgi::fanout_result r) {
        // Failures of requests that never left the client (refused, a deadline passed in the
        // queue: times_sent 0) are not requests sent: they would swell the rate and skew the
        // latency percentiles. Nor are jobs stopped by Ctrl-C: their duration is the time to
        // the interruption.
        if (r.ec == fcgi::condition::caller_error || r.ec == fcgi::error::no_endpoint ||
            r.ec == fcgi::error::pool_exhausted || r.ec == fcgi::error::client_stopped ||
            (r.ec && r.resp.times_sent == 0))
            summary.add_untimed(error_name(r.ec));
        else if (r.ec)
            summary.add_failure(error_name(r.ec), r.duration);
        else
            summary.add_response(r.duration);
        bool was_failed = output_failed;
        emit(result_line(ids[index], r));
        ids[index] = nullptr;  // the response itself dies with `r`
        if (output_failed && !was_failed)
            client.stop();  // nobody will read the rest
    };
    // Ctrl-C (or SIGTERM, from a supervisor) stops the run: what is queued or in flight fails
    // with client_stopped, so every job still gets its result line and the summary is printed;
    // a second one kills.
    asio::signal_set interrupt(ctx);
    bool interrupted = false;
    for (int sig : {SIGINT, SIGTERM}) {
        std::error_code ec;
        if (!signal_ignored(sig))
            interrupt.add(sig, ec);  // if it fails, the signal keeps its default action
    }
    interrupt.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        std::error_code ignored;
        interrupt.clear(ignored);  // back to the default actions
        interrupted = true;
        client.stop();
    });
    fcgi::async_fanout_each(client, std::move(requests), flags.concurrency, on_result,
                            [&](std::error_code) {
                                finish = steady_clock::now();
                                interrupt.cancel();
                                // Closes the kept-alive connections so ctx.run() returns.
                                client.async_shutdown([](std::error_code) {});
                            });
    ctx.run();

    write_stderr(summary.text(finish - start));
    const auto stats = client.stats();
    if (flags.multiplex == "auto") {
        // What came of the question, and why, per endpoint that was used: otherwise a server
        // that did not answer in time is run one request per connection without a word.
        for (const auto& e : stats.endpoints)
            if (e.connects > 0)
                write_stderr(multiplexing_line(e, options.max_requests_per_connection));
    }
    for (const auto& e : stats.endpoints)
        if (e.backlog_reliefs > 0)
            print_error(backlog_line(e, options.backlog_relief));
    const bool multiplexed =
        std::any_of(stats.endpoints.begin(), stats.endpoints.end(),
                    [](const auto& e) { return e.max_in_flight_per_connection > 1; });
    if (auto hint =
            recycle_hint(summary.failures("connection_lost"), flags.recycle_after, multiplexed);
        !hint.empty())
        print_error(hint);
    if (interrupted)
        print_error("interrupted: the jobs not finished by then failed with client_stopped");
    if (output_failed || summary.failed() > 0)
        return request_failure;
    return ok;
}

}  // namespace fcgi_cli
