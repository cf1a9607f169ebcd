// `fcgi bench`: the report's wording from flags, setup, counts and times, and the lines that
// follow it on stderr (tools/fcgi/bench_report.cpp).
#include "fcgi/bench_report.hpp"
#include "fcgi/run_hints.hpp"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <string>
#include <vector>

using fcgi_cli::bench_counts;
using fcgi_cli::bench_flags;
using fcgi_cli::bench_setup;
using fcgi_cli::bench_times;
using fcgi_cli::count_warnings;
using fcgi_cli::human_report;

namespace {

bench_setup four_connections() {
    bench_setup s;
    s.connections = 4;
    return s;
}

// 10 requests, all answered 200 in 1 ms.
bench_counts ten_ok() {
    bench_counts c;
    c.sent = c.ok = c.ok_in_period = 10;
    c.status[200] = 10;
    for (int i = 0; i < 10; ++i)
        c.latency.record(std::chrono::microseconds(1000));
    return c;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The one line of `lines` that contains `part`, or "" when none does.
std::string line_with(const std::vector<std::string>& lines, const std::string& part) {
    for (const auto& l : lines)
        if (has(l, part))
            return l;
    return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bench_report_text)

// A rate or warmup under 0.05 once printed as "0.0": the header says what was asked.
BOOST_AUTO_TEST_CASE(header_prints_rate_and_warmup_as_given) {
    bench_flags f;
    f.rate = 0.04;
    f.warmup = 0.04;
    auto text = human_report(f, four_connections(), ten_ok(), bench_times{1, 10, 0, 0.01}, nullptr);
    BOOST_TEST(has(text, "open loop at 0.04 req/s"), text);
    BOOST_TEST(has(text, ", 0.04 s warmup"), text);

    f.rate = 2500;
    f.warmup = 1.5;
    text = human_report(f, four_connections(), ten_ok(), bench_times{1, 10, 0, 0.01}, nullptr);
    BOOST_TEST(has(text, "open loop at 2500 req/s"), text);
    BOOST_TEST(has(text, ", 1.5 s warmup"), text);
}

// Statuses as "count x status" ("200 600 404 200" read as four numbers).
BOOST_AUTO_TEST_CASE(statuses_are_counted_in_words) {
    bench_flags f;
    auto c = ten_ok();
    c.status[200] = 6;
    c.status[404] = 3;
    c.status[500] = 1;
    auto text = human_report(f, four_connections(), c, bench_times{1, 10, 0, 0.01}, nullptr);
    BOOST_TEST(has(text, "status:      6 x 200, 3 x 404, 1 x 500\n"), text);
    c.status.clear();
    text = human_report(f, four_connections(), c, bench_times{1, 10, 0, 0.01}, nullptr);
    BOOST_TEST(has(text, "status:      none\n"), text);
}

// A drain under a second in milliseconds (it once read "came 0.000 s after it").
BOOST_AUTO_TEST_CASE(drain_is_said_in_the_unit_that_shows_it) {
    bench_flags f;
    auto text =
        human_report(f, four_connections(), ten_ok(), bench_times{1, 10, 0.0003, 0.01}, nullptr);
    BOOST_TEST(has(text, "(the last response came 0.300 ms after it)"), text);
    text = human_report(f, four_connections(), ten_ok(), bench_times{1, 10, 2.5, 0.01}, nullptr);
    BOOST_TEST(has(text, "(the last response came 2.500 s after it)"), text);
    text = human_report(f, four_connections(), ten_ok(), bench_times{1, 10, 0, 0.01}, nullptr);
    BOOST_TEST(!has(text, "the last response came"), text);
}

BOOST_AUTO_TEST_CASE(clean_run_has_no_warnings) {
    auto lines = count_warnings(ten_ok(), four_connections());
    BOOST_TEST(lines.empty());
}

// An open loop far beyond the server fills the client's queue: said in bench's terms, not the
// library's (max_pending has no flag).
BOOST_AUTO_TEST_CASE(a_full_client_queue_is_a_warning) {
    auto c = ten_ok();
    c.errors["pool_exhausted"] = 79208;
    c.failed = 79208;
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "warning: 79208") ==
               "warning: 79208 requests failed unsent: the client's queue of waiting requests "
               "was full, the pace far beyond what the server answered (lower --rate, or raise "
               "--concurrency and --connections)");
}

// Only responses within the period count, and its start has none: with 1 s responses in a 4 s
// run the throughput read a quarter low, without a word (the helper's open loop: 37.5 req/s at
// a pace of 50). The gap to the first response counted tells, not the latency: an overloaded
// open loop's responses wait long, but come from the start.
BOOST_AUTO_TEST_CASE(a_slow_start_is_a_warning) {
    bench_counts c = ten_ok();
    bench_times t{4, 25, 0, 0.01, 1.0};
    BOOST_TEST(fcgi_cli::slow_start_warning(c, t) ==
               "warning: the first response counted came 1.000 s into the 4.000 s measured "
               "(25 %): the throughput reads low by up to that much (give --warmup 1 or more, "
               "or a longer --duration)");
    t.start_gap_s = 0.236;  // 5.9 %: said as 6
    BOOST_TEST(fcgi_cli::slow_start_warning(c, t).find("(6 %)") != std::string::npos);
    t.start_gap_s = 0.19;  // under a twentieth
    BOOST_TEST(fcgi_cli::slow_start_warning(c, t).empty());
    t.start_gap_s = -1;  // a closed loop of --requests counts every response
    BOOST_TEST(fcgi_cli::slow_start_warning(c, t).empty());
    t.start_gap_s = 4;  // none within the period: the latency is the warmup (1 ms here)
    BOOST_TEST(fcgi_cli::slow_start_warning(c, t) ==
               "warning: no response came within the 4.000 s measured: the throughput reads "
               "low by up to that much (give --warmup 0.1 or more, or a longer --duration)");
    BOOST_TEST(fcgi_cli::slow_start_warning(bench_counts{}, t).empty());  // no response at all
}

