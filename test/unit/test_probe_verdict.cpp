// detail::judge_probe: what the pool makes of multiplexing::auto_detect's GET_VALUES question once
// it ends. Only a server known to refuse is marked down; a full backlog is asked again soon;
// everything else settles the question (no answer: not trusted to multiplex).
#include <asio/error.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <ostream>
#include <system_error>

#include "fcgi/detail/probe_verdict.hpp"
#include "fcgi/error.hpp"

namespace fcgi::detail {

// For BOOST_TEST's failure messages.
std::ostream& operator<<(std::ostream& os, probe_verdict v) {
    switch (v) {
        case probe_verdict::ask_again_soon:
            return os << "ask_again_soon";
        case probe_verdict::down:
            return os << "down";
        case probe_verdict::settled:
            return os << "settled";
    }
    return os << "probe_verdict(" << static_cast<int>(v) << ")";
}

}  // namespace fcgi::detail

using fcgi::detail::judge_probe;
using fcgi::detail::probe_verdict;
using std::chrono::milliseconds;

namespace {

const fcgi::endpoint unix_ep = fcgi::endpoint::unix_socket("/run/php/php8.2-fpm.sock");
const fcgi::endpoint tcp_ep = fcgi::endpoint::tcp("127.0.0.1", 9000);

// The client's defaults: probe_timeout 1 s, connect_timeout 5 s.
probe_verdict judge(const fcgi::endpoint& where, std::error_code ec,
                    milliseconds probe_timeout = milliseconds(1000),
                    milliseconds connect_timeout = milliseconds(5000)) {
    return judge_probe(where, ec, probe_timeout, connect_timeout);
}

std::error_code system(int e) {
    return {e, asio::error::get_system_category()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(probe_verdict_judging)

BOOST_AUTO_TEST_CASE(an_answer_settles_the_question) {
    BOOST_TEST(judge(unix_ep, {}) == probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, {}) == probe_verdict::settled);
}

// php-fpm not running: nothing listens on the port, or no socket file is there.
BOOST_AUTO_TEST_CASE(a_refused_connect_marks_the_endpoint_down) {
    BOOST_TEST(judge(tcp_ep, asio::error::connection_refused) == probe_verdict::down);
    BOOST_TEST(judge(unix_ep, asio::error::connection_refused) == probe_verdict::down);
    BOOST_TEST(judge(unix_ep, system(ENOENT)) == probe_verdict::down);
    BOOST_TEST(judge(tcp_ep, asio::error::host_unreachable) == probe_verdict::down);
    BOOST_TEST(judge(tcp_ep, asio::error::network_unreachable) == probe_verdict::down);
}

// Every worker busy and listen.backlog connections waiting: the server is up.
BOOST_AUTO_TEST_CASE(a_full_unix_backlog_is_asked_again_soon) {
    BOOST_TEST(judge(unix_ep, asio::error::no_buffer_space) == probe_verdict::ask_again_soon);
    BOOST_TEST(judge(unix_ep, asio::error::try_again) == probe_verdict::ask_again_soon);
    BOOST_TEST(judge(unix_ep, asio::error::would_block) == probe_verdict::ask_again_soon);
    BOOST_TEST(fcgi::detail::backlog_full(unix_ep, asio::error::try_again));
    BOOST_TEST(!fcgi::detail::backlog_full(unix_ep, asio::error::connection_refused));
    BOOST_TEST(!fcgi::detail::backlog_full(unix_ep, std::error_code{}));
}

// A full TCP listen queue drops the SYN instead (a slow connect); EAGAIN from a TCP connect is
// this host out of local ports, not the server's backlog. It marks the endpoint down, as the
// pool's own connects do with it (a transport error); that it says nothing of the server, as
// EADDRNOTAVAIL does (settled, below), is left as it was.
BOOST_AUTO_TEST_CASE(eagain_over_tcp_is_not_a_full_backlog) {
    BOOST_TEST(!fcgi::detail::backlog_full(tcp_ep, asio::error::try_again));
    BOOST_TEST(judge(tcp_ep, asio::error::try_again) == probe_verdict::down);
}

// The server accepted the connection: it is up, whatever it did next (libfcgi-style responders
// close on a GET_VALUES they do not expect).
BOOST_AUTO_TEST_CASE(accepted_then_closed_or_reset_settles_without_marking_down) {
    BOOST_TEST(judge(unix_ep, fcgi::error::connection_lost) == probe_verdict::settled);
    BOOST_TEST(judge(unix_ep, fcgi::error::not_connected) == probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, asio::error::connection_reset) == probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, asio::error::broken_pipe) == probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, asio::error::connection_aborted) == probe_verdict::settled);
    // Silent past probe_timeout once connected.
    BOOST_TEST(judge(tcp_ep, fcgi::error::request_timeout) == probe_verdict::settled);
}

// The probe's deadline is shorter than the pool's connect_timeout: a connect it cut short was
// slow, not refused, and the pool's own connects get longer.
BOOST_AUTO_TEST_CASE(a_connect_the_probe_deadline_cut_short_is_slow_not_down) {
    BOOST_TEST(judge(tcp_ep, fcgi::error::connect_timeout, milliseconds(1000),
                     milliseconds(5000)) == probe_verdict::settled);
    // No connect limit but the system's: only the probe's deadline can have ended it.
    BOOST_TEST(judge(tcp_ep, fcgi::error::connect_timeout, milliseconds(1000), milliseconds(0)) ==
               probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, fcgi::error::connect_timeout, milliseconds(1000), milliseconds(-1)) ==
               probe_verdict::settled);
}

// The connect had all the time the pool's connects would have had, or the system's own timer
// ended it: the endpoint does not accept connections.
BOOST_AUTO_TEST_CASE(a_connect_that_timed_out_on_its_own_limit_marks_down) {
    BOOST_TEST(judge(tcp_ep, fcgi::error::connect_timeout, milliseconds(5000),
                     milliseconds(5000)) == probe_verdict::down);
    BOOST_TEST(judge(tcp_ep, fcgi::error::connect_timeout, milliseconds(8000),
                     milliseconds(5000)) == probe_verdict::down);
    BOOST_TEST(judge(tcp_ep, asio::error::timed_out) == probe_verdict::down);
}

// Failures that say nothing of the server: the pool's own connects find out what is wrong and
// mark the endpoint down then, with the error they get.
BOOST_AUTO_TEST_CASE(a_failure_that_says_nothing_of_the_server_settles) {
    BOOST_TEST(judge(tcp_ep, asio::error::host_not_found) == probe_verdict::settled);
    BOOST_TEST(judge(tcp_ep, system(EADDRNOTAVAIL)) == probe_verdict::settled);
    BOOST_TEST(judge(unix_ep, system(EACCES)) == probe_verdict::settled);
    // Protocol trouble means something answered.
    BOOST_TEST(judge(tcp_ep, fcgi::error::bad_version) == probe_verdict::settled);
}

BOOST_AUTO_TEST_SUITE_END()
