// Soak (ctest label "soak"): a fan-out against a private php-fpm with pm.max_requests = 50
// while a random worker of that php-fpm is SIGKILLed every second. Every request must end with
// a response or an error within its deadline, and the client's RSS must stay flat.
// FCGI_SOAK_SECONDS sets the length (120 by default).
#include <signal.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/error.hpp"
#include "support/php_fpm.hpp"
#include "support/run_until.hpp"

using fcgi::test::php_fpm;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

namespace {

// VmRSS of this process in KiB, from /proc/self/status.
long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0)
            return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

std::chrono::seconds soak_length() {
    const char* s = std::getenv("FCGI_SOAK_SECONDS");
    long n = s ? std::strtol(s, nullptr, 10) : 120;
    return std::chrono::seconds(std::clamp<long>(n, 5, 3600));
}

// The requests of the fan-out: a mix of quick GETs, POSTs with a body (never retried) and
// slow requests, so kills hit requests in every phase. `kind` names the mix entry for the
// report, so an error can be told apart as a killed POST (by design) or anything else.
fcgi::request make_request(std::uint64_t i, std::string& expect, const char*& kind) {
    fcgi::request r;
    r.timeout = 5s;
    switch (i % 4) {
        case 0:
        case 1:
            r.script = php_fpm::script("hello.php");
            expect = "Hello, world!\n";
            kind = "GET hello.php";
            break;
        case 2:
            r.script = php_fpm::script("echo.php");
            r.body = std::string(1000 + i % 20000, 'p');
            expect = "\"body_length\":" + std::to_string(r.body.size());
            kind = "POST echo.php";
            break;
        default:
            r.script = php_fpm::script("sleep.php");
            r.query = "ms=20";
            expect.clear();  // the worker's pid
            kind = "GET sleep.php";
            break;
    }
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(soak)

BOOST_AUTO_TEST_CASE(fanout_while_workers_are_killed) {
    const auto length = soak_length();
    const auto warmup = std::max<std::chrono::seconds>(length / 6, 5s);
    constexpr std::size_t window = 16;      // requests in flight at once (queued beyond 4)
    constexpr ms slack = 1000ms;            // timer slack past a deadline; bounds a hang
    constexpr long rss_growth_kib = 16384;  // generous: flat means far below this

    php_fpm fpm({.children = 4, .max_requests = 50, .tcp = false});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 4;           // = pm.max_children
    opts.max_requests_per_connection_lifetime = 50;  // in step with pm.max_requests
    opts.initial_backoff = 20ms;
    opts.max_backoff = 500ms;
    std::optional<fcgi::client> client;
    client.emplace(ctx.get_executor(), opts);

    const auto begin = steady::now();
    const auto stop_at = begin + length;
    std::uint64_t started = 0, done = 0, ok = 0, wrong = 0, late = 0, protocol = 0;
    long long worst_ms = 0;
    std::map<std::string, std::uint64_t> errors;
    std::function<void()> start_one = [&] {
        auto i = started++;
        std::string expect;
        const char* kind = "";
        auto req = make_request(i, expect, kind);
        auto deadline = req.timeout;
        auto t0 = steady::now();
        client->async_request(
            std::move(req), [&, t0, deadline, expect, kind](std::error_code ec, fcgi::response r) {
                ++done;
                auto took = std::chrono::duration_cast<ms>(steady::now() - t0);
                worst_ms = std::max<long long>(worst_ms, took.count());
                if (took > deadline + slack)
                    ++late;
                if (ec) {
                    ++errors[std::string(kind) + ", sent " + std::to_string(r.times_sent) +
                             "x: " + ec.message()];
                    protocol += ec == fcgi::condition::protocol_error;
                } else if (r.status != 200 || r.body.find(expect) == std::string::npos)
                    ++wrong;
                else
                    ++ok;
                if (steady::now() < stop_at)
                    start_one();
            });
    };
    for (std::size_t i = 0; i < window; ++i)
        start_one();

    // The killer: every second, SIGKILL one random worker of *our* php-fpm (children of its
    // master, from /proc). Runs on the client's thread: a timer, not a sleep.
    std::mt19937 rng(7);
    std::uint64_t kills = 0;
    asio::steady_timer killer(ctx);
    std::function<void()> arm_killer = [&] {
        killer.expires_after(1s);
        killer.async_wait([&](std::error_code ec) {
            if (ec || steady::now() >= stop_at)
                return;
            auto pids = fpm.worker_pids();
            if (!pids.empty()) {
                auto victim =
                    pids[std::uniform_int_distribution<std::size_t>(0, pids.size() - 1)(rng)];
                if (fpm.kill_worker(victim, SIGKILL))
                    ++kills;
            }
            arm_killer();
        });
    };
    arm_killer();

    // RSS samples every 5 s; the baseline is taken once the warmup is over.
    std::vector<std::pair<long long, long>> samples;  // (seconds since begin, KiB)
    std::optional<long> baseline;
    asio::steady_timer sampler(ctx);
    std::function<void()> arm_sampler = [&] {
        sampler.expires_after(5s);
        sampler.async_wait([&](std::error_code ec) {
            if (ec)
                return;
            auto t = std::chrono::duration_cast<std::chrono::seconds>(steady::now() - begin);
            samples.emplace_back(t.count(), rss_kib());
            if (!baseline && t >= warmup)
                baseline = samples.back().second;
            if (steady::now() < stop_at)
                arm_sampler();
        });
    };
    arm_sampler();

    bool finished = fcgi::test::run_until(
        ctx, [&] { return steady::now() >= stop_at && done == started; }, length + 30s);
    killer.cancel();
    sampler.cancel();
    long final_rss = rss_kib();
    std::optional<std::error_code> shut;
    client->async_shutdown([&](std::error_code ec) { shut = ec; });
    bool down = fcgi::test::run_until(
        ctx, [&] { return shut.has_value(); }, 10s);
    auto stats_failed = client->stats().failed;
    client.reset();

    std::ostringstream report;
    report << "soak " << length.count() << " s: " << started << " requests, " << ok << " ok, "
           << wrong << " wrong, " << (done - ok - wrong) << " errors, " << kills
           << " workers killed, worst " << worst_ms << " ms, " << late << " past deadline\n";
    for (const auto& [what, n] : errors)
        report << "  error " << n << " x " << what << "\n";
    report << "  RSS KiB (s:KiB):";
    for (const auto& [t, kib] : samples)
        report << " " << t << ":" << kib;
    report << " end:" << final_rss << "; baseline after " << warmup.count()
           << " s warmup: " << baseline.value_or(-1);
    BOOST_TEST_MESSAGE(report.str());

    BOOST_TEST(finished, "requests still outstanding " << (started - done));
    BOOST_TEST(down);
    BOOST_TEST(done == started);
    BOOST_TEST(late == 0u);
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(protocol == 0u);  // a dead worker is a transport failure, never garbage
    BOOST_TEST(kills >= static_cast<std::uint64_t>(length.count() / 2));
    // Most requests succeed: a kill costs the requests on that one worker, and idempotent ones
    // are retried on a fresh connection.
    BOOST_TEST(ok * 10 >= started * 9, ok << " of " << started << " succeeded");
    BOOST_TEST(stats_failed == done - ok - wrong);
    BOOST_REQUIRE(baseline.has_value());
    long peak = *baseline;
    for (const auto& [t, kib] : samples)
        if (t >= warmup.count())
            peak = std::max(peak, kib);
    peak = std::max(peak, final_rss);
    BOOST_TEST(peak - *baseline <= rss_growth_kib,
               "RSS grew " << (peak - *baseline) << " KiB after warmup");
}

BOOST_AUTO_TEST_SUITE_END()
