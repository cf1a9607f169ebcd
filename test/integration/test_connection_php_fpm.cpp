// fcgi::connection against a private php-fpm, over its unix socket and TCP.
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "support/php_fpm.hpp"
#include "support/unaccepted_listener.hpp"

using fcgi::test::php_fpm;
using namespace std::chrono_literals;

namespace {

// Runs `fn(ctx)` to completion on a fresh io_context; fails the test if it does not finish.
template <class F>
void run_coro(F fn) {
    asio::io_context ctx;
    std::exception_ptr failure;
    bool done = false;
    asio::co_spawn(ctx, fn(ctx), [&](std::exception_ptr e) {
        failure = e;
        done = true;
    });
    ctx.run_for(60s);
    BOOST_REQUIRE_MESSAGE(done, "coroutine did not finish within 60 s");
    if (failure)
        std::rethrow_exception(failure);
}

fcgi::request get(const std::string& script, std::string query = {}) {
    fcgi::request r;
    r.script = php_fpm::script(script);
    r.query = std::move(query);
    return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(connection_php_fpm)

BOOST_AUTO_TEST_CASE(hello_over_unix_and_tcp) {
    php_fpm fpm({.children = 1});
    for (const auto& ep : {fpm.unix_endpoint(), fpm.tcp_endpoint()}) {
        run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
            fcgi::connection conn(ctx.get_executor());
            co_await conn.async_connect(fcgi::endpoint::parse(ep), asio::use_awaitable);
            auto resp = co_await conn.async_request(get("hello.php"), asio::use_awaitable);
            BOOST_TEST(resp.status == 200);
            BOOST_TEST(resp.body == "Hello, world!\n");
            BOOST_TEST(resp.stderr_text.empty());
            BOOST_TEST(conn.is_open());
        });
    }
}

BOOST_AUTO_TEST_CASE(query_post_and_large_bodies) {
    php_fpm fpm({.children = 1});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.tcp_endpoint()), asio::use_awaitable);

        auto resp = co_await conn.async_request(get("echo.php", "a=1&b=two"), asio::use_awaitable);
        BOOST_TEST(resp.status == 200);
        BOOST_TEST(resp.body.find(R"("query":"a=1&b=two")") != std::string::npos);
        BOOST_TEST(resp.body.find(R"("method":"GET")") != std::string::npos);
        BOOST_TEST(resp.header("content-type").value_or("") == "application/json");

        // 1 MB POST echoed back byte for byte.
        fcgi::request post = get("echo_body.php");
        post.body.resize(1 << 20);
        for (std::size_t i = 0; i < post.body.size(); ++i)
            post.body[i] = static_cast<char>((i * 7919) >> 3);
        std::string sent = post.body;
        resp = co_await conn.async_request(std::move(post), asio::use_awaitable);
        BOOST_TEST(resp.status == 200);
        BOOST_TEST(resp.body.size() == sent.size());
        BOOST_TEST((resp.body == sent));

        // 10 MB response: size and content.
        resp = co_await conn.async_request(get("big.php", "size=10485760"), asio::use_awaitable);
        BOOST_TEST(resp.status == 200);
        BOOST_REQUIRE(resp.body.size() == 10485760u);
        bool pattern_ok = true;
        for (std::size_t i = 0; i < resp.body.size() && pattern_ok; ++i)
            pattern_ok = resp.body[i] == "0123456789abcdef"[i % 16];
        BOOST_TEST(pattern_ok);
        BOOST_TEST(conn.stats().requests_completed == 3u);
    });
}

