// Multi-threaded stress, built for ThreadSanitizer (the `tsan` preset runs this executable
// alone): several threads each driving their own fcgi::client, against the private php-fpm and
// the fake responder (plain and multiplexed), plus one client on a strand of an
// asio::thread_pool whose completion handlers run on the pool's threads, fed through use_future
// from plain threads and by handlers that start the next request themselves.
//
// Boost.Test is not thread-safe: worker threads only record failures, the main thread asserts.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/run_until.hpp"

using fcgi::test::fake_responder;
using fcgi::test::php_fpm;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Failures seen on worker threads, reported by the main thread.
struct failures {
    std::mutex mu;
    std::vector<std::string> list;
    void add(std::string what) {
        std::lock_guard lk(mu);
        if (list.size() < 20)  // enough to diagnose; a broken run must not flood the log
            list.push_back(std::move(what));
    }
};

// Scales request counts (FCGI_STRESS_SCALE, default 1): the TSan pass is ~10x slower.
int scaled(int n) {
    const char* s = std::getenv("FCGI_STRESS_SCALE");
    double f = s ? std::atof(s) : 1.0;
    return std::max(1, static_cast<int>(n * (f > 0 ? f : 1.0)));
}

// What one driver thread achieved.
struct driver_result {
    int started = 0;
    int ok = 0;
    int failed = 0;
    bool finished = false;  // every started request completed and the client shut down
};

// Drives `total` requests through a client of its own on the calling thread, `window` at a
// time, stopping to start new ones once `budget` passed. `check` validates a response and
// returns an empty string when it is right.
driver_result drive_client(fcgi::client_options opts, int total, int window,
                           std::function<fcgi::request(int)> make,
                           std::function<std::string(int, const fcgi::response&)> check,
                           failures& fails, const std::string& name,
                           std::chrono::seconds budget = 60s) {
    asio::io_context ctx;
    driver_result res;
    std::optional<fcgi::client> client;
    client.emplace(ctx.get_executor(), std::move(opts));
    auto stop_at = steady::now() + budget;
    int done = 0;
    std::function<void()> start_one = [&] {
        int i = res.started++;
        auto req = make(i);
        client->async_request(std::move(req), [&, i](std::error_code ec, fcgi::response r) {
            ++done;
            if (ec) {
                ++res.failed;
                fails.add(name + " request " + std::to_string(i) + ": " + ec.message() + " " +
                          r.diagnostics);
            } else if (auto bad = check(i, r); !bad.empty()) {
                ++res.failed;
                fails.add(name + " request " + std::to_string(i) + ": " + bad);
            } else {
                ++res.ok;
            }
            if (res.started < total && steady::now() < stop_at)
                start_one();
        });
    };
    for (int i = 0; i < window && i < total; ++i)
        start_one();
    bool all = fcgi::test::run_until(
        ctx, [&] { return done == res.started; }, budget + 30s);
    std::optional<std::error_code> shut;
    client->async_shutdown([&](std::error_code ec) { shut = ec; });
    bool down = fcgi::test::run_until(
        ctx, [&] { return shut.has_value(); }, 10s);
    client.reset();
    res.finished = all && down && !*shut;
    if (!res.finished)
        fails.add(name + ": did not finish (" + std::to_string(done) + " of " +
                  std::to_string(res.started) + " completed)");
    return res;
}

fcgi::request php_echo(int i) {
    fcgi::request r;
    r.script = php_fpm::script("echo.php");
    r.query = "i=" + std::to_string(i);
    if (i % 3 == 0)
        r.body = std::string(static_cast<std::size_t>(100 + i % 5000), 'b');
    return r;
}

std::string php_echo_check(int i, const fcgi::response& r) {
    std::string want = "\"query\":\"i=" + std::to_string(i) + "\"";
    if (r.status != 200 || r.body.find(want) == std::string::npos)
        return "status " + std::to_string(r.status) + " body " + r.body.substr(0, 200);
    return {};
}

std::string tag(const std::string& who, int i) {
    return who + "-" + std::to_string(i);
}

