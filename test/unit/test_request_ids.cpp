// detail::request_ids: which ID a connection's slot uses next, and the quarantine that keeps an
// aborted request's ID from a new request while its late records may still come.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <set>

#include "fcgi/connection_options.hpp"
#include "fcgi/detail/request_ids.hpp"

using fcgi::detail::request_ids;

BOOST_AUTO_TEST_SUITE(request_ids_suite)

BOOST_AUTO_TEST_CASE(one_slot_counts_up_and_wraps_to_one) {
    request_ids ids(1);
    BOOST_TEST(ids.next(0, 0) == 1);
    BOOST_TEST(ids.next(0, 1) == 2);
    BOOST_TEST(ids.next(0, 41) == 42);
    BOOST_TEST(ids.next(0, 65534) == 65535);
    BOOST_TEST(ids.next(0, 65535) == 1);  // never 0, the management ID
}

BOOST_AUTO_TEST_CASE(each_slot_steps_by_the_slot_count) {
    request_ids ids(4);
    BOOST_TEST(ids.slots() == 4);
    BOOST_TEST(ids.next(0, 0) == 1);
    BOOST_TEST(ids.next(3, 0) == 4);
    BOOST_TEST(ids.next(1, 2) == 6);
    BOOST_TEST(ids.next(1, 6) == 10);
    // 65535 = 4 * 16383 + 3: slot 2's last ID is 65535, slot 3's is 65532.
    BOOST_TEST(ids.next(2, 65531) == 65535);
    BOOST_TEST(ids.next(2, 65535) == 3);
    BOOST_TEST(ids.next(3, 65532) == 4);
}

BOOST_AUTO_TEST_CASE(every_id_maps_back_to_the_slot_that_issued_it) {
    for (std::uint16_t n : {std::uint16_t(1), std::uint16_t(3), std::uint16_t(7),
                            std::uint16_t(256), std::uint16_t(65535)}) {
        request_ids ids(n);
        for (std::size_t slot : {std::size_t(0), std::size_t(n / 2), std::size_t(n - 1)}) {
            std::uint16_t id = 0;
            std::set<std::uint16_t> seen;
            // A whole cycle of the slot's IDs, and one more: it comes back to its first.
            const std::size_t cycle = (65535 - (slot + 1)) / n + 1;
            for (std::size_t k = 0; k < cycle; ++k) {
                id = ids.next(slot, id);
                BOOST_TEST_REQUIRE(id != 0);
                BOOST_TEST_REQUIRE(ids.slot_of(id) == slot);
                BOOST_TEST_REQUIRE(seen.insert(id).second);  // no ID twice within a cycle
            }
            BOOST_TEST(ids.next(slot, id) == slot + 1);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_quarantined_id_is_skipped) {
    request_ids ids(2);
    ids.quarantine(3);
    BOOST_TEST(ids.quarantined(3));
    BOOST_TEST(!ids.quarantined(5));
    BOOST_TEST(ids.next(0, 1) == 5);
    BOOST_TEST(ids.next(1, 2) == 4);  // the other slot's IDs are untouched
    ids.quarantine(5);
    ids.quarantine(7);
    BOOST_TEST(ids.next(0, 1) == 9);
}

BOOST_AUTO_TEST_CASE(a_skip_past_the_last_id_wraps_to_the_first) {
    request_ids ids(1);
    ids.quarantine(65535);
    BOOST_TEST(ids.next(0, 65534) == 1);
    ids.quarantine(1);
    BOOST_TEST(ids.next(0, 65534) == 2);
    BOOST_TEST(ids.next(0, 0) == 2);
}

BOOST_AUTO_TEST_CASE(a_slot_whose_ids_are_all_quarantined_still_gets_one) {
    // 65535 slots: each has exactly one ID, its own index + 1.
    request_ids ids(65535);
    ids.quarantine(10);
    BOOST_TEST(ids.next(9, 0) == 10);
    BOOST_TEST(ids.next(9, 10) == 10);
}

BOOST_AUTO_TEST_CASE(the_quarantine_keeps_only_the_last_ones) {
    request_ids ids(1);
    for (std::uint16_t id = 1; id <= request_ids::max_quarantined; ++id)
        ids.quarantine(id);
    BOOST_TEST(ids.quarantined_count() == request_ids::max_quarantined);
    BOOST_TEST(ids.quarantined(1));
    // With every ID from 1 to 64 held, a slot that starts over gets 65.
    BOOST_TEST(ids.next(0, 0) == request_ids::max_quarantined + 1);
    ids.quarantine(1000);
    BOOST_TEST(ids.quarantined_count() == request_ids::max_quarantined);
    BOOST_TEST(!ids.quarantined(1));  // the oldest went
    BOOST_TEST(ids.quarantined(2));
    BOOST_TEST(ids.quarantined(1000));
    BOOST_TEST(ids.next(0, 0) == 1);
}

// Above 32767 slots some slots have one ID only, which then comes back at once: connections
// keep their slots within fcgi::max_in_flight_limit.
BOOST_AUTO_TEST_CASE(at_the_connection_limit_no_slot_gets_its_id_back_at_once) {
    request_ids ids(fcgi::max_in_flight_limit);
    for (std::size_t slot = 0; slot < fcgi::max_in_flight_limit; ++slot) {
        auto first = ids.next(slot, 0);
        BOOST_TEST_REQUIRE(ids.next(slot, first) != first, "slot " << slot);
    }
    request_ids over(fcgi::max_in_flight_limit + 1);
    BOOST_TEST(over.next(32767, over.next(32767, 0)) == 32768);  // one ID: the bug it avoids
}

BOOST_AUTO_TEST_CASE(zero_slots_is_taken_as_one) {
    request_ids ids(0);
    BOOST_TEST(ids.slots() == 1);
    BOOST_TEST(ids.next(0, 7) == 8);
    BOOST_TEST(ids.slot_of(12345) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
