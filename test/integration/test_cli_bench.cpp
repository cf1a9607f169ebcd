// `fcgi bench`, run as a child process against a private php-fpm and a silent fake server:
// the JSON report's counts, latency order, open-loop pacing, timeouts, never-answered
// requests and the php-fpm status poller.
#include <signal.h>

#include <array>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/spawn.hpp"
#include "support/temp_file.hpp"
#include "support/unaccepted_listener.hpp"

#ifdef FCGI_CLI_PATH

#include <nlohmann/json.hpp>

using fcgi::test::php_fpm;
using fcgi::test::run_result;
using fcgi::test::run_spec;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

run_result bench(std::vector<std::string> args, std::chrono::seconds limit = 60s) {
    run_spec spec;
    spec.program = FCGI_CLI_PATH;
    spec.args = {"bench"};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
    spec.limit = limit;
    return fcgi::test::run_child(spec);
}

// The report as JSON, with the keys every report has; anything else fails the test.
json report_of(const run_result& r) {
    json j = json::parse(r.out, nullptr, false);
    BOOST_REQUIRE_MESSAGE(!j.is_discarded() && j.is_object(),
                          "not a JSON object: " << r.out << "\nstderr: " << r.err);
    for (const char* key : {"requests", "ok", "errors", "unanswered", "duration_s", "rps",
                            "latency_ms", "status", "client_cpu_s", "client_cpu_us_per_request"})
        BOOST_REQUIRE_MESSAGE(j.contains(key), key << " missing: " << r.out);
    for (const char* key : {"p50", "p90", "p99", "p999", "max"})
        BOOST_REQUIRE_MESSAGE(j["latency_ms"].contains(key), key << " missing: " << r.out);
    return j;
}

struct fpm_fixture {
    php_fpm fpm{{.children = 4, .status_path = "/status"}};
    std::string ep = fpm.unix_endpoint();
};

// A clean run (exit 0) against `fake` with `args` and --json: its stderr and report.
struct fake_run {
    std::string err;
    json report;
};
fake_run clean_run(const fcgi::test::fake_responder& fake, std::vector<std::string> args) {
    args.insert(args.begin(), {"--connect", fake.unix_endpoint().to_string(), "--json"});
    args.push_back(php_fpm::script("hello.php"));
    auto r = bench(args);
    BOOST_TEST(r.exit_code == 0, r.err);
    return {r.err, report_of(r)};
}

// `fcgi bench ARGS` against `fake`, sent `sig` once the responder's state satisfies `seen`.
struct signalled_run {
    bool signalled = false;
    run_result result;
};
signalled_run bench_signalled(const fcgi::test::fake_responder& fake, std::vector<std::string> args,
                              std::function<bool(const fcgi::test::fake_snapshot&)> seen, int sig) {
    run_spec spec;
    spec.program = FCGI_CLI_PATH;
    spec.args = {"bench", "--connect", fake.unix_endpoint().to_string(), "--json"};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
    spec.args.push_back(php_fpm::script("hello.php"));
    spec.limit = 15s;  // below what a run that does not stop at once would take
    signalled_run out;
    spec.started = [&](int pid) {
        out.signalled = fake.wait_for(seen, 10s) && ::kill(pid, sig) == 0;
    };
    out.result = fcgi::test::run_child(spec);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli_bench)