// Two plain threads each send `per_thread` requests through `client` with use_future, one at a
// time, blocking on each: calls from outside the client's executor. `make` builds the request
// for an ID, `check` says what is wrong with its response (empty: right). Returns how many
// were right; the rest go to `fails`.
int submit_from_plain_threads(
    fcgi::client& client, const std::string& who, int per_thread,
    const std::function<fcgi::request(const std::string&)>& make,
    const std::function<std::string(const std::string&, const fcgi::response&)>& check,
    failures& fails) {
    std::atomic<int> ok{0};
    std::vector<std::thread> submitters;
    for (int t = 0; t < 2; ++t)
        submitters.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto id = tag(who + std::to_string(t), i);
                auto f = client.async_request(make(id), asio::use_future);
                if (f.wait_for(30s) != std::future_status::ready) {
                    fails.add(id + ": future not ready within 30 s");
                    return;
                }
                try {
                    auto r = f.get();
                    if (auto bad = check(id, r); !bad.empty())
                        fails.add(id + ": " + bad);
                    else
                        ++ok;
                } catch (const std::system_error& e) {
                    fails.add(id + ": " + e.what());
                }
            }
        });
    for (auto& th : submitters)
        th.join();
    return ok.load();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(stress_threads)

// Four threads, four clients, two servers: nothing is shared but the servers, so TSan checks
// that the library keeps no hidden global state (the error categories, the allocator caches)
// and that clients on different threads do not interfere.
BOOST_AUTO_TEST_CASE(one_client_per_thread) {
    php_fpm fpm({.children = 4, .tcp = false});
    fake_responder fake({.interleave = 4});
    failures fails;
    std::vector<driver_result> results(4);
    std::vector<std::thread> threads;
    auto started = steady::now();
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            fcgi::client_options o;
            o.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
            o.max_connections_per_endpoint = 2;  // 2 threads x 2 = pm.max_children
            o.connection.request_timeout = 20s;
            results[t] = drive_client(o, scaled(1000), 4, php_echo, php_echo_check, fails,
                                      "php-fpm thread " + std::to_string(t));
        });
    for (int t = 2; t < 4; ++t)
        threads.emplace_back([&, t] {
            fcgi::client_options o;
            o.endpoints = {t == 2 ? fake.tcp_endpoint() : fake.unix_endpoint()};
            o.max_connections_per_endpoint = 2;
            o.mode = fcgi::multiplexing::on;
            o.max_requests_per_connection = 8;
            o.connection.request_timeout = 20s;
            auto who = "t" + std::to_string(t);
            results[t] = drive_client(
                o, scaled(5000), 16, [&](int i) { return fcgi::test::tagged_request(tag(who, i)); },
                [&](int i, const fcgi::response& r) {
                    return r.body == fcgi::test::tagged_body(tag(who, i)) ? std::string()
                                                                          : "body " + r.body;
                },
                fails, "fake thread " + std::to_string(t));
        });
    for (auto& th : threads)
        th.join();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started);
    int total = 0;
    for (std::size_t t = 0; t < results.size(); ++t) {
        BOOST_TEST_CONTEXT("thread " << t) {
            BOOST_TEST(results[t].finished);
            BOOST_TEST(results[t].failed == 0);
            BOOST_TEST(results[t].ok == results[t].started);
            BOOST_TEST(results[t].ok > 0);
        }
        total += results[t].ok;
    }
    BOOST_TEST_MESSAGE("4 threads: " << total << " requests in " << ms.count() << " ms");
    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_TEST(fails.list.empty());
    BOOST_TEST(fake.snapshot().violations.empty());
}

