// Streamed request bodies (sources) and response bodies (sinks): against php-fpm with large
// bodies and checksums, failing sources and sinks, and a slow sink on a multiplexed connection.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "support/checksum.hpp"
#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/run_until.hpp"
#include "support/temp_file.hpp"

namespace act = fcgi::test::act;
using asio::awaitable;
using asio::use_awaitable;
using fcgi::body_sink;
using fcgi::body_source;
using fcgi::test::fake_responder;
using fcgi::test::md5_of;
using fcgi::test::md5_of_file;
using fcgi::test::php_fpm;
using fcgi::test::run_coro;
using fcgi::test::run_until;
using fcgi::test::temp_file;
using namespace std::chrono_literals;

namespace {

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(use_awaitable);

// Bytes that are not periodic at record or chunk sizes, so a misplaced chunk changes the md5.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
    return s;
}

// Sends `req` on a connection of its own to `ep`: the error and the response.
std::pair<std::error_code, fcgi::response> on_a_new_connection(const fcgi::endpoint& ep,
                                                               fcgi::request req) {
    asio::io_context ctx;
    std::pair<std::error_code, fcgi::response> out;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(ep, use_awaitable);
        auto [ec, resp] = co_await conn.async_request(std::move(req), as_tuple_awaitable);
        out = {ec, std::move(resp)};
    });
    return out;
}

// Connects `conn` to `ep`, driving `ctx`; fails the test when it cannot.
void connect_or_fail(asio::io_context& ctx, fcgi::connection& conn, const fcgi::endpoint& ep) {
    bool connected = false;
    conn.async_connect(ep, [&](std::error_code ec) {
        BOOST_REQUIRE(!ec);
        connected = true;
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected; }));
}

// Reads `fd` (a pipe's read end) into `out` until end of file, `limit` bytes, or `quiet` without
// anything to read: a reader thread that cannot hang a failing test.
void drain_pipe(int fd, std::string& out, std::size_t limit, std::chrono::milliseconds quiet) {
    char buf[8192];
    while (out.size() < limit) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0)
            return;
        ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - out.size()));
        if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
            return;
        if (n > 0)
            out.append(buf, static_cast<std::size_t>(n));
    }
}

fcgi::request script_request(const std::string& name, std::string query = {}) {
    fcgi::request r;
    r.script = php_fpm::script(name);
    r.query = std::move(query);
    return r;
}

// A producer that yields `data` in pieces of at most `piece` bytes, then fails with `fail` when
// that is set, or ends.
body_source pieces_of(std::shared_ptr<const std::string> data, std::uint64_t announced,
                      std::size_t piece, std::error_code fail = {}) {
    auto offset = std::make_shared<std::size_t>(0);
    return body_source::producer(
        announced, [data, offset, piece, fail](asio::mutable_buffer buf, auto done) {
            std::size_t n = std::min({buf.size(), piece, data->size() - *offset});
            if (n == 0) {
                done(fail, 0);
                return;
            }
            std::memcpy(buf.data(), data->data() + *offset, n);
            *offset += n;
            done({}, n);
        });
}

// A sink that keeps what it gets and answers each chunk later, through the executor.
struct collecting_sink {
    std::string body;
    std::vector<std::string> events;  // "head <status>", "chunk"
    asio::any_io_executor ex;

    body_sink make() {
        return body_sink::consumer(
            [this](std::string_view chunk, fcgi::sink_write_handler done) {
                events.push_back("chunk");
                body.append(chunk);
                asio::post(ex, [done = std::move(done)] { done({}); });
            },
            [this](const fcgi::response& head) {
                events.push_back("head " + std::to_string(head.status));
                return std::error_code();
            });
    }
};

// A sink that holds every chunk's completion until released, to stand for a slow consumer.
struct stalled_sink {
    std::string body;
    std::vector<fcgi::sink_write_handler> held;
    bool released = false;

    body_sink make() {
        return body_sink::consumer([this](std::string_view chunk, fcgi::sink_write_handler done) {
            body.append(chunk);
            if (released)
                done({});
            else
                held.push_back(std::move(done));
        });
    }
    void release() {
        released = true;
        for (auto& h : held)
            h({});
        held.clear();
    }
};

// How many of this process's descriptors are open on the file at `path`.
int descriptors_open_on(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto want = fs::canonical(path, ec);
    int n = 0;
    for (const auto& fd : fs::directory_iterator("/proc/self/fd", ec)) {
        std::error_code link_ec;
        if (fs::read_symlink(fd.path(), link_ec) == want && !link_ec)
            ++n;
    }
    return n;
}

// A sink that holds its chunks' completions, or answers them and then fails finish(): for
// failures that come after the server ended the request.
struct late_failing_sink : body_sink::implementation {
    bool fail_finish = false;
    std::vector<fcgi::sink_write_handler> held;