// STDERR past max_stderr_size is cut and counted by default: the script's answer arrives whole
// and the connection stays usable. With stderr_overflow::fail the request fails instead.
BOOST_AUTO_TEST_CASE(stderr_past_the_limit_is_truncated_or_fails) {
    php_fpm fpm({.children = 1, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        const auto ep = fcgi::endpoint::parse(fpm.unix_endpoint());
        fcgi::connection whole(ctx.get_executor());
        co_await whole.async_connect(ep, asio::use_awaitable);
        auto all = co_await whole.async_request(get("stderr.php", "bulk=50"), asio::use_awaitable);
        BOOST_TEST(all.stderr_text.size() > 50000u);
        BOOST_TEST(all.stderr_dropped == 0u);
        whole.close();

        fcgi::connection_options small;
        small.max_stderr_size = 4096;
        fcgi::connection cut(ctx.get_executor(), small);
        co_await cut.async_connect(ep, asio::use_awaitable);
        auto resp = co_await cut.async_request(get("stderr.php", "bulk=50"), asio::use_awaitable);
        BOOST_TEST(resp.status == 200);
        BOOST_TEST(resp.body == "body-start\nbody-end\n");
        BOOST_TEST(resp.stderr_text.size() == 4096u);
        BOOST_TEST(all.stderr_text.compare(0, 4096, resp.stderr_text) == 0);
        BOOST_TEST(resp.stderr_dropped == all.stderr_text.size() - 4096);
        // Nothing was cut short on the wire: the same connection serves the next request.
        resp = co_await cut.async_request(get("stderr.php"), asio::use_awaitable);
        BOOST_TEST(resp.stderr_dropped == 0u);
        BOOST_TEST(resp.stderr_text.find("second message") != std::string::npos);
        BOOST_TEST(cut.stats().requests_completed == 2u);
        cut.close();

        small.on_stderr_overflow = fcgi::stderr_overflow::fail;
        fcgi::connection strict(ctx.get_executor(), small);
        co_await strict.async_connect(ep, asio::use_awaitable);
        auto [ec, failed] = co_await strict.async_request(
            get("stderr.php", "bulk=50"), asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(ec == fcgi::error::response_too_large, ec.message());
        BOOST_TEST(failed.diagnostics.find("max_stderr_size (4096 bytes") != std::string::npos,
                   failed.diagnostics);
        BOOST_TEST(failed.stderr_text.size() <= 4096u);
        // The refused STDERR counts as received: the script ran, so it is not safe to resend.
        BOOST_TEST(failed.bytes_received > 4096u);
    });
}

BOOST_AUTO_TEST_CASE(stderr_status_headers_and_errors) {
    php_fpm fpm({.children = 1, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()),
                                    asio::use_awaitable);

        auto resp = co_await conn.async_request(get("stderr.php"), asio::use_awaitable);
        BOOST_TEST(resp.body == "body-start\nbody-end\n");
        BOOST_TEST(resp.stderr_text.find("PHP message: first message") != std::string::npos);
        BOOST_TEST(resp.stderr_text.find("second message") != std::string::npos);

        resp = co_await conn.async_request(get("status.php", "code=404"), asio::use_awaitable);
        BOOST_TEST(resp.status == 404);
        BOOST_TEST(resp.reason == "Not Found");
        auto multi = resp.headers_named("X-Multi");
        BOOST_REQUIRE(multi.size() == 2u);
        BOOST_TEST(multi[0] == "one");
        BOOST_TEST(multi[1] == "two");
        BOOST_TEST(resp.headers_named("set-cookie").size() == 2u);

        resp = co_await conn.async_request(get("fatal.php"), asio::use_awaitable);
        BOOST_TEST(resp.status == 500);
        BOOST_TEST(resp.stderr_text.find("undefined_function_xyz") != std::string::npos);

        fcgi::request missing;
        missing.script = "/nonexistent/dir/missing.php";
        resp = co_await conn.async_request(std::move(missing), asio::use_awaitable);
        BOOST_TEST(resp.status == 404);
        BOOST_TEST(resp.stderr_text.find("Primary script unknown") != std::string::npos);

        resp = co_await conn.async_request(get("exit.php", "code=3"), asio::use_awaitable);
        BOOST_TEST(resp.app_status == 0u);  // PROTOCOL.md item 13
        BOOST_TEST(resp.body == "exiting\n");
        BOOST_TEST(conn.is_open());
    });
}