// One client on a strand of a thread pool (client.hpp: async_request from any thread, the rest
// on the executor). Two plain threads submit with use_future and block on the futures; on the
// pool, handlers chain further requests from inside their completion; stats() is read on the
// strand.
BOOST_AUTO_TEST_CASE(client_on_a_thread_pool_strand) {
    php_fpm fpm({.children = 2, .tcp = false});
    fake_responder fake({.interleave = 2});
    asio::thread_pool pool(3);
    auto strand = asio::make_strand(pool);
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint(), fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 2;
    opts.connection.request_timeout = 20s;
    std::optional<fcgi::client> client;
    client.emplace(strand, opts);
    failures fails;

    // Responses come from either endpoint: the fake echoes X_ID, php-fpm's echo.php the query.
    auto make = [](const std::string& id) {
        auto r = fcgi::test::tagged_request(id);
        r.script = php_fpm::script("echo.php");
        r.query = "id=" + id;
        return r;
    };
    auto check = [](const std::string& id, const fcgi::response& r) {
        bool fake_ok = r.body == fcgi::test::tagged_body(id);
        bool php_ok = r.body.find("\"query\":\"id=" + id + "\"") != std::string::npos;
        return fake_ok || php_ok ? std::string() : "body " + r.body.substr(0, 200);
    };

    // Handlers that start the next request themselves, on the pool's threads.
    const int chained_total = scaled(2000);
    std::atomic<int> chained_started{0}, chained_done{0}, off_strand{0};
    std::promise<void> chains_done;
    std::function<void()> chain = [&] {
        int i = chained_started++;
        if (i >= chained_total)
            return;
        auto id = tag("chain", i);
        client->async_request(make(id), [&, id](std::error_code ec, fcgi::response r) {
            if (!strand.running_in_this_thread())
                ++off_strand;
            if (ec)
                fails.add(id + ": " + ec.message() + " " + r.diagnostics);
            else if (auto bad = check(id, r); !bad.empty())
                fails.add(id + ": " + bad);
            chain();
            if (++chained_done == chained_total)
                chains_done.set_value();
        });
    };
    for (int i = 0; i < 4; ++i)
        asio::post(strand, [&] { chain(); });

    // Plain threads blocking on futures.
    const int per_thread = scaled(500);
    const int future_ok = submit_from_plain_threads(*client, "fut", per_thread, make, check, fails);
    auto chains = chains_done.get_future();
    BOOST_REQUIRE_MESSAGE(chains.wait_for(60s) == std::future_status::ready,
                          "chained requests did not finish within 60 s");

    auto stats = asio::post(strand, asio::use_future([&] { return client->stats(); })).get();
    auto shut = client->async_shutdown(asio::use_future);
    BOOST_REQUIRE(shut.wait_for(10s) == std::future_status::ready);
    BOOST_CHECK_NO_THROW(shut.get());
    // Destroyed on the strand: ~client dispatches its stop there.
    asio::post(strand, asio::use_future([&] { client.reset(); })).get();
    pool.join();

    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_TEST(fails.list.empty());
    BOOST_TEST(future_ok == 2 * per_thread);
    BOOST_TEST(chained_done.load() == chained_total);
    BOOST_TEST(off_strand.load() == 0);
    BOOST_TEST(stats.completed == static_cast<std::uint64_t>(2 * per_thread + chained_total));
    BOOST_TEST(stats.failed == 0u);
    BOOST_TEST_MESSAGE("thread pool client: " << stats.completed << " requests, fake saw "
                                              << fake.snapshot().requests.size());
    BOOST_TEST(fake.snapshot().violations.empty());
}