    std::error_code start(std::string&) override { return {}; }
    void async_write(std::string_view, const asio::any_io_executor&,
                     fcgi::sink_write_handler done) override {
        if (fail_finish)
            done({});
        else
            held.push_back(std::move(done));
    }
    std::error_code finish(std::string&) override {
        // No words: the connection says what failed.
        return fail_finish ? std::make_error_code(std::errc::io_error) : std::error_code();
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(streaming_php_fpm)

BOOST_AUTO_TEST_CASE(upload_50_mb_from_a_file) {
    php_fpm fpm({.children = 1});
    const std::string data = pattern(50u << 20);
    temp_file file(data);
    const std::string expected = std::to_string(data.size()) + " " + md5_of(data) + "\n";
    asio::io_context ctx;
    run_coro(
        ctx,
        [&]() -> awaitable<void> {
            fcgi::connection conn(ctx.get_executor());
            co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
            auto req = script_request("md5.php");
            req.stdin_source = body_source::file(file.path);
            auto resp = co_await conn.async_request(std::move(req), use_awaitable);
            BOOST_TEST(resp.status == 200);
            BOOST_TEST(resp.body == expected);
            BOOST_TEST(conn.stats().bytes_written > data.size());
            // The stream ended at a record boundary: the connection is reused.
            auto again = co_await conn.async_request(script_request("hello.php"), use_awaitable);
            BOOST_TEST(again.body == "Hello, world!\n");
            BOOST_TEST(conn.stats().requests_started == 2u);
        },
        120s);
}

BOOST_AUTO_TEST_CASE(download_50_mb_to_a_file) {
    php_fpm fpm({.children = 1});
    temp_file out("stale content the sink must replace");
    asio::io_context ctx;
    run_coro(
        ctx,
        [&]() -> awaitable<void> {
            fcgi::connection conn(ctx.get_executor());
            co_await conn.async_connect(fcgi::endpoint::parse(fpm.tcp_endpoint()), use_awaitable);
            auto req = script_request("big.php", "size=" + std::to_string(50u << 20));
            req.stdout_sink = body_sink::file(out.path);
            auto resp = co_await conn.async_request(std::move(req), use_awaitable);
            BOOST_TEST(resp.status == 200);
            BOOST_TEST(resp.body.empty());  // it went to the file
            BOOST_TEST(std::filesystem::file_size(out.path) == 50u << 20);
            BOOST_TEST(md5_of_file(out.path) == std::string(resp.header("X-Md5").value_or("")));
            BOOST_TEST(resp.bytes_received > 50u << 20);
            BOOST_TEST(conn.is_open());
        },
        120s);
}

BOOST_AUTO_TEST_CASE(producer_source_and_consumer_sink_round_trip) {
    php_fpm fpm({.children = 1});
    auto data = std::make_shared<const std::string>(pattern(3u << 20));
    asio::io_context ctx;
    collecting_sink sink{.ex = ctx.get_executor()};
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
        auto req = script_request("echo_body.php");
        // Odd piece sizes: records and chunks never line up with what the producer yields.
        req.stdin_source = pieces_of(data, data->size(), 100003);
        req.stdout_sink = sink.make();
        BOOST_TEST(!req.is_idempotent());  // a producer cannot be read twice
        BOOST_TEST(req.effective_method() == "POST");
        auto resp = co_await conn.async_request(std::move(req), use_awaitable);
        BOOST_TEST(resp.status == 200);
        BOOST_TEST(resp.header("Content-Type").value_or("") == "application/octet-stream");
        BOOST_TEST(resp.body.empty());
    });
    BOOST_TEST(sink.body.size() == data->size());
    BOOST_TEST((sink.body == *data));
    BOOST_REQUIRE(sink.events.size() >= 2u);
    BOOST_TEST(sink.events.front() == "head 200");
    for (std::size_t i = 1; i < sink.events.size(); ++i)
        BOOST_TEST(sink.events[i] == "chunk");
}

BOOST_AUTO_TEST_CASE(coroutine_source_and_sink) {
    php_fpm fpm({.children = 1});
    const std::string data = pattern(1u << 20);
    std::size_t offset = 0;
    std::string received;
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
        auto req = script_request("echo_body.php");
        req.stdin_source = body_source::coroutine(
            data.size(), [&](asio::mutable_buffer buf) -> awaitable<std::size_t> {
                co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
                std::size_t n = std::min(buf.size(), data.size() - offset);
                std::memcpy(buf.data(), data.data() + offset, n);
                offset += n;
                co_return n;
            });
        req.stdout_sink = body_sink::coroutine([&](std::string_view chunk) -> awaitable<void> {
            co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
            received.append(chunk);
        });
        auto resp = co_await conn.async_request(std::move(req), use_awaitable);
        BOOST_TEST(resp.status == 200);
    });
    BOOST_TEST((received == data));
}

// A coroutine source or sink that throws: the diagnostics give its words once, not wrapped in
// the error's own message ("the request body source failed (...)") as well.
BOOST_AUTO_TEST_CASE(coroutine_source_or_sink_that_throws_says_so_once) {
    fake_responder fake;
    for (bool source_side : {true, false}) {
        BOOST_TEST_CONTEXT((source_side ? "source" : "sink")) {
            auto req = fcgi::test::tagged_request("throws");
            if (source_side)
                req.stdin_source =
                    body_source::coroutine(10, [](asio::mutable_buffer) -> awaitable<std::size_t> {
                        throw std::runtime_error("co boom");
                        co_return 0;
                    });
            else
                req.stdout_sink = body_sink::coroutine([](std::string_view) -> awaitable<void> {
                    throw std::runtime_error("co boom");
                    co_return;
                });
            auto [ec, resp] = on_a_new_connection(fake.unix_endpoint(), std::move(req));
            const auto own = source_side ? fcgi::make_error_code(fcgi::error::source_failed)
                                         : fcgi::make_error_code(fcgi::error::sink_failed);
            BOOST_TEST(ec == own, ec.message());
            const std::string said = source_side
                                         ? "request body source failed after 0 of 10 bytes: "
                                           "threw: co boom; "
                                         : "response sink failed after 0 bytes of body: "
                                           "threw: co boom; ";
            BOOST_TEST(resp.diagnostics.find(said) != std::string::npos, resp.diagnostics);
            BOOST_TEST(resp.diagnostics.find(own.message()) == std::string::npos, resp.diagnostics);
        }
    }
}

BOOST_AUTO_TEST_CASE(source_failing_halfway_closes_the_connection) {
    php_fpm fpm({.children = 1});
    auto data = std::make_shared<const std::string>(pattern(1u << 20));
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        for (bool fails : {true, false}) {
            fcgi::connection conn(ctx.get_executor());
            co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
            auto req = script_request("md5.php");
            // 2 MB announced, 1 MB delivered, then an I/O error or a plain end.
            req.stdin_source =
                pieces_of(data, 2u << 20, 65536,
                          fails ? std::make_error_code(std::errc::io_error) : std::error_code());
            auto [ec, resp] = co_await conn.async_request(std::move(req), as_tuple_awaitable);
            if (fails) {
                BOOST_TEST(ec == fcgi::error::source_failed, ec.message());
                BOOST_TEST(resp.diagnostics.find("failed after 1048576 of 2097152 bytes") !=
                               std::string::npos,
                           resp.diagnostics);
            } else {
                BOOST_TEST(ec == fcgi::error::source_ended_early, ec.message());
                BOOST_TEST(resp.diagnostics.find("ended after 1048576 of 2097152 bytes") !=
                               std::string::npos,
                           resp.diagnostics);
            }
            // php-fpm's view of the body is broken: the connection is closed.
            BOOST_TEST(!conn.is_open());
        }
        // The server is fine: a new connection serves.
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
        auto resp = co_await conn.async_request(script_request("hello.php"), use_awaitable);
        BOOST_TEST(resp.body == "Hello, world!\n");
    });
}

