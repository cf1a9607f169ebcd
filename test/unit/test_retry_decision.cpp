// detail::decide_retry: whether the pool sends a failed request again, and whether the endpoint
// it failed on backs off. One case per branch, from plain values: no socket, no clock.
#include <boost/test/unit_test.hpp>

#include "fcgi/detail/retry_decision.hpp"
#include "fcgi/error.hpp"

using fcgi::error;
using fcgi::server_error;
using fcgi::detail::decide_retry;
using fcgi::detail::lost_unanswered;
using fcgi::detail::retry_decision;
using fcgi::detail::retry_input;
using ms = std::chrono::milliseconds;

namespace {

// A first attempt that failed with `ec` on a new connection of the only endpoint, handed back
// as a GET (idempotent, restartable), with nothing read.
retry_input failed(std::error_code ec) {
    retry_input in;
    in.ec = ec;
    in.silent_connection = true;
    in.sendable = true;
    in.idempotent = true;
    in.restartable = true;
    return in;
}

// As failed(), for a POST: restartable, not idempotent.
retry_input failed_post(std::error_code ec) {
    auto in = failed(ec);
    in.idempotent = false;
    return in;
}

// Lost with nothing back, `after` ms after sending, on a new connection that read nothing.
retry_input lost_on_new(ms after, bool idempotent) {
    auto in = failed(error::connection_lost);
    in.after = after;
    in.idempotent = idempotent;
    return in;
}

// As lost_on_new(), on a reused (kept-alive) connection, which had read the earlier responses.
retry_input lost_on_reused(ms after, bool idempotent) {
    auto in = lost_on_new(after, idempotent);
    in.reused = true;
    in.silent_connection = false;
    return in;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(retry_decision_suite)

BOOST_AUTO_TEST_CASE(success_decides_nothing) {
    retry_input in;  // answered
    in.reused = true;
    in.sendable = true;
    in.endpoints = 3;
    in.wait_when_down = true;
    in.after = ms(0);
    auto d = decide_retry(in);
    BOOST_TEST(!d.retry);
    BOOST_TEST(!d.back_off);
    BOOST_TEST(!d.failing_endpoint);
    BOOST_TEST(!d.fresh_only);
    BOOST_TEST(!d.said_when);
    BOOST_TEST(d.diagnostics.empty());
}

BOOST_AUTO_TEST_CASE(lost_unanswered_needs_connection_lost_and_no_byte) {
    BOOST_TEST(lost_unanswered(error::connection_lost, 0));
    BOOST_TEST(!lost_unanswered(error::connection_lost, 1));
    BOOST_TEST(!lost_unanswered(error::request_timeout, 0));
    BOOST_TEST(!lost_unanswered({}, 0));
}

BOOST_AUTO_TEST_CASE(never_written_goes_again_whatever_its_method) {
    auto post = decide_retry(failed_post(error::not_connected));
    BOOST_TEST(post.retry);
    BOOST_TEST(post.counted);
    BOOST_TEST(!post.fresh_only);
    BOOST_TEST(!post.back_off);
    BOOST_TEST(post.diagnostics.empty());
    // A body source that cannot be read again cannot be sent again either, and says so.
    auto in = failed_post(error::not_connected);
    in.restartable = false;
    auto once = decide_retry(in);
    BOOST_TEST(!once.retry);
    BOOST_TEST(once.diagnostics ==
               "; not sent again: its body source cannot be read a second time (a producer, or "
               "a source of your own whose restartable() is false)");
}

BOOST_AUTO_TEST_CASE(a_refusal_with_no_byte_goes_again_one_with_bytes_does_not) {
    for (server_error refusal : {server_error::cant_mpx_conn, server_error::overloaded}) {
        auto in = failed_post(refusal);
        in.reused = true;
        auto d = decide_retry(in);
        BOOST_TEST(d.retry);
        BOOST_TEST(d.counted);
        BOOST_TEST(!d.back_off);
        // A server that wrote a response has not refused it: a sink would get a second one.
        in.bytes_received = 10;
        BOOST_TEST(!decide_retry(in).retry);
        in.idempotent = true;  // not even an idempotent one
        BOOST_TEST(!decide_retry(in).retry);
        BOOST_TEST(decide_retry(in).diagnostics.empty());
    }
}

BOOST_AUTO_TEST_CASE(a_stale_kept_alive_connection_sends_an_idempotent_request_again_fresh) {
    auto d = decide_retry(lost_on_reused(ms(3), true));
    BOOST_TEST(d.retry);
    BOOST_TEST(d.counted);
    BOOST_TEST(d.fresh_only);
    BOOST_TEST(!d.back_off);  // the server is up: it closed an idle connection
    BOOST_TEST(d.diagnostics.empty());
    // The window's end is still at once.
    BOOST_TEST(decide_retry(lost_on_reused(ms(500), true)).retry);
}

BOOST_AUTO_TEST_CASE(a_stale_kept_alive_connection_gives_a_post_both_readings) {
    auto d = decide_retry(lost_on_reused(ms(3), false));
    BOOST_TEST(!d.retry);
    BOOST_TEST(!d.back_off);
    BOOST_TEST(d.said_when);
    BOOST_TEST(d.diagnostics ==
               "; the connection closed 3 ms after the request was sent: php-fpm closes a "
               "kept-alive connection when its worker exits (pm.max_requests, a reload), within a "
               "few ms, and then the request did not run; a worker that died mid-script (killed, "
               "crashed) closes it too, and then it ran. It is not idempotent, so it was not sent "
               "again; with pm.max_requests, client_options::max_requests_per_connection_lifetime "
               "set to it closes most connections before php-fpm does");
    // Set already (php-fpm counts per worker: one may have served another connection first):
    // not suggested again.
    auto recycling = lost_on_reused(ms(3), false);
    recycling.recycling = true;
    BOOST_TEST(decide_retry(recycling).diagnostics.find("max_requests_per_connection_lifetime") ==
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_later_close_is_not_sent_again_and_names_the_time) {
    auto get = decide_retry(lost_on_reused(ms(501), true));
    BOOST_TEST(!get.retry);
    BOOST_TEST(!get.back_off);
    BOOST_TEST(get.said_when);
    BOOST_TEST(get.diagnostics ==
               "; not sent again: the connection closed 501 ms after the request was sent, "
               "later than client_options::stale_close_window (500 ms), so its script may have "
               "run (a killed worker: request_terminate_timeout?)");
    // A POST: the time, and the same reading (the request is not sent again either way).
    auto post = decide_retry(lost_on_reused(ms(30000), false));
    BOOST_TEST(!post.retry);
    BOOST_TEST(!post.said_when);
    BOOST_TEST(post.diagnostics ==
               "; the connection closed 30000 ms after the request was sent, later than "
               "client_options::stale_close_window (500 ms), so its script may have run (a "
               "killed worker: request_terminate_timeout?)");
    // A zero window: never at once, not even a close timed at 0 ms (it once was), and the text
    // says the window is why, not a killed worker alone.
    auto in = lost_on_reused(ms(0), true);
    in.stale_close_window = ms(0);
    BOOST_TEST(!decide_retry(in).retry);
    BOOST_TEST(decide_retry(in).diagnostics.find(
                   "(client_options::stale_close_window is 0: none is sent again once "
                   "written)") != std::string::npos,
               decide_retry(in).diagnostics);
    in.after = ms(1);
    BOOST_TEST(!decide_retry(in).retry);
    in.stale_close_window = ms(1);
    BOOST_TEST(decide_retry(in).retry);
}

BOOST_AUTO_TEST_CASE(a_failing_endpoint_among_several_sends_an_idempotent_request_elsewhere_once) {
    auto in = lost_on_new(ms(40), true);
    in.endpoints = 2;
    auto d = decide_retry(in);
    BOOST_TEST(d.failing_endpoint);
    BOOST_TEST(d.back_off);
    BOOST_TEST(d.retry);
    BOOST_TEST(d.counted);
    BOOST_TEST(!d.fresh_only);
    BOOST_TEST(d.diagnostics.empty());
    // Once: the second attempt fails, and the endpoint still backs off.
    in.attempts = 1;
    d = decide_retry(in);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.back_off);
    BOOST_TEST(d.diagnostics == "; the connection closed 40 ms after the request was sent");
    // A POST is not sent again; its endpoint backs off all the same.
    auto post = lost_on_new(ms(40), false);
    post.endpoints = 2;
    d = decide_retry(post);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.back_off);
    // A deadline that passed with nothing back fails over too, but is not sent again.
    auto timed_out = failed(error::request_timeout);
    timed_out.endpoints = 2;
    d = decide_retry(timed_out);
    BOOST_TEST(d.failing_endpoint);
    BOOST_TEST(d.back_off);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.diagnostics.empty());
}