// docs/performance.md says an io_context with ASIO_CONCURRENCY_HINT_UNSAFE_IO (no lock per
// socket operation) is safe for a client while one thread runs it, as fcgi bench and fcgi
// fanout do: the library touches its sockets only on that thread. Here plain threads submit
// with use_future, so requests hop onto the context from elsewhere, and the endpoint is a host
// name, so each connect's resolution completes from Asio's resolver thread. Under TSan a socket
// touched from another thread shows as a race on the socket's state.
BOOST_AUTO_TEST_CASE(client_on_a_context_without_socket_locks) {
    fake_responder fake;
    asio::io_context ctx{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    auto work = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run(); });
    // However the test ends (a failed REQUIRE throws), the runner is joined: a joinable thread's
    // destructor would end the whole binary.
    struct joiner {
        asio::io_context& ctx;
        std::thread& runner;
        ~joiner() {
            if (runner.joinable()) {
                ctx.stop();
                runner.join();
            }
        }
    } join_at_exit{ctx, runner};
    fcgi::client_options opts;
    // "" is both loopback addresses; where the resolver lists ::1 first it refuses (the fake
    // listens on 127.0.0.1) and the next connects.
    opts.endpoints = {fcgi::endpoint::tcp("", fake.tcp_endpoint().port)};
    opts.max_connections_per_endpoint = 2;
    opts.max_requests_per_connection_lifetime = 7;  // reconnects: more resolutions and connects
    opts.connection.request_timeout = 20s;
    std::optional<fcgi::client> client;
    client.emplace(ctx.get_executor(), opts);
    failures fails;
    const int per_thread = scaled(300);
    const int ok = submit_from_plain_threads(
        *client, "unlocked", per_thread,
        [](const std::string& id) { return fcgi::test::tagged_request(id); },
        [](const std::string& id, const fcgi::response& r) {
            return r.body == fcgi::test::tagged_body(id) ? std::string()
                                                         : "body " + r.body.substr(0, 200);
        },
        fails);
    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_TEST(fails.list.empty());
    BOOST_TEST(ok == 2 * per_thread);
    auto stats_f = asio::post(ctx, asio::use_future([&] { return client->stats(); }));
    BOOST_REQUIRE(stats_f.wait_for(10s) == std::future_status::ready);
    auto stats = stats_f.get();
    auto shut = client->async_shutdown(asio::use_future);
    BOOST_REQUIRE(shut.wait_for(10s) == std::future_status::ready);
    BOOST_CHECK_NO_THROW(shut.get());
    asio::post(ctx, asio::use_future([&] { client.reset(); })).get();
    work.reset();
    runner.join();

    BOOST_REQUIRE(stats.endpoints.size() == 1u);
    // 600 requests at most 7 a connection: at least 86 connects, each through a resolution.
    BOOST_TEST(stats.endpoints[0].connects >= static_cast<std::uint64_t>((2 * per_thread + 6) / 7));
    BOOST_TEST(fake.snapshot().violations.empty());
}

// One io_context run by two threads, the client on a strand of it, and callers elsewhere on
// the same context: coroutines on a strand of their own and on the plain executor. A caller
// must stay on its strand after each co_await, and the client's code on the client's. Both
// once broke: the inline fast paths asked any_executor::target<T>(), which does not check T, and
// took any strand for the io_context itself, so every thread running the context passed for
// being inside it (200 of 200 resumes off the caller's strand; TSan races in the pool).
BOOST_AUTO_TEST_CASE(callers_on_other_strands_of_the_clients_context) {
    fake_responder fake({.interleave = 2});
    asio::io_context ctx;
    auto guard = asio::make_work_guard(ctx);
    auto client_strand = asio::make_strand(ctx);
    auto caller_strand = asio::make_strand(ctx);
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 3;
    opts.connection.request_timeout = 20s;
    std::optional<fcgi::client> client(std::in_place, client_strand, opts);
    constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

    const int per_caller = scaled(300);
    std::atomic<int> ok{0}, off_strand{0}, finished{0};
    failures fails;
    auto caller = [&](std::string who, bool on_strand) -> asio::awaitable<void> {
        for (int i = 0; i < per_caller; ++i) {
            auto id = tag(who, i);
            auto [ec, r] = co_await client->async_request(fcgi::test::tagged_request(id), as_tuple);
            if (on_strand && !caller_strand.running_in_this_thread())
                ++off_strand;
            if (ec)
                fails.add(id + ": " + ec.message() + " " + r.diagnostics);
            else if (r.body != fcgi::test::tagged_body(id))
                fails.add(id + ": body " + r.body.substr(0, 200));
            else
                ++ok;
        }
    };
    std::promise<void> all_done;
    auto on_end = [&](std::exception_ptr e) {
        if (e)
            fails.add("a caller threw");
        if (++finished == 4)
            all_done.set_value();
    };
    asio::co_spawn(caller_strand, caller("strand-a", true), on_end);
    asio::co_spawn(caller_strand, caller("strand-b", true), on_end);
    asio::co_spawn(ctx, caller("plain-a", false), on_end);
    asio::co_spawn(ctx, caller("plain-b", false), on_end);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&] { ctx.run(); });
    const bool done = all_done.get_future().wait_for(120s) == std::future_status::ready;
    asio::post(client_strand, [&] { client.reset(); });
    guard.reset();
    for (auto& th : threads)
        th.join();

    BOOST_REQUIRE(done);
    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_TEST(fails.list.empty());
    BOOST_TEST(ok.load() == 4 * per_caller);
    BOOST_TEST(off_strand.load() == 0);
    BOOST_TEST(fake.snapshot().violations.empty());
}