BOOST_AUTO_TEST_CASE(sink_failing_halfway) {
    php_fpm fpm({.children = 1});
    asio::io_context ctx;
    std::size_t got = 0;
    std::size_t calls_after_failure = 0;
    bool failed = false;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
        auto req = script_request("big.php", "size=" + std::to_string(10u << 20));
        req.stdout_sink = body_sink::consumer([&](std::string_view chunk,
                                                  fcgi::sink_write_handler done) {
            if (failed)
                ++calls_after_failure;
            got += chunk.size();
            failed = got >= (1u << 20);
            done(failed ? std::make_error_code(std::errc::no_space_on_device) : std::error_code());
        });
        auto [ec, resp] = co_await conn.async_request(std::move(req), as_tuple_awaitable);
        BOOST_TEST(ec == fcgi::error::sink_failed, ec.message());
        BOOST_TEST(resp.diagnostics.find("response sink failed after") != std::string::npos,
                   resp.diagnostics);
        BOOST_TEST(
            resp.diagnostics.find(std::make_error_code(std::errc::no_space_on_device).message()) !=
                std::string::npos,
            resp.diagnostics);
        BOOST_TEST(!conn.is_open());  // the rest of the response cannot be skipped on php-fpm

        fcgi::connection next(ctx.get_executor());
        co_await next.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), use_awaitable);
        auto resp2 = co_await next.async_request(script_request("hello.php"), use_awaitable);
        BOOST_TEST(resp2.body == "Hello, world!\n");
    });
    BOOST_TEST(calls_after_failure == 0u);
    BOOST_TEST(got < (10u << 20));
}

BOOST_AUTO_TEST_CASE(streamed_requests_through_the_client) {
    // pm.max_requests=3 recycles the worker under the pool: a file source is re-read when the
    // client retries on a fresh connection.
    php_fpm fpm({.children = 1, .max_requests = 3});
    const std::string data = pattern(2u << 20);
    temp_file in(data);
    const std::string expected = std::to_string(data.size()) + " " + md5_of(data) + "\n";
    asio::io_context ctx;
    run_coro(
        ctx,
        [&]() -> awaitable<void> {
            fcgi::client_options opts;
            opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
            opts.max_connections_per_endpoint = 1;
            fcgi::client client(ctx.get_executor(), opts);
            for (int i = 0; i < 8; ++i) {
                temp_file out("");
                auto req = script_request("md5.php");
                req.method = "PUT";
                req.idempotent = true;
                req.stdin_source = body_source::file(in.path);
                req.stdout_sink = body_sink::file(out.path);
                BOOST_TEST(req.is_idempotent());
                auto resp = co_await client.async_request(std::move(req), use_awaitable);
                BOOST_TEST(resp.status == 200);
                std::ifstream f(out.path, std::ios::binary);
                std::string written((std::istreambuf_iterator<char>(f)), {});
                BOOST_TEST(written == expected, "request " << i);
            }
            BOOST_TEST(client.stats().failed == 0u);
            co_await client.async_shutdown(use_awaitable);
        },
        120s);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(streaming_errors)

BOOST_AUTO_TEST_CASE(bad_sources_fail_before_anything_is_sent) {
    fake_responder fake;
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);

        auto unknown = fcgi::test::tagged_request("a");
        unknown.stdin_source = body_source::producer(
            std::nullopt,
            [](asio::mutable_buffer, fcgi::source_read_handler done) { done({}, 0); });
        auto [ec1, r1] = co_await conn.async_request(std::move(unknown), as_tuple_awaitable);
        BOOST_TEST(ec1 == fcgi::error::body_length_unknown, ec1.message());
        BOOST_TEST((ec1 == fcgi::condition::caller_error));
        BOOST_TEST(r1.diagnostics.find("CONTENT_LENGTH") != std::string::npos, r1.diagnostics);

        auto both = fcgi::test::tagged_request("b", "inline body");
        both.stdin_source = body_source::file("/etc/hostname");
        auto [ec2, r2] = co_await conn.async_request(std::move(both), as_tuple_awaitable);
        BOOST_TEST(ec2 == fcgi::error::invalid_request, ec2.message());

        auto missing = fcgi::test::tagged_request("c");
        missing.stdin_source = body_source::file("/nonexistent/upload.bin");
        auto [ec3, r3] = co_await conn.async_request(std::move(missing), as_tuple_awaitable);
        BOOST_TEST((ec3 == std::errc::no_such_file_or_directory), ec3.message());
        BOOST_TEST(r3.diagnostics.find("/nonexistent/upload.bin") != std::string::npos,
                   r3.diagnostics);

        // Made before its file existed: said as such, not as a change of size.
        temp_file dir_marker("");
        const std::string late_path = dir_marker.path + ".late";
        auto late = fcgi::test::tagged_request("c2");
        late.stdin_source = body_source::file(late_path);
        std::ofstream(late_path) << "now here";
        auto [ec_late, r_late] = co_await conn.async_request(std::move(late), as_tuple_awaitable);
        std::filesystem::remove(late_path);
        BOOST_TEST(ec_late == fcgi::error::source_ended_early, ec_late.message());
        BOOST_TEST(r_late.diagnostics.find("could not be examined") != std::string::npos,
                   r_late.diagnostics);

        auto unwritable = fcgi::test::tagged_request("d");
        unwritable.stdout_sink = body_sink::file("/nonexistent/output.bin");
        auto [ec4, r4] = co_await conn.async_request(std::move(unwritable), as_tuple_awaitable);
        BOOST_TEST((ec4 == std::errc::no_such_file_or_directory), ec4.message());

        // A producer is consumed once: sending the same source again is refused.
        auto once = body_source::producer(1, [](asio::mutable_buffer b, auto done) {
            static_cast<char*>(b.data())[0] = 'x';
            done({}, 1);
        });
        auto first = fcgi::test::tagged_request("e");
        first.stdin_source = once;
        auto resp = co_await conn.async_request(first, use_awaitable);
        BOOST_TEST(resp.body == fcgi::test::tagged_body("e", "x"));
        auto [ec5, r5] = co_await conn.async_request(first, as_tuple_awaitable);
        BOOST_TEST(ec5 == fcgi::error::invalid_request, ec5.message());

        // A header too large for a PARAMS record is found before the sink's file is created:
        // "nothing was sent" leaves the caller's earlier output as it was.
        temp_file kept("an earlier report");
        auto too_large = fcgi::test::tagged_request("g");
        too_large.headers.push_back({"X-Big", std::string(70000, 'b')});
        too_large.stdout_sink = body_sink::file(kept.path);
        too_large.stdin_source = body_source::file("/etc/hostname");
        auto [ec6, r6] = co_await conn.async_request(std::move(too_large), as_tuple_awaitable);
        BOOST_TEST(ec6 == fcgi::error::param_too_large, ec6.message());
        BOOST_TEST(r6.diagnostics.find("HTTP_X_BIG") != std::string::npos, r6.diagnostics);
        std::ifstream in(kept.path, std::ios::binary);
        BOOST_TEST(std::string(std::istreambuf_iterator<char>(in), {}) == "an earlier report");

        // None of the refused requests reached the server, and the connection still serves.
        BOOST_TEST(conn.is_open());
        auto ok = co_await conn.async_request(fcgi::test::tagged_request("f"), use_awaitable);
        BOOST_TEST(ok.body == fcgi::test::tagged_body("f"));
    });
    auto snap = fake.snapshot();
    BOOST_REQUIRE(snap.requests.size() == 2u);
    BOOST_TEST(snap.requests[0].param("X_ID").value_or("") == "e");
    BOOST_TEST(snap.requests[0].param("CONTENT_LENGTH").value_or("") == "1");
    BOOST_TEST(snap.requests[1].param("X_ID").value_or("") == "f");
    BOOST_TEST(snap.violations.empty());
}

