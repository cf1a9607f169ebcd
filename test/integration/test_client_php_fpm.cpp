// fcgi::client (pool, fan-out) against a private php-fpm.
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <set>
#include <string>

#include "fcgi/client.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/run_until.hpp"

using fcgi::test::php_fpm;
using namespace std::chrono_literals;

namespace {

std::vector<fcgi::request> pid_requests(std::size_t n) {
    std::vector<fcgi::request> reqs(n);
    for (auto& r : reqs)
        r.script = php_fpm::script("pid.php");
    return reqs;
}

// Fans `reqs` out through a client with `opts`; returns the results once all completed.
std::vector<fcgi::fanout_result> fanout(fcgi::client_options opts, std::vector<fcgi::request> reqs,
                                        std::size_t concurrency,
                                        fcgi::client_stats* stats = nullptr) {
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), std::move(opts));
    std::vector<fcgi::fanout_result> out;
    bool done = false;
    fcgi::async_fanout(client, std::move(reqs), concurrency,
                       [&](std::error_code, std::vector<fcgi::fanout_result> results) {
                           out = std::move(results);
                           done = true;
                           if (stats)
                               *stats = client.stats();
                           client.stop();  // closes the kept-alive connections: run() returns
                       });
    ctx.run_for(120s);
    BOOST_REQUIRE_MESSAGE(done, "fan-out did not finish within 120 s");
    return out;
}

// How many of `results` came back with status 200; the errors of the others go to the log.
std::size_t count_ok(const std::vector<fcgi::fanout_result>& results) {
    std::size_t ok = 0;
    for (const auto& r : results) {
        ok += !r.ec && r.resp.status == 200;
        if (r.ec)
            BOOST_TEST_MESSAGE(r.ec.message() << ": " << r.resp.diagnostics);
    }
    return ok;
}

// pid.php for an empty query (the worker's pid), else sleep.php?query, with a deadline.
fcgi::request pid_or_sleep(std::string query, std::chrono::milliseconds timeout) {
    fcgi::request req;
    req.script = php_fpm::script(query.empty() ? "pid.php" : "sleep.php");
    req.query = std::move(query);
    req.timeout = timeout;
    return req;
}

