// detail::any_handler: a handler keeps its executor's work outstanding while it waits, unless it
// is one of the library's own between its layers (untracked), whose work is kept elsewhere.
#include <asio/io_context.hpp>
#include <boost/test/unit_test.hpp>
#include <memory>
#include <system_error>

#include "fcgi/detail/any_handler.hpp"

using fcgi::detail::any_handler;
using handler = any_handler<void(std::error_code, int)>;

BOOST_AUTO_TEST_SUITE(any_handler_work)

// poll() stops an io_context only when no work is outstanding.
BOOST_AUTO_TEST_CASE(tracked_handler_keeps_the_context_running) {
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

BOOST_AUTO_TEST_CASE(untracked_handler_leaves_the_work_to_others) {
    asio::io_context ctx;
    int got = 0;
    handler h(
        fcgi::detail::untracked, [&](std::error_code, int v) { got = v; }, ctx.get_executor());
    ctx.poll();
    BOOST_TEST(ctx.stopped());
    BOOST_TEST(got == 0);
    ctx.restart();
    h.post(std::error_code(), 9);  // still runs on its executor
    BOOST_TEST(got == 0);
    ctx.poll();
    BOOST_TEST(got == 9);
}

BOOST_AUTO_TEST_CASE(untracked_handler_destroyed_unrun_frees_its_holder) {
    asio::io_context ctx;
    auto alive = std::make_shared<int>(0);
    {
        handler h(
            fcgi::detail::untracked, [keep = alive](std::error_code, int) {}, ctx.get_executor());
        BOOST_TEST(alive.use_count() == 2);
    }
    BOOST_TEST(alive.use_count() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