BOOST_AUTO_TEST_CASE(slow_sink_on_a_multiplexed_connection) {
    // Request "big" answers with a head and `big_size` bytes; the others echo their ID.
    constexpr std::size_t small_size = 300u << 10;
    constexpr std::size_t big_size = 8u << 20;
    std::atomic<std::size_t> size_for_big = small_size;
    fake_responder fake({.script_for = [&size_for_big](const fcgi::test::seen_request& r) {
        if (r.param("X_ID").value_or("") != "big")
            return fcgi::test::echo_script(r);
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\n"),
                                  act::endless_stdout(size_for_big, 16384, 'y'), act::end()};
    }});
    for (std::size_t size : {small_size, big_size}) {
        size_for_big = size;
        asio::io_context ctx;
        fcgi::connection_options copts;
        copts.max_in_flight = 8;
        copts.sink_buffer_size = 1u << 20;
        fcgi::connection conn(ctx.get_executor(), copts);
        connect_or_fail(ctx, conn, fake.tcp_endpoint());

        stalled_sink sink;
        auto big = fcgi::test::tagged_request("big");
        big.stdout_sink = sink.make();
        bool big_done = false;
        std::error_code big_ec;
        conn.async_request(big, [&](std::error_code ec, fcgi::response) {
            big_ec = ec;
            big_done = true;
        });
        BOOST_REQUIRE(run_until(ctx, [&] { return !sink.held.empty(); }));

        int small_done = 0;
        for (int i = 0; i < 5; ++i) {
            auto id = "s" + std::to_string(i);
            conn.async_request(fcgi::test::tagged_request(id),
                               [&, id](std::error_code ec, fcgi::response r) {
                                   BOOST_TEST(!ec, ec.message());
                                   BOOST_TEST(r.body == fcgi::test::tagged_body(id));
                                   ++small_done;
                               });
        }
        if (size == small_size) {
            // Within the sink's buffer: the other requests complete while the sink is stuck.
            BOOST_TEST(run_until(ctx, [&] { return small_done == 5; }));
            BOOST_TEST(!big_done);
        } else {
            // Beyond it: the connection stops reading, so memory stays bounded; the other
            // requests wait behind the big one's records. Wait a bounded time for a read that
            // must not happen.
            BOOST_TEST(!run_until(
                ctx, [&] { return conn.stats().bytes_read > (4u << 20); }, 300ms));
            BOOST_TEST(conn.stats().bytes_read < copts.sink_buffer_size * 2 + (256u << 10),
                       "read " << conn.stats().bytes_read << " bytes while the sink was stuck");
        }
        sink.release();
        BOOST_TEST(run_until(
            ctx, [&] { return big_done && small_done == 5; }, 30s));
        BOOST_TEST(!big_ec, big_ec.message());
        BOOST_TEST(sink.body == std::string(size, 'y'));
        BOOST_TEST(conn.is_open());
    }
    BOOST_TEST(fake.snapshot().violations.empty());
}

// On a multiplexed connection to a server that reads slowly (so writes finish later, several
// requests' records in each): a source that throws from its read, or that starts another request
// inline, ran while the connection went through the slots its last write carried, and the write
// it started (the ABORT_REQUEST, the new request) refilled that list under it. The next write's
// slots were lost with it: the other request's upload stopped for good, its source never read
// again. Each way, the streaming request must go on to its answer.
BOOST_AUTO_TEST_CASE(source_that_throws_or_starts_a_request_does_not_stall_another_upload) {
    fake_responder fake({.script_for =
                             [](const fcgi::test::seen_request&) {
                                 return fcgi::test::script{
                                     act::stdout_(std::string(fcgi::test::echo_head) + "ok"),
                                     act::end()};
                             },
                         .read_size = 16 * 1024,
                         .read_pause = 3ms});
    constexpr std::size_t big = 3u << 20;
    for (bool throws : {true, false}) {
        BOOST_TEST_CONTEXT((throws ? "throws" : "starts a request")) {
            asio::io_context ctx;
            fcgi::connection_options copts;
            copts.max_in_flight = 4;
            fcgi::connection conn(ctx.get_executor(), copts);
            connect_or_fail(ctx, conn, fake.unix_endpoint());

            std::optional<std::error_code> a_ec, b_ec, c_ec;
            // A: 360 KB of params, so its first write fills the socket buffer and ends later,
            // together with B's chunks; then its source fails the one way or the other.
            auto start_a = [&] {
                fcgi::request a;
                a.script = "/a.php";
                for (int i = 0; i < 6; ++i)
                    a.params.emplace_back("BIG" + std::to_string(i), std::string(60000, 'p'));
                a.stdin_source = body_source::producer(
                    100, [&](asio::mutable_buffer buf, fcgi::source_read_handler done) {
                        if (throws)
                            throw std::runtime_error("the source broke");
                        conn.async_request(fcgi::test::tagged_request("c"),
                                           [&](std::error_code ec, fcgi::response) { c_ec = ec; });
                        std::memset(buf.data(), 'a', buf.size());
                        done({}, buf.size());
                    });
                conn.async_request(std::move(a),
                                   [&](std::error_code ec, fcgi::response) { a_ec = ec; });
            };
            // B: 3 MiB from a source that completes inline; A starts once B's upload is under
            // way (posted, not from inside B's source).
            std::size_t produced = 0;
            fcgi::request b;
            b.script = "/b.php";
            b.stdin_source = body_source::producer(
                big, [&](asio::mutable_buffer buf, fcgi::source_read_handler done) {
                    std::memset(buf.data(), 'b', buf.size());
                    if (produced < (256u << 10) && produced + buf.size() >= (256u << 10))
                        asio::post(ctx, start_a);
                    produced += buf.size();
                    done({}, buf.size());
                });
            conn.async_request(std::move(b),
                               [&](std::error_code ec, fcgi::response) { b_ec = ec; });

            BOOST_TEST(run_until(
                ctx, [&] { return a_ec && b_ec && (throws || c_ec); }, 30s));
            BOOST_TEST(produced == big);
            BOOST_REQUIRE(b_ec.has_value());
            BOOST_TEST(!*b_ec, b_ec->message());
            BOOST_REQUIRE(a_ec.has_value());
            if (throws) {
                BOOST_TEST(*a_ec == fcgi::error::source_failed, a_ec->message());
            } else {
                BOOST_TEST(!*a_ec, a_ec->message());
                BOOST_TEST((c_ec.has_value() && !*c_ec));
            }
            BOOST_TEST(conn.is_open());
        }
    }
    auto seen = fake.snapshot();
    BOOST_TEST(seen.violations.empty());
    std::size_t full_uploads = 0;
    for (const auto& r : seen.requests)
        full_uploads += r.stdin_data.size() == big && r.complete;
    BOOST_TEST(full_uploads == 2u);
}

