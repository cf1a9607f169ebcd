// detail::any_handler keeps its executor's work outstanding while it waits: the pool's handler
// to its connection relies on it (client_faults/pending_request_keeps_run_going_for_a_handler_
// elsewhere).
#include <asio/io_context.hpp>
#include <boost/test/unit_test.hpp>
#include <system_error>

#include "fcgi/detail/any_handler.hpp"

using fcgi::detail::any_handler;
using handler = any_handler<void(std::error_code, int)>;

BOOST_AUTO_TEST_SUITE(any_handler_work)

// poll() stops an io_context only when no work is outstanding.
BOOST_AUTO_TEST_CASE(waiting_handler_keeps_the_context_running) {
    asio::io_context ctx;
    int got = 0;
    handler h([&](std::error_code, int v) { got = v; }, ctx.get_executor());
    ctx.poll();
    BOOST_TEST(!ctx.stopped());
    h.dispatch(std::error_code(), 7);  // not in a handler of ctx: posted
    BOOST_TEST(got == 0);
    ctx.poll();
    BOOST_TEST(got == 7);
    BOOST_TEST(ctx.stopped());  // the work went with the handler
}

BOOST_AUTO_TEST_SUITE_END()