// async_shutdown from a plain thread while requests are in flight on a client made from a
// thread pool (so on a strand of it), their handlers bound to an io_context run by a thread of
// its own, where they queue up: the shutdown, whose handler runs on the client's strand,
// completes only after every one of them has returned. Each release is posted back from that
// thread to the client's strand (session 24's MT review #1; client_faults has the deterministic
// case).
BOOST_AUTO_TEST_CASE(shutdown_after_handlers_on_another_thread) {
    fake_responder fake;
    asio::io_context handler_ctx;
    auto guard = asio::make_work_guard(handler_ctx);
    std::thread handler_thread([&] { handler_ctx.run(); });
    asio::thread_pool pool(2);
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 4;
    std::optional<fcgi::client> client;
    client.emplace(pool, opts);
    failures fails;
    const int total = scaled(400);
    std::atomic<int> returned{0};
    for (int i = 0; i < total; ++i) {
        auto id = tag("h", i);
        client->async_request(
            fcgi::test::tagged_request(id),
            asio::bind_executor(handler_ctx, [&, id](std::error_code ec, fcgi::response r) {
                if (ec)
                    fails.add(id + ": " + ec.message() + " " + r.diagnostics);
                // A handler with work to do: its thread falls behind the responses, so many
                // wait there when the last one comes.
                std::this_thread::sleep_for(300us);
                ++returned;
            }));
    }
    std::promise<int> at_shutdown;  // what `returned` was when the shutdown completed
    client->async_shutdown([&](std::error_code ec) {
        if (ec)
            fails.add("shutdown: " + ec.message());
        at_shutdown.set_value(returned.load());
    });
    auto seen = at_shutdown.get_future();
    BOOST_REQUIRE_MESSAGE(seen.wait_for(60s) == std::future_status::ready,
                          "async_shutdown did not complete within 60 s");
    auto when_done = seen.get();
    BOOST_TEST_MESSAGE("handlers returned when the shutdown completed: " << when_done);
    BOOST_TEST(when_done == total);
    asio::post(pool, [&] { client.reset(); });
    pool.join();
    guard.reset();
    handler_thread.join();
    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_TEST(fails.list.empty());
}

// Plain code owns a connection on its own thread while another runs the io_context (as
// examples/run_script_future.cpp does) and destroys it there, idle or with a request in flight.
// The destructor once closed the connection on the calling thread, racing the reader on the
// io_context's thread (TSan reported it); it now closes on the executor. The in-flight request
// completes with operation_aborted either way.
BOOST_AUTO_TEST_CASE(connection_destroyed_off_its_thread) {
    fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        if (r.param("X_ID").value_or("") == "hang")
            return fcgi::test::script{};  // never answers
        return fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    auto work = asio::make_work_guard(ctx);
    std::thread io([&] { ctx.run(); });
    int ok = 0, aborted = 0;
    std::string unexpected;
    const int rounds = scaled(20);
    for (int i = 0; i < rounds; ++i) {
        std::future<fcgi::response> hanging;
        {
            fcgi::connection conn(ctx.get_executor());
            conn.async_connect(fake.unix_endpoint(), asio::use_future).get();
            auto resp = conn.async_request(fcgi::test::tagged_request("a"), asio::use_future).get();
            ok += resp.body == fcgi::test::tagged_body("a");
            if (i % 2 == 1)
                hanging = conn.async_request(fcgi::test::tagged_request("hang"), asio::use_future);
        }  // destroyed here, on this thread
        if (hanging.valid()) {
            try {
                hanging.get();
                unexpected = "a request in flight completed without an error";
            } catch (const std::system_error& e) {
                if (e.code() == asio::error::operation_aborted)
                    ++aborted;
                else
                    unexpected = e.code().message();
            }
        }
    }
    work.reset();
    io.join();
    BOOST_TEST(unexpected.empty(), unexpected);
    BOOST_TEST(ok == rounds);
    BOOST_TEST(aborted == rounds / 2);
}