// Two connections to `fpm`'s unix socket, one more than the one worker of the backlog tests.
fcgi::client_options two_connections(const php_fpm& fpm, std::chrono::milliseconds relief) {
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 2;
    opts.backlog_relief = relief;
    return opts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(client_php_fpm)

BOOST_AUTO_TEST_CASE(thousand_requests_through_pool_of_four) {
    php_fpm fpm({.children = 4, .tcp = false});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 4;
    fcgi::client_stats stats;
    auto results = fanout(opts, pid_requests(1000), 64, &stats);
    BOOST_REQUIRE(results.size() == 1000u);
    std::set<std::string> pids;
    std::size_t ok = 0;
    for (const auto& r : results) {
        if (!r.ec && r.resp.status == 200) {
            ++ok;
            pids.insert(r.resp.body);
        } else {
            BOOST_TEST_MESSAGE(r.ec.message() << ": " << r.resp.diagnostics);
        }
    }
    BOOST_TEST(ok == 1000u);
    BOOST_TEST(pids.size() <= 4u);
    BOOST_TEST(pids.size() >= 1u);
    BOOST_REQUIRE(stats.endpoints.size() == 1u);
    BOOST_TEST(stats.endpoints[0].connects <= 4u);  // reused, not reopened
    BOOST_TEST(stats.completed == 1000u);
}

// TCP over IPv6, and a host name with both loopback addresses ("" resolves to ::1, then
// 127.0.0.1) where php-fpm listens on one of them: the address it listens on serves every
// request, whichever family comes first.
BOOST_AUTO_TEST_CASE(ipv6_and_a_name_of_both_families) {
    {
        asio::io_context probe;
        asio::ip::tcp::acceptor v6(probe);
        std::error_code ec;
        v6.open(asio::ip::tcp::v6(), ec);
        if (!ec)
            v6.bind({asio::ip::address_v6::loopback(), 0}, ec);
        if (ec) {
            std::cerr << "ipv6_and_a_name_of_both_families: skipped, no IPv6 loopback ("
                      << ec.message() << ")\n";
            return;
        }
    }
    for (bool v6 : {true, false}) {
        php_fpm fpm({.children = 2, .tcp = true, .tcp_v6 = v6});
        for (const auto& ep :
             {fcgi::endpoint::parse(fpm.tcp_endpoint()), fcgi::endpoint::tcp("", fpm.tcp_port())}) {
            BOOST_TEST_CONTEXT("php-fpm on " << fpm.tcp_endpoint() << ", client to "
                                             << ep.to_string()) {
                fcgi::client_options opts;
                opts.endpoints = {ep};
                opts.max_connections_per_endpoint = 2;
                fcgi::client_stats stats;
                BOOST_TEST(count_ok(fanout(opts, pid_requests(100), 8, &stats)) == 100u);
                BOOST_TEST(stats.endpoints.at(0).connect_failures == 0u);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(max_requests_one_reconnects_transparently) {
    php_fpm fpm({.children = 2, .max_requests = 1, .tcp = false});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 2;
    fcgi::client_stats stats;
    BOOST_TEST(count_ok(fanout(opts, pid_requests(500), 8, &stats)) == 500u);
    BOOST_TEST(stats.endpoints[0].connects >= 250u);  // every worker dies after one request
}

BOOST_AUTO_TEST_CASE(two_endpoints_one_dead) {
    php_fpm fpm({.children = 2, .tcp = true});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse("unix:" + fpm.dir() + "/nobody-listens.sock"),
                      fcgi::endpoint::parse(fpm.tcp_endpoint())};
    opts.max_connections_per_endpoint = 2;
    fcgi::client_stats stats;
    auto results = fanout(opts, pid_requests(200), 8, &stats);
    std::size_t ok = 0;
    for (const auto& r : results)
        ok += !r.ec && r.resp.status == 200;
    BOOST_TEST(ok == 200u);
    BOOST_TEST(stats.endpoints[0].completed == 0u);
    BOOST_TEST(stats.endpoints[0].connect_failures >= 1u);
    BOOST_TEST(stats.endpoints[1].completed == 200u);
}

BOOST_AUTO_TEST_CASE(all_endpoints_dead_fail_fast) {
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse("unix:/nonexistent/fcgi-test.sock")};
    auto results = fanout(opts, pid_requests(20), 4);
    for (const auto& r : results) {
        BOOST_TEST(r.ec == fcgi::error::no_endpoint);
        BOOST_TEST(r.resp.diagnostics.find("/nonexistent/fcgi-test.sock") != std::string::npos);
    }
}

// wait_when_down: requests made while php-fpm is stopped (its socket gone, as in a restart) wait
// for it and are answered once it is back, instead of failing at once with no_endpoint; a
// deadline still ends a request, saying which endpoint was down and why.
BOOST_AUTO_TEST_CASE(wait_when_down_rides_out_a_restart) {
    php_fpm fpm({.children = 2, .tcp = false});
    asio::io_context ctx;
    auto opts = two_connections(fpm, 1000ms);
    opts.initial_backoff = 50ms;
    opts.max_backoff = 200ms;
    opts.wait_when_down = true;
    fcgi::client client(ctx.get_executor(), opts);
    std::vector<std::pair<std::error_code, fcgi::response>> results;
    auto send = [&](std::chrono::milliseconds timeout) {
        client.async_request(pid_or_sleep("", timeout), [&](std::error_code ec, fcgi::response r) {
            results.emplace_back(ec, std::move(r));
        });
    };
    auto endpoint = [&] { return client.stats().endpoints.at(0); };
    send(10s);
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return results.size() == 1; }));
    BOOST_REQUIRE(!results[0].first);

    fpm.stop();
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().open == 0u; }));
    send(300ms);
    for (int i = 0; i < 6; ++i)
        send(30s);
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return results.size() == 2; }));
    const auto& [short_ec, short_resp] = results[1];
    BOOST_TEST(short_ec == fcgi::error::request_timeout, short_ec.message());
    BOOST_TEST(
        short_resp.diagnostics.find("endpoints down: " + fpm.unix_endpoint()) != std::string::npos,
        short_resp.diagnostics);
    // Not endpoint().down: at this instant a backoff may have just ended, a connect under way.
    BOOST_TEST(endpoint().last_down_error.value() == ENOENT, endpoint().last_down_error.message());
    BOOST_TEST(endpoint().connect_failures >= 2u);  // it kept trying at each backoff's end
    BOOST_TEST(client.stats().queued == 6u);

    fpm.start();
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return results.size() == 8; }, 20s));
    for (std::size_t i = 2; i < results.size(); ++i)
        BOOST_TEST(!results[i].first, results[i].first.message()
                                          << ": " << results[i].second.diagnostics);
    BOOST_TEST(!endpoint().down);
    client.stop();
}