BOOST_AUTO_TEST_CASE(large_params_and_param_too_large) {
    php_fpm fpm({.children = 1, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()),
                                    asio::use_awaitable);
        // 200 KB of params over 400 pairs: packed whole per record, all visible to PHP.
        fcgi::request req = get("params.php");
        for (int i = 0; i < 400; ++i)
            req.params.emplace_back("X_P_" + std::to_string(i), std::string(500, 'a' + i % 26));
        auto resp = co_await conn.async_request(std::move(req), asio::use_awaitable);
        BOOST_TEST(resp.body == "400 200000\n");

        // One 70 KB param cannot fit in a record: rejected before anything is sent.
        req = get("params.php");
        req.params.emplace_back("X_P_HUGE", std::string(70000, 'z'));
        auto [ec, r2] = co_await conn.async_request(
            std::move(req), asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(ec == fcgi::error::param_too_large);
        BOOST_TEST(!r2.diagnostics.empty());
        BOOST_TEST(conn.is_open());
        resp = co_await conn.async_request(get("hello.php"), asio::use_awaitable);
        BOOST_TEST(resp.body == "Hello, world!\n");
    });
}

BOOST_AUTO_TEST_CASE(prepared_requests_run_as_the_plain_ones) {
    php_fpm fpm({.children = 1, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()),
                                    asio::use_awaitable);
        // A POST with a query and a body, and 200 KB of params over several PARAMS records:
        // each sent plain, then prepared twice, must give php-fpm the same request.
        fcgi::request post = get("echo.php", "a=1&b=two");
        post.body = "x=1&y=2";
        fcgi::request params = get("params.php");
        for (int i = 0; i < 400; ++i)
            params.params.emplace_back("X_P_" + std::to_string(i), std::string(500, 'a' + i % 26));
        for (const fcgi::request& req : {post, params}) {
            auto plain = co_await conn.async_request(req, asio::use_awaitable);
            BOOST_TEST(plain.status == 200);
            fcgi::prepared_request prepared(req);
            for (int i = 0; i < 2; ++i) {
                auto resp = co_await conn.async_request(prepared, asio::use_awaitable);
                BOOST_TEST(resp.status == 200);
                BOOST_TEST(resp.body == plain.body);
                BOOST_TEST(resp.stderr_text.empty(), resp.stderr_text);
            }
        }
        BOOST_TEST(conn.stats().requests_completed == 6u);
        BOOST_TEST(conn.is_open());
    });
}

BOOST_AUTO_TEST_CASE(keep_alive_reuses_one_worker) {
    php_fpm fpm({.children = 3, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()),
                                    asio::use_awaitable);
        std::string first;
        for (int i = 0; i < 6; ++i) {
            auto resp = co_await conn.async_request(get("pid.php"), asio::use_awaitable);
            if (i == 0)
                first = resp.body;
            BOOST_TEST(resp.body == first);
        }
        BOOST_TEST(!first.empty());
    });
}

BOOST_AUTO_TEST_CASE(max_requests_closes_after_second) {
    php_fpm fpm({.children = 1, .max_requests = 2, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()),
                                    asio::use_awaitable);
        auto tok = asio::experimental::as_tuple(asio::use_awaitable);
        auto [ec1, r1] = co_await conn.async_request(get("hello.php"), tok);
        auto [ec2, r2] = co_await conn.async_request(get("hello.php"), tok);
        BOOST_TEST(!ec1);
        BOOST_TEST(!ec2);
        BOOST_TEST(r2.body == "Hello, world!\n");
        // The worker exits after its 2nd request: the third fails cleanly, never hangs or gets
        // another request's answer. Whether the close was seen before sending decides the code.
        auto [ec3, r3] = co_await conn.async_request(get("hello.php"), tok);
        BOOST_TEST((ec3 == fcgi::error::connection_lost || ec3 == fcgi::error::not_connected),
                   ec3.message());
        BOOST_TEST(fcgi::is_retryable(ec3));
        BOOST_TEST(!r3.diagnostics.empty());
        BOOST_TEST(!conn.is_open());
    });
}

