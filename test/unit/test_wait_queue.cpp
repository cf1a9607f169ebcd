// detail::wait_queue: the client's requests waiting for a connection, in the order they were
// called, taken out by serial (a deadline, a cancellation) in any order.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "fcgi/detail/wait_queue.hpp"

namespace {

struct op {
    explicit op(std::uint64_t s) : serial(s) {}
    std::uint64_t serial;
};

using queue = fcgi::detail::wait_queue<op>;

std::vector<std::uint64_t> drain(queue& q) {
    std::vector<std::uint64_t> order;
    while (!q.empty())
        order.push_back(q.pop_front()->serial);
    return order;
}

void add(queue& q, std::uint64_t serial) {
    q.insert(std::make_unique<op>(serial));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wait_queue)

BOOST_AUTO_TEST_CASE(new_calls_wait_in_order) {
    queue q;
    BOOST_TEST(q.empty());
    for (std::uint64_t s = 1; s <= 5; ++s)
        add(q, s);
    BOOST_TEST(q.size() == 5u);
    BOOST_TEST(q.front().serial == 1u);
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

BOOST_AUTO_TEST_CASE(retries_go_back_in_the_order_they_were_called) {
    // Requests 1 to 4 were sent and come back for a retry (CANT_MPX_CONN, stale kept-alive
    // connections) one after another while 5 and 6 wait: 1 to 4 first, oldest first.
    queue q;
    add(q, 5);
    add(q, 6);
    for (std::uint64_t s : {1, 2, 3, 4})
        add(q, s);
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
}

BOOST_AUTO_TEST_CASE(a_call_arriving_late_from_another_thread_takes_its_place) {
    queue q;
    add(q, 1);
    add(q, 3);
    add(q, 2);
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(take_by_serial_in_any_order) {
    queue q;
    for (std::uint64_t s = 1; s <= 10; ++s)
        add(q, s);
    BOOST_TEST(q.take(4)->serial == 4u);
    BOOST_TEST(!q.take(4));   // taken already
    BOOST_TEST(!q.take(11));  // never queued
    BOOST_TEST(!q.take(0));
    BOOST_TEST(q.take(1)->serial == 1u);
    BOOST_TEST(q.take(10)->serial == 10u);
    BOOST_TEST(q.size() == 7u);
    BOOST_TEST(q.front().serial == 2u);
    BOOST_TEST(q.find(5) != nullptr);
    BOOST_TEST(q.find(4) == nullptr);
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{2, 3, 5, 6, 7, 8, 9}));
}

BOOST_AUTO_TEST_CASE(a_retry_goes_back_into_its_own_gap) {
    queue q;
    for (std::uint64_t s = 1; s <= 4; ++s)
        add(q, s);
    auto two = q.take(2);
    add(q, 5);
    q.insert(std::move(two));
    BOOST_TEST(q.size() == 5u);
    BOOST_TEST(q.span() == 5u);  // the gap was filled, not a second entry put before it
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
}

BOOST_AUTO_TEST_CASE(a_walk_skips_gaps_and_takes_from_the_middle) {
    queue q;
    for (std::uint64_t s = 1; s <= 6; ++s)
        add(q, s);
    q.take(3);
    std::vector<std::uint64_t> seen;
    for (std::size_t i = 0; i < q.span(); ++i)
        if (auto* o = q.at(i))
            seen.push_back(o->serial);
    BOOST_TEST(seen == (std::vector<std::uint64_t>{1, 2, 4, 5, 6}));
    for (std::size_t i = 1; i < q.span(); ++i) {
        if (q.at(i) && q.at(i)->serial == 5) {
            BOOST_TEST(q.take_at(i)->serial == 5u);
            break;
        }
    }
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 2, 4, 6}));
}