// Descriptor sinks on pipes with slow readers, from connections on strands of a thread pool:
// the sinks' writable waits are queued and armed on one pool thread while the reactor runs on
// another (the wait is queued before the one-shot event is armed, so no edge is lost). Pipes
// shrunk to one page make nearly every chunk wait. Each body must arrive whole, in its own fill
// byte, and every request complete.
BOOST_AUTO_TEST_CASE(descriptor_sinks_on_a_thread_pool) {
    constexpr std::size_t body_size = 512u << 10;
    auto fill_of = [](const std::string& id) {
        return static_cast<char>('a' + std::hash<std::string>{}(id) % 26);
    };
    fake_responder fake({.script_for = [&](const fcgi::test::seen_request& r) {
        const std::string id = r.param("X_ID").value_or("");
        return fcgi::test::script{fcgi::test::act::stdout_("Content-Type: text/plain\r\n\r\n"),
                                  fcgi::test::act::endless_stdout(body_size, 16384, fill_of(id)),
                                  fcgi::test::act::end()};
    }});
    const int connections = 4;
    const int per_connection = scaled(6);
    struct piped {
        std::string id;
        int fds[2] = {-1, -1};
        std::string drained;
        std::thread reader;
        std::error_code ec;
        bool done = false;
    };
    std::vector<piped> runs(static_cast<std::size_t>(connections * per_connection));
    std::atomic<bool> stop_readers{false};
    for (std::size_t i = 0; i < runs.size(); ++i) {
        auto& r = runs[i];
        r.id = "pipe" + std::to_string(i);
        const bool nonblocking = i % 2 == 1;
        BOOST_REQUIRE(::pipe2(r.fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) == 0);
        // The smallest pipe there is, so that nearly every chunk waits for room.
        BOOST_TEST(::fcntl(r.fds[1], F_SETPIPE_SZ, 4096) >= 0);
        // A reader a page at a time, until the whole body, the end of the pipe, or a quiet
        // pipe once told to stop (the runs are over, or failed). Not stopping at the word
        // alone: the sink's last write may still be in the pipe when the runs are over.
        r.reader = std::thread([&r, &stop_readers] {
            char buf[4096];
            while (r.drained.size() < body_size) {
                pollfd p{r.fds[0], POLLIN, 0};
                int ready = ::poll(&p, 1, 100);
                if (ready == 0 && stop_readers)
                    return;
                if (ready == 0 || (ready < 0 && errno == EINTR))
                    continue;
                if (ready < 0)
                    return;
                ssize_t n = ::read(r.fds[0], buf, sizeof buf);
                if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
                    return;
                if (n > 0)
                    r.drained.append(buf, static_cast<std::size_t>(n));
            }
        });
    }
    asio::thread_pool pool(3);
    failures fails;
    std::atomic<int> finished{0};
    std::promise<void> all_done;
    for (int c = 0; c < connections; ++c) {
        auto strand = asio::make_strand(pool);
        asio::co_spawn(
            strand,
            [&, c, strand]() -> asio::awaitable<void> {
                constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
                fcgi::connection conn(strand);
                auto [cec] = co_await conn.async_connect(fake.unix_endpoint(), as_tuple);
                if (cec)
                    fails.add("connect: " + cec.message());
                for (int k = 0; k < per_connection && !cec; ++k) {
                    auto& r = runs[static_cast<std::size_t>(c * per_connection + k)];
                    auto req = fcgi::test::tagged_request(r.id);
                    req.stdout_sink = fcgi::body_sink::descriptor(r.fds[1]);
                    req.timeout = 60s;  // a sink stuck for good fails the run, not hangs it
                    auto [ec, resp] = co_await conn.async_request(std::move(req), as_tuple);
                    r.ec = ec;
                    r.done = true;
                    if (ec)
                        fails.add(r.id + ": " + ec.message() + " " + resp.diagnostics);
                }
            },
            [&](std::exception_ptr e) {
                if (e)
                    fails.add("a connection's coroutine threw");
                if (++finished == connections)
                    all_done.set_value();
            });
    }
    const bool in_time = all_done.get_future().wait_for(120s) == std::future_status::ready;
    if (!in_time)
        pool.stop();  // coroutines still waiting would keep join() from returning
    pool.join();
    stop_readers = true;
    for (auto& r : runs) {
        ::close(r.fds[1]);  // ends a reader still waiting (a failed run)
        r.reader.join();
        ::close(r.fds[0]);
    }
    for (const auto& f : fails.list)
        BOOST_TEST_MESSAGE(f);
    BOOST_REQUIRE(in_time);
    BOOST_TEST(fails.list.empty());
    for (const auto& r : runs) {
        BOOST_TEST_CONTEXT(r.id) {
            BOOST_TEST(r.done);
            BOOST_TEST(!r.ec, r.ec.message());
            BOOST_TEST(r.drained.size() == body_size);
            BOOST_TEST((r.drained == std::string(r.drained.size(), fill_of(r.id))));
        }
    }
}