BOOST_AUTO_TEST_CASE(request_deadline_on_sleeping_script) {
    php_fpm fpm({.children = 2, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        auto ep = fcgi::endpoint::parse(fpm.unix_endpoint());
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(ep, asio::use_awaitable);
        fcgi::request slow = get("sleep.php", "ms=5000");
        slow.timeout = 300ms;
        auto start = std::chrono::steady_clock::now();
        auto [ec, r] = co_await conn.async_request(
            std::move(slow), asio::experimental::as_tuple(asio::use_awaitable));
        auto took = std::chrono::steady_clock::now() - start;
        BOOST_TEST(ec == fcgi::error::request_timeout);
        BOOST_TEST(took >= 300ms);
        BOOST_TEST(took < 3s);        // bounds a hang; the deadline itself is 300 ms
        BOOST_TEST(!conn.is_open());  // php-fpm ignores ABORT_REQUEST: the socket is closed

        fcgi::connection next(ctx.get_executor());
        co_await next.async_connect(ep, asio::use_awaitable);
        auto resp = co_await next.async_request(get("hello.php"), asio::use_awaitable);
        BOOST_TEST(resp.body == "Hello, world!\n");
    });
}

BOOST_AUTO_TEST_CASE(connect_errors) {
    php_fpm fpm({.children = 1, .tcp = false});
    run_coro([&](asio::io_context& ctx) -> asio::awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        auto [ec] = co_await conn.async_connect(
            fcgi::endpoint::parse("unix:" + fpm.dir() + "/nonexistent.sock"),
            asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(ec == fcgi::condition::transport_error, ec.message());
        BOOST_TEST(!conn.is_open());
        auto [ec2, r] = co_await conn.async_request(
            get("hello.php"), asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(ec2 == fcgi::error::not_connected);
    });
}

BOOST_AUTO_TEST_CASE(connect_timeout_against_a_full_backlog,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    // A listener that never accepts, with its accept queue filled: further SYNs are dropped,
    // so connect() neither succeeds nor fails (PROTOCOL.md item 2 seen from TCP).
    asio::io_context ctx;
    asio::ip::tcp::acceptor listener(
        ctx, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    listener.listen(0);
    auto port = listener.local_endpoint().port();
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> fillers;
    for (int i = 0; i < 4; ++i) {
        auto s = std::make_unique<asio::ip::tcp::socket>(ctx);
        s->async_connect(listener.local_endpoint(), [](std::error_code) {});
        fillers.push_back(std::move(s));
    }
    fcgi::connection_options opts;
    opts.connect_timeout = 300ms;
    fcgi::connection conn(ctx.get_executor(), opts);
    std::error_code result = asio::error::would_block;
    auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration took{};
    conn.async_connect(fcgi::endpoint::tcp("127.0.0.1", port), [&](std::error_code ec) {
        result = ec;
        took = std::chrono::steady_clock::now() - start;
        for (auto& f : fillers)
            f->close();
    });
    ctx.run_for(10s);
    BOOST_TEST(result == fcgi::error::connect_timeout, result.message());
    BOOST_TEST(took >= 300ms);
    BOOST_TEST(took < 5s);
    BOOST_TEST(!conn.is_open());
}

BOOST_AUTO_TEST_CASE(future_and_callback_tokens) {
    php_fpm fpm({.children = 1, .tcp = false});
    asio::io_context ctx;
    auto guard = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    fcgi::connection conn(ctx.get_executor());
    conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), asio::use_future).get();
    auto fut = conn.async_request(get("hello.php"), asio::use_future);
    BOOST_REQUIRE(fut.wait_for(30s) == std::future_status::ready);
    BOOST_TEST(fut.get().body == "Hello, world!\n");

    std::promise<int> status;
    // A named callback is an lvalue token: the library must copy it, not require a move.
    auto on_done = [&](std::error_code ec, fcgi::response r) {
        status.set_value(ec ? -1 : r.status);
    };
    conn.async_request(get("status.php", "code=201"), on_done);
    auto sf = status.get_future();
    BOOST_REQUIRE(sf.wait_for(30s) == std::future_status::ready);
    BOOST_TEST(sf.get() == 201);

    auto deferred = conn.async_request(get("hello.php"), asio::experimental::deferred);
    auto fut2 = std::move(deferred)(asio::use_future);
    BOOST_REQUIRE(fut2.wait_for(30s) == std::future_status::ready);
    BOOST_TEST(fut2.get().status == 200);

    asio::post(ctx, [&] { conn.close(); });
    guard.reset();
    runner.join();
}

BOOST_AUTO_TEST_SUITE_END()