// The stop before a restart: on a graceful stop (SIGQUIT) php-fpm's master resets the
// connections still waiting in its listen backlog, their requests unread (php-fpm 8.2 here also
// ends the two requests its workers run without a byte back, a few ms in). With wait_when_down the
// GETs on them wait for php-fpm to be back, like requests that find its socket gone; they used to
// fail with connection_lost, since one endpoint's new connections were never retried.
BOOST_AUTO_TEST_CASE(wait_when_down_rides_out_a_graceful_stop) {
    php_fpm fpm({.children = 2, .tcp = false});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 4;  // two wait in the backlog behind the two workers
    opts.backlog_relief = 100ms;  // after the restart, two connections wait behind two kept alive
    opts.initial_backoff = 20ms;
    opts.max_backoff = 100ms;
    opts.wait_when_down = true;
    fcgi::client client(ctx.get_executor(), opts);
    std::vector<std::pair<std::error_code, fcgi::response>> results;
    for (int i = 0; i < 4; ++i)
        client.async_request(
            pid_or_sleep("ms=200", 20s),
            [&](std::error_code ec, fcgi::response r) { results.emplace_back(ec, std::move(r)); });
    auto endpoint = [&] { return client.stats().endpoints.at(0); };
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return endpoint().open == 4u && endpoint().in_flight == 4u; }));

    fpm.stop(true);
    // Its socket is gone now: the requests it reset wait, the endpoint down.
    BOOST_REQUIRE(
        fcgi::test::run_until(ctx, [&] { return endpoint().down && endpoint().in_flight == 0u; }));
    for (const auto& [ec, r] : results)
        BOOST_TEST(!ec, "answered before the stop: " << ec.message() << ": " << r.diagnostics);
    const std::size_t waiting = 4 - results.size();
    BOOST_TEST(waiting >= 2u);  // at least the two in the backlog

    fpm.start();
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return results.size() == 4; }, 20s));
    std::size_t again = 0;
    for (const auto& [ec, r] : results) {
        BOOST_TEST(!ec, ec.message() << ": " << r.diagnostics);
        again += r.times_sent == 2;
    }
    BOOST_TEST(again == waiting);
    BOOST_TEST(client.stats().retries == waiting);
    client.stop();
}

BOOST_AUTO_TEST_CASE(bounded_queue_rejects) {
    php_fpm fpm({.children = 1, .tcp = false});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 1;
    opts.max_pending = 5;
    auto results = fanout(opts, pid_requests(50), 50);
    std::size_t ok = 0, rejected = 0;
    for (const auto& r : results) {
        ok += !r.ec;
        rejected += r.ec == fcgi::error::pool_exhausted;
    }
    BOOST_TEST(ok + rejected == 50u);
    BOOST_TEST(rejected > 0u);
    BOOST_TEST(ok >= 5u);
}