BOOST_FIXTURE_TEST_CASE(closed_loop_counted_requests, fpm_fixture) {
    auto r = bench({"--connect", ep, "--requests", "300", "--concurrency", "4", "--json",
                    php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 0);
    auto j = report_of(r);
    BOOST_TEST(j["requests"].get<int>() == 300);
    BOOST_TEST(j["ok"].get<int>() == 300);
    // php-fpm answers FCGI_MPXS_CONNS=0: a connection per request in flight.
    BOOST_TEST(!j["multiplexed"].get<bool>());
    BOOST_TEST(!j["probe"]["mpxs_conns"].get<bool>());
    BOOST_TEST(j["connections"].get<int>() == 4);
    BOOST_TEST(j["unanswered"].get<int>() == 0);
    BOOST_TEST(j["unserved_connections"].get<int>() == 0);
    BOOST_TEST(j["errors"].empty());
    BOOST_TEST(j["status"] == json({{"200", 300}}));
    BOOST_TEST(r.err.find("never received a byte") == std::string::npos, r.err);
    BOOST_TEST(j["bytes_in"].get<int>() == 300 * 14);  // "Hello, world!\n"
    auto lat = j["latency_ms"];
    BOOST_TEST(lat["p50"].get<double>() > 0);
    BOOST_TEST(lat["p50"].get<double>() <= lat["p99"].get<double>());
    BOOST_TEST(lat["p99"].get<double>() <= lat["max"].get<double>());
    BOOST_TEST(j["rps"].get<double>() > 0);
    BOOST_TEST(j["client_cpu_s"].get<double>() >= 0);
}

// -n is the request count, as in ab and hey; -C the concurrency (-c is --connect).
BOOST_AUTO_TEST_CASE(short_flags_as_in_ab) {
    fcgi::test::fake_responder fake;
    auto run = clean_run(fake, {"-n", "20", "-C", "2"});
    BOOST_TEST(run.report["requests"].get<int>() == 20);
    BOOST_TEST(run.report["concurrency"].get<int>() == 2);
    auto old = bench({"-c", fake.unix_endpoint().to_string(), "-N", "20", "x.php"});
    BOOST_TEST(old.exit_code == 2, old.err);
}

BOOST_FIXTURE_TEST_CASE(human_report, fpm_fixture) {
    auto r = bench({"--connect", ep, "--requests", "20", php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find("20 sent, 20 ok, 0 failed, 0 never answered") != std::string::npos,
               r.out);
    BOOST_TEST(r.out.find("status:      20 x 200\n") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("p99.9") != std::string::npos, r.out);
    BOOST_TEST(r.err.find("2xx") == std::string::npos, r.err);
}

BOOST_FIXTURE_TEST_CASE(open_loop_rate, fpm_fixture) {
    auto r = bench({"--connect", ep, "--duration", "1", "--rate", "200", "--json",
                    php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 0);
    auto j = report_of(r);
    auto n = j["requests"].get<int>();
    BOOST_TEST(n >= 150);
    BOOST_TEST(n <= 250);
    BOOST_TEST(j["ok"].get<int>() == n);
    BOOST_TEST(j["mode"] == "open");
    BOOST_TEST(j["rate"].get<double>() == 200.0);
    // The pace sets what is in flight, up to --concurrency; here it never had to wait.
    BOOST_TEST(j["concurrency"].get<int>() == 4);
    BOOST_TEST(j["rps"].get<double>() > 100);

    // The period is the whole --duration, not up to the last send: at 2 req/s over 1 s the
    // requests go at 0 and 0.5 s, and the rate is 2 req/s, not 4.
    auto slow = bench({"--connect", ep, "--duration", "1", "--rate", "2", "--json",
                       php_fpm::script("hello.php")});
    BOOST_TEST(slow.exit_code == 0, slow.err);
    auto k = report_of(slow);
    BOOST_TEST(k["requests"].get<int>() == 2);
    BOOST_TEST(k["duration_s"].get<double>() >= 0.999);
    BOOST_TEST(k["rps"].get<double>() <= 2.001);
    BOOST_TEST(k["behind_schedule"].get<int>() == 0);
}

// A rate no client keeps: the pace sent every overdue request in one go, so the whole schedule
// (rate x duration) went out inside one handler, the end and grace timers waited behind it,
// and the run took GBs and many times its --duration. Now it sends what it can, the period
// ends on time, and what was due and never sent is counted: sent + behind = the schedule.
BOOST_AUTO_TEST_CASE(open_loop_beyond_what_the_client_can_send) {
    fcgi::test::fake_responder fake;
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--json", "--rate", "1e7",
                    "--duration", "0.5", "--timeout", "1", php_fpm::script("hello.php")});
    auto j = report_of(r);
    const auto sent = j["requests"].get<std::uint64_t>();
    const auto behind = j["behind_schedule"].get<std::uint64_t>();
    BOOST_TEST(sent + behind == 5'000'000u, r.err);
    BOOST_TEST(sent < 2'500'000u, r.err);  // no client sends 5 million requests a second
    BOOST_TEST(r.err.find("the client fell behind the pace: " + std::to_string(behind)) !=
                   std::string::npos,
               r.err);
}

BOOST_FIXTURE_TEST_CASE(timeouts_counted_by_name, fpm_fixture) {
    auto r = bench({"--connect", ep, "--timeout", "0.2", "--requests", "4", "--json",
                    php_fpm::script("sleep.php") + "?ms=2000"});
    BOOST_TEST(r.exit_code == 6);
    auto j = report_of(r);
    BOOST_TEST(j["requests"].get<int>() == 4);
    BOOST_TEST(j["ok"].get<int>() == 0);
    BOOST_TEST(j["errors"]["request_timeout"].get<int>() == 4);
    BOOST_TEST(j["unanswered"].get<int>() == 0);
}

// More connections than workers: php-fpm serves two of the three (a kept-alive connection
// keeps its worker) and the third waits in the listen backlog until the run ends.
BOOST_AUTO_TEST_CASE(connections_beyond_the_workers_reported) {
    php_fpm fpm({.children = 2});
    auto r = bench({"--connect", fpm.unix_endpoint(), "--duration", "0.5", "--concurrency", "3",
                    "--timeout", "0", "--json", php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 6);
    auto j = report_of(r);
    BOOST_TEST(j["unserved_connections"].get<int>() == 1);
    BOOST_TEST(j["unanswered"].get<int>() == 1);
    BOOST_TEST(j["ok"].get<int>() > 0);
    BOOST_TEST(r.err.find("1 of 3 connections never received a byte") != std::string::npos);
    BOOST_TEST(r.err.find("pm.max_children") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(fpm_status_polled, fpm_fixture) {
    // Two connections leave two of the four workers for the status polls.
    auto r = bench({"--connect", ep, "--duration", "1.2", "--concurrency", "2", "--fpm-status",
                    "/status", "--json", php_fpm::script("sleep.php") + "?ms=20"});
    BOOST_TEST_INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << fpm.log());
    BOOST_TEST(r.exit_code == 0);
    auto j = report_of(r);
    BOOST_REQUIRE(j.contains("fpm_status"));
    BOOST_TEST(j["fpm_status"]["polls"].get<int>() >= 2);
    BOOST_TEST(j["fpm_status"]["max_active_processes"].get<int>() >= 1);
    BOOST_TEST(j["fpm_status"]["total_processes"].get<int>() == 4);
    BOOST_TEST(r.err.find("warning") == std::string::npos);

    // Four take every worker: no connection waits in the backlog, and no poll is made during
    // the run (it would wait there, counted in the queue it measures).
    // (1.2 s: polls are due at 0.5 s and 1 s.)
    r = bench({"--connect", ep, "--duration", "1.2", "--concurrency", "4", "--fpm-status",
               "/status", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("4 connections take all of the pool's processes: no status poll is "
                          "made while they hold every worker") != std::string::npos,
               r.err);
    BOOST_TEST(r.out.find("max active processes unknown (not polled during the run: its "
                          "connections held every worker)") != std::string::npos,
               r.out);
    BOOST_TEST(r.err.find("--connections 3 leaves one for them") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("listen backlog") == std::string::npos, r.err);

    // A path that is no status page: every poll fails, and what only a poll can tell is null,
    // not a made-up 0 processes of manager "".
    r = bench({"--connect", ep, "--requests", "4", "--fpm-status", "/no-such-status", "--json",
               php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    j = report_of(r);
    BOOST_REQUIRE(j.contains("fpm_status"));
    BOOST_TEST(j["fpm_status"]["polls"].get<int>() == 0, j.dump());
    BOOST_TEST(j["fpm_status"]["failures"].get<int>() >= 1, j.dump());
    BOOST_TEST(j["fpm_status"]["total_processes"].is_null(), j.dump());
    BOOST_TEST(j["fpm_status"]["process_manager"].is_null(), j.dump());
}

// Connections beyond the workers on TCP: a poll during the run could only wait in the backlog
// behind them, so none is made; the poll after the run reads php-fpm's "max listen queue",
// which shows what queued; the active count is unknown rather than the poll before the run's.
BOOST_AUTO_TEST_CASE(fpm_status_polled_after_a_saturating_run) {
    php_fpm fpm({.children = 2, .status_path = "/status"});
    // Two of the four connections wait in the backlog the whole run. Polls given up on after a
    // second each left a connection beside them (the count grew with the run: 5 after 3 s);
    // now none is made while the run's connections hold every worker.
    auto r = bench({"--connect", fpm.tcp_endpoint(), "--duration", "3", "--concurrency", "4",
                    "--timeout", "0", "--fpm-status", "/status", "--json",
                    php_fpm::script("sleep.php") + "?ms=5"});
    BOOST_TEST_INFO("stdout: " << r.out << "\nstderr: " << r.err);
    auto j = report_of(r);
    BOOST_REQUIRE(j.contains("fpm_status"));
    const auto& st = j["fpm_status"];
    BOOST_TEST(st["total_processes"].get<int>() == 2);
    BOOST_REQUIRE(st["max_listen_queue"].is_number());
    BOOST_TEST(st["max_listen_queue"].get<int>() >= 2);
    BOOST_TEST(st["max_listen_queue"].get<int>() <= 3);  // the poll after the run, at worst
    BOOST_TEST(!st["max_listen_queue_may_include_poll"].get<bool>());
    BOOST_TEST(st["listen_queue_count_stayed_at"].is_null());
    BOOST_TEST(st["max_active_processes"].is_null());

    // One connection in the backlog: less than the first run left in php-fpm's count, which
    // then does not rise, and the queue was not seen (it said 0).
    auto human = bench({"--connect", fpm.tcp_endpoint(), "--duration", "0.8", "--concurrency", "3",
                        "--timeout", "0", "--fpm-status", "/status",
                        php_fpm::script("sleep.php") + "?ms=5"});
    BOOST_TEST(human.out.find("max active processes unknown (not polled during the run: its "
                              "connections held every worker)") != std::string::npos,
               human.out);
    // (At the mark the first run left, or a little above: a sample of php-fpm's may catch its
    // closed connections in the backlog after its poll read the count.)
    BOOST_TEST(human.out.find("max listen queue not seen (php-fpm's count, sampled once a "
                              "second, stayed at ") != std::string::npos,
               human.out);
}

// Throughput counts responses of any status: a run where none was a 2xx says so.
BOOST_FIXTURE_TEST_CASE(no_2xx_is_a_warning, fpm_fixture) {
    auto r = bench({"--connect", ep, "--requests", "20", php_fpm::script("no-such-script.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.err.find("warning: no response had a 2xx status (20 x 404)") != std::string::npos,
               r.err);
}

BOOST_FIXTURE_TEST_CASE(bad_usage, fpm_fixture) {
    auto r = bench({"--connect", ep, "--requests", "200000000", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 2);
    r = bench({"--connect", ep, "--duration", "4000", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 2);
    r = bench({php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 2);
    // A query would be sent inside SCRIPT_NAME, and a 404 would follow.
    r = bench({"--connect", ep, "--requests", "2", "--fpm-status", "/status?full",
               php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 2);
    BOOST_TEST(r.err.find("without a query") != std::string::npos, r.err);
    // CLI11's own range checks let NaN through (an open loop at NaN req/s ran as a closed
    // loop) and described a refusal with the whole range of a double.
    for (const auto& bad :
         std::vector<std::vector<std::string>>{{"--rate", "nan"},
                                               {"--rate", "0"},
                                               {"--timeout", "nan"},
                                               {"--timeout", "1e300"},
                                               {"--duration", "inf"},
                                               {"--warmup", "-1"},
                                               {"--max-output", "-1"},
                                               {"--max-output", "18446744073709551616"}}) {
        std::vector<std::string> args{"--connect", ep, "--requests", "2"};
        args.insert(args.end(), bad.begin(), bad.end());
        args.push_back(php_fpm::script("hello.php"));
        r = bench(args);
        BOOST_TEST_CONTEXT(bad.front() << " " << bad.back()) {
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(r.out.empty());
            BOOST_TEST(r.err.starts_with("fcgi: " + bad.front() + ": "), r.err);
            BOOST_TEST(r.err.size() < 120u, r.err);
        }
    }
    // CLI11's integer range check said "Value 1.5 not in range 1 to 100000000" of 1.5 and of
    // a word: a count says what is wrong with it.
    for (const auto& [flag, value, said] : std::vector<std::array<std::string, 3>>{
             {"--requests", "1.5", "'1.5' is not a whole number"},
             {"--concurrency", "abc", "'abc' is not a whole number"},
             {"--concurrency", "0", "must be at least 1"},
             {"--connections", "-2", "must be at least 1"},
             {"--connections", "65537", "must be at most 65536"},
             {"--requests", "99999999999999999999", "must be at most 100000000"}}) {
        r = bench({"--connect", ep, flag, value, php_fpm::script("hello.php")});
        BOOST_TEST_CONTEXT(flag << " " << value) {
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(r.err.starts_with("fcgi: " + flag + ": " + said), r.err);
        }
    }
}

// A server whose connects never complete (SYNs dropped), in a run shorter than the connect
// timeout: nothing failed yet, so the run ended with every request "never answered" and exit 6,
// as if a server had left them unanswered; it is a server that cannot be reached (exit 3).
BOOST_AUTO_TEST_CASE(connects_pending_at_the_end_are_unreachable,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    fcgi::test::unaccepted_listener hole;
    auto r = bench({"--connect", hole.endpoint().to_string(), "--duration", "0.3", "--json",
                    "--multiplex", "off", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 3, r.err);
    BOOST_TEST(r.err.find("cannot connect; stopped before any response: no connect completed") !=
                   std::string::npos,
               r.err);
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() == 0);
}

// No server: the run stops at the pool's first "no endpoint" instead of failing millions of
// sends for the whole --duration, says why, exits 3 as `fcgi request` does, and counts no
// instant failure as throughput.
BOOST_AUTO_TEST_CASE(unreachable_server_stops_the_run) {
    fcgi::test::temp_socket_path missing;  // nothing listens there
    const std::string nowhere = "unix:" + missing.path;
    auto r = bench({"--connect", nowhere, "--duration", "3", "--concurrency", "4", "--json",
                    php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 3);
    auto j = report_of(r);
    BOOST_TEST(j["requests"].get<int>() <= 4);
    BOOST_TEST(j["ok"].get<int>() == 0);
    BOOST_TEST(j["rps"].get<double>() == 0.0);
    BOOST_TEST(j["errors"]["no_endpoint"].get<int>() == j["requests"].get<int>());
    BOOST_TEST(j["latency_ms"]["p50"].is_null(), j["latency_ms"].dump());  // not a 0 ms
    BOOST_TEST(j["latency_ms"]["max"].is_null(), j["latency_ms"].dump());
    const std::string why = j["error_messages"]["no_endpoint"].get<std::string>();
    BOOST_TEST(why.find("No such file or directory") != std::string::npos, why);
    BOOST_TEST(r.err.starts_with("fcgi: " + nowhere + ": cannot connect"), r.err);

    // The human report says so too, and shows no latency made of zeros.
    r = bench({"--connect", nowhere, "--duration", "3", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.out.find("first no_endpoint: ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("latency:     none (no responses)") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("throughput:  none (no responses)") != std::string::npos, r.out);

    // An address that is not UTF-8 ends up in the error messages: the JSON report still comes,
    // with U+FFFD (it used to abort the tool).
    const std::string odd = nowhere + "-\xff";
    r = bench({"--connect", odd, "--duration", "3", "--json", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 3, r.err);
    auto k = report_of(r);
    BOOST_TEST(k["errors"]["no_endpoint"].get<int>() >= 1);
    BOOST_TEST(k["error_messages"]["no_endpoint"].get<std::string>().find("\xef\xbf\xbd") !=
               std::string::npos);
}

// A run that counted nothing is not a clean run: an open loop slower than its measured period
// sends its only request during the warm-up.
BOOST_AUTO_TEST_CASE(nothing_counted_is_a_failure) {
    fcgi::test::fake_responder fake;
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--rate", "0.5", "--warmup",
                    "0.5", "--duration", "1", "--json", php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 6);
    auto j = report_of(r);
    BOOST_TEST(j["requests"].get<int>() == 0);
    BOOST_TEST(r.err.find("no request was sent in the measured period") != std::string::npos);
}

// Ctrl-C ends a long run early with the report of what ran, as wrk does, not with nothing.
BOOST_AUTO_TEST_CASE(interrupt_reports_the_run_so_far) {
    fcgi::test::fake_responder fake;
    run_spec spec;
    spec.program = FCGI_CLI_PATH;
    spec.args = {"bench",      "--connect", fake.tcp_endpoint().to_string(),
                 "--duration", "60",        "--concurrency",
                 "2",          "--json",    php_fpm::script("hello.php")};
    spec.limit = 30s;
    bool signalled = false;
    spec.started = [&](int pid) {
        signalled = fake.wait_for([](const auto& s) { return s.requests.size() >= 50; }, 20s) &&
                    ::kill(pid, SIGINT) == 0;
    };
    auto r = fcgi::test::run_child(spec);
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_REQUIRE(signalled);
    BOOST_TEST(r.exit_code == 128 + SIGINT);  // a script can tell a cut run from a whole one
    auto j = report_of(r);
    BOOST_TEST(j["interrupted"].get<bool>());
    BOOST_TEST(j["requests"].get<int>() >= 50);
    BOOST_TEST(j["ok"].get<int>() == j["requests"].get<int>());
    BOOST_TEST(j["unanswered"].get<int>() == 0);
    BOOST_TEST(r.err.find("interrupted") != std::string::npos, r.err);

    // Started with SIGINT ignored (a shell's background job): it stays ignored and the run
    // goes on to its end.
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    BOOST_REQUIRE(::sigaction(SIGINT, &ignore, &old) == 0);
    const std::size_t seen = fake.snapshot().requests.size();
    spec.args[4] = "1";  // --duration
    signalled = false;
    spec.started = [&](int pid) {
        signalled =
            fake.wait_for([&](const auto& s) { return s.requests.size() >= seen + 50; }, 20s) &&
            ::kill(pid, SIGINT) == 0;
    };
    r = fcgi::test::run_child(spec);
    ::sigaction(SIGINT, &old, nullptr);
    BOOST_REQUIRE(signalled);
    BOOST_TEST(r.exit_code == 0, r.err);
    j = report_of(r);
    BOOST_TEST(!j["interrupted"].get<bool>());
}

// A signal while no counted request is out (during --warmup, or between an open loop's sends)
// ends the run with its report. The run once finished there and then waited for another signal,
// forever.
BOOST_AUTO_TEST_CASE(interrupt_with_nothing_counted_out) {
    struct variant {
        std::vector<std::string> flags;
        int exit_code;
    };
    for (const auto& v : {variant{{"--warmup", "20", "--duration", "1"}, 128 + SIGINT},
                          variant{{"--rate", "1", "--duration", "20"}, 128 + SIGINT}}) {
        BOOST_TEST_CONTEXT(v.flags[0]) {
            // A responder of its own: one shared with the run before could still be recording
            // that run's requests, and the signal would then come before this run catches it.
            fcgi::test::fake_responder fake;
            // Its 15 s limit is far below the run's own end: a hang fails here.
            auto [signalled, r] = bench_signalled(
                fake, v.flags, [](const auto& s) { return !s.requests.empty(); }, SIGINT);
            BOOST_REQUIRE(signalled);
            BOOST_TEST(r.exit_code == v.exit_code, r.err);
            auto j = report_of(r);
            BOOST_TEST(j["interrupted"].get<bool>());
            BOOST_TEST(j["unanswered"].get<int>() == 0);
        }
    }
}

// SIGTERM (timeout(1), a CI job cancelled, docker stop) ends the run at once, with its report:
// it waited for the requests out, up to 30 s, past docker's 10 s before SIGKILL.
BOOST_AUTO_TEST_CASE(sigterm_does_not_wait_for_the_requests_out) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(30s));
        return s;
    }});
    auto [signalled, r] = bench_signalled(
        fake, {"--requests", "10", "--concurrency", "2"},
        [](const auto& s) { return s.requests.size() >= 2; }, SIGTERM);
    BOOST_REQUIRE(signalled);
    BOOST_TEST(r.exit_code == 128 + SIGTERM, r.err);
    auto j = report_of(r);
    BOOST_TEST(j["interrupted"].get<bool>());
    BOOST_TEST(j["unanswered"].get<int>() == 2);
}

// A signal while the run is not started yet (the GET_VALUES question of --multiplex auto, here
// never answered) still ends in a report; it ended the process with no output.
BOOST_AUTO_TEST_CASE(signal_before_the_run_still_reports) {
    fcgi::test::fake_responder fake({.answer_get_values = false});
    auto [signalled, r] = bench_signalled(
        fake, {}, [](const auto& s) { return s.get_values >= 1; }, SIGINT);
    BOOST_REQUIRE(signalled);
    BOOST_TEST(r.exit_code == 128 + SIGINT, r.err);
    auto j = report_of(r);
    BOOST_TEST(j["interrupted"].get<bool>());
    BOOST_TEST(j["requests"].get<int>() == 0);
    BOOST_TEST(fake.snapshot().requests.empty());
}

// A peer that is not a FastCGI responder (an HTTP port) fails every request with a protocol
// error: the run stops at the first, exit 5, instead of opening thousands of connections.
BOOST_AUTO_TEST_CASE(protocol_error_before_any_answer_stops_the_run) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{fcgi::test::act::raw("HTTP/1.1 400 Bad Request\r\n\r\n")};
    }});
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--duration", "10",
                    "--multiplex", "off", "--json", php_fpm::script("hello.php")},
                   30s);
    BOOST_TEST(r.exit_code == 5, r.err);
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() == 0);
    BOOST_TEST(j["errors"].contains("bad_version"), j.dump());
    BOOST_TEST(j["duration_s"].get<double>() < 5.0);
    BOOST_TEST(fake.snapshot().requests.size() <= 8u);  // the first round of --concurrency 4
    BOOST_TEST(r.err.find("broke the FastCGI protocol") != std::string::npos, r.err);
}

// A bad CGI head ("Status: abc") comes in well-formed records: the script is at fault, not the
// address. The run goes on and counts it by reason, like any failing script, rather than stopping
// as for an HTTP port.
BOOST_AUTO_TEST_CASE(a_bad_cgi_head_is_counted_not_taken_for_a_wrong_port) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{fcgi::test::act::stdout_("Status: abc\r\n\r\nbody"),
                                  fcgi::test::act::end()};
    }});
    auto r =
        bench({"--connect", fake.unix_endpoint().to_string(), "--requests", "12", "--concurrency",
               "2", "--multiplex", "off", "--json", php_fpm::script("hello.php")},
              30s);
    BOOST_TEST(r.exit_code == 6, r.err);  // requests failed; not 5, the protocol's
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() == 0);
    BOOST_TEST(j["errors"]["bad_response_head"].get<int>() == 12, j.dump());
    BOOST_TEST(fake.snapshot().requests.size() == 12u);
    BOOST_TEST(r.err.find("broke the FastCGI protocol") == std::string::npos, r.err);
}

