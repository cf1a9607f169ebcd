// detail::running_in_this_thread, the check behind the inline fast paths: it must say yes only
// inside a handler of the very executor asked about. Asio's any_executor::target<T>() does not
// check T, and the check once took any strand, or a thread pool's executor, for the io_context's
// own: a handler on a strand ran outside it, and the client's code outside the client's strand.
#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <boost/test/unit_test.hpp>
#include <optional>

#include "fcgi/detail/running_in_this_thread.hpp"

using fcgi::detail::running_in_this_thread;

namespace {

// What running_in_this_thread(ex) says inside a handler posted to `where` (run on `ctx`).
template <class Where>
bool asked_from(asio::io_context& ctx, Where where, const asio::any_io_executor& ex) {
    std::optional<bool> answer;
    asio::post(where, [&] { answer = running_in_this_thread(ex); });
    ctx.restart();
    ctx.run_one();  // not run(): a tracking `ex` counts as work, so run() would never return
    BOOST_REQUIRE(answer.has_value());
    return *answer;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(running_in_this_thread_check)

BOOST_AUTO_TEST_CASE(io_context_executor) {
    asio::io_context ctx;
    asio::any_io_executor plain = ctx.get_executor();
    BOOST_TEST(!running_in_this_thread(plain));
    BOOST_TEST(asked_from(ctx, ctx.get_executor(), plain));
    asio::any_io_executor tracked =
        asio::require(ctx.get_executor(), asio::execution::outstanding_work.tracked);
    BOOST_TEST(asked_from(ctx, ctx.get_executor(), tracked));
    asio::io_context other;
    BOOST_TEST(!asked_from(ctx, ctx.get_executor(), asio::any_io_executor(other.get_executor())));
}

BOOST_AUTO_TEST_CASE(strand_only_inside_the_strand) {
    asio::io_context ctx;
    auto strand = asio::make_strand(ctx);
    auto other = asio::make_strand(ctx);
    const asio::any_io_executor ex = strand;
    BOOST_TEST(!running_in_this_thread(ex));
    BOOST_TEST(asked_from(ctx, strand, ex));
    BOOST_TEST(!asked_from(ctx, ctx.get_executor(), ex));  // the same thread, not the strand
    BOOST_TEST(!asked_from(ctx, other, ex));
    // A strand of a tracking executor, as a work guard's executor gives.
    auto tracked = asio::make_strand(
        asio::require(ctx.get_executor(), asio::execution::outstanding_work.tracked));
    BOOST_TEST(asked_from(ctx, tracked, asio::any_io_executor(tracked)));
    BOOST_TEST(!asked_from(ctx, ctx.get_executor(), asio::any_io_executor(tracked)));
}

// An executor type the check does not know is never taken for one it does.
BOOST_AUTO_TEST_CASE(unknown_executor_is_never_running) {
    asio::io_context ctx;
    asio::thread_pool pool(1);
    const asio::any_io_executor on_pool = pool.get_executor();
    const asio::any_io_executor on_pool_strand = asio::make_strand(pool);
    BOOST_TEST(!asked_from(ctx, ctx.get_executor(), on_pool));
    BOOST_TEST(!asked_from(ctx, ctx.get_executor(), on_pool_strand));
    pool.join();
    BOOST_TEST(!running_in_this_thread(asio::any_io_executor()));
}

BOOST_AUTO_TEST_SUITE_END()