BOOST_AUTO_TEST_CASE(taking_all_from_the_ends_leaves_it_empty) {
    queue q;
    for (std::uint64_t s = 1; s <= 3; ++s)
        add(q, s);
    q.take(2);
    q.take(3);  // the back: the gap before it goes too
    BOOST_TEST(q.size() == 1u);
    BOOST_TEST(q.span() == 1u);
    q.take(1);
    BOOST_TEST(q.empty());
    BOOST_TEST(q.span() == 0u);
    add(q, 7);
    BOOST_TEST(q.front().serial == 7u);
}

BOOST_AUTO_TEST_CASE(take_all_moves_every_request_out) {
    queue q;
    for (std::uint64_t s = 1; s <= 4; ++s)
        add(q, s);
    q.take(2);
    auto all = q.take_all();
    BOOST_TEST(all.size() == 3u);
    BOOST_TEST(all.front()->serial == 1u);
    BOOST_TEST(all.back()->serial == 4u);
    BOOST_TEST(q.empty());
    BOOST_TEST(q.span() == 0u);
}

BOOST_AUTO_TEST_CASE(gaps_behind_a_front_that_stays_are_squeezed_out) {
    // A retry at the front waits for a fresh connection while the requests behind it go, each
    // leaving a gap: the walk must not grow with them.
    queue q;
    for (std::uint64_t s = 1; s <= 10'001; ++s)
        add(q, s);
    for (std::uint64_t s = 2; s <= 10'000; ++s)
        BOOST_TEST_REQUIRE(q.take(s)->serial == s);
    BOOST_TEST(q.size() == 2u);
    BOOST_TEST(q.span() <= 2 * q.size() + 64);
    BOOST_TEST(q.front().serial == 1u);
    BOOST_TEST(q.find(10'001) != nullptr);
    BOOST_TEST(drain(q) == (std::vector<std::uint64_t>{1, 10'001}));
}

// New calls, retries of taken requests (an older serial going back), removals by serial, from
// the front and from the middle of a walk, in random order: the queue always drains as a sorted
// model does.
BOOST_AUTO_TEST_CASE(random_operations_match_a_model) {
    std::mt19937 rng(12345);
    queue q;
    std::vector<std::uint64_t> model;      // sorted serials
    std::vector<std::unique_ptr<op>> out;  // taken, may come back as retries
    std::uint64_t next = 1;
    auto take_from_model = [&](std::uint64_t serial) {
        model.erase(std::find(model.begin(), model.end(), serial));
    };
    for (int step = 0; step < 20'000; ++step) {
        switch (rng() % 6) {
            case 0:
            case 1:
                add(q, next);
                model.push_back(next++);
                break;
            case 2:
                if (!model.empty()) {
                    auto serial = model[rng() % model.size()];
                    auto taken = q.take(serial);
                    BOOST_TEST_REQUIRE(taken->serial == serial);
                    take_from_model(serial);
                    out.push_back(std::move(taken));
                }
                break;
            case 3:
                if (!model.empty()) {
                    auto taken = q.pop_front();
                    BOOST_TEST_REQUIRE(taken->serial == model.front());
                    take_from_model(taken->serial);
                    if (rng() % 2)
                        out.push_back(std::move(taken));
                }
                break;
            case 4:
                if (!out.empty()) {  // a retry
                    auto i = rng() % out.size();
                    auto serial = out[i]->serial;
                    q.insert(std::move(out[i]));
                    out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
                    model.insert(std::lower_bound(model.begin(), model.end(), serial), serial);
                }
                break;
            default:
                if (q.span() > 1) {  // a walk that takes one from the middle
                    auto i = 1 + rng() % (q.span() - 1);
                    if (auto* o = q.at(i)) {
                        auto serial = o->serial;
                        BOOST_TEST_REQUIRE(q.take_at(i)->serial == serial);
                        take_from_model(serial);
                    }
                }
        }
        BOOST_TEST_REQUIRE(q.size() == model.size());
        BOOST_TEST_REQUIRE(q.span() <= 2 * model.size() + 64);
        if (!model.empty())
            BOOST_TEST_REQUIRE(q.front().serial == model.front());
    }
    BOOST_TEST(drain(q) == model);
}

BOOST_AUTO_TEST_SUITE_END()