BOOST_AUTO_TEST_CASE(recycling_after_n_requests_and_idle_timeout) {
    php_fpm fpm({.children = 1, .tcp = false});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 1;
    opts.max_requests_per_connection_lifetime = 3;
    fcgi::client_stats stats;
    auto results = fanout(opts, pid_requests(10), 1, &stats);
    for (const auto& r : results)
        BOOST_TEST(!r.ec);
    BOOST_TEST(stats.endpoints[0].connects == 4u);  // 3 + 3 + 3 + 1
    BOOST_TEST(stats.retries == 0u);

    // An idle connection is closed after idle_timeout.
    asio::io_context ctx;
    opts.max_requests_per_connection_lifetime = 0;
    opts.idle_timeout = 100ms;
    fcgi::client client(ctx.get_executor(), opts);
    fcgi::request req = pid_requests(1)[0];
    bool done = false;
    client.async_request(req, [&](std::error_code ec, fcgi::response) {
        BOOST_TEST(!ec);
        done = true;
    });
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return done; }));
    BOOST_TEST(client.stats().endpoints[0].open == 1u);
    auto start = std::chrono::steady_clock::now();
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return client.stats().endpoints[0].open == 0; }, 5s));
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 90ms));
}

// PROTOCOL.md item 2 on the real server: a kept-alive connection keeps php-fpm's only worker,
// so a second connection is accepted by the kernel and never served. The pool reports it as
// unserved, and the deadline that ends its request says why.
BOOST_AUTO_TEST_CASE(connection_beyond_max_children_is_unserved) {
    php_fpm fpm({.children = 1, .tcp = false});
    asio::io_context ctx;
    // Without backlog relief: what happens then (the next test has it on).
    fcgi::client client(ctx.get_executor(), two_connections(fpm, 0ms));
    int done = 0, ok = 0;
    std::vector<std::pair<std::error_code, std::string>> failures;
    auto send = [&](std::string query, std::chrono::milliseconds timeout) {
        client.async_request(pid_or_sleep(std::move(query), timeout),
                             [&](std::error_code ec, fcgi::response r) {
                                 ++done;
                                 if (ec)
                                     failures.emplace_back(ec, r.diagnostics);
                                 else
                                     ++ok;
                             });
    };
    auto endpoint = [&] { return client.stats().endpoints.at(0); };
    send("", 5s);  // the first connection takes the worker and keeps it
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return done == 1; }));
    BOOST_REQUIRE(ok == 1);
    BOOST_TEST(endpoint().unserved == 0u);
    // While the kept-alive connection runs a slow script, the next request opens a second
    // connection: the kernel accepts it into php-fpm's backlog and nothing ever answers it.
    send("ms=500", 5s);
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().in_flight == 1u; }));
    send("", 1500ms);
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().unserved == 1u; }));
    BOOST_TEST(endpoint().busy == 2u);
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return done == 3; }));
    BOOST_TEST(ok == 2);  // the slow script answered on the first connection
    BOOST_REQUIRE(failures.size() == 1u);
    BOOST_TEST(failures[0].first == fcgi::error::request_timeout, failures[0].first.message());
    BOOST_TEST(failures[0].second.find("pm.max_children") != std::string::npos, failures[0].second);
    BOOST_TEST(endpoint().unserved == 0u);  // the timeout closed it
    client.stop();
}

// The same pool with backlog_relief: once the kept-alive connection idles, the pool closes it,
// php-fpm's only worker moves on to the connection waiting in its backlog, and the request
// there is answered instead of timing out.
BOOST_AUTO_TEST_CASE(backlog_relief_frees_the_worker_for_a_waiting_connection) {
    php_fpm fpm({.children = 1, .tcp = false});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), two_connections(fpm, 200ms));
    std::vector<std::pair<std::error_code, fcgi::response>> results;
    auto send = [&](std::string query) {
        client.async_request(
            pid_or_sleep(std::move(query), 20s),
            [&](std::error_code ec, fcgi::response r) { results.emplace_back(ec, std::move(r)); });
    };
    auto endpoint = [&] { return client.stats().endpoints.at(0); };
    send("");
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return results.size() == 1; }));
    send("ms=500");
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().in_flight == 1u; }));
    send("");  // on a second connection, in the backlog
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().unserved == 1u; }));
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return results.size() == 3; }, 30s));
    for (const auto& [ec, r] : results) {
        BOOST_TEST(!ec, ec.message() << ": " << r.diagnostics);
        BOOST_TEST(r.status == 200);
    }
    BOOST_TEST(results[2].second.body == results[0].second.body);  // the one worker's pid
    BOOST_TEST(endpoint().reconnects == 1u);  // the kept-alive one, closed to free the worker
    BOOST_TEST(endpoint().backlog_reliefs == 1u);
    BOOST_TEST(endpoint().unserved == 0u);
    client.stop();
}