// A coroutine on one io_context races requests and fan-outs to a client on another (its own
// thread) against timers that expire about when the responses do: `||` emits the cancellation
// on the coroutine's thread while the operation may be completing on the client's. The slot
// was once cleared on the client's thread, racing that emit (TSan); it is now cleared on the
// handler's executor, where the emit happens.
BOOST_AUTO_TEST_CASE(cancellation_emitted_from_another_executor) {
    using namespace asio::experimental::awaitable_operators;
    constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
    fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), fcgi::test::act::delay(1ms));
        return s;
    }});
    asio::io_context client_ctx;
    auto guard = asio::make_work_guard(client_ctx);
    std::thread client_thread([&] { client_ctx.run(); });
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 2;
    std::optional<fcgi::client> client(std::in_place, client_ctx.get_executor(), opts);

    asio::io_context caller_ctx;
    const int rounds = scaled(600);
    int request_won = 0, timer_won = 0, fanout_won = 0;
    std::string unexpected;
    bool done = false;
    asio::co_spawn(
        caller_ctx,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(caller_ctx);
            for (int i = 0; i < rounds; ++i) {
                const auto id = tag("x", i);
                timer.expires_after(std::chrono::microseconds(300 + (i * 37) % 1700));
                if (i % 4 != 3) {
                    auto r =
                        co_await (client->async_request(fcgi::test::tagged_request(id), as_tuple) ||
                                  timer.async_wait(as_tuple));
                    if (r.index() == 1) {
                        ++timer_won;
                        continue;
                    }
                    auto& [ec, resp] = std::get<0>(r);
                    if (ec || resp.body != fcgi::test::tagged_body(id))
                        unexpected = id + ": " + ec.message() + " " + resp.body;
                    ++request_won;
                } else {
                    std::vector<fcgi::request> batch{fcgi::test::tagged_request(id + "a"),
                                                     fcgi::test::tagged_request(id + "b")};
                    auto r = co_await (fcgi::async_fanout(*client, std::move(batch), 2, as_tuple) ||
                                       timer.async_wait(as_tuple));
                    if (r.index() == 1)
                        ++timer_won;
                    else
                        ++fanout_won;
                }
            }
        },
        [&](std::exception_ptr e) {
            if (e)
                unexpected = "the coroutine threw";
            done = true;
        });
    const bool finished = fcgi::test::run_until(
        caller_ctx, [&] { return done; }, 120s);
    asio::post(client_ctx, [&] { client.reset(); });
    guard.reset();
    client_thread.join();
    BOOST_REQUIRE(finished);
    BOOST_TEST(unexpected.empty(), unexpected);
    BOOST_TEST(request_won + timer_won + fanout_won == rounds);
    BOOST_TEST_MESSAGE("cross-executor races: requests won " << request_won << ", fan-outs won "
                                                             << fanout_won << ", timers won "
                                                             << timer_won);
    BOOST_TEST(fake.snapshot().violations.empty());
}

BOOST_AUTO_TEST_SUITE_END()