// A request whose kept-alive connection closes under it goes again, and the report says so
// (a worker dying mid-request hid behind the retry); --no-retry counts it as a failure.
BOOST_AUTO_TEST_CASE(resent_requests_are_reported) {
    for (bool no_retry : {false, true}) {
        BOOST_TEST_CONTEXT("--no-retry " << no_retry) {
            auto seen = std::make_shared<std::atomic<int>>(0);
            fcgi::test::fake_responder fake(
                {.script_for = [seen](const fcgi::test::seen_request& r) {
                    if (++*seen == 3)
                        return fcgi::test::script{fcgi::test::act::close()};
                    return fcgi::test::echo_script(r);
                }});
            std::vector<std::string> args = {"--connect",     fake.unix_endpoint().to_string(),
                                             "--requests",    "5",
                                             "--concurrency", "1",
                                             "--multiplex",   "off",
                                             "--json"};
            if (no_retry)
                args.push_back("--no-retry");
            args.push_back(php_fpm::script("hello.php"));
            auto r = bench(args);
            auto j = report_of(r);
            if (no_retry) {
                BOOST_TEST(r.exit_code == 6, r.err);
                BOOST_TEST(j["errors"].value("connection_lost", 0) == 1, j.dump());
                BOOST_TEST(j["resent"].get<int>() == 0);
                BOOST_TEST(fake.snapshot().requests.size() == 5u);
            } else {
                BOOST_TEST(r.exit_code == 0, r.err);
                BOOST_TEST(j["ok"].get<int>() == 5);
                BOOST_TEST(j["resent"].get<int>() == 1, j.dump());
                BOOST_TEST(j["resent_failed"].get<int>() == 0, j.dump());
                BOOST_TEST(fake.snapshot().requests.size() == 6u);
            }
        }
    }
    // One whose second send fails too is a failure that was resent: it used to show only as
    // a connection_lost, the first send unseen.
    auto seen = std::make_shared<std::atomic<int>>(0);
    fcgi::test::fake_responder fake({.script_for = [seen](const fcgi::test::seen_request& r) {
        if (int n = ++*seen; n == 3 || n == 4)
            return fcgi::test::script{fcgi::test::act::close()};
        return fcgi::test::echo_script(r);
    }});
    const std::vector<std::string> args = {"--connect",
                                           fake.unix_endpoint().to_string(),
                                           "--requests",
                                           "5",
                                           "--concurrency",
                                           "1",
                                           "--multiplex",
                                           "off",
                                           php_fpm::script("hello.php")};
    auto r = bench(args);
    BOOST_TEST(r.exit_code == 6, r.err);
    BOOST_TEST(r.out.find("resent:      1 failed after a second send") != std::string::npos, r.out);
    auto with_json = args;
    with_json.insert(with_json.end() - 1, "--json");
    *seen = 0;
    auto j = report_of(bench(with_json));
    BOOST_TEST(j["errors"].value("connection_lost", 0) == 1, j.dump());
    BOOST_TEST(j["resent_failed"].get<int>() == 1, j.dump());
    BOOST_TEST(j["resent"].get<int>() == 0, j.dump());
}