// A producer that calls `done` twice for one read: the second call was taken for the next
// read's answer, so its bytes (the chunk once more, or one half-filled by the next read) went
// out as body and the source's last bytes were never asked for. Now the request fails with
// source_failed and nothing is sent twice; a call long after the request ended does nothing.
BOOST_AUTO_TEST_CASE(source_calling_done_twice_fails_its_request) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    copts.source_chunk_size = 1000;
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    const std::string data = pattern(5000);
    std::size_t offset = 0;
    fcgi::source_read_handler kept;  // the first read's `done`, called once more at the end
    auto req = fcgi::test::tagged_request("twice");
    req.method = "POST";
    req.stdin_source = body_source::producer(
        data.size(), [&](asio::mutable_buffer buf, fcgi::source_read_handler done) {
            std::size_t n = std::min(buf.size(), data.size() - offset);
            std::memcpy(buf.data(), data.data() + offset, n);
            offset += n;
            done({}, n);
            if (!kept) {
                kept = done;
                done({}, n);
            }
        });
    std::optional<std::error_code> twice_ec;
    std::string twice_diag;
    conn.async_request(std::move(req), [&](std::error_code ec, fcgi::response r) {
        twice_ec = ec;
        twice_diag = r.diagnostics;
    });
    std::optional<std::error_code> other_ec;
    conn.async_request(fcgi::test::tagged_request("other"),
                       [&](std::error_code ec, fcgi::response) { other_ec = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return twice_ec && other_ec; }));
    BOOST_TEST(*twice_ec == fcgi::error::source_failed, twice_ec->message());
    BOOST_TEST(twice_diag.find("called done twice") != std::string::npos, twice_diag);
    BOOST_TEST(!*other_ec, other_ec->message());

    // Long after: the kept handler again, then the connection still serves requests.
    BOOST_REQUIRE(kept);
    kept({}, 1000);
    std::optional<std::error_code> after_ec;
    conn.async_request(fcgi::test::tagged_request("after"),
                       [&](std::error_code ec, fcgi::response) { after_ec = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return after_ec.has_value(); }));
    BOOST_TEST(!*after_ec, after_ec->message());
    BOOST_TEST(conn.is_open());

    // What the server got of the body is a prefix of it: no chunk twice.
    for (const auto& r : fake.snapshot().requests) {
        if (r.param("X_ID") != "twice")
            continue;
        BOOST_TEST(!r.complete);
        BOOST_TEST(data.compare(0, r.stdin_data.size(), r.stdin_data) == 0);
    }
}

// A consumer that calls `done` twice for its first chunk: the second call was taken for the
// next write's answer, which cleared the chunk the sink was still reading and let the reader
// append into that buffer (a use after free under ASan, a wrong body without). Now the request
// fails with sink_failed, the other request on the connection is intact, and a call long after
// does nothing.
BOOST_AUTO_TEST_CASE(sink_calling_done_twice_fails_its_request) {
    const std::string big = pattern(300000);
    fake_responder fake({.script_for = [&](const fcgi::test::seen_request& r) {
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\n" +
                                               (r.param("X_ID") == "twice" ? big : "ok")),
                                  act::end()};
    }});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    copts.sink_buffer_size = 1000;
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    fcgi::sink_write_handler kept;  // the first write's `done`, called once more at the end
    std::string got;
    auto req = fcgi::test::tagged_request("twice");
    req.stdout_sink =
        body_sink::consumer([&](std::string_view chunk, fcgi::sink_write_handler done) {
            if (!kept) {
                got.append(chunk);
                kept = done;
                done({});
                done({});
                return;
            }
            // Later chunks are read when the write is answered, a turn of the executor later.
            asio::post(ctx, [&got, chunk, done = std::move(done)]() mutable {
                got.append(chunk);
                done({});
            });
        });
    std::optional<std::error_code> twice_ec;
    std::string twice_diag;
    conn.async_request(std::move(req), [&](std::error_code ec, fcgi::response r) {
        twice_ec = ec;
        twice_diag = r.diagnostics;
    });
    std::optional<std::pair<std::error_code, std::string>> other;
    conn.async_request(fcgi::test::tagged_request("other"),
                       [&](std::error_code ec, fcgi::response r) { other.emplace(ec, r.body); });
    BOOST_REQUIRE(run_until(ctx, [&] { return twice_ec && other; }));
    BOOST_TEST(*twice_ec == fcgi::error::sink_failed, twice_ec->message());
    BOOST_TEST(twice_diag.find("called done twice") != std::string::npos, twice_diag);
    BOOST_TEST(!other->first, other->first.message());
    BOOST_TEST(other->second == "ok");
    // What the sink read is a prefix of the body: no chunk changed under it.
    BOOST_TEST(big.compare(0, got.size(), got) == 0);

    BOOST_REQUIRE(kept);
    kept({});
    std::optional<std::error_code> after_ec;
    conn.async_request(fcgi::test::tagged_request("after"),
                       [&](std::error_code ec, fcgi::response) { after_ec = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return after_ec.has_value(); }));
    BOOST_TEST(!*after_ec, after_ec->message());
}

