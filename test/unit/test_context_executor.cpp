// The constructors taking an execution context: a thread_pool's plain executor runs two of the
// client's handlers at once, which corrupted the pool (seen under TSan), so the client and the
// connection put themselves on a strand of it. An io_context's executor is kept as it is.
// any_executor::target<T>() does not check T in Asio 1.22, hence target_type().
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <boost/test/unit_test.hpp>
#include <typeinfo>

#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"

namespace {

using pool_strand = asio::strand<asio::thread_pool::executor_type>;

fcgi::client_options one_endpoint() {
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::unix_socket("/nonexistent/never-connected.sock")};
    return opts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(context_executor)

BOOST_AUTO_TEST_CASE(thread_pool_gets_a_strand) {
    asio::thread_pool pool(2);
    {
        fcgi::client c(pool, one_endpoint());  // nothing connects before a request
        BOOST_TEST((c.get_executor().target_type() == typeid(pool_strand)));
        fcgi::connection conn(pool);
        BOOST_TEST((conn.get_executor().target_type() == typeid(pool_strand)));
    }
    pool.join();
}

BOOST_AUTO_TEST_CASE(io_context_keeps_its_executor) {
    asio::io_context ctx;
    fcgi::client c(ctx, one_endpoint());
    BOOST_TEST((c.get_executor().target_type() == typeid(asio::io_context::executor_type)));
    fcgi::connection conn(ctx);
    BOOST_TEST((conn.get_executor().target_type() == typeid(asio::io_context::executor_type)));
}

BOOST_AUTO_TEST_SUITE_END()