// A timed closed loop's throughput is over the period asked for: one slow last batch used to
// stretch the whole run's duration (and cut its req/s) to the last straggler.
BOOST_AUTO_TEST_CASE(slow_last_batch_does_not_stretch_the_period) {
    auto first = std::make_shared<std::atomic<std::int64_t>>(0);
    fcgi::test::fake_responder fake({.script_for = [first](const fcgi::test::seen_request& r) {
        auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        std::int64_t expected = 0;
        first->compare_exchange_strong(expected, now);
        auto s = fcgi::test::echo_script(r);
        // Past 0.7 s of the 1 s run, every answer takes 1.5 s: the last batch ends late.
        if (now - first->load() > std::chrono::nanoseconds(700ms).count())
            s.insert(s.begin(), fcgi::test::act::delay(1500ms));
        return s;
    }});
    auto [err, j] =
        clean_run(fake, {"--duration", "1", "--concurrency", "2", "--multiplex", "off"});
    BOOST_TEST(j["duration_s"].get<double>() >= 0.99, j.dump());
    // Stretched to the straggler it would be 2.2 s at least; the rest is room for a loaded
    // machine.
    BOOST_TEST(j["duration_s"].get<double>() < 2.0, j.dump());
    BOOST_TEST(j["drain_s"].get<double>() > 0.3, j.dump());
    // Over the period: the responses that came within it, per second of it.
    BOOST_TEST(j["rps"].get<double>() <= j["ok"].get<double>() / 0.99);
    BOOST_TEST(j["rps"].get<double>() >= (j["ok"].get<double>() - 2) / 2.0);
}