// An early answer on a multiplexed connection: the server ends the request before it has read
// the body (as php-fpm's fastcgi_finish_request() does). While the sink still drains the
// response, the upload stops. It went on reading the source and sending STDIN records for the
// ended ID, the whole body when the sink was slow.
BOOST_AUTO_TEST_CASE(early_answer_stops_the_upload_while_the_sink_drains) {
    fake_responder fake({.answer_at_params_end = true});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    copts.source_chunk_size = 4096;  // one STDIN record per chunk
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    std::uint64_t supplied = 0;
    auto req = fcgi::test::tagged_request("early");
    req.method = "POST";
    req.stdin_source = body_source::producer(
        std::uint64_t{64} << 20, [&](asio::mutable_buffer buf, fcgi::source_read_handler done) {
            std::memset(buf.data(), 'u', buf.size());
            supplied += buf.size();
            done({}, buf.size());
        });
    stalled_sink sink;
    req.stdout_sink = sink.make();
    bool done = false;
    std::error_code early_ec;
    conn.async_request(req, [&](std::error_code ec, fcgi::response) {
        early_ec = ec;
        done = true;
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return !sink.held.empty(); }));
    // The responder wrote END_REQUEST right after that output: once a request sent now is
    // answered, the connection has read it.
    bool after_done = false;
    conn.async_request(fcgi::test::tagged_request("after"),
                       [&](std::error_code ec, fcgi::response r) {
                           BOOST_TEST(!ec, ec.message());
                           BOOST_TEST(r.body == fcgi::test::tagged_body("after"));
                           after_done = true;
                       });
    BOOST_REQUIRE(run_until(ctx, [&] { return after_done; }));
    BOOST_TEST(!done);  // the sink holds the response
    // Wait a bounded time for source reads that must not happen.
    const auto at_end = supplied;
    BOOST_TEST(!run_until(
        ctx, [&] { return supplied > at_end + 4 * copts.source_chunk_size; }, 300ms));
    sink.release();
    BOOST_REQUIRE(run_until(ctx, [&] { return done; }));
    BOOST_TEST(!early_ec, early_ec.message());
    BOOST_TEST(sink.body == fcgi::test::tagged_body("early"));
    BOOST_TEST(conn.is_open());
    // STDIN records for the ended ID (one per chunk): those sent before the connection read
    // END_REQUEST, and at most the one being written then.
    auto stray = fake.snapshot().violations.size();
    BOOST_TEST(stray * copts.source_chunk_size <= at_end + copts.source_chunk_size,
               stray << " records after END_REQUEST, " << at_end << " bytes read before");
}

// Copies of one request streaming from a file, sent at once: each copy reads the file with its
// own descriptor and offset. They once shared one: each start() closed the other's descriptor
// and both read from one offset, so bodies came out scrambled or short.
BOOST_AUTO_TEST_CASE(copies_of_a_file_source_sent_at_once) {
    const std::string data = pattern(1u << 20);
    temp_file file(data);
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 3;
    opts.mode = fcgi::multiplexing::off;
    opts.connection.source_chunk_size = 16 * 1024;  // many reads, interleaved between the sends
    fcgi::client client(ctx.get_executor(), opts);
    auto req = fcgi::test::tagged_request("copy");
    req.stdin_source = body_source::file(file.path);
    std::vector<fcgi::request> reqs{req, req, req};
    std::optional<std::vector<fcgi::fanout_result>> results;
    fcgi::async_fanout(
        client, std::move(reqs), 3,
        [&](std::error_code, std::vector<fcgi::fanout_result> r) { results = std::move(r); });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return results.has_value(); }, 30s));
    for (const auto& r : *results)
        BOOST_TEST(!r.ec, r.ec.message() << ": " << r.resp.diagnostics);
    auto snap = fake.snapshot();
    BOOST_REQUIRE(snap.requests.size() == 3u);
    for (const auto& r : snap.requests)
        BOOST_TEST((md5_of(r.stdin_data) == md5_of(data)), "body of " << r.stdin_data.size());
}

// A descriptor sink whose pipe has no reader any more: the write fails with EPIPE and the
// request with sink_failed. SIGPIPE, whose default action kills the process, once came with it.
BOOST_AUTO_TEST_CASE(descriptor_sink_on_a_closed_pipe_is_sink_failed) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    ::close(fds[0]);  // nobody reads
    fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::stdout_(std::string(fcgi::test::echo_head) + "some body"),
                                  act::end()};
    }});
    auto req = fcgi::test::tagged_request("pipe");
    req.stdout_sink = body_sink::descriptor(fds[1]);
    auto [ec, resp] = on_a_new_connection(fake.unix_endpoint(), std::move(req));
    ::close(fds[1]);
    BOOST_TEST(ec == fcgi::error::sink_failed, ec.message());
    BOOST_TEST(resp.diagnostics.find(std::error_code(EPIPE, std::system_category()).message()) !=
                   std::string::npos,
               resp.diagnostics);
}

