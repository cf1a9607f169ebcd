// `fcgi bench`: connections, requests per connection and warnings from the flags and the
// server's GET_VALUES answer (tools/fcgi/bench_setup.cpp).
#include "fcgi/bench_setup.hpp"

#include <asio/error.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "fcgi/error.hpp"

using fcgi_cli::bench_setup;
using fcgi_cli::size_bench;

namespace {

// The setup after --multiplex auto heard `mpxs` (and the limits, when given).
bench_setup heard(bool mpxs, std::optional<std::uint32_t> max_reqs = {},
                  std::optional<std::uint32_t> max_conns = {}) {
    bench_setup s;
    s.probed = true;
    s.probe_limit = std::chrono::milliseconds(1000);
    s.probe.mpxs_conns = mpxs;
    s.probe.max_reqs = max_reqs;
    s.probe.max_conns = max_conns;
    s.multiplexed = mpxs;
    return s;
}

bool warned(const bench_setup& s, const std::string& part) {
    for (const auto& w : s.warnings)
        if (w.find(part) != std::string::npos)
            return true;
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bench_setup_sizing)

BOOST_AUTO_TEST_CASE(connections_and_requests_per_connection) {
    struct row {
        const char* what;
        bool mpxs;
        std::optional<std::uint32_t> max_reqs;
        std::size_t concurrency, connections_flag;
        bool open_loop;
        std::size_t connections, per_connection;
        bool multiplexed;
    };
    const row rows[] = {
        {"php-fpm: a connection per request in flight", false, {}, 4, 0, false, 4, 1, false},
        {"php-fpm, --connections given: kept", false, {}, 4, 2, false, 2, 1, false},
        {"multiplexed: one connection", true, {}, 8, 0, false, 1, 8, true},
        {"--connections spreads --concurrency", true, {}, 8, 2, false, 2, 4, true},
        {"rounded up", true, {}, 9, 2, false, 2, 5, true},
        {"more connections than requests: not multiplexing", true, {}, 4, 8, true, 8, 1, false},
        {"one request: not multiplexing", true, {}, 1, 0, false, 1, 1, false},
        // fcgi::max_in_flight_limit, 32767, per connection at most.
        {"32767 fit on one connection", true, {}, 32767, 0, false, 1, 32767, true},
        {"32768 take two", true, {}, 32768, 0, false, 2, 16384, true},
        {"100000 take four", true, {}, 100000, 0, false, 4, 25000, true},
        {"one connection asked for: capped", true, {}, 100000, 1, false, 1, 32767, true},
        // FCGI_MAX_REQS caps a connection, as the library's auto_detect does; 0 says nothing.
        {"FCGI_MAX_REQS 100", true, 100, 256, 0, false, 3, 86, true},
        {"FCGI_MAX_REQS 0", true, 0, 256, 4, false, 4, 64, true},
        {"FCGI_MAX_REQS 100, --connections 2", true, 100, 256, 2, false, 2, 100, true},
        {"FCGI_MAX_REQS above the limit", true, 100000, 100000, 0, false, 4, 25000, true},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.what) {
            auto s = heard(r.mpxs, r.max_reqs);
            size_bench(r.concurrency, r.connections_flag, r.open_loop, s);
            BOOST_TEST(s.connections == r.connections);
            BOOST_TEST(s.per_connection == r.per_connection);
            BOOST_TEST(s.multiplexed == r.multiplexed);
        }
    }
}

BOOST_AUTO_TEST_CASE(limit_warnings) {
    auto s = heard(true);
    size_bench(100000, 1, false, s);
    BOOST_TEST(warned(s, "only 32767 of --concurrency 100000 fit on 1 connection ("));
    s = heard(true);
    size_bench(100000, 0, false, s);
    BOOST_TEST(s.warnings.empty());
    s = heard(true);
    size_bench(100000, 1, true, s);  // open loop: --concurrency is no promise of load
    BOOST_TEST(s.warnings.empty());
    // The tool spreads over 3 connections itself: nothing for the user to act on.
    s = heard(true, 100);
    size_bench(256, 0, false, s);
    BOOST_TEST(s.warnings.empty());
    s = heard(true, 100);
    size_bench(256, 2, false, s);
    BOOST_TEST(warned(s, "only 200 of --concurrency 256 fit on 2 connections (100 requests each)"));
    s = heard(true, 0, 0);
    size_bench(256, 4, false, s);
    BOOST_TEST(s.warnings.empty());
    s = heard(false, {}, 2);
    size_bench(4, 0, false, s);
    BOOST_TEST(warned(s, "4 connections > the server's FCGI_MAX_CONNS 2"));
    s = heard(false);
    size_bench(4, 0, false, s);
    BOOST_TEST(s.warnings.empty());
    // Not multiplexed: a connection carries one request, so fewer connections than
    // --concurrency queue the rest in the client (php-fpm; --multiplex off too).
    s = heard(false);
    size_bench(8, 2, false, s);
    BOOST_TEST(warned(s,
                      "only 2 of --concurrency 8 fit on 2 connections (one request each: not "
                      "multiplexed): the rest wait in the pool"));
    s = heard(false);
    size_bench(8, 2, true, s);
    BOOST_TEST(s.warnings.empty());
    s = heard(false);
    size_bench(2, 8, false, s);  // more connections than requests: some stay unused, no queue
    BOOST_TEST(s.warnings.empty());
    // --multiplex on: nothing was asked, nothing to warn about.
    bench_setup on;
    on.multiplexed = true;
    size_bench(8, 0, false, on);
    BOOST_TEST(on.multiplexed);
    BOOST_TEST(on.warnings.empty());
}

BOOST_AUTO_TEST_CASE(failed_question_warnings) {
    auto s = heard(false);
    s.probe = {};
    s.probe_ec = fcgi::error::request_timeout;
    size_bench(4, 0, false, s);
    BOOST_TEST(!s.multiplexed);
    BOOST_TEST(warned(s, "no answer to GET_VALUES within 1000 ms"));
    s.warnings.clear();
    s.probe_ec = fcgi::error::connect_timeout;
    size_bench(4, 0, false, s);
    BOOST_TEST(warned(s, "could not connect within 1000 ms"));
    s.warnings.clear();
    s.probe_ec = fcgi::error::bad_name_value;
    size_bench(4, 0, false, s);
    BOOST_TEST(warned(s, "GET_VALUES failed ("));
    // Refused: the run tries to connect again and reports it itself.
    s.warnings.clear();
    s.probe_ec = asio::error::connection_refused;
    size_bench(4, 0, false, s);
    BOOST_TEST(s.warnings.empty());
}

BOOST_AUTO_TEST_SUITE_END()