// An open loop whose pace needs more in flight than --concurrency carries: the requests that
// waited in the client are counted and named, since their latency is the client's queue.
BOOST_AUTO_TEST_CASE(open_loop_beyond_the_concurrency_is_named) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(50ms));
        return s;
    }});
    auto [err, j] = clean_run(
        fake, {"--rate", "100", "--requests", "20", "--concurrency", "1", "--multiplex", "off"});
    BOOST_TEST(j["waited_in_client"].get<int>() > 0, j.dump());
    BOOST_TEST(j["concurrency"].get<int>() == 1);
    BOOST_TEST(j["script"].get<std::string>() == php_fpm::script("hello.php"));
    BOOST_TEST(err.find("waited in the client") != std::string::npos, err);
}

// Server errors are responses, so throughput counts them; a run with any says so, and --fail
// turns a status of 400 or more into exit 22 for a CI gate.
BOOST_AUTO_TEST_CASE(server_errors_warn_and_fail_with_fail) {
    auto seen = std::make_shared<std::atomic<int>>(0);
    fcgi::test::fake_responder fake({.script_for = [seen](const fcgi::test::seen_request& r) {
        if (++*seen % 2)
            return fcgi::test::echo_script(r);
        return fcgi::test::script{
            fcgi::test::act::stdout_("Status: 500 Internal Server Error\r\n\r\nboom"),
            fcgi::test::act::end()};
    }});
    auto [err, j] = clean_run(fake, {"--requests", "10", "--concurrency", "1"});
    BOOST_TEST(j["status"]["500"].get<int>() == 5, j.dump());
    BOOST_TEST(err.find("5 of 10 responses had a 5xx status") != std::string::npos, err);
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--requests", "10", "--fail",
                    "--json", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 22, r.err);
}