BOOST_AUTO_TEST_CASE(an_endpoint_is_failing_only_with_others_and_only_when_silent) {
    // One endpoint: a script that crashed or ran long would stop the pool for nothing.
    auto one = lost_on_new(ms(40), true);
    auto d = decide_retry(one);
    BOOST_TEST(!d.failing_endpoint);
    BOOST_TEST(!d.back_off);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.diagnostics == "; the connection closed 40 ms after the request was sent");
    auto two = lost_on_new(ms(40), true);
    two.endpoints = 2;
    two.silent_connection = false;  // the connection had answered other requests
    BOOST_TEST(!decide_retry(two).failing_endpoint);
    two.silent_connection = true;
    two.reused = true;
    BOOST_TEST(!decide_retry(two).failing_endpoint);
    two.reused = false;
    two.bytes_received = 1;
    BOOST_TEST(!decide_retry(two).failing_endpoint);
    auto other = failed(error::bad_record_length);
    other.endpoints = 2;
    BOOST_TEST(!decide_retry(other).failing_endpoint);
}

BOOST_AUTO_TEST_CASE(a_stopping_endpoint_under_wait_when_down_backs_off_and_waits_uncounted) {
    auto in = lost_on_new(ms(3), true);
    in.wait_when_down = true;
    auto d = decide_retry(in);
    BOOST_TEST(d.retry);
    BOOST_TEST(!d.counted);
    BOOST_TEST(d.back_off);
    BOOST_TEST(!d.failing_endpoint);  // one endpoint
    BOOST_TEST(!d.fresh_only);
    BOOST_TEST(d.diagnostics.empty());
    // As often as it happens: the deadline bounds it, not the attempts.
    in.attempts = 5;
    BOOST_TEST(decide_retry(in).retry);
    // Without wait_when_down it is no stopping endpoint: no back-off, not sent again.
    in.attempts = 0;
    in.wait_when_down = false;
    d = decide_retry(in);
    BOOST_TEST(!d.retry);
    BOOST_TEST(!d.back_off);
    BOOST_TEST(d.diagnostics == "; the connection closed 3 ms after the request was sent");
    // Not at once: a script that ran.
    in.wait_when_down = true;
    in.after = ms(501);
    d = decide_retry(in);
    BOOST_TEST(!d.retry);
    BOOST_TEST(!d.back_off);
    // A connection that had answered before is no stopping server's: no back-off.
    in.after = ms(3);
    in.silent_connection = false;
    BOOST_TEST(!decide_retry(in).back_off);
    // A kept-alive one is a stale connection: sent again fresh, counted, no back-off (its
    // reading alone decides, silent or not).
    auto stale = lost_on_reused(ms(3), true);
    stale.wait_when_down = true;
    stale.silent_connection = true;
    d = decide_retry(stale);
    BOOST_TEST(d.retry);
    BOOST_TEST(d.counted);
    BOOST_TEST(d.fresh_only);
    BOOST_TEST(!d.back_off);
}

