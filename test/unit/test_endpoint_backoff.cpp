// detail::endpoint_backoff: when the pool may connect to, or send to, an endpoint again after it
// refused connects, had its listen backlog full or answered OVERLOADED. Driven with a fixed
// clock: every instant below is t0 plus a number of milliseconds.
#include <boost/test/unit_test.hpp>

#include "fcgi/detail/endpoint_backoff.hpp"

using fcgi::detail::endpoint_backoff;
using fcgi::detail::lazy_now;
using ms = std::chrono::milliseconds;

namespace {

const auto t0 = std::chrono::steady_clock::now();

lazy_now at(int millis) {
    return lazy_now(t0 + ms(millis));
}

bool down_at(const endpoint_backoff& b, int millis) {
    auto now = at(millis);
    return b.down(now);
}

bool may_connect_at(const endpoint_backoff& b, int millis) {
    auto now = at(millis);
    return b.may_connect(now);
}

bool holding_at(const endpoint_backoff& b, int millis) {
    auto now = at(millis);
    return b.holding_requests(now);
}

endpoint_backoff::clock::time_point next_end_at(const endpoint_backoff& b, int millis) {
    auto now = at(millis);
    return b.next_end(now);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint_backoff_suite)

BOOST_AUTO_TEST_CASE(a_new_endpoint_holds_nothing) {
    endpoint_backoff b;
    BOOST_TEST(!down_at(b, 0));
    BOOST_TEST(may_connect_at(b, 0));
    BOOST_TEST(!holding_at(b, 0));
    BOOST_TEST((next_end_at(b, 0) == endpoint_backoff::clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(refusals_double_the_backoff_once_per_round_up_to_max) {
    endpoint_backoff b;
    b.refused(t0, ms(100), ms(350));
    BOOST_TEST(down_at(b, 99));
    BOOST_TEST(!may_connect_at(b, 99));
    BOOST_TEST(!down_at(b, 100));
    // Four connects of one round failing together: the later three change nothing.
    b.refused(t0 + ms(1), ms(100), ms(350));
    b.refused(t0 + ms(2), ms(100), ms(350));
    BOOST_TEST(!down_at(b, 100));
    // The next round doubles: 200 ms from its first failure.
    b.refused(t0 + ms(150), ms(100), ms(350));
    BOOST_TEST(down_at(b, 349));
    BOOST_TEST(!down_at(b, 350));
    // Then capped at max: 350 ms, not 400.
    b.refused(t0 + ms(400), ms(100), ms(350));
    BOOST_TEST(down_at(b, 749));
    BOOST_TEST(!down_at(b, 750));
    BOOST_TEST((next_end_at(b, 500) == t0 + ms(750)));
}

BOOST_AUTO_TEST_CASE(a_share_shortens_the_hold_not_the_backoff) {
    endpoint_backoff b;
    b.refused(t0, ms(100), ms(1000), 0.8);
    BOOST_TEST(down_at(b, 79));
    BOOST_TEST(!down_at(b, 80));
    // The next round doubles the whole backoff (200 ms), of which it holds 0.9.
    b.refused(t0 + ms(100), ms(100), ms(1000), 0.9);
    BOOST_TEST(down_at(b, 279));
    BOOST_TEST(!down_at(b, 280));
    // Never under 1 ms, and a share out of range is clamped.
    endpoint_backoff c;
    c.refused(t0, ms(1), ms(1), 0.0);
    BOOST_TEST(down_at(c, 0));
    BOOST_TEST(!down_at(c, 1));
    endpoint_backoff d;
    d.refused(t0, ms(100), ms(1000), 7.0);
    BOOST_TEST(down_at(d, 99));
    BOOST_TEST(!down_at(d, 100));
}

BOOST_AUTO_TEST_CASE(reset_ends_every_hold_and_backoff) {
    endpoint_backoff b;
    b.refused(t0, ms(100), ms(1000));
    b.refused(t0 + ms(100), ms(100), ms(1000));  // 200 ms
    b.overloaded(t0 + ms(100), ms(100));
    b.backlog_full(t0 + ms(100));
    b.reset();
    BOOST_TEST(!down_at(b, 101));
    BOOST_TEST(!holding_at(b, 101));
    BOOST_TEST(may_connect_at(b, 101));
    b.refused(t0 + ms(200), ms(100), ms(1000));
    BOOST_TEST(!down_at(b, 300));  // from initial again, not 400 ms
}

BOOST_AUTO_TEST_CASE(a_connect_ends_the_down_hold_and_resets_the_backoff) {
    endpoint_backoff b;
    BOOST_TEST(!b.failing());
    b.refused(t0, ms(100), ms(1000));
    b.refused(t0 + ms(100), ms(100), ms(1000));  // 200 ms
    BOOST_TEST(!down_at(b, 300));
    BOOST_TEST(b.failing());  // the hold ended; no connect has succeeded since
    b.connected();
    BOOST_TEST(!b.failing());
    BOOST_TEST(!down_at(b, 101));
    b.refused(t0 + ms(500), ms(100), ms(1000));
    BOOST_TEST(!down_at(b, 600));  // 100 ms again, not 400
}

// An endpoint that accepts connections and then fails them (failover): a connect proves
// nothing, so the backoff keeps doubling across connects until a request is served.
BOOST_AUTO_TEST_CASE(a_failover_backoff_grows_across_connects_until_served) {
    endpoint_backoff b;
    b.failed_over(t0, ms(100), ms(1000));
    BOOST_TEST(down_at(b, 99));
    b.connected();  // the next connect succeeds, and its request fails again
    BOOST_TEST(!down_at(b, 100));
    b.failed_over(t0 + ms(150), ms(100), ms(1000));
    BOOST_TEST(down_at(b, 150 + 199));  // 200 ms: doubled, not started over at 100
    BOOST_TEST(!down_at(b, 150 + 200));
    b.connected();
    b.failed_over(t0 + ms(400), ms(100), ms(1000));
    BOOST_TEST(down_at(b, 400 + 399));  // 400 ms
    b.connected();
    BOOST_TEST(b.failing());  // a connect proves nothing here
    b.served();               // a response: the server works again
    BOOST_TEST(!b.failing());
    b.connected();
    b.refused(t0 + ms(1000), ms(100), ms(1000));
    BOOST_TEST(down_at(b, 1000 + 99));
    BOOST_TEST(!down_at(b, 1000 + 100));  // started over
    // served() leaves a refused connect's backoff alone: only a connect ends that one.
    endpoint_backoff r;
    r.refused(t0, ms(100), ms(1000));
    r.served();
    r.refused(t0 + ms(100), ms(100), ms(1000));
    BOOST_TEST(down_at(r, 100 + 199));
}

// Down after failing over is not refusing: the pool fails requests fast with no_endpoint only
// when every endpoint refuses connects; one held after a failover accepts them.
BOOST_AUTO_TEST_CASE(a_failover_hold_is_down_but_not_refusing) {
    auto refusing_at = [](const endpoint_backoff& b, int millis) {
        auto now = at(millis);
        return b.refusing(now);
    };
    endpoint_backoff b;
    b.failed_over(t0, ms(100), ms(1000));
    BOOST_TEST(down_at(b, 50));
    BOOST_TEST(!refusing_at(b, 50));
    BOOST_TEST(b.held_over());
    // Its next connect is refused: now it refuses.
    b.refused(t0 + ms(100), ms(100), ms(1000));
    BOOST_TEST(down_at(b, 150));
    BOOST_TEST(refusing_at(b, 150));
    BOOST_TEST(!b.held_over());
    // A failover during a refused connect's hold changes nothing of it (no connect runs then).
    b.failed_over(t0 + ms(160), ms(100), ms(1000));
    BOOST_TEST(refusing_at(b, 170));
    // And after it, a failover hold again.
    b.failed_over(t0 + ms(1000), ms(100), ms(1000));
    BOOST_TEST(down_at(b, 1001));
    BOOST_TEST(!refusing_at(b, 1001));
}

BOOST_AUTO_TEST_CASE(a_full_backlog_pauses_connects_without_marking_down) {
    endpoint_backoff b;
    b.backlog_full(t0);
    BOOST_TEST(!down_at(b, 0));
    BOOST_TEST(!may_connect_at(b, 1));
    BOOST_TEST(may_connect_at(b, 2));  // 2 ms first
    b.backlog_full(t0 + ms(10));
    BOOST_TEST(!may_connect_at(b, 13));
    BOOST_TEST(may_connect_at(b, 14));  // then 4 ms
    for (int i = 0; i < 10; ++i)
        b.backlog_full(t0 + ms(100));
    BOOST_TEST(!may_connect_at(b, 199));
    BOOST_TEST(may_connect_at(b, 200));  // capped at 100 ms
    b.connected();
    b.backlog_full(t0 + ms(1000));
    BOOST_TEST(may_connect_at(b, 1002));  // 2 ms again after a connect
}

BOOST_AUTO_TEST_CASE(overloaded_holds_requests_for_the_current_backoff) {
    endpoint_backoff b;
    b.overloaded(t0, ms(100));
    BOOST_TEST(holding_at(b, 99));
    BOOST_TEST(!holding_at(b, 100));
    BOOST_TEST(may_connect_at(b, 50));  // the server accepts connections
    BOOST_TEST(!down_at(b, 50));
    b.refused(t0 + ms(200), ms(100), ms(1000));
    b.refused(t0 + ms(300), ms(100), ms(1000));  // backoff now 200 ms
    b.overloaded(t0 + ms(300), ms(100));
    BOOST_TEST(holding_at(b, 499));
    BOOST_TEST(!holding_at(b, 500));
    // A connect does not end it.
    b.connected();
    BOOST_TEST(holding_at(b, 499));
}

BOOST_AUTO_TEST_CASE(next_end_is_the_earliest_running_hold) {
    endpoint_backoff b;
    b.refused(t0, ms(100), ms(1000));  // ends at 100
    b.overloaded(t0, ms(50));          // ends at 100 too (the backoff is longer)
    b.pause_growth(t0 + ms(30));
    BOOST_TEST((next_end_at(b, 0) == t0 + ms(30)));
    BOOST_TEST((next_end_at(b, 30) == t0 + ms(100)));
    BOOST_TEST((next_end_at(b, 100) == endpoint_backoff::clock::time_point::max()));
}

BOOST_AUTO_TEST_CASE(expire_unsets_only_the_holds_that_ended) {
    endpoint_backoff b;
    b.refused(t0, ms(100), ms(1000));
    b.pause_growth(t0 + ms(10));
    auto now = at(50);
    b.expire(now);
    BOOST_TEST(down_at(b, 50));
    BOOST_TEST((next_end_at(b, 0) == t0 + ms(100)));  // the growth pause is gone
    auto later = at(100);
    b.expire(later);
    // Unset, not merely past: a hold that ended no longer shows even at an earlier instant.
    BOOST_TEST(!down_at(b, 0));
}

BOOST_AUTO_TEST_CASE(lazy_now_reads_the_clock_once) {
    lazy_now now;
    auto first = now.get();
    BOOST_TEST((now.get() == first));
    BOOST_TEST(!now.before({}));  // unset never lies ahead
    BOOST_TEST(now.before(first + ms(1)));
    BOOST_TEST(!now.before(first));
}

BOOST_AUTO_TEST_SUITE_END()