// --requests alone waits for the last answers (as ab does), not the 2 s grace of a timed run: a
// script slower than that was reported as never answered.
BOOST_AUTO_TEST_CASE(requests_wait_for_slow_answers) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(2300ms));
        return s;
    }});
    auto [err, j] = clean_run(fake, {"--concurrency", "2", "--requests", "2"});
    BOOST_TEST(j["ok"].get<int>() == 2, err);
    BOOST_TEST(j["unanswered"].get<int>() == 0);
    BOOST_TEST(j["duration_s"].get<double>() >= 2.29);
}

// An open loop of N requests at R/s lasts N/R seconds: it was measured to the last send, (N-1)/R,
// which put the rate above the one asked for (5 at 10/s: 12.5 req/s).
BOOST_AUTO_TEST_CASE(open_loop_requests_keep_the_rate) {
    fcgi::test::fake_responder fake;
    auto [err, j] = clean_run(fake, {"--rate", "10", "--requests", "5"});
    BOOST_TEST(j["requests"].get<int>() == 5, err);
    BOOST_TEST(j["duration_s"].get<double>() >= 0.5 - 1e-6);
    BOOST_TEST(j["rps"].get<double>() <= 10.0 + 1e-6);
}

// Throughput counts every response in the period, a warmup request's too: one request at a
// time to a server that takes 500 ms, a 300 ms warmup, a 600 ms period. The warmup's request
// is answered inside the period, the next after it: one response in 0.6 s. Only responses to
// requests sent in the period counted, so the rate was 0 (and low by about latency / duration
// in any run with a warmup).
BOOST_AUTO_TEST_CASE(warmup_answers_in_the_period_count) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(500ms));
        return s;
    }});
    auto [err, j] = clean_run(
        fake, {"--warmup", "0.3", "--duration", "0.6", "--concurrency", "1", "--multiplex", "off"});
    BOOST_TEST(j["duration_s"].get<double>() == 0.6, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(j["rps"].get<double>() == 1 / 0.6, boost::test_tools::tolerance(1e-6));
    BOOST_TEST(j["requests"].get<int>() == 1, err);  // the one sent in the period
}