// Backlog relief under a steady queue: the served connection never idles, so the relief takes it
// when it finishes a request, before it is handed the next. It waited for an idle connection,
// which came only once the queue drained: the request in the backlog waited for all the others
// (with php-fpm's ondemand, a burst of connects got one worker for the whole fan-out).
BOOST_AUTO_TEST_CASE(backlog_relief_under_a_steady_queue) {
    php_fpm fpm({.children = 1, .tcp = false});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), two_connections(fpm, 200ms));
    constexpr std::size_t n = 40;  // 40 x 50 ms on the one worker: 2 s of queue
    std::size_t done = 0;
    std::vector<std::string> failures;
    auto send = [&](std::string query) {
        client.async_request(pid_or_sleep(std::move(query), 30s),
                             [&](std::error_code ec, fcgi::response r) {
                                 ++done;
                                 if (ec)
                                     failures.push_back(ec.message() + ": " + r.diagnostics);
                             });
    };
    auto endpoint = [&] { return client.stats().endpoints.at(0); };
    send("");
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return done == 1; }));
    for (std::size_t i = 0; i < n; ++i)
        send("ms=50");
    BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return endpoint().unserved == 1u; }));
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return endpoint().reconnects >= 1u; }, 30s));
    BOOST_TEST(endpoint().backlog_reliefs >= 1u);  // that close was a relief
    BOOST_TEST(done < n / 2, "relieved only after " << done << " of " << n + 1 << " requests");
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return done == n + 1; }, 30s));
    BOOST_TEST(failures.empty(), (failures.empty() ? "" : failures.front()));
    client.stop();
}

BOOST_AUTO_TEST_CASE(auto_multiplexing_follows_get_values) {
    // php-fpm reports FCGI_MPXS_CONNS=0: one request per connection.
    php_fpm fpm({.children = 2, .tcp = false});
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 2;
    opts.mode = fcgi::multiplexing::auto_detect;
    fcgi::client_stats stats;
    auto results = fanout(opts, pid_requests(50), 8, &stats);
    for (const auto& r : results)
        BOOST_TEST(!r.ec);
    BOOST_TEST(stats.endpoints[0].max_in_flight_per_connection == 1u);
    BOOST_TEST((stats.endpoints[0].probe == fcgi::probe_result::declined));  // MPXS_CONNS=0

    // A responder that reports FCGI_MPXS_CONNS=1 gets several requests per connection.
    fcgi::test::fake_responder fake({.tcp = false, .interleave = 8});
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 1;
    opts.max_requests_per_connection = 8;
    std::vector<fcgi::request> reqs(200);
    for (auto& r : reqs)
        r.script = "/srv/echo.php";
    results = fanout(opts, std::move(reqs), 32, &stats);
    for (const auto& r : results)
        BOOST_TEST(!r.ec);
    BOOST_TEST(stats.endpoints[0].max_in_flight_per_connection == 8u);
    BOOST_TEST((stats.endpoints[0].probe == fcgi::probe_result::multiplexes));
    auto seen = fake.snapshot();
    BOOST_TEST(seen.get_values == 1u);
    BOOST_TEST(seen.max_live > 1u);
    BOOST_TEST(seen.violations.empty());
}

BOOST_AUTO_TEST_SUITE_END()