// A pipe (blocking or not) whose reader is slow: the descriptor sink fills it, then waits on the
// executor, so a request on another connection of the same io_context completes meanwhile, and
// the whole body arrives once the reader drains the pipe. With nobody reading, the request's
// deadline fires. The sink once wrote synchronously: the thread sat in write() (or in poll() for
// a non-blocking pipe) and nothing else on the io_context ran, not even the deadline. The
// pipe's flags stay as they were: Asio's own wait would have made it non-blocking.
BOOST_AUTO_TEST_CASE(descriptor_sink_on_a_full_pipe_waits_on_the_executor) {
    constexpr std::size_t body_size = 1u << 20;  // sixteen pipe buffers
    fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        if (r.param("X_ID").value_or("") != "big")
            return fcgi::test::echo_script(r);
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\n"),
                                  act::endless_stdout(body_size, 16384, 'y'), act::end()};
    }});
    for (bool nonblocking : {false, true}) {
        BOOST_TEST_CONTEXT((nonblocking ? "non-blocking pipe" : "blocking pipe")) {
            int fds[2];
            BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) == 0);
            const int flags_before = ::fcntl(fds[1], F_GETFL);
            asio::io_context ctx;

            // The reader starts once the other request is done, or after 10 s so that the old
            // behaviour fails the test instead of hanging it.
            std::promise<void> go;
            std::string drained;
            std::atomic<bool> waited_for_small = false;
            std::jthread reader([&, ready = go.get_future()]() mutable {
                waited_for_small = ready.wait_for(10s) == std::future_status::ready;
                drain_pipe(fds[0], drained, body_size, 5s);
            });

            auto big = fcgi::test::tagged_request("big");
            big.stdout_sink = body_sink::descriptor(fds[1]);
            std::optional<std::error_code> big_ec;
            fcgi::connection big_conn(ctx.get_executor());
            fcgi::connection small_conn(ctx.get_executor());
            int connected = 0;
            for (auto* c : {&big_conn, &small_conn})
                c->async_connect(fake.unix_endpoint(), [&](std::error_code ec) {
                    BOOST_TEST(!ec, ec.message());
                    ++connected;
                });
            BOOST_REQUIRE(run_until(ctx, [&] { return connected == 2; }));
            big_conn.async_request(big, [&](std::error_code e, fcgi::response) { big_ec = e; });
            // Until the sink has filled the pipe (a sink that writes synchronously never comes
            // back to let this check run, until the reader's fallback drains the pipe).
            auto pipe_full = [&] {
                pollfd p{fds[1], POLLOUT, 0};
                return ::poll(&p, 1, 0) == 0;
            };
            BOOST_REQUIRE(run_until(ctx, pipe_full));
            bool small_done_first = false;
            small_conn.async_request(fcgi::test::tagged_request("small"),
                                     [&](std::error_code e, fcgi::response r) {
                                         BOOST_TEST(!e, e.message());
                                         BOOST_TEST(r.body == fcgi::test::tagged_body("small"));
                                         small_done_first = !big_ec;
                                         go.set_value();
                                     });
            bool finished = run_until(
                ctx, [&] { return big_ec.has_value(); }, 30s);
            BOOST_TEST(::fcntl(fds[1], F_GETFL) == flags_before);
            reader.join();
            ::close(fds[1]);
            ::close(fds[0]);
            BOOST_TEST(finished);
            BOOST_TEST(waited_for_small.load(), "the other request waited for the pipe's reader");
            BOOST_TEST(small_done_first);
            BOOST_TEST((big_ec && !*big_ec), (big_ec ? big_ec->message() : "no completion"));
            BOOST_TEST(drained.size() == body_size);
            BOOST_TEST((drained == std::string(body_size, 'y')));
        }
    }
}

// Nobody reads the pipe at all: the request's deadline still fires, the sink's wait is cancelled
// and the pipe's flags are untouched.
BOOST_AUTO_TEST_CASE(descriptor_sink_nobody_reads_deadline_fires) {
    fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\n"),
                                  act::endless_stdout(1u << 20, 16384, 'y'), act::end()};
    }});
    for (bool nonblocking : {false, true}) {
        BOOST_TEST_CONTEXT((nonblocking ? "non-blocking pipe" : "blocking pipe")) {
            int fds[2];
            BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) == 0);
            const int flags_before = ::fcntl(fds[1], F_GETFL);
            // A failure must not hang the test: after 10 s the pipe is drained, which lets a
            // thread stuck in write() go on.
            std::promise<void> done;
            std::atomic<bool> rescued = false;
            std::jthread rescuer([&, over = done.get_future()]() mutable {
                if (over.wait_for(10s) == std::future_status::ready)
                    return;
                rescued = true;
                std::string ignored;
                drain_pipe(fds[0], ignored, 1u << 20, 5s);
            });
            auto req = fcgi::test::tagged_request("stuck");
            req.stdout_sink = body_sink::descriptor(fds[1]);
            req.timeout = 300ms;
            auto [ec, resp] = on_a_new_connection(fake.unix_endpoint(), std::move(req));
            BOOST_TEST(::fcntl(fds[1], F_GETFL) == flags_before);
            done.set_value();
            rescuer.join();
            ::close(fds[1]);
            ::close(fds[0]);
            BOOST_TEST(ec == fcgi::error::request_timeout, ec.message());
            BOOST_TEST(!rescued.load(), "the request ended only once the pipe was drained");
        }
    }
}

// A coroutine sink or source that is still waiting when its request times out is cancelled: its
// co_await ends with operation_aborted. Before, it waited on, holding its request's ID, and
// io_context::run() did not return.
BOOST_AUTO_TEST_CASE(coroutine_sink_and_source_are_cancelled_with_their_request) {
    fake_responder fake;
    for (bool sink_side : {true, false}) {
        BOOST_TEST_CONTEXT((sink_side ? "sink" : "source")) {
            bool aborted = false;
            auto wait_forever = [&aborted]() -> awaitable<void> {
                asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
                auto [ec] = co_await t.async_wait(as_tuple_awaitable);
                aborted = ec == asio::error::operation_aborted;
            };
            auto req = fcgi::test::tagged_request("slow");
            req.timeout = 200ms;
            if (sink_side) {
                req.stdout_sink =
                    body_sink::coroutine([wait_forever](std::string_view) -> awaitable<void> {
                        co_await wait_forever();
                    });
            } else {
                req.stdin_source = body_source::coroutine(
                    10, [wait_forever](asio::mutable_buffer) -> awaitable<std::size_t> {
                        co_await wait_forever();
                        co_return 0;
                    });
            }
            asio::io_context ctx;
            std::optional<std::error_code> result;
            fcgi::connection conn(ctx.get_executor());
            conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) {
                BOOST_REQUIRE(!ec);
                conn.async_request(std::move(req),
                                   [&](std::error_code e, fcgi::response) { result = e; });
            });
            BOOST_TEST(run_until(
                ctx, [&] { return result.has_value() && aborted; }, 20s));
            BOOST_TEST((result && *result == fcgi::error::request_timeout),
                       (result ? result->message() : "no completion"));
            BOOST_TEST(aborted, "the coroutine was not cancelled");
        }
    }
}