// An open loop faster than the server: two connections to a server that takes 50 ms a request
// answer at most 40 a second, whatever the schedule offers. The responses that drained after
// the period used to count in it, so the rate came out as the offered 100.
BOOST_AUTO_TEST_CASE(open_loop_over_capacity_reports_what_was_served) {
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(50ms));
        return s;
    }});
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--json", "--rate", "100",
                    "--duration", "1", "--concurrency", "2", "--multiplex", "off", "--timeout", "5",
                    php_fpm::script("hello.php")});
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() > 40, r.err);  // the queue drained after the period
    BOOST_TEST(j["drain_s"].get<double>() > 0.2);
    // 40 a second, and the two in flight at the end of the period.
    BOOST_TEST(j["rps"].get<double>() <= 42.0 / j["duration_s"].get<double>() + 1e-6);
}

// The server goes away after answering: the closed loop pauses for the pool's backoff after
// each no_endpoint instead of sending again at once (a million failures a second).
BOOST_AUTO_TEST_CASE(outage_after_answers_does_not_spin) {
    std::optional<fcgi::test::fake_responder> fake(std::in_place);
    run_spec spec;
    spec.program = FCGI_CLI_PATH;
    spec.args = {"bench", "--connect", fake->unix_endpoint().to_string(), "--duration",
                 "2",     "--json",    php_fpm::script("hello.php")};
    bool gone = false;
    spec.started = [&](int) {
        gone = fake->wait_for([](const auto& s) { return s.requests.size() >= 50; }, 10s);
        fake.reset();  // closes its connections and removes its socket
    };
    auto r = fcgi::test::run_child(spec);
    BOOST_REQUIRE(gone);
    BOOST_TEST(r.exit_code == 6, r.err);
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() >= 40);  // 50 seen, up to 4 of them lost in flight
    const int down = j["errors"].value("no_endpoint", 0);
    BOOST_TEST(down >= 1, j.dump());
    // At most the 4 in flight every 100 ms over 2 s, with room to spare.
    BOOST_TEST(down < 1000, down << " no_endpoint failures");
}

// --multiplex auto asks the server first: one that reports FCGI_MPXS_CONNS=1 gets every request
// of the run on one connection, several at once (the responder holds up to 4 finished requests
// before it answers, so requests sent together are seen live together).
BOOST_AUTO_TEST_CASE(multiplexes_when_the_server_says_so) {
    fcgi::test::fake_responder fake({.interleave = 4});
    auto j = clean_run(fake, {"--requests", "200", "--concurrency", "8"}).report;
    BOOST_TEST(j["ok"].get<int>() == 200);
    BOOST_TEST(j["multiplexed"].get<bool>());
    BOOST_TEST(j["connections"].get<int>() == 1);
    BOOST_TEST(j["requests_per_connection"].get<int>() == 8);
    BOOST_TEST(j["probe"]["mpxs_conns"].get<bool>());
    BOOST_TEST(j["probe"]["max_reqs"].get<int>() == 100);
    auto snap = fake.snapshot();
    BOOST_TEST(snap.get_values == 1u);
    BOOST_TEST(snap.connections_accepted == 2u);  // the question's, then the run's
    BOOST_TEST(snap.max_live >= 2u);
    BOOST_TEST(snap.violations.empty());

    // --connections spreads --concurrency: 8 over 2 is at most 4 on each, on the wire too.
    fcgi::test::fake_responder spread({.interleave = 4});
    auto r = bench({"--connect", spread.unix_endpoint().to_string(), "--requests", "200",
                    "--concurrency", "8", "--connections", "2", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out.find("2 connections multiplexed (up to 4 requests each)") != std::string::npos,
               r.out);
    snap = spread.snapshot();
    BOOST_TEST(snap.connections_accepted == 3u);  // the question's, then two
    BOOST_TEST(snap.max_live >= 2u);
    BOOST_TEST(snap.max_live <= 4u);
}

// off never asks and never multiplexes; on multiplexes without asking, whatever the server
// would have said.
BOOST_AUTO_TEST_CASE(multiplex_on_and_off_skip_the_question) {
    fcgi::test::fake_responder fake({.interleave = 4, .mpxs_conns = "0"});
    auto j =
        clean_run(fake, {"--requests", "100", "--concurrency", "4", "--multiplex", "off"}).report;
    BOOST_TEST(!j["multiplexed"].get<bool>());
    BOOST_TEST(j["connections"].get<int>() == 4);
    BOOST_TEST(j["requests_per_connection"].get<int>() == 1);
    BOOST_TEST(!j.contains("probe"));
    auto snap = fake.snapshot();
    BOOST_TEST(snap.get_values == 0u);
    BOOST_TEST(snap.max_live == 1u);

    j = clean_run(fake, {"--requests", "100", "--concurrency", "4", "--multiplex", "on"}).report;
    BOOST_TEST(j["multiplexed"].get<bool>());
    BOOST_TEST(j["connections"].get<int>() == 1);
    snap = fake.snapshot();
    BOOST_TEST(snap.get_values == 0u);
    BOOST_TEST(snap.max_live >= 2u);

    // auto, told FCGI_MPXS_CONNS=0: one request per connection.
    fcgi::test::fake_responder refusing({.interleave = 4, .mpxs_conns = "0"});
    j = clean_run(refusing, {"--requests", "20"}).report;
    BOOST_TEST(!j["multiplexed"].get<bool>());
    BOOST_TEST(!j["probe"]["mpxs_conns"].get<bool>());
    snap = refusing.snapshot();
    BOOST_TEST(snap.get_values == 1u);
    BOOST_TEST(snap.max_live == 1u);

    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--multiplex", "maybe",
                    php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 2);
}