BOOST_AUTO_TEST_CASE(a_stopping_endpoint_gives_a_post_both_readings) {
    auto in = lost_on_new(ms(7), false);
    in.wait_when_down = true;
    auto d = decide_retry(in);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.back_off);
    BOOST_TEST(d.said_when);
    BOOST_TEST(d.diagnostics ==
               "; the new connection closed 7 ms after the request was sent: a stopping php-fpm "
               "resets the connections in its listen backlog, and then the request did not run; "
               "a worker that crashed at once closes it too, and then it ran. It is not "
               "idempotent, so it was not sent again");
}

BOOST_AUTO_TEST_CASE(a_second_attempt_is_not_sent_again) {
    auto never_written = failed(error::not_connected);
    never_written.attempts = 1;
    BOOST_TEST(!decide_retry(never_written).retry);
    auto refused = failed(server_error::overloaded);
    refused.attempts = 1;
    BOOST_TEST(!decide_retry(refused).retry);
    // A stale close on the retry: no reading of its own, the bare time.
    auto stale = lost_on_reused(ms(3), true);
    stale.attempts = 1;
    auto d = decide_retry(stale);
    BOOST_TEST(!d.retry);
    BOOST_TEST(!d.said_when);
    BOOST_TEST(d.diagnostics == "; the connection closed 3 ms after the request was sent");
}

BOOST_AUTO_TEST_CASE(stopped_cancelled_or_kept_requests_never_go_again) {
    auto stopped = failed(error::not_connected);
    stopped.stopped = true;
    BOOST_TEST(!decide_retry(stopped).retry);
    auto cancelled = lost_on_reused(ms(3), true);
    cancelled.cancelled = true;
    auto d = decide_retry(cancelled);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.diagnostics == "; the connection closed 3 ms after the request was sent");
    // Under wait_when_down, a stopping endpoint still backs off for them.
    auto stopping = lost_on_new(ms(3), true);
    stopping.wait_when_down = true;
    stopping.stopped = true;
    d = decide_retry(stopping);
    BOOST_TEST(!d.retry);
    BOOST_TEST(d.back_off);
    stopping.stopped = false;
    stopping.cancelled = true;
    BOOST_TEST(!decide_retry(stopping).retry);
    // Not handed back by its connection: nothing to send.
    auto kept = failed(error::not_connected);
    kept.sendable = false;
    BOOST_TEST(!decide_retry(kept).retry);
}

BOOST_AUTO_TEST_SUITE_END()