// A sink that fails once the server has ended the request (in finish(), or in a write still out
// at END_REQUEST) still hands back the script's STDERR: it was once dropped with the response
// that waited for the sink, and then its count of dropped bytes was (finish()). The diagnostics
// count what the sink took: a failed write took nothing.
BOOST_AUTO_TEST_CASE(sink_failing_after_end_request_keeps_stderr) {
    fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\nbody"),
                                  act::stderr_("PHP Warning: late\n"), act::end()};
    }});
    for (bool in_finish : {true, false}) {
        BOOST_TEST_CONTEXT((in_finish ? "finish() fails" : "the last write fails")) {
            asio::io_context ctx;
            fcgi::connection_options copts;
            copts.max_stderr_size = 12;  // "PHP Warning:" kept, 6 bytes dropped
            fcgi::connection conn(ctx.get_executor(), copts);
            connect_or_fail(ctx, conn, fake.unix_endpoint());
            auto sink = std::make_shared<late_failing_sink>();
            sink->fail_finish = in_finish;
            auto req = fcgi::test::tagged_request("late");
            req.stdout_sink = body_sink(sink);
            std::optional<std::pair<std::error_code, fcgi::response>> result;
            conn.async_request(req, [&](std::error_code ec, fcgi::response r) {
                result.emplace(ec, std::move(r));
            });
            if (!in_finish) {
                BOOST_REQUIRE(run_until(ctx, [&] { return conn.stats().requests_completed == 1; }));
                BOOST_REQUIRE(sink->held.size() == 1u);
                BOOST_TEST(!result.has_value());
                sink->held.front()(std::make_error_code(std::errc::io_error));
            }
            BOOST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
            BOOST_TEST(result->first == fcgi::error::sink_failed, result->first.message());
            BOOST_TEST(result->second.stderr_text == "PHP Warning:");
            BOOST_TEST(result->second.stderr_dropped == 6u);
            const auto& diag = result->second.diagnostics;
            const char* expected = in_finish
                                       ? "response sink's finish() failed after 4 bytes of body: "
                                       : "response sink failed after 0 bytes of body: ";
            BOOST_TEST(diag.find(expected) != std::string::npos, diag);
            BOOST_TEST(
                diag.find(std::make_error_code(std::errc::io_error).message()) != std::string::npos,
                diag);
            BOOST_TEST(conn.is_open());  // the server had ended the request: nothing to skip
        }
    }
}

// A FIFO as a file source or sink, with nothing at its other end: refused at once. open() once
// blocked the connection's thread for good, where no deadline could fire.
BOOST_AUTO_TEST_CASE(fifo_without_a_peer_is_refused_not_waited_for) {
    temp_file marker("");
    const std::string fifo = marker.path + ".fifo";
    BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    fake_responder fake;
    for (bool as_source : {true, false}) {
        BOOST_TEST_CONTEXT((as_source ? "source" : "sink")) {
            auto req = fcgi::test::tagged_request("fifo");
            if (as_source)
                req.stdin_source = body_source::file(fifo);
            else
                req.stdout_sink = body_sink::file(fifo);
            auto [ec, resp] = on_a_new_connection(fake.unix_endpoint(), std::move(req));
            BOOST_TEST(ec, "a FIFO without a peer was accepted");
            BOOST_TEST(resp.diagnostics.find(fifo) != std::string::npos, resp.diagnostics);
        }
    }
    BOOST_TEST(fake.snapshot().requests.empty());
    ::unlink(fifo.c_str());
}

// A multiplexed connection whose aborted requests keep their IDs for a minute unless the
// server ends them.
fcgi::connection_options aborted_ids_held_for_a_minute() {
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    copts.abort_timeout = 60s;
    return copts;
}

// A request abandoned on a multiplexed connection (its deadline passed) keeps its ID until the
// server ends it, here never (the server ignores ABORT_REQUEST; abort_timeout is a minute):
// its file source and sink are closed at once all the same. They stayed open until END_REQUEST
// or abort_timeout, a descriptor each per abandoned request.
BOOST_AUTO_TEST_CASE(abandoned_request_closes_its_files_while_its_id_is_held) {
    fake_responder fake({.script_for =
                             [](const fcgi::test::seen_request&) {
                                 return fcgi::test::script{};  // never answers
                             },
                         .answer_abort = false});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor(), aborted_ids_held_for_a_minute());
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    temp_file upload(pattern(100000)), output("");
    auto req = fcgi::test::tagged_request("abandoned");
    req.method = "POST";
    req.stdin_source = body_source::file(upload.path);
    req.stdout_sink = body_sink::file(output.path);
    req.timeout = 200ms;
    std::optional<std::error_code> result;
    conn.async_request(std::move(req), [&](std::error_code ec, fcgi::response) { result = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    BOOST_TEST(*result == fcgi::error::request_timeout, result->message());
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().aborts.size() == 1; }));
    BOOST_TEST(conn.is_open());
    BOOST_TEST(descriptors_open_on(upload.path) == 0);
    BOOST_TEST(descriptors_open_on(output.path) == 0);
}

// The same with the sink in the middle of a write when the request is abandoned: it is let go
// of once it calls `done`, not when the ID comes back.
BOOST_AUTO_TEST_CASE(abandoned_request_lets_go_of_a_busy_sink_when_it_is_done) {
    fake_responder fake({.script_for =
                             [](const fcgi::test::seen_request&) {
                                 // Some output, then nothing more: no END_REQUEST.
                                 return fcgi::test::script{act::stdout_("Status: 200 OK\r\n\r\nx")};
                             },
                         .answer_abort = false});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor(), aborted_ids_held_for_a_minute());
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    auto impl = std::make_shared<late_failing_sink>();
    std::weak_ptr<late_failing_sink> alive = impl;
    auto req = fcgi::test::tagged_request("busy");
    req.stdout_sink = body_sink(std::move(impl));
    req.timeout = 300ms;
    std::optional<std::error_code> result;
    conn.async_request(std::move(req), [&](std::error_code ec, fcgi::response) { result = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    BOOST_TEST(*result == fcgi::error::request_timeout, result->message());
    auto sink = alive.lock();
    BOOST_REQUIRE_MESSAGE(sink && sink->held.size() == 1, "the sink was not in a write");
    auto done = std::move(sink->held.front());
    sink->held.clear();
    sink.reset();
    BOOST_TEST(!alive.expired(), "let go of while its write was in progress");
    done({});
    BOOST_TEST(run_until(ctx, [&] { return alive.expired(); }),
               "the sink is kept until the request's ID is free");
    BOOST_TEST(conn.is_open());
}

BOOST_AUTO_TEST_SUITE_END()