// connection_lost without --recycle-after names it (php-fpm's pm.max_requests); with it, or on
// a multiplexed run (not php-fpm), or with no such failure, nothing is said.
BOOST_AUTO_TEST_CASE(connection_lost_hints_at_recycle_after) {
    auto c = ten_ok();
    auto hint = [](const std::vector<std::string>& lines) { return line_with(lines, "hint:"); };
    BOOST_TEST(hint(count_warnings(c, four_connections())).empty());
    c.errors["connection_lost"] = 3;
    c.failed = 3;
    BOOST_TEST(hint(count_warnings(c, four_connections())) ==
               "hint: 3 requests failed with connection_lost: if php-fpm recycles its workers "
               "(pm.max_requests = N), --recycle-after N closes most connections before php-fpm "
               "does");
    BOOST_TEST(hint(count_warnings(c, four_connections(), 500)).empty());
    auto mux = four_connections();
    mux.multiplexed = true;
    BOOST_TEST(hint(count_warnings(c, mux)).empty());
}

// The hint itself, as fanout asks for it too: one request in the singular, nothing to say when
// nothing was lost, the flag was given or a connection multiplexed.
BOOST_AUTO_TEST_CASE(recycle_hint_speaks_only_when_it_has_advice) {
    BOOST_TEST(fcgi_cli::recycle_hint(1, 0, false)
                   .starts_with("hint: 1 request failed with connection_lost:"));
    BOOST_TEST(fcgi_cli::recycle_hint(0, 0, false).empty());
    BOOST_TEST(fcgi_cli::recycle_hint(4, 100, false).empty());
    BOOST_TEST(fcgi_cli::recycle_hint(4, 0, true).empty());
}

// Connections that never got a byte: a run that ended by itself advises a longer --timeout; an
// interrupted one does not (the interrupt, not --timeout, ended the wait).
BOOST_AUTO_TEST_CASE(unserved_connections_advice_fits_how_the_run_ended) {
    auto c = ten_ok();
    c.sent = 12;
    c.unanswered = 2;
    c.unserved_connections = 2;
    auto lines = count_warnings(c, four_connections());
    auto unserved = line_with(lines, "2 of 4 connections never received a byte");
    BOOST_TEST(has(unserved, "before the run ended (give a --timeout longer than it runs)"),
               unserved);
    BOOST_TEST(has(line_with(lines, "never answered"),
                   "2 requests were never answered (still in flight at the end of the run)"));

    c.interrupted = true;
    c.signal = 2;
    lines = count_warnings(c, four_connections());
    BOOST_TEST(lines.front() == "interrupted: the report covers the run until then");
    unserved = line_with(lines, "2 of 4 connections never received a byte");
    BOOST_TEST(has(unserved, "wrote nothing before the interrupt,"), unserved);
    BOOST_TEST(!has(unserved, "--timeout"), unserved);
}

BOOST_AUTO_TEST_CASE(statuses_that_suggest_a_wrong_script) {
    auto c = ten_ok();
    c.status = {{404, 10}};
    c.status_4xx_5xx = 10;
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
               "warning: no response had a 2xx status (10 x 404): check the script path and "
               "--root");

    c.status = {{500, 10}};
    BOOST_TEST(
        line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
        "warning: no response had a 2xx status (10 x 500): a 5xx is usually the script failing: "
        "`fcgi request` on it shows its stderr");
    c.status = {{404, 4}, {502, 6}};
    BOOST_TEST(
        line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
        "warning: no response had a 2xx status (4 x 404, 6 x 502): check the script path "
        "and --root; a 5xx is usually the script failing: `fcgi request` on it shows its stderr");
    c.status = {{403, 10}};
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
               "warning: no response had a 2xx status (10 x 403): a 403 is php-fpm refusing the "
               "script's extension (security.limit_extensions)");
    c.status = {{302, 10}};
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
               "warning: no response had a 2xx status (10 x 302): check the script and the "
               "request (--method, --data, --header)");
    c.status = {{600, 10}};  // the head parser takes any three digits: not a 5xx
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "no response had a 2xx status") ==
               "warning: no response had a 2xx status (10 x 600): check the script and the "
               "request (--method, --data, --header)");

    c.status = {{200, 7}, {503, 3}};
    c.status_5xx = 3;
    BOOST_TEST(line_with(count_warnings(c, four_connections()), "5xx") ==
               "warning: 3 of 10 responses had a 5xx status; throughput counts them (--fail "
               "exits 22)");
}

BOOST_AUTO_TEST_CASE(requests_that_waited_in_the_client) {
    auto c = ten_ok();
    c.waited_in_client = 3;
    auto line = line_with(count_warnings(c, four_connections()), "waited in the client");
    BOOST_TEST(has(line, "warning: 3 of 10 requests found all 4 in flight"), line);
}

BOOST_AUTO_TEST_SUITE_END()