// A server that never answers GET_VALUES (libfcgi with a lone one): the question gives up after
// a second, says so, and the run goes on one request per connection.
BOOST_AUTO_TEST_CASE(unanswered_question_means_no_multiplexing) {
    fcgi::test::fake_responder fake({.answer_get_values = false});
    auto [err, j] = clean_run(fake, {"--requests", "40", "--concurrency", "2"});
    BOOST_TEST(j["ok"].get<int>() == 40);
    BOOST_TEST(!j["multiplexed"].get<bool>());
    BOOST_TEST(j["connections"].get<int>() == 2);
    BOOST_TEST(j["probe"]["error"] == "request_timeout");
    BOOST_TEST(j["probe"]["mpxs_conns"].is_null());
    BOOST_TEST(err.find("no answer to GET_VALUES within 1000 ms") != std::string::npos, err);
    BOOST_TEST(fake.snapshot().max_live == 1u);

    // A --timeout below a second bounds the question too.
    auto quick = clean_run(fake, {"--requests", "10", "--timeout", "0.9"});
    BOOST_TEST(quick.err.find("no answer to GET_VALUES within 900 ms") != std::string::npos,
               quick.err);

    // An answer that does not parse (a name length with no name): a warning that names the
    // error, and one request per connection.
    fcgi::test::fake_responder garbled(
        {.get_values_reply = fcgi::test::make_record(fcgi::protocol::record_type::get_values_result,
                                                     0, std::string(1, '\x7f'))});
    auto g = clean_run(garbled, {"--requests", "10"});
    BOOST_TEST(!g.report["multiplexed"].get<bool>());
    BOOST_TEST(g.report["probe"]["error"].is_string());
    BOOST_TEST(g.err.find("warning: --multiplex auto: GET_VALUES failed (") != std::string::npos,
               g.err);
}

// A server that never answers: every request in flight at the end is reported, none dropped.
BOOST_AUTO_TEST_CASE(silent_server_unanswered) {
    fcgi::test::fake_responder fake({.silent = true});
    auto r = bench({"--connect", fake.tcp_endpoint().to_string(), "--duration", "1",
                    "--concurrency", "2", "--timeout", "0", "--multiplex", "off", "--json",
                    php_fpm::script("hello.php")});
    BOOST_TEST_INFO("stderr: " << r.err);
    BOOST_TEST(r.exit_code == 6);
    auto j = report_of(r);
    BOOST_TEST(j["requests"].get<int>() == 2);
    BOOST_TEST(j["unanswered"].get<int>() == 2);
    BOOST_TEST(j["unserved_connections"].get<int>() == 2);
    BOOST_TEST(j["ok"].get<int>() == 0);
    BOOST_TEST(r.err.find("never answered") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("2 of 2 connections never received a byte") != std::string::npos, r.err);
}

// --recycle-after N: no connection carries more than N requests, so a php-fpm that closes a
// worker's connection after its pm.max_requests-th response never has a request written to it
// first; a POST that must not be sent twice then never fails for it.
BOOST_AUTO_TEST_CASE(recycle_after_closes_connections_before_php_fpm_does) {
    fcgi::test::fake_responder fake;
    auto r = bench({"--connect", fake.unix_endpoint().to_string(), "--requests", "40",
                    "--concurrency", "2", "--multiplex", "off", "--recycle-after", "5", "--json",
                    php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(report_of(r)["ok"].get<int>() == 40);
    const auto seen = fake.snapshot();
    std::size_t most = 0;
    for (const auto& req : seen.requests)
        most = std::max(most, req.index_on_conn);
    BOOST_TEST(most == 5u);  // 20 a connection without the flag
    BOOST_TEST(seen.connections_accepted >= 8u);

    php_fpm fpm({.children = 2, .max_requests = 5, .tcp = false});
    r = bench({"--connect", fpm.unix_endpoint(), "--requests", "60", "--concurrency", "2",
               "--connections", "2", "--multiplex", "off", "--no-retry", "--recycle-after", "5",
               "-X", "POST", "--data", "x", "--json", php_fpm::script("echo.php")});
    BOOST_TEST(r.exit_code == 0, r.err);
    auto j = report_of(r);
    BOOST_TEST(j["ok"].get<int>() == 60, j.dump());
    BOOST_TEST(j["errors"].empty(), j.dump());
    BOOST_TEST(r.err.find("hint:") == std::string::npos, r.err);

    for (const char* bad : {"-1", "x"}) {
        auto u = bench({"--connect", fpm.unix_endpoint(), "--recycle-after", bad,
                        php_fpm::script("hello.php")});
        BOOST_TEST(u.exit_code == 2, u.err);
    }
}

BOOST_AUTO_TEST_SUITE_END()

#endif  // FCGI_CLI_PATH
