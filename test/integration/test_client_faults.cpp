// fcgi::client under faults: queueing beyond the pool, workers that exit after each request
// (pm.max_requests), php-fpm restarted in the middle of a fan-out, heavy multiplexing, every
// fault of the scripted responder against a pool, and cancellation, shutdown and destruction.
#include <algorithm>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fcgi/body_sink.hpp"
#include "fcgi/body_source.hpp"
#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "fcgi/fanout.hpp"
#include "support/fake_responder.hpp"
#include "support/held_sink.hpp"
#include "support/php_fpm.hpp"
#include "support/run_until.hpp"
#include "support/temp_file.hpp"
#include "support/unaccepted_listener.hpp"

namespace act = fcgi::test::act;
using fcgi::protocol::protocol_status;
using fcgi::test::fake_responder;
using fcgi::test::fake_snapshot;
using fcgi::test::php_fpm;
using fcgi::test::seen_request;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using fcgi::test::run_until;

// Runs `ctx` until it has no work left; false when something still kept it busy after `limit`
// (a timer or socket operation the client failed to cancel).
bool drains(asio::io_context& ctx, std::chrono::milliseconds limit = 5s) {
    ctx.restart();
    ctx.run_for(limit);
    return ctx.stopped();
}

// For a script_for whose request is never answered: wakes a run_until waiting on the client's
// io_context, so a predicate on the responder's state is checked again as soon as it changed
// (the request is recorded before script_for runs).
void wake(asio::io_context& ctx) {
    asio::post(ctx, [] {});
}

// Milliseconds since `start`.
long long ms_since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

// The completion of one client request.
struct outcome {
    bool done = false;
    int calls = 0;
    std::error_code ec;
    fcgi::response resp;
};

// A completion handler that records into `out` (which must stay put).
auto recorder(outcome& out) {
    return [&out](std::error_code ec, fcgi::response r) {
        ++out.calls;
        out.done = true;
        out.ec = ec;
        out.resp = std::move(r);
    };
}

// Starts `req` on `c`; `out` records the completion.
void start(fcgi::client& c, fcgi::request req, outcome& out) {
    c.async_request(std::move(req), recorder(out));
}

// Outcomes by X_ID; std::map keeps references to its elements valid.
using outcomes = std::map<std::string, outcome>;

bool all_done(const outcomes& o) {
    for (const auto& [id, out] : o)
        if (!out.done)
            return false;
    return true;
}

// Starts tagged requests "<prefix>0".."<prefix><n-1>" on `c`, each recorded in `o`.
// Checks that every request of `o` succeeded with the echo of its own tag.
void expect_echoed(const outcomes& o) {
    for (const auto& [id, out] : o) {
        BOOST_TEST(!out.ec, id << ": " << out.ec.message() << ": " << out.resp.diagnostics);
        BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id));
    }
}

void start_tagged(fcgi::client& c, const std::string& prefix, int n, outcomes& o) {
    for (int i = 0; i < n; ++i)
        start(c, fcgi::test::tagged_request(prefix + std::to_string(i)),
              o[prefix + std::to_string(i)]);
}

// Starts tagged request `id` on `c`, recorded in `o`; its completion also appends `id` to
// `order`.
void start_ordered(fcgi::client& c, const std::string& id, outcomes& o,
                   std::vector<std::string>& order) {
    outcome& out = o[id];
    c.async_request(fcgi::test::tagged_request(id),
                    [&out, &order, id](std::error_code ec, fcgi::response r) {
                        order.push_back(id);
                        ++out.calls;
                        out.done = true;
                        out.ec = ec;
                        out.resp = std::move(r);
                    });
}

// How many times the responder received a request with this X_ID.
std::size_t times_seen(const fake_snapshot& s, const std::string& id) {
    std::size_t n = 0;
    for (const auto& r : s.requests)
        n += r.param("X_ID") == id;
    return n;
}

// Shuts `c` down gracefully and checks that it completes and leaves no work behind.
void shutdown(asio::io_context& ctx, fcgi::client& c) {
    std::optional<std::error_code> result;
    c.async_shutdown([&](std::error_code ec) { result = ec; });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return result.has_value(); }, 10s),
                          "async_shutdown did not complete within 10 s");
    BOOST_TEST(!*result, result->message());
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after shutdown");
}

// Blocks the responder's thread inside script_for until opened: a request held on the server
// for exactly as long as the test needs, without guessing delays. Opened at the latest by the
// `opener` the test declares after the responder, so the responder's thread can always be
// joined; the wait itself is bounded too.
struct gate {
    std::promise<void> promise;
    std::shared_future<void> opened = promise.get_future().share();
    std::atomic<bool> is_open{false};
    void open() {
        if (!is_open.exchange(true))
            promise.set_value();
    }
    void wait() const { opened.wait_for(20s); }
};
struct opener {
    std::shared_ptr<gate> g;
    ~opener() { g->open(); }
};

// A script_for that counts the attempts at each X_ID and ends an attempt with the status
// `refuse(id, attempt)` gives (attempts count from 1), or echoes it when that is empty.
template <class Refuse>
auto refusing_by_attempt(Refuse refuse) {
    auto attempts = std::make_shared<std::map<std::string, int>>();  // responder thread only
    return [attempts, refuse](const seen_request& r) -> fcgi::test::script {
        auto id = r.param("X_ID").value_or("");
        if (std::optional<protocol_status> s = refuse(id, ++(*attempts)[id]))
            return {act::end(*s)};
        return fcgi::test::echo_script(r);
    };
}

// A pool of `connections` to `where`, one request at a time on each; a refused or overloaded
// endpoint backs off for `backoff` first.
fcgi::client_options plain_pool(fcgi::endpoint where, std::size_t connections,
                                std::chrono::milliseconds backoff) {
    fcgi::client_options opts;
    opts.endpoints = {std::move(where)};
    opts.max_connections_per_endpoint = connections;
    opts.mode = fcgi::multiplexing::off;
    opts.initial_backoff = backoff;
    opts.max_backoff = std::max(opts.max_backoff, backoff);  // not cut to the default 1 s
    return opts;
}

// A pool over two endpoints, one connection each (one request at a time on it).
fcgi::client_options one_connection_each(fcgi::endpoint first, fcgi::endpoint second,
                                         std::chrono::milliseconds backoff) {
    auto opts = plain_pool(std::move(first), 1, backoff);
    opts.endpoints.push_back(std::move(second));
    return opts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(client_faults)

// The client's twin of connection_faults/pending_request_keeps_run_going_for_a_handler_elsewhere:
// a user's handler on another executor (use_future) counts no work on the client's io_context,
// and a reader paused for a sink that completes from a thread of its own leaves nothing pending
// there either. The pool's own handler to its connection must count it (dropping that tracking,
// to save an atomic pair a request, was tried and is what this catches). No idle or relief
// timer here: either would keep run() going for a while and hide the bug.
BOOST_AUTO_TEST_CASE(pending_request_keeps_run_going_for_a_handler_elsewhere) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.idle_timeout = 0ms;
    opts.backlog_relief = 0ms;
    opts.connection.sink_buffer_size = 1;  // every chunk waits for the sink
    fcgi::client client(ctx.get_executor(), opts);

    fcgi::test::held_sink held;
    auto req = fcgi::test::tagged_request("elsewhere");
    req.stdout_sink = held.sink();
    auto response = client.async_request(std::move(req), asio::use_future);
    // Stopped at the end: the pooled connection's reader would keep run() going.
    BOOST_TEST(!fcgi::test::run_returned_early(ctx, held, response, [&] { client.stop(); }),
               "io_context::run() returned with the request pending");
    BOOST_REQUIRE(response.wait_for(0s) == std::future_status::ready);
    auto r = response.get();
    BOOST_TEST(held.body() == fcgi::test::tagged_body("elsewhere"));
    BOOST_TEST(r.status == 200);
}

// -- 1. More concurrency than connections: requests queue in the client; php-fpm never sees
// more connections than it has workers (PROTOCOL.md item 2: a connection beyond
// pm.max_children would wait in the listen backlog forever).
BOOST_AUTO_TEST_CASE(concurrency_64_queues_on_a_pool_of_4) {
    php_fpm fpm({.children = 4, .tcp = false});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 4;
    fcgi::client client(ctx.get_executor(), opts);

    constexpr std::size_t n = 256;
    std::vector<fcgi::request> reqs(n);
    for (auto& r : reqs) {
        r.script = php_fpm::script("sleep.php");
        r.query = "ms=5";
    }
    std::vector<std::optional<fcgi::fanout_result>> results(n);
    std::size_t max_queued = 0, max_open = 0, max_in_flight = 0;
    bool done = false;
    auto started = steady::now();
    fcgi::async_fanout_each(
        client, std::move(reqs), 64,
        [&](std::size_t i, fcgi::fanout_result r) {
            auto s = client.stats();
            max_queued = std::max(max_queued, s.queued);
            max_open = std::max(max_open, s.endpoints.at(0).open);
            max_in_flight = std::max(max_in_flight, s.endpoints.at(0).in_flight);
            BOOST_TEST(!results[i].has_value(), "request " << i << " completed twice");
            results[i] = std::move(r);
        },
        [&](std::error_code) { done = true; });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done; }, 60s),
                          "fan-out of 256 requests at concurrency 64 did not finish in 60 s");
    BOOST_TEST_MESSAGE("256 requests, concurrency 64, pool of 4: " << ms_since(started) << " ms");

    std::set<std::string> pids;
    std::size_t ok = 0;
    for (std::size_t i = 0; i < n; ++i) {
        BOOST_REQUIRE_MESSAGE(results[i].has_value(), "request " << i << " never completed");
        const auto& r = *results[i];
        if (!r.ec && r.resp.status == 200) {
            ++ok;
            pids.insert(r.resp.body);
        } else {
            BOOST_ERROR("request " << i << ": " << r.ec.message() << " " << r.resp.diagnostics);
        }
    }
    BOOST_TEST(ok == n);
    BOOST_TEST(pids.size() <= 4u);
    BOOST_TEST(pids.size() >= 1u);
    auto s = client.stats();
    BOOST_TEST(s.endpoints.at(0).connects <= 4u);
    BOOST_TEST(s.endpoints.at(0).connect_failures == 0u);
    BOOST_TEST(max_open <= 4u);
    BOOST_TEST(max_in_flight <= 4u);
    BOOST_TEST(max_queued > 0u);  // the other 60 really waited in the client's queue
    BOOST_TEST(s.completed == n);
    BOOST_TEST(s.failed == 0u);
    BOOST_TEST(s.retries == 0u);
    shutdown(ctx, client);
}

// -- 2. pm.max_requests = 1: the worker answers one request, then closes. A request sent on
// that kept-alive connection gets no answer. Only idempotent ones may be retried (PROTOCOL.md
// item 7); a POST must fail and must not be sent twice.
BOOST_AUTO_TEST_CASE(max_requests_one_post_fails_get_is_retried) {
    php_fpm fpm({.children = 1, .max_requests = 1, .tcp = false});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.unix_endpoint())};
    opts.max_connections_per_endpoint = 1;
    fcgi::client client(ctx.get_executor(), opts);

    // A GET and a POST together: the pool has one connection, so the POST waits for the GET
    // and is handed the same connection the moment the GET's END_REQUEST arrives, before the
    // worker's close is read (the GET's completion is handled before the next read's result).
    fcgi::request get;
    get.script = php_fpm::script("pid.php");
    fcgi::request post;
    post.script = php_fpm::script("echo_body.php");
    post.body = "must not run twice";
    BOOST_REQUIRE(!post.is_idempotent());

    outcome first_get, first_post;
    std::optional<fcgi::client_stats> at_post;
    start(client, get, first_get);
    client.async_request(post, [&](std::error_code ec, fcgi::response r) {
        ++first_post.calls;
        first_post.done = true;
        first_post.ec = ec;
        first_post.resp = std::move(r);
        at_post = client.stats();
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return first_get.done && first_post.done; }));
    BOOST_TEST(!first_get.ec, first_get.ec.message() << " " << first_get.resp.diagnostics);
    BOOST_TEST(first_get.resp.status == 200);
    BOOST_TEST((first_post.ec == fcgi::error::connection_lost ||
                first_post.ec == fcgi::error::not_connected),
               first_post.ec.message() << " " << first_post.resp.diagnostics);
    BOOST_TEST(!first_post.resp.diagnostics.empty());
    if (first_post.ec == fcgi::error::connection_lost)  // says why, and that it was not retried
        BOOST_TEST((first_post.resp.diagnostics.find(" ms after the request was sent") !=
                        std::string::npos &&
                    first_post.resp.diagnostics.find("not sent again") != std::string::npos),
                   first_post.resp.diagnostics);
    BOOST_REQUIRE(at_post.has_value());
    // One connection opened so far: the POST went to the connection the GET had used.
    BOOST_TEST(at_post->endpoints.at(0).connects == 1u,
               "the POST did not go to the GET's connection: the premise of this test");
    BOOST_TEST(at_post->retries == 0u);  // not retried
    BOOST_TEST(at_post->failed == 1u);
    BOOST_TEST(first_post.calls == 1);

    // Two GETs together: the second lands on the first one's used connection the same way,
    // finds it closed, and is retried once on a fresh connection (a new worker).
    outcome second, third;
    start(client, get, second);
    start(client, get, third);
    BOOST_REQUIRE(run_until(ctx, [&] { return second.done && third.done; }));
    BOOST_TEST(!second.ec, second.ec.message() << " " << second.resp.diagnostics);
    BOOST_TEST(!third.ec, third.ec.message() << " " << third.resp.diagnostics);
    BOOST_TEST(second.resp.status == 200);
    BOOST_TEST(third.resp.status == 200);
    BOOST_TEST(second.resp.body != third.resp.body);  // two workers: one request each
    auto s = client.stats();
    BOOST_TEST(s.retries == 1u);
    BOOST_TEST(s.endpoints.at(0).connects == 3u);
    BOOST_TEST(s.completed == 3u);
    BOOST_TEST(s.failed == 1u);
    shutdown(ctx, client);
}

// A reused connection that closes without a byte of the response: at once, it was a kept-alive
// connection the server had closed, and a GET goes again on a fresh one; after
// stale_close_window, the script was running and its worker died (request_terminate_timeout),
// so it fails and does not run twice. Both were retried, so a killed GET job ran twice.
BOOST_AUTO_TEST_CASE(late_close_of_a_reused_connection_is_not_retried) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        auto id = r.param("X_ID").value_or("");
        if (id == "late")
            return fcgi::test::script{fcgi::test::act::delay(400ms), fcgi::test::act::close()};
        if (id == "soon")
            return fcgi::test::script{fcgi::test::act::close()};
        return fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.stale_close_window = 200ms;
    fcgi::client client(ctx.get_executor(), opts);
    auto run_on = [&](fcgi::client& c, const std::string& id) {
        outcome out;
        start(c, fcgi::test::tagged_request(id), out);
        BOOST_REQUIRE(run_until(ctx, [&] { return out.done; }));
        return out;
    };
    auto run = [&](const std::string& id) { return run_on(client, id); };
    auto warm = run("warm-1");
    BOOST_REQUIRE(!warm.ec);
    BOOST_TEST(warm.resp.times_sent == 1u);
    auto late = run("late");  // on warm-1's connection
    BOOST_TEST(late.ec == fcgi::error::connection_lost, late.ec.message());
    BOOST_TEST(late.resp.times_sent == 1u);
    BOOST_TEST(late.resp.diagnostics.find("not sent again") != std::string::npos,
               late.resp.diagnostics);
    BOOST_TEST(times_seen(fake.snapshot(), "late") == 1u);
    BOOST_TEST(client.stats().retries == 0u);

    BOOST_REQUIRE(!run("warm-2").ec);
    auto soon = run("soon");  // on warm-2's connection, then once more on a fresh one
    BOOST_TEST(soon.ec == fcgi::error::connection_lost, soon.ec.message());
    BOOST_TEST(times_seen(fake.snapshot(), "soon") == 2u);
    BOOST_TEST(soon.resp.times_sent == 2u);  // what the caller learns of the second run
    BOOST_TEST(client.stats().retries == 1u);
    shutdown(ctx, client);

    // A zero window: never sent again, also when the close comes within the first millisecond
    // (the time since sending was truncated to whole ones, so that was "at once", and the GET
    // went twice).
    opts.stale_close_window = 0ms;
    fcgi::client strict(ctx.get_executor(), opts);
    BOOST_REQUIRE(!run_on(strict, "warm-3").ec);
    auto zero = run_on(strict, "soon");
    BOOST_TEST(zero.ec == fcgi::error::connection_lost, zero.ec.message());
    BOOST_TEST(zero.resp.times_sent == 1u);
    BOOST_TEST(times_seen(fake.snapshot(), "soon") == 3u);  // two above, one here
    BOOST_TEST(strict.stats().retries == 0u);
    shutdown(ctx, strict);
}

// An idempotent PUT streaming its body from a restartable source of the caller's own that has no
// clone(), lost to a kept-alive connection the server had closed while the source was still
// reading: a retry would share that source, and its start() would rewind it under the read still
// under way (whose late bytes would then land in the new pass). It fails instead, and says why.
BOOST_AUTO_TEST_CASE(stale_retry_skips_a_source_still_reading_without_clone) {
    // Reads that never finish on their own (cancel() is not overridden), as a slow disk's.
    struct shared_source : fcgi::body_source::implementation {
        int starts = 0;
        bool started_during_read = false;
        fcgi::source_read_handler pending;
        std::optional<std::uint64_t> size() const override { return 5; }
        std::error_code start(std::string&) override {
            ++starts;
            started_during_read = started_during_read || bool(pending);
            return {};
        }
        void async_read_some(asio::mutable_buffer, const asio::any_io_executor&,
                             fcgi::source_read_handler done) override {
            pending = std::move(done);
        }
        bool restartable() const override { return true; }
    };
    // The body request is answered by a close as soon as its PARAMS end: the kept-alive
    // connection's server went away while the body was on its way.
    fake_responder fake({.script_for =
                             [](const seen_request& r) {
                                 if (r.param("X_ID").value_or("") == "body")
                                     return fcgi::test::script{act::close()};
                                 return fcgi::test::echo_script(r);
                             },
                         .answer_at_params_end = true});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcome warm, body;
    start(client, fcgi::test::tagged_request("warm"), warm);
    BOOST_REQUIRE(run_until(ctx, [&] { return warm.done; }));
    BOOST_REQUIRE_MESSAGE(!warm.ec, warm.ec.message());

    auto source = std::make_shared<shared_source>();
    auto req = fcgi::test::tagged_request("body");
    req.stdin_source = fcgi::body_source(source);
    req.method = "PUT";
    req.idempotent = true;  // HTTP's PUT is; a client must say so
    BOOST_REQUIRE(req.is_idempotent());
    start(client, std::move(req), body);  // on warm's kept-alive connection
    BOOST_REQUIRE(run_until(ctx, [&] { return body.done; }));
    BOOST_TEST(body.ec == fcgi::error::connection_lost, body.ec.message());
    BOOST_TEST(body.resp.diagnostics.find("its body source was still reading") != std::string::npos,
               body.resp.diagnostics);
    BOOST_TEST(source->starts == 1);
    BOOST_TEST(!source->started_during_read);
    BOOST_TEST(client.stats().retries == 0u);
    BOOST_TEST(times_seen(fake.snapshot(), "body") == 1u);
    // The read the source never finished holds the closed connection's state: let it go.
    source->pending = nullptr;
    shutdown(ctx, client);
}

// A kept-alive connection whose worker is gone, noticed by the next write before the reader
// sees the end: the kernel refuses the whole write (EPIPE), so not a byte of the request left.
// A POST is sent again on a new connection, as one never written is, whatever its method.
BOOST_AUTO_TEST_CASE(post_refused_whole_by_the_kernel_is_sent_again) {
    fake_responder fake({.tcp = false, .refuse_after_requests = 1});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));

    outcome first, second;
    start(client, fcgi::test::tagged_request("first", "a=1"), first);
    BOOST_REQUIRE(run_until(ctx, [&] { return first.done; }));
    BOOST_REQUIRE_MESSAGE(!first.ec, first.ec.message());
    start(client, fcgi::test::tagged_request("second", "b=2"), second);
    BOOST_REQUIRE(run_until(ctx, [&] { return second.done; }));
    BOOST_TEST(!second.ec, second.ec.message() << " " << second.resp.diagnostics);
    BOOST_TEST(second.resp.body == fcgi::test::tagged_body("second", "b=2"));
    BOOST_TEST(second.resp.times_sent == 1u);  // the refused write does not count
    BOOST_TEST(client.stats().retries == 1u);
    BOOST_TEST(client.stats().endpoints.at(0).connects == 2u);
    BOOST_TEST(times_seen(fake.snapshot(), "second") == 1u);
    shutdown(ctx, client);
}

// A prepared request lost to a kept-alive connection the server closed is retried from its
// shared state (nothing is handed back for it), once, and arrives byte for byte the same.
BOOST_AUTO_TEST_CASE(prepared_request_is_retried_from_its_shared_state) {
    fake_responder fake({.tcp = false, .close_after_requests = 1});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));

    outcome first, second, third;
    {
        fcgi::prepared_request get(fcgi::test::tagged_request("same"));
        auto send = [&](outcome& out) {
            client.async_request(get, [&out](std::error_code ec, fcgi::response r) {
                ++out.calls;
                out.done = true;
                out.ec = ec;
                out.resp = std::move(r);
            });
        };
        // Three together on a pool of one: the second is handed the first one's connection
        // the moment its END_REQUEST arrives, before the server's close is read, fails, and
        // goes again on a new connection; so does the third after the second.
        send(first);
        send(second);
        send(third);
    }  // dropped: the pool's copy is what a retry is made from
    BOOST_REQUIRE(run_until(ctx, [&] { return first.done && second.done && third.done; }));
    for (auto* o : {&first, &second, &third}) {
        BOOST_TEST(!o->ec, o->ec.message() << " " << o->resp.diagnostics);
        BOOST_TEST(o->calls == 1);
        BOOST_TEST(o->resp.body == fcgi::test::tagged_body("same"));
    }
    BOOST_TEST(client.stats().retries == 2u);
    BOOST_TEST(client.stats().endpoints.at(0).connects == 3u);
    auto snap = fake.snapshot();
    BOOST_TEST(snap.requests.size() >= 3u);  // and the lost ones, if read before the close
    for (const auto& r : snap.requests)
        BOOST_TEST((r.params == snap.requests.front().params));
    shutdown(ctx, client);
}

// -- 3. php-fpm stopped while a fan-out runs, then started again. Driven from the client's own
// thread: after 40 successes the completion handler stops php-fpm (the workers die
// mid-request); the first failure seen afterwards starts it again. The client runs on between
// the two, so in-flight requests, retries and connects meet a dead server.
BOOST_AUTO_TEST_CASE(php_fpm_restarted_in_the_middle_of_a_fanout) {
    php_fpm fpm({.children = 4, .tcp = true});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse(fpm.tcp_endpoint())};
    opts.max_connections_per_endpoint = 4;
    // A refused connect marks the endpoint down for at most 1 ms; a restart takes longer
    // (php_fpm::start polls readiness every 10 ms), so requests launched after the restart
    // never meet a backoff left over from the outage.
    opts.initial_backoff = 1ms;
    opts.max_backoff = 1ms;
    opts.connection.request_timeout = 30s;  // a hang becomes a visible request_timeout
    fcgi::client client(ctx.get_executor(), opts);

    constexpr std::size_t n = 300, concurrency = 8, stop_after = 40;
    std::vector<fcgi::request> reqs(n);
    for (auto& r : reqs) {
        r.script = php_fpm::script("sleep.php");
        r.query = "ms=5";
    }
    std::vector<std::optional<fcgi::fanout_result>> results(n);
    std::size_t completed = 0, ok = 0;
    bool stopped = false, restarted = false, done = false;
    std::size_t launched_before_restart = n;
    auto started = steady::now();
    long long stop_ms = 0, restart_ms = 0;
    fcgi::async_fanout_each(
        client, std::move(reqs), concurrency,
        [&](std::size_t i, fcgi::fanout_result r) {
            BOOST_TEST(!results[i].has_value(), "request " << i << " completed twice");
            ++completed;
            bool failed = static_cast<bool>(r.ec);
            ok += !failed;
            results[i] = std::move(r);
            if (!stopped && ok >= stop_after) {
                stopped = true;
                stop_ms = ms_since(started);
                fpm.stop();
            } else if (stopped && !restarted && failed) {
                restarted = true;
                fpm.start();
                restart_ms = ms_since(started);
                // `concurrency` requests were running before this completion; the fan-out
                // launches every later one after this handler returns.
                launched_before_restart = std::min(n, completed - 1 + concurrency);
            }
        },
        [&](std::error_code) { done = true; });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done; }, 120s),
                          "fan-out did not finish within 120 s after a php-fpm restart");
    BOOST_TEST_MESSAGE("restart: stopped at " << stop_ms << " ms, started again at " << restart_ms
                                              << " ms, fan-out done at " << ms_since(started)
                                              << " ms");
    BOOST_REQUIRE(stopped);
    BOOST_REQUIRE(restarted);
    BOOST_TEST(n - launched_before_restart >= 100u);

    std::size_t failures = 0, later_ok = 0;
    std::set<std::string> pids_before, pids_after;
    for (std::size_t i = 0; i < n; ++i) {
        BOOST_REQUIRE_MESSAGE(results[i].has_value(), "request " << i << " never completed");
        const auto& r = *results[i];
        if (r.ec) {
            ++failures;
            BOOST_TEST(
                (r.ec == fcgi::condition::transport_error || r.ec == fcgi::error::no_endpoint),
                "request " << i << ": " << r.ec.message() << " " << r.resp.diagnostics);
            BOOST_TEST(i < launched_before_restart,
                       "request " << i << " launched after the restart failed: " << r.ec.message()
                                  << " " << r.resp.diagnostics);
            continue;
        }
        BOOST_TEST(r.resp.status == 200);
        (i < launched_before_restart ? pids_before : pids_after).insert(r.resp.body);
        later_ok += i >= launched_before_restart;
    }
    BOOST_TEST(failures >= 1u);
    BOOST_TEST(later_ok == n - launched_before_restart);
    // The later requests were served by the new php-fpm's workers.
    for (const auto& pid : pids_after)
        BOOST_TEST(!pids_before.contains(pid), "worker " << pid << " survived the restart");
    auto s = client.stats();
    BOOST_TEST(s.completed + s.failed == n);
    BOOST_TEST(s.queued == 0u);
    BOOST_TEST(s.endpoints.at(0).in_flight == 0u);
    shutdown(ctx, client);
}

// -- 4. Multiplexing at volume: 10,000 requests over 2 connections of 16 request IDs each, the
// responder answering 8 at a time newest first with their records interleaved. Every answer
// must reach its own request.
BOOST_AUTO_TEST_CASE(ten_thousand_requests_multiplexed_over_two_connections) {
    fake_responder fake({.interleave = 8});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.tcp_endpoint()};
    opts.max_connections_per_endpoint = 2;
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection = 16;
    fcgi::client client(ctx.get_executor(), opts);

    constexpr int n = 10000;
    int done = 0, ok = 0, inversions = 0, last = -1;
    auto started = steady::now();
    for (int i = 0; i < n; ++i) {
        std::string id = std::to_string(i);
        client.async_request(
            fcgi::test::tagged_request(id), [&, i, id](std::error_code ec, fcgi::response r) {
                ++done;
                inversions += i < last;
                last = i;
                if (ec)
                    BOOST_ERROR("request " << id << ": " << ec.message() << " " << r.diagnostics);
                else if (r.body != fcgi::test::tagged_body(id))
                    BOOST_ERROR("request " << id << " got the answer \"" << r.body << "\"");
                else
                    ++ok;
            });
    }
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done == n; }, 120s),
                          done << " of " << n << " requests completed within 120 s");
    BOOST_TEST_MESSAGE("10,000 multiplexed requests: " << ms_since(started) << " ms");
    BOOST_TEST(ok == n);
    BOOST_TEST(inversions > 0);  // answers really came back out of order

    auto s = client.stats();
    BOOST_TEST(s.completed == static_cast<std::uint64_t>(n));
    BOOST_TEST(s.retries == 0u);
    BOOST_TEST(s.endpoints.at(0).connects <= 2u);
    auto snap = fake.snapshot();
    BOOST_TEST(snap.connections_accepted <= 2u);
    BOOST_TEST(snap.requests.size() == static_cast<std::size_t>(n));  // each sent once
    BOOST_TEST(snap.max_live <= 16u);
    BOOST_TEST(snap.max_live > 1u);
    BOOST_TEST(snap.violations.empty());
    // Each slot moves on to a new ID per request (16 slots, ~300 requests each: none wraps), so
    // no ID is used twice on a connection and a late record never meets a later request.
    std::set<std::pair<std::size_t, std::uint16_t>> ids;
    std::size_t bad_ids = 0;
    for (const auto& r : snap.requests)
        bad_ids += r.id < 1 || !ids.emplace(r.connection, r.id).second;
    BOOST_TEST(bad_ids == 0u);
    shutdown(ctx, client);
}

// -- 5. Every fault of the responder against a php-fpm-like pool (one request per
// connection): each affected request gets its own error, the others are untouched, nothing is
// retried (protocol errors, timeouts and a close after response bytes are never retried:
// STYLE.md "Errors", PROTOCOL.md item 7), and the pool serves afterwards.
BOOST_AUTO_TEST_CASE(pool_survives_every_fault) {
    fake_responder fake({.script_for = [](const seen_request& r) -> fcgi::test::script {
        auto id = r.param("X_ID").value_or("");
        if (id.starts_with("close-mid"))
            return {act::stdout_("Content-Type: text/plain\r\n\r\npartial"), act::close()};
        if (id == "garbage")
            return {act::raw("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")};
        if (id == "v2")
            return {act::raw(fcgi::test::make_record(fcgi::protocol::record_type::stdout_, r.id,
                                                     "Content-Type: text/plain\r\n\r\nhi", 2))};
        if (id == "silent")
            return {};                      // never answered
        return fcgi::test::echo_script(r);  // UNKNOWN_ROLE for the AUTHORIZER request
    }});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 4;
    opts.mode = fcgi::multiplexing::off;  // one request per connection, as with php-fpm
    fcgi::client client(ctx.get_executor(), opts);

    // Warm up: four requests at once open the four connections; from now on the first four
    // requests dispatched land on used (kept-alive) connections.
    outcomes warm;
    for (int i = 0; i < 4; ++i)
        start(client, fcgi::test::tagged_request("warm-" + std::to_string(i)),
              warm["warm-" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(warm); }));
    for (const auto& [id, o] : warm)
        BOOST_TEST(!o.ec, id << ": " << o.ec.message());
    BOOST_REQUIRE(client.stats().endpoints.at(0).connects == 4u);
    BOOST_REQUIRE(client.stats().endpoints.at(0).idle == 4u);

    outcomes faults;
    auto started = steady::now();
    // Submission order is dispatch order: these four get the four used connections.
    for (const char* id : {"close-mid-a", "close-mid-b", "garbage", "v2"})
        start(client, fcgi::test::tagged_request(id), faults[id]);
    auto silent = fcgi::test::tagged_request("silent");
    silent.timeout = 300ms;
    start(client, silent, faults["silent"]);
    auto auth = fcgi::test::tagged_request("auth");
    auth.role = fcgi::protocol::role::authorizer;
    start(client, auth, faults["auth"]);
    for (int i = 0; i < 8; ++i)
        start(client, fcgi::test::tagged_request("ok-" + std::to_string(i)),
              faults["ok-" + std::to_string(i)]);
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return all_done(faults); }, 10s),
                          "the fault batch did not finish within 10 s");
    BOOST_TEST_MESSAGE("fault batch: " << ms_since(started) << " ms");

    const std::map<std::string, std::error_code> expected = {
        {"close-mid-a", fcgi::error::connection_lost},
        {"close-mid-b", fcgi::error::connection_lost},
        {"garbage", fcgi::error::bad_version},
        {"v2", fcgi::error::bad_version},
        {"silent", fcgi::error::request_timeout},
        {"auth", fcgi::server_error::unknown_role},
    };
    auto snap = fake.snapshot();
    for (const auto& [id, o] : faults) {
        BOOST_TEST_CONTEXT("request " << id) {
            BOOST_TEST(o.calls == 1);
            BOOST_TEST(times_seen(snap, id) == 1u);  // sent once: no retry
            if (auto it = expected.find(id); it != expected.end()) {
                BOOST_TEST(o.ec == it->second, o.ec.message() << " " << o.resp.diagnostics);
                BOOST_TEST(!o.resp.diagnostics.empty());
            } else {
                BOOST_TEST(!o.ec, o.ec.message() << " " << o.resp.diagnostics);
                BOOST_TEST(o.resp.body == fcgi::test::tagged_body(id));
            }
        }
    }
    BOOST_TEST(faults["close-mid-a"].ec == fcgi::condition::transport_error);
    BOOST_TEST(faults["garbage"].ec == fcgi::condition::protocol_error);
    auto s = client.stats();
    BOOST_TEST(s.retries == 0u);
    BOOST_TEST(s.failed == 6u);
    BOOST_TEST(s.completed == 12u);
    BOOST_TEST(s.endpoints.at(0).open <= 4u);
    BOOST_TEST(snap.violations.empty());

    // The pool goes on serving.
    outcomes after;
    for (int i = 0; i < 12; ++i)
        start(client, fcgi::test::tagged_request("after-" + std::to_string(i)),
              after["after-" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return all_done(after); }, 10s));
    for (const auto& [id, o] : after) {
        BOOST_TEST(!o.ec, id << ": " << o.ec.message() << " " << o.resp.diagnostics);
        BOOST_TEST(o.resp.body == fcgi::test::tagged_body(id));
    }
    BOOST_TEST(client.stats().endpoints.at(0).open <= 4u);
    BOOST_TEST(client.stats().retries == 0u);
    shutdown(ctx, client);
}

// -- 5b. CANT_MPX_CONN and OVERLOADED: the server refused the request, so it did not run; it is
// retried once, transparently, whatever its method. The responder refuses only the first
// attempt, except "overloaded-post-twice", which it refuses every time.
BOOST_AUTO_TEST_CASE(pool_retries_cant_mpx_conn_and_overloaded) {
    fake_responder fake(
        {.script_for = refusing_by_attempt(
             [](const std::string& id, int n) -> std::optional<protocol_status> {
                 if (id == "overloaded-post-twice" ||
                     ((id == "overloaded-get" || id == "overloaded-post") && n == 1))
                     return protocol_status::overloaded;
                 if (id == "cant-get" && n == 1)
                     return protocol_status::cant_mpx_conn;
                 return std::nullopt;
             })});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.tcp_endpoint(), 2, 100ms));

    // CANT_MPX_CONN: the server did not take the request; it is sent again at once.
    outcomes cant;
    for (const char* id : {"cant-get", "ok-a", "ok-b"})
        start(client, fcgi::test::tagged_request(id), cant[id]);
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return all_done(cant); }, 10s),
                          "CANT_MPX_CONN batch did not finish within 10 s");
    for (const auto& [id, o] : cant) {
        BOOST_TEST(!o.ec, id << ": " << o.ec.message() << " " << o.resp.diagnostics);
        BOOST_TEST(o.resp.body == fcgi::test::tagged_body(id));
        BOOST_TEST(o.calls == 1);
    }
    BOOST_TEST(client.stats().retries == 1u);
    BOOST_TEST(times_seen(fake.snapshot(), "cant-get") == 2u);

    // OVERLOADED: the endpoint backs off (100 ms), then the GET and the POST are sent again; the
    // POST refused twice fails, after its one retry.
    outcomes over;
    auto started = steady::now();
    start(client, fcgi::test::tagged_request("overloaded-get"), over["overloaded-get"]);
    start(client, fcgi::test::tagged_request("overloaded-post", "body"), over["overloaded-post"]);
    start(client, fcgi::test::tagged_request("overloaded-post-twice", "body"),
          over["overloaded-post-twice"]);
    start(client, fcgi::test::tagged_request("ok-c"), over["ok-c"]);
    start(client, fcgi::test::tagged_request("ok-d"), over["ok-d"]);
    bool finished = run_until(
        ctx, [&] { return all_done(over); }, 10s);
    BOOST_TEST_MESSAGE("OVERLOADED batch: " << ms_since(started) << " ms");
    // Nothing else would wake the queue before the idle timeout (20 s): stop here if stuck.
    BOOST_REQUIRE_MESSAGE(finished, "OVERLOADED batch did not finish within 10 s; "
                                        << client.stats().queued << " requests still queued");
    auto& get = over["overloaded-get"];
    BOOST_TEST(!get.ec, get.ec.message() << " " << get.resp.diagnostics);
    BOOST_TEST(get.resp.body == fcgi::test::tagged_body("overloaded-get"));
    auto& post = over["overloaded-post"];
    BOOST_TEST(!post.ec, post.ec.message() << " " << post.resp.diagnostics);
    BOOST_TEST(post.resp.body == fcgi::test::tagged_body("overloaded-post", "body"));
    BOOST_TEST(post.resp.times_sent == 2u);
    auto& twice = over["overloaded-post-twice"];
    BOOST_TEST(twice.ec == fcgi::server_error::overloaded, twice.ec.message());
    BOOST_TEST(!twice.resp.diagnostics.empty());
    for (const char* id : {"ok-c", "ok-d"})
        BOOST_TEST(!over[id].ec, id << ": " << over[id].ec.message());
    auto snap = fake.snapshot();
    BOOST_TEST(times_seen(snap, "overloaded-get") == 2u);
    BOOST_TEST(times_seen(snap, "overloaded-post") == 2u);
    BOOST_TEST(times_seen(snap, "overloaded-post-twice") == 2u);
    BOOST_TEST(times_seen(snap, "ok-c") == 1u);
    BOOST_TEST(client.stats().retries == 4u);

    // The pool goes on serving.
    outcomes after;
    for (int i = 0; i < 6; ++i)
        start(client, fcgi::test::tagged_request("after-" + std::to_string(i)),
              after["after-" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return all_done(after); }, 10s));
    for (const auto& [id, o] : after)
        BOOST_TEST(!o.ec, id << ": " << o.ec.message() << " " << o.resp.diagnostics);
    BOOST_TEST(fake.snapshot().violations.empty());
    shutdown(ctx, client);
}

// -- 5b'. Backoffs ending in quick succession: every first attempt is OVERLOADED and the backoff
// is 1 ms, so the retry timer keeps firing close to the end of a backoff set a moment later. A
// pump that found the endpoint down and then armed no timer (the clock read twice, the backoff
// ending in between) strands the queue: nothing else wakes it before the idle timeout.
BOOST_AUTO_TEST_CASE(overloaded_bursts_never_strand_the_queue) {
    fake_responder fake({.script_for = refusing_by_attempt(
                             [](const std::string&, int n) -> std::optional<protocol_status> {
                                 if (n == 1)
                                     return protocol_status::overloaded;
                                 return std::nullopt;
                             })});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 2, 1ms);
    opts.max_backoff = 1ms;
    fcgi::client client(ctx.get_executor(), opts);

    constexpr int n = 400;
    outcomes out;
    for (int i = 0; i < n; ++i)
        start(client, fcgi::test::tagged_request("o" + std::to_string(i)),
              out["o" + std::to_string(i)]);
    bool finished = run_until(
        ctx, [&] { return all_done(out); }, 20s);
    // Read after the run: the operands of a Boost.Test message may be evaluated before its
    // condition.
    auto st = client.stats();
    BOOST_REQUIRE_MESSAGE(finished,
                          "stranded: " << st.queued << " requests still queued, "
                                       << st.endpoints.at(0).in_flight
                                       << " in flight, endpoint down: " << st.endpoints.at(0).down);
    for (const auto& [id, o] : out) {
        BOOST_TEST(!o.ec, id << ": " << o.ec.message() << " " << o.resp.diagnostics);
        BOOST_TEST(o.resp.body == fcgi::test::tagged_body(id));
    }
    BOOST_TEST(client.stats().retries == std::uint64_t{n});
    shutdown(ctx, client);
}

// A pool of one connection that multiplexes up to 4 requests, against a libfcgi-like server
// (one live request per connection, CANT_MPX_CONN for any other, answers after 50 ms).
struct refusing_server_pool {
    static fcgi::client_options options(const fake_responder& f) {
        fcgi::client_options opts;
        opts.endpoints = {f.unix_endpoint()};
        opts.max_connections_per_endpoint = 1;
        opts.mode = fcgi::multiplexing::on;
        opts.max_requests_per_connection = 4;
        return opts;
    }
    // Four requests at once, "<prefix>0".."<prefix>3"; POSTs of "post <id>" when `post`.
    outcomes wave(const std::string& prefix, bool post) {
        outcomes o;
        for (int i = 0; i < 4; ++i) {
            auto id = prefix + std::to_string(i);
            start(client, fcgi::test::tagged_request(id, post ? "post " + id : ""), o[id]);
        }
        BOOST_REQUIRE_MESSAGE(run_until(
                                  ctx, [&] { return all_done(o); }, 10s),
                              "wave " << prefix << " did not finish within 10 s");
        return o;
    }
    std::size_t refused() const {
        std::size_t n = 0;
        for (const auto& r : fake.snapshot().requests)
            n += r.refused;
        return n;
    }

    fake_responder fake{fcgi::test::one_live_request_options()};
    asio::io_context ctx;
    fcgi::client client{ctx.get_executor(), options(fake)};
};

// -- 5c. A pool that multiplexes against a server that cannot (libfcgi answers a concurrent
// BEGIN_REQUEST with CANT_MPX_CONN): the refused requests are retried and succeed, and the
// connection stops multiplexing.
BOOST_AUTO_TEST_CASE(pool_multiplexing_against_a_server_that_refuses) {
    refusing_server_pool p;
    for (const char* prefix : {"a", "b"}) {
        for (const auto& [id, out] : p.wave(prefix, false)) {
            BOOST_TEST(!out.ec, id << ": " << out.ec.message() << " " << out.resp.diagnostics);
            BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id));
        }
        // After "a": the server really refused; after "b" (one at a time): nothing more.
        BOOST_TEST(p.refused() >= 1u);
        BOOST_TEST(p.client.stats().retries == p.refused());
    }
    BOOST_TEST(p.fake.snapshot().connections_accepted == 1u);
    BOOST_TEST(p.fake.snapshot().violations.empty());
    shutdown(p.ctx, p.client);
}

// -- 5d. The same with POSTs: a refused request did not run, so it goes again whatever its
// method; the connection still goes on one request at a time.
BOOST_AUTO_TEST_CASE(pool_retries_refused_posts_and_stops_multiplexing) {
    refusing_server_pool p;
    for (const char* prefix : {"a", "b"}) {
        for (const auto& [id, out] : p.wave(prefix, true)) {
            BOOST_TEST(!out.ec, id << ": " << out.ec.message() << " " << out.resp.diagnostics);
            BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id, "post " + id));
        }
        // After "a": refused ones were sent again; after "b" (one at a time): nothing more.
        BOOST_TEST(p.refused() >= 1u);
        BOOST_TEST(p.client.stats().retries == p.refused());
    }
    BOOST_TEST(p.fake.snapshot().connections_accepted == 1u);
    BOOST_TEST(p.fake.snapshot().violations.empty());
    shutdown(p.ctx, p.client);
}

// -- 5d'. The endpoint remembers CANT_MPX_CONN: the connection it opens after the refused one
// closed (idle timeout) does not multiplex again, which would lose a request to learn it anew.
BOOST_AUTO_TEST_CASE(pool_remembers_cant_mpx_conn_across_connections) {
    fake_responder fake{fcgi::test::one_live_request_options()};
    asio::io_context ctx;
    auto opts = refusing_server_pool::options(fake);
    opts.idle_timeout = 20ms;
    fcgi::client client{ctx.get_executor(), opts};
    auto wave = [&](const std::string& prefix) {
        outcomes o;
        for (int i = 0; i < 4; ++i) {
            auto id = prefix + std::to_string(i);
            start(client, fcgi::test::tagged_request(id, "post " + id), o[id]);
        }
        BOOST_REQUIRE(run_until(
            ctx, [&] { return all_done(o); }, 10s));
        for (const auto& [id, out] : o)
            BOOST_TEST(!out.ec, id << ": " << out.ec.message() << " " << out.resp.diagnostics);
    };
    auto refused = [&] {
        std::size_t n = 0;
        for (const auto& r : fake.snapshot().requests)
            n += r.refused;
        return n;
    };
    wave("a");
    const std::size_t first = refused();
    BOOST_TEST(first >= 1u);
    BOOST_TEST(client.stats().endpoints.at(0).max_in_flight_per_connection == 1u);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return client.stats().endpoints.at(0).open == 0; }, 10s));
    wave("b");
    BOOST_TEST(fake.snapshot().connections_accepted == 2u);
    BOOST_TEST(refused() == first);
    BOOST_TEST(client.stats().retries == first);
    shutdown(ctx, client);
}

// -- 5d''. Requests refused together (CANT_MPX_CONN: the server takes one at a time) go back to
// the queue in the order they were called, and run in it: each used to go to the front, ahead
// of the ones refused before it, so they ran newest first.
BOOST_AUTO_TEST_CASE(refused_requests_run_in_the_order_they_were_called) {
    fake_responder fake{fcgi::test::one_live_request_options()};
    asio::io_context ctx;
    auto opts = refusing_server_pool::options(fake);
    opts.max_requests_per_connection = 16;
    fcgi::client client{ctx.get_executor(), opts};
    std::vector<int> completed;
    outcomes o;
    for (int i = 0; i < 20; ++i) {
        auto id = "r" + std::to_string(i);
        auto& out = o[id];
        client.async_request(
            fcgi::test::tagged_request(id),
            [&completed, rec = recorder(out), i](std::error_code ec, fcgi::response r) mutable {
                completed.push_back(i);
                rec(ec, std::move(r));
            });
    }
    BOOST_REQUIRE(run_until(
        ctx, [&] { return all_done(o); }, 10s));
    for (const auto& [id, out] : o)
        BOOST_TEST(!out.ec, id << ": " << out.ec.message() << " " << out.resp.diagnostics);
    std::vector<int> in_order(20);
    std::iota(in_order.begin(), in_order.end(), 0);
    BOOST_TEST(completed == in_order, boost::test_tools::per_element());
    std::vector<std::string> ran;
    for (const auto& r : fake.snapshot().requests)
        if (!r.refused)
            ran.push_back(r.param("X_ID").value_or(""));
    BOOST_REQUIRE(ran.size() == 20u);
    for (int i = 0; i < 20; ++i)
        BOOST_TEST(ran[static_cast<std::size_t>(i)] == "r" + std::to_string(i));
    BOOST_TEST(client.stats().retries >= 15u);
    shutdown(ctx, client);
}

// -- 5e. OVERLOADED every time for a POST: sent once more (a refused request did not run),
// then the caller's answer; the endpoint backs off after each refusal.
BOOST_AUTO_TEST_CASE(overloaded_post_backs_the_endpoint_off) {
    fake_responder fake({.script_for = refusing_by_attempt(
                             [](const std::string& id, int) -> std::optional<protocol_status> {
                                 if (id == "overloaded-post")
                                     return protocol_status::overloaded;
                                 return std::nullopt;
                             })});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 300ms));

    outcome post, next;
    steady::time_point failed_at;
    client.async_request(fcgi::test::tagged_request("overloaded-post", "body"),
                         [&](std::error_code ec, fcgi::response r) {
                             post.done = true;
                             post.ec = ec;
                             post.resp = std::move(r);
                             failed_at = steady::now();
                             start(client, fcgi::test::tagged_request("next"), next);
                         });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return post.done && next.done; }, 10s));
    BOOST_TEST(post.ec == fcgi::server_error::overloaded, post.ec.message());
    BOOST_TEST(!next.ec, next.ec.message() << " " << next.resp.diagnostics);
    // Held for the 300 ms backoff (steady timers never fire early; the margin covers the time
    // between setting it and this handler, long on a loaded machine). Without a backoff it
    // takes about a millisecond.
    BOOST_TEST(ms_since(failed_at) >= 200);
    BOOST_TEST(client.stats().retries == 1u);  // refused, so sent once more, refused again
    BOOST_TEST(times_seen(fake.snapshot(), "overloaded-post") == 2u);
    shutdown(ctx, client);
}

// -- 5f. OVERLOADED or CANT_MPX_CONN after output is not a refusal: the script wrote a response.
// Not sent again, even for a GET, and a streaming sink sees one head and one body, not the first
// attempt's followed by the second's.
BOOST_AUTO_TEST_CASE(refusal_after_output_is_not_retried) {
    for (auto status : {protocol_status::overloaded, protocol_status::cant_mpx_conn}) {
        BOOST_TEST_CONTEXT("status " << int(status)) {
            fake_responder fake({.script_for = [status](const seen_request&) -> fcgi::test::script {
                return {act::stdout_(std::string(fcgi::test::echo_head) + "FIRST;"),
                        act::end(status)};
            }});
            asio::io_context ctx;
            fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 1ms));
            int heads = 0;
            std::string body;
            auto req = fcgi::test::tagged_request("late-refusal");
            req.stdout_sink = fcgi::body_sink::consumer(
                [&](std::string_view chunk, fcgi::sink_write_handler done) {
                    body += chunk;
                    done({});
                },
                [&](const fcgi::response&) {
                    ++heads;
                    return std::error_code();
                });
            outcome out;
            start(client, std::move(req), out);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return out.done; }, 10s));
            BOOST_TEST(out.ec == fcgi::make_error_code(static_cast<fcgi::server_error>(status)),
                       out.ec.message());
            BOOST_TEST(out.resp.times_sent == 1u);
            BOOST_TEST(out.resp.bytes_received > 0u);
            BOOST_TEST(heads <= 1);
            BOOST_TEST(body.find("FIRST;FIRST;") == std::string::npos, body);
            BOOST_TEST(client.stats().retries == 0u);
            BOOST_TEST(times_seen(fake.snapshot(), "late-refusal") == 1u);
            shutdown(ctx, client);
        }
    }
}

// auto_detect takes FCGI_MPXS_CONNS from GET_VALUES, and FCGI_MAX_REQS caps the requests in
// flight per connection; a server that never answers the probe is not multiplexed, and the
// probe gives up after probe_timeout rather than holding the first requests back.
BOOST_AUTO_TEST_CASE(auto_detect_honours_max_reqs_and_a_silent_probe) {
    for (bool answers : {true, false}) {
        fake_responder fake({.script_for =
                                 [](const seen_request& r) {
                                     auto s = fcgi::test::echo_script(r);
                                     s.insert(s.begin(), act::delay(20ms));
                                     return s;
                                 },
                             .interleave = 8,
                             .max_reqs = "3",
                             .answer_get_values = answers});
        asio::io_context ctx;
        fcgi::client_options opts;
        opts.endpoints = {fake.unix_endpoint()};
        opts.max_connections_per_endpoint = 1;
        opts.mode = fcgi::multiplexing::auto_detect;
        opts.max_requests_per_connection = 16;
        opts.probe_timeout = 300ms;
        fcgi::client client(ctx.get_executor(), opts);
        outcomes o;
        for (int i = 0; i < 12; ++i)
            start(client, fcgi::test::tagged_request("r" + std::to_string(i)),
                  o["r" + std::to_string(i)]);
        auto t0 = steady::now();
        BOOST_REQUIRE(run_until(
            ctx, [&] { return all_done(o); }, 10s));
        // Unanswered, the probe costs its timeout once, not a 5 s connect-style wait.
        BOOST_TEST(ms_since(t0) < 3000);
        for (const auto& [id, out] : o)
            BOOST_TEST(!out.ec, id << ": " << out.ec.message());
        auto per_conn = client.stats().endpoints.at(0).max_in_flight_per_connection;
        BOOST_TEST(per_conn == (answers ? 3u : 1u));
        auto ep = client.stats().endpoints.at(0);  // a copy: stats() is a temporary
        BOOST_TEST((ep.probe ==
                    (answers ? fcgi::probe_result::multiplexes : fcgi::probe_result::no_answer)));
        BOOST_TEST(ep.probe_error ==
                   (answers ? std::error_code() : std::error_code(fcgi::error::request_timeout)));
        BOOST_TEST(fake.snapshot().max_live <= per_conn);
        shutdown(ctx, client);
    }
}

// -- 6. Cancellation through the client.
BOOST_AUTO_TEST_CASE(cancelling_a_queued_request) {
    auto g = std::make_shared<gate>();
    asio::io_context ctx;
    fake_responder fake({.script_for = [g, &ctx](const seen_request& r) -> fcgi::test::script {
        wake(ctx);
        auto id = r.param("X_ID").value_or("");
        if (id == "held")
            g->wait();  // answered once the test opens the gate
        if (id == "never")
            return {};
        return fcgi::test::echo_script(r);
    }});
    opener open_on_exit{g};
    fcgi::client_options opts;
    opts.endpoints = {fake.tcp_endpoint()};
    opts.max_connections_per_endpoint = 1;
    fcgi::client client(ctx.get_executor(), opts);

    asio::cancellation_signal sig;
    outcomes o;
    start(client, fcgi::test::tagged_request("held"), o["held"]);
    client.async_request(fcgi::test::tagged_request("cancelled"),
                         asio::bind_cancellation_slot(sig.slot(), recorder(o["cancelled"])));
    start(client, fcgi::test::tagged_request("after"), o["after"]);
    // "held" is on the server, the two others wait in the client's queue.
    BOOST_REQUIRE(run_until(
        ctx, [&] { return !fake.snapshot().requests.empty() && client.stats().queued == 2; }));
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(ctx, [&] { return o["cancelled"].done; }));
    BOOST_TEST(o["cancelled"].ec == asio::error::operation_aborted, o["cancelled"].ec.message());
    BOOST_TEST(!o["held"].done);
    BOOST_TEST(!o["after"].done);
    BOOST_TEST(client.stats().queued == 1u);

    g->open();
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const char* id : {"held", "after"}) {
        BOOST_TEST(!o[id].ec, id << ": " << o[id].ec.message());
        BOOST_TEST(o[id].resp.body == fcgi::test::tagged_body(id));
    }
    for (const auto& [id, out] : o)
        BOOST_TEST(out.calls == 1, id);
    auto snap = fake.snapshot();
    BOOST_TEST(times_seen(snap, "cancelled") == 0u);  // never sent
    BOOST_TEST(snap.connections_accepted == 1u);

    // A request cancelled while on the server: abandoned, and its connection closed (the pool
    // does not multiplex; php-fpm ignores ABORT_REQUEST). The pool opens a new one.
    asio::cancellation_signal sig2;
    outcome never, next;
    client.async_request(fcgi::test::tagged_request("never"),
                         asio::bind_cancellation_slot(sig2.slot(), recorder(never)));
    BOOST_REQUIRE(run_until(ctx, [&] { return times_seen(fake.snapshot(), "never") == 1; }));
    sig2.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(ctx, [&] { return never.done; }));
    BOOST_TEST(never.ec == asio::error::operation_aborted, never.ec.message());
    start(client, fcgi::test::tagged_request("next"), next);
    BOOST_REQUIRE(run_until(ctx, [&] { return next.done; }));
    BOOST_TEST(!next.ec, next.ec.message() << " " << next.resp.diagnostics);
    BOOST_TEST(next.resp.body == fcgi::test::tagged_body("next"));
    BOOST_TEST(fake.snapshot().connections_accepted == 2u);
    BOOST_TEST(client.stats().retries == 0u);
    shutdown(ctx, client);
}

// "After the last request's handler" holds when both handlers are bound to one strand, the
// usual setup of a multi-threaded program: the shutdown's was queued on the strand first, and
// the request's, dispatched to it from outside, ran after it.
BOOST_AUTO_TEST_CASE(shutdown_completes_after_the_last_handler_on_one_strand) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
    auto strand = asio::make_strand(ctx);
    std::vector<std::string> order;
    client.async_request(fcgi::test::tagged_request("last"),
                         asio::bind_executor(strand, [&](std::error_code ec, fcgi::response) {
                             BOOST_TEST(!ec, ec.message());
                             order.push_back("request");
                         }));
    client.async_shutdown(asio::bind_executor(strand, [&](std::error_code ec) {
        BOOST_TEST(!ec, ec.message());
        order.push_back("shutdown");
    }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return order.size() == 2; }, 10s));
    BOOST_TEST(order == (std::vector<std::string>{"request", "shutdown"}));
}

// Across executors too: a handler bound to another io_context is only queued there when the
// request completes. The shutdown waits until it has run, however long that takes (here: until
// the test runs `other`), or until it is destroyed unrun with `other`.
namespace {

struct foreign_handler_run {
    std::optional<asio::io_context> other{std::in_place};
    std::vector<std::string> order;
    std::optional<std::error_code> shut;
};

// Two requests bound to `run.other` (one in flight, one queued behind it on a pool of one),
// then async_shutdown; stops the client too when `stop`. Runs the client's io_context until
// both requests are done on its side and it has nothing left to run.
void shutdown_behind_foreign_handlers(fake_responder& fake, asio::io_context& ctx,
                                      fcgi::client& client, foreign_handler_run& run, bool stop) {
    for (std::string id : {"first", "second"})
        client.async_request(fcgi::test::tagged_request(id),
                             asio::bind_executor(run.other->get_executor(),
                                                 [&run, id](std::error_code, fcgi::response) {
                                                     run.order.push_back(id);
                                                 }));
    client.async_shutdown([&](std::error_code ec) {
        run.order.push_back("shutdown");
        run.shut = ec;
    });
    if (stop) {
        BOOST_REQUIRE(run_until(ctx, [&] { return times_seen(fake.snapshot(), "first") == 1; }));
        client.stop();
    }
    BOOST_REQUIRE(run_until(ctx, [&] {
        auto s = client.stats();
        return s.completed + s.failed == 2;
    }));
    for (int i = 0; i < 1000 && ctx.poll() > 0; ++i) {
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(shutdown_waits_for_handlers_bound_to_another_io_context) {
    for (bool stop : {false, true}) {
        BOOST_TEST_CONTEXT((stop ? "stop() during the shutdown" : "plain shutdown")) {
            fake_responder fake;
            asio::io_context ctx;
            fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
            foreign_handler_run run;
            shutdown_behind_foreign_handlers(fake, ctx, client, run, stop);
            BOOST_TEST(!run.shut.has_value(), "the shutdown completed before the handlers ran");
            BOOST_TEST(run.order.empty());
            BOOST_TEST(run.other->poll() == 2u);  // both handlers, queued there all along
            BOOST_REQUIRE(run_until(ctx, [&] { return run.shut.has_value(); }));
            // With stop(), "first" may have been answered before it (then it is queued there
            // first) or failed by it (after "second", which stop() fails at once from the
            // queue): either way the shutdown comes last.
            BOOST_REQUIRE_EQUAL(run.order.size(), 3u);
            BOOST_TEST(run.order.back() == "shutdown");
            if (!stop)
                BOOST_TEST(run.order == (std::vector<std::string>{"first", "second", "shutdown"}));
            else
                BOOST_TEST(
                    std::is_permutation(run.order.begin(), run.order.end() - 1,
                                        std::vector<std::string>{"first", "second"}.begin()));
            if (stop)
                BOOST_TEST(*run.shut == fcgi::error::client_stopped, run.shut->message());
            else
                BOOST_TEST(!*run.shut, run.shut->message());
        }
    }
}

BOOST_AUTO_TEST_CASE(shutdown_counts_a_handler_destroyed_unrun_as_done) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
    foreign_handler_run run;
    shutdown_behind_foreign_handlers(fake, ctx, client, run, false);
    BOOST_TEST(!run.shut.has_value());
    run.other.reset();  // its queued handlers are destroyed, never run
    BOOST_REQUIRE(run_until(ctx, [&] { return run.shut.has_value(); }));
    BOOST_TEST(!*run.shut, run.shut->message());
    BOOST_TEST(run.order == (std::vector<std::string>{"shutdown"}));
}

// The client destroyed while its shutdown waits for such handlers: the shutdown still completes
// (client_stopped) once they have run. And when the client's own io_context goes first, the
// handlers left in the other one find the pool gone and post nothing into the destroyed
// context (the ASan pass watches that).
BOOST_AUTO_TEST_CASE(shutdown_behind_foreign_handlers_outlives_the_client) {
    {
        fake_responder fake;
        asio::io_context ctx;
        std::optional<fcgi::client> client(std::in_place, ctx,
                                           plain_pool(fake.unix_endpoint(), 1, 100ms));
        foreign_handler_run run;
        shutdown_behind_foreign_handlers(fake, ctx, *client, run, false);
        client.reset();  // from outside ctx: the stop is posted there
        for (int i = 0; i < 1000 && ctx.poll() > 0; ++i) {
        }
        BOOST_TEST(!run.shut.has_value(), "the shutdown completed before the handlers ran");
        BOOST_TEST(run.other->poll() == 2u);
        BOOST_REQUIRE(run_until(ctx, [&] { return run.shut.has_value(); }));
        BOOST_TEST(*run.shut == fcgi::error::client_stopped, run.shut->message());
        BOOST_TEST(run.order == (std::vector<std::string>{"first", "second", "shutdown"}));
    }
    {
        fake_responder fake;
        foreign_handler_run run;  // before ctx: `other` outlives it
        std::optional<asio::io_context> ctx(std::in_place);
        std::optional<fcgi::client> client(std::in_place, *ctx,
                                           plain_pool(fake.unix_endpoint(), 1, 100ms));
        shutdown_behind_foreign_handlers(fake, *ctx, *client, run, false);
        client.reset();
        ctx.reset();                          // the pool goes with it, its shutdown never done
        BOOST_TEST(run.other->poll() == 2u);  // the handlers still run, and report to no one
        BOOST_TEST(!run.shut.has_value());
        BOOST_TEST(run.order == (std::vector<std::string>{"first", "second"}));
    }
}

BOOST_AUTO_TEST_CASE(shutdown_lets_in_flight_requests_finish) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), act::delay(30ms));
        return s;
    }});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 2;
    fcgi::client client(ctx.get_executor(), opts);

    std::vector<std::string> order;  // completions, in order
    outcomes o;
    for (int i = 0; i < 6; ++i)
        start_ordered(client, "s" + std::to_string(i), o, order);
    std::optional<std::error_code> shut;
    client.async_shutdown([&](std::error_code ec) {
        order.push_back("shutdown");
        shut = ec;
    });
    // Started after async_shutdown: the documented answer is client_stopped.
    outcome late;
    start(client, fcgi::test::tagged_request("late"), late);
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return shut.has_value() && late.done; }, 10s),
                          "async_shutdown did not complete within 10 s");
    BOOST_TEST(!*shut, shut->message());
    BOOST_REQUIRE(o.size() == 6u);
    expect_echoed(o);
    BOOST_REQUIRE(!order.empty());
    BOOST_TEST(order.back() == "shutdown");  // only after every request finished
    BOOST_TEST(late.ec == fcgi::error::client_stopped,
               "a request started after async_shutdown: " << late.ec.message());

    outcome after;
    start(client, fcgi::test::tagged_request("after"), after);
    BOOST_REQUIRE(run_until(ctx, [&] { return after.done; }));
    BOOST_TEST(after.ec == fcgi::error::client_stopped, after.ec.message());
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) {
            return s.connections_closed_by_peer == s.connections_accepted;
        },
        5s));
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after shutdown");
}

BOOST_AUTO_TEST_CASE(cancel_fails_everything_pending_with_client_stopped) {
    asio::io_context ctx;
    fake_responder fake({.script_for = [&ctx](const seen_request&) {
        wake(ctx);
        return fcgi::test::script{};  // never answered
    }});
    fcgi::client_options opts;
    opts.endpoints = {fake.tcp_endpoint()};
    opts.max_connections_per_endpoint = 1;
    fcgi::client client(ctx.get_executor(), opts);

    outcomes o;
    for (int i = 0; i < 5; ++i)
        start(client, fcgi::test::tagged_request("c" + std::to_string(i)),
              o["c" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return fake.snapshot().requests.size() == 1 && client.stats().queued == 4; }));
    client.stop();
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const auto& [id, out] : o) {
        BOOST_TEST(out.ec == fcgi::error::client_stopped, id << ": " << out.ec.message());
        BOOST_TEST(out.calls == 1, id);
    }
    outcome after;
    start(client, fcgi::test::tagged_request("after"), after);
    BOOST_REQUIRE(run_until(ctx, [&] { return after.done; }));
    BOOST_TEST(after.ec == fcgi::error::client_stopped, after.ec.message());
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer == 1; }, 5s));
    BOOST_TEST(fake.snapshot().requests.size() == 1u);
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after cancel()");
}

BOOST_AUTO_TEST_CASE(destroying_the_client_with_requests_outstanding) {
    asio::io_context ctx;
    fake_responder fake({.script_for = [&ctx](const seen_request&) {
        wake(ctx);
        return fcgi::test::script{};  // never answered
    }});
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 1;

    // One request on the server, four queued.
    outcomes o;
    {
        fcgi::client client(ctx.get_executor(), opts);
        for (int i = 0; i < 5; ++i)
            start(client, fcgi::test::tagged_request("d" + std::to_string(i)),
                  o["d" + std::to_string(i)]);
        BOOST_REQUIRE(run_until(ctx, [&] {
            return fake.snapshot().requests.size() == 1 && client.stats().queued == 4;
        }));
    }
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const auto& [id, out] : o) {
        BOOST_TEST(out.ec == fcgi::error::client_stopped, id << ": " << out.ec.message());
        BOOST_TEST(out.calls == 1, id);
    }
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer == 1; }, 5s));
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after the client was destroyed");

    // Requests started and the client destroyed before the io_context ever ran: connections
    // still connecting are dropped, every handler runs once.
    outcomes early;
    {
        fcgi::client client(ctx.get_executor(), opts);
        for (int i = 0; i < 3; ++i)
            start(client, fcgi::test::tagged_request("e" + std::to_string(i)),
                  early["e" + std::to_string(i)]);
    }
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(early); }));
    for (const auto& [id, out] : early) {
        BOOST_TEST(out.ec == fcgi::error::client_stopped, id << ": " << out.ec.message());
        BOOST_TEST(out.calls == 1, id);
    }
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after the client was destroyed");
    BOOST_TEST(times_seen(fake.snapshot(), "e0") == 0u);
}

// A completion handler runs inline when the client's executor is already running it (no trip
// through the scheduler): one that stops or destroys the client in the middle of the pool's
// bookkeeping must leave every other request completed exactly once and nothing behind.
BOOST_AUTO_TEST_CASE(completion_handlers_may_cancel_or_destroy_the_client) {
    for (bool destroy : {false, true}) {
        BOOST_TEST_CONTEXT((destroy ? "destroy" : "cancel")) {
            asio::io_context ctx;
            fake_responder fake({.script_for = [&ctx](const seen_request& r) {
                wake(ctx);
                if (r.param("X_ID").value_or("").starts_with("slow"))
                    return fcgi::test::script{};  // never answered
                return fcgi::test::echo_script(r);
            }});
            fcgi::client_options opts;
            opts.endpoints = {fake.unix_endpoint()};
            opts.max_connections_per_endpoint = 2;
            auto client = std::make_unique<fcgi::client>(ctx.get_executor(), opts);

            outcomes o;
            start(*client, fcgi::test::tagged_request("slow"), o["slow"]);
            BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().requests.size() == 1; }));
            // Queued behind "fast": sent only if the pool goes on after the handler.
            start(*client, fcgi::test::tagged_request("queued"), o["queued"]);
            outcome& fast = o["fast"];
            client->async_request(
                fcgi::test::tagged_request("fast"),
                [&, record = recorder(fast)](std::error_code ec, fcgi::response r) {
                    record(ec, std::move(r));
                    if (destroy)
                        client.reset();
                    else
                        client->stop();
                });
            BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
            BOOST_TEST(!fast.ec, fast.ec.message());
            BOOST_TEST(fast.resp.body == fcgi::test::tagged_body("fast"));
            BOOST_TEST(o["slow"].ec == fcgi::error::client_stopped, o["slow"].ec.message());
            // In flight when the client stopped: its diagnostics say so (they said "connection
            // closed").
            BOOST_TEST(o["slow"].resp.diagnostics.starts_with("the client was stopped; request "),
                       o["slow"].resp.diagnostics);
            for (const auto& [id, out] : o)
                BOOST_TEST(out.calls == 1, id);
            // "queued" either went out on the freed connection before the handler ran (and was
            // stopped there) or was failed from the queue: never both, never answered twice.
            BOOST_TEST(times_seen(fake.snapshot(), "queued") <= 1u);
            BOOST_TEST(drains(ctx), "the io_context still had work 5 s after the handler");
        }
    }
}

// Four multiplexed answers in one write, so one read: the first handler destroys the client.
// The other three had arrived in full; they completed with client_stopped, their bodies
// attached, where stop() let them succeed.
BOOST_AUTO_TEST_CASE(responses_read_before_the_client_is_destroyed_keep_their_answer) {
    for (bool destroy : {false, true}) {
        BOOST_TEST_CONTEXT((destroy ? "destroy" : "stop")) {
            asio::io_context ctx;
            fake_responder fake({.interleave = 4, .interleave_wait = 5s});
            fcgi::client_options opts;
            opts.endpoints = {fake.unix_endpoint()};
            opts.max_connections_per_endpoint = 1;
            opts.mode = fcgi::multiplexing::on;
            auto client = std::make_unique<fcgi::client>(ctx.get_executor(), opts);
            outcomes o;
            for (const char* id : {"m0", "m1", "m2", "m3"}) {
                outcome& out = o[id];
                client->async_request(
                    fcgi::test::tagged_request(id),
                    [&, record = recorder(out)](std::error_code ec, fcgi::response r) {
                        record(ec, std::move(r));
                        if (destroy)
                            client.reset();
                        else if (client)
                            client->stop();
                    });
            }
            BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
            for (const auto& [id, out] : o) {
                BOOST_TEST(out.calls == 1, id);
                BOOST_TEST(!out.ec, id << ": " << out.ec.message() << ": " << out.resp.diagnostics);
                BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id), id);
            }
            client.reset();
            BOOST_TEST(drains(ctx));
        }
    }
}

// One timer serves every connection's idle timeout: a connection in use every 50 ms is never
// closed by a 1 s idle timeout, while the pool's other connection, idle all along, is. (The
// margins are wide both ways: a loaded machine may stall the chain, or fire the timer late.)
BOOST_AUTO_TEST_CASE(idle_timeout_closes_only_the_connection_left_idle) {
    asio::io_context ctx;
    fake_responder fake(fcgi::test::fake_responder_options{});
    fcgi::client_options opts;
    opts.endpoints = {fake.unix_endpoint()};
    opts.max_connections_per_endpoint = 2;
    opts.idle_timeout = 1s;
    fcgi::client client(ctx.get_executor(), opts);

    // Two at once: two connections.
    outcomes o;
    start(client, fcgi::test::tagged_request("a"), o["a"]);
    start(client, fcgi::test::tagged_request("b"), o["b"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_REQUIRE(client.stats().endpoints[0].open == 2u);

    // Then one at a time, every 50 ms for 2 s: the pool takes the same connection each time
    // (the one whose request ended last), so the other one idles.
    asio::steady_timer pace(ctx);
    int sent = 0;
    bool chain_done = false;
    std::size_t open_at_end = 0;
    steady::time_point last_done{};
    std::function<void()> next = [&] {
        if (sent == 40) {
            open_at_end = client.stats().endpoints[0].open;
            chain_done = true;
            return;
        }
        ++sent;
        client.async_request(fcgi::test::tagged_request("seq" + std::to_string(sent)),
                             [&](std::error_code ec, fcgi::response) {
                                 BOOST_TEST(!ec, ec.message());
                                 last_done = steady::now();
                                 pace.expires_after(50ms);
                                 pace.async_wait([&](std::error_code) { next(); });
                             });
    };
    next();
    BOOST_REQUIRE(run_until(
        ctx, [&] { return chain_done; }, 10s));
    auto stats = client.stats().endpoints[0];
    BOOST_TEST(open_at_end == 1u);     // the idle one went
    BOOST_TEST(stats.connects == 2u);  // the busy one was never closed and reopened
    BOOST_TEST(stats.completed == 42u);

    // Left alone, the last one goes too, no sooner than its timeout. Its idle clock started
    // when the pool got it back, a little before the handler set last_done.
    BOOST_REQUIRE(run_until(
        ctx, [&] { return client.stats().endpoints[0].open == 0; }, 5s));
    BOOST_TEST(ms_since(last_done) >= 900);
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer == 2; }, 5s));
}

// backlog_relief against a server that did accept: a first request on a new connection that
// stays silent for a while (a slow script) costs the pool one idle connection, once per
// waiting connection however many idle later.
BOOST_AUTO_TEST_CASE(backlog_relief_closes_one_idle_connection_per_waiting_one) {
    for (auto relief : {100ms, 0ms}) {
        BOOST_TEST_CONTEXT("backlog_relief " << relief.count() << " ms") {
            asio::io_context ctx;
            fake_responder fake({.script_for = [](const seen_request& r) {
                auto s = fcgi::test::echo_script(r);
                auto id = r.param("X_ID").value_or("");
                auto d = id == "x"                ? 300ms
                         : id == "y"              ? 450ms
                         : id == "z"              ? 600ms
                         : id.starts_with("slow") ? 1200ms
                                                  : 0ms;
                if (d.count() > 0)
                    s.insert(s.begin(), act::delay(d));
                return s;
            }});
            fcgi::client_options opts;
            opts.endpoints = {fake.unix_endpoint()};
            opts.max_connections_per_endpoint = 5;
            opts.backlog_relief = relief;
            fcgi::client client(ctx.get_executor(), opts);
            // Three connections that have answered before.
            outcomes warm;
            for (const char* id : {"a", "b", "c"})
                start(client, fcgi::test::tagged_request(id), warm[id]);
            BOOST_REQUIRE(run_until(ctx, [&] { return all_done(warm); }));
            BOOST_REQUIRE(client.stats().endpoints[0].open == 3u);
            // x, y and z keep those three busy, so slow1 and slow2 open two more, silent past
            // the relief time. x, y and z then answer one after the other, and each leaves a
            // connection idle: the first two are closed for slow1 and slow2, the third stays.
            outcomes o;
            for (const char* id : {"x", "y", "z", "slow1", "slow2"})
                start(client, fcgi::test::tagged_request(id), o[id]);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return all_done(o); }, 10s));
            for (const auto& [id, out] : o)
                BOOST_TEST(!out.ec, id << ": " << out.ec.message());
            auto e = client.stats().endpoints[0];
            BOOST_TEST(e.connects == 5u);
            BOOST_TEST(e.reconnects == (relief.count() > 0 ? 2u : 0u));
            BOOST_TEST(e.backlog_reliefs == (relief.count() > 0 ? 2u : 0u));
            BOOST_TEST(e.open == (relief.count() > 0 ? 3u : 5u));
            BOOST_TEST(e.completed == 8u);
            client.stop();
        }
    }
}

// -- Shutdown against cancellation and destruction. Two async_shutdown calls wait for the same
// requests and each completes once; cancel() or the destructor in the middle ends them with
// client_stopped after every request's handler (the requests in flight fail through the pool,
// which the destructor must not take away from under them).
BOOST_AUTO_TEST_CASE(shutdown_interrupted_by_cancel_or_destruction_completes) {
    for (bool destroy : {false, true}) {
        BOOST_TEST_CONTEXT((destroy ? "destroy" : "cancel")) {
            asio::io_context ctx;
            fake_responder fake({.script_for = [&ctx](const seen_request&) {
                wake(ctx);
                return fcgi::test::script{};  // never answered
            }});
            auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
            auto client = std::make_unique<fcgi::client>(ctx.get_executor(), opts);

            std::vector<std::string> order;
            outcomes o;
            for (const char* id : {"sent", "queued"})
                start_ordered(*client, id, o, order);
            BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().requests.size() == 1; }));
            std::vector<std::error_code> first, second;
            client->async_shutdown([&](std::error_code ec) {
                order.push_back("shutdown1");
                first.push_back(ec);
            });
            client->async_shutdown([&](std::error_code ec) {
                order.push_back("shutdown2");
                second.push_back(ec);
            });
            ctx.poll();  // both shutdowns start waiting
            BOOST_REQUIRE(first.empty() && second.empty());
            if (destroy)
                client.reset();
            else
                client->stop();
            BOOST_REQUIRE_MESSAGE(run_until(
                                      ctx, [&] { return !first.empty() && !second.empty(); }, 10s),
                                  "async_shutdown did not complete after "
                                      << (destroy ? "the destructor" : "cancel()"));
            BOOST_TEST(drains(ctx), "the io_context still had work 5 s after the stop");
            BOOST_TEST(first.size() == 1u);
            BOOST_TEST(second.size() == 1u);
            BOOST_TEST(first.at(0) == fcgi::error::client_stopped, first.at(0).message());
            BOOST_TEST(second.at(0) == fcgi::error::client_stopped, second.at(0).message());
            for (const auto& [id, out] : o) {
                BOOST_TEST(out.calls == 1, id);
                BOOST_TEST(out.ec == fcgi::error::client_stopped, id << ": " << out.ec.message());
            }
            BOOST_REQUIRE(order.size() == 4u);
            BOOST_TEST(order[2] == "shutdown1");  // after both requests
            BOOST_TEST(order[3] == "shutdown2");
        }
    }
}

// -- The same, with the io_context destroyed before it runs the requests' failures: nothing is
// left behind (the ASan build's leak check fails otherwise), and no handler runs after.
BOOST_AUTO_TEST_CASE(shutdown_interrupted_then_io_context_destroyed_frees_the_pool) {
    fake_responder fake({.silent = true});
    outcomes o;
    std::vector<std::error_code> shut;
    {
        asio::io_context ctx;
        auto client = std::make_unique<fcgi::client>(ctx.get_executor(),
                                                     plain_pool(fake.unix_endpoint(), 1, 100ms));
        start(*client, fcgi::test::tagged_request("held"), o["held"]);
        BOOST_REQUIRE(
            run_until(ctx, [&] { return client->stats().endpoints.at(0).in_flight == 1; }));
        client->async_shutdown([&](std::error_code ec) { shut.push_back(ec); });
        ctx.restart();
        ctx.poll();  // the shutdown waits
        client.reset();
        ctx.restart();
        ctx.poll_one();  // the destructor's stop(), and no more
    }
    BOOST_TEST(shut.empty());  // its io_context went before it could run
    BOOST_TEST(!o["held"].done);
}

// -- A request retried after OVERLOADED waits in the queue for the endpoint's backoff (60 s
// here) with nothing in flight. Its deadline still counts from the first call, and a shutdown
// waiting only for it finishes as soon as it times out or is cancelled.
BOOST_AUTO_TEST_CASE(retried_request_keeps_its_deadline_and_shutdown_sees_it_go) {
    for (bool cancel : {false, true}) {
        BOOST_TEST_CONTEXT((cancel ? "cancelled" : "timed out")) {
            fake_responder fake(
                {.script_for = refusing_by_attempt(
                     [](const std::string&, int n) -> std::optional<protocol_status> {
                         if (n == 1)
                             return protocol_status::overloaded;
                         return std::nullopt;
                     })});
            asio::io_context ctx;
            fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 60s));
            auto req = fcgi::test::tagged_request("again");
            if (!cancel)
                req.timeout = 300ms;
            asio::cancellation_signal sig;
            outcome out;
            auto started = steady::now();
            client.async_request(std::move(req),
                                 asio::bind_cancellation_slot(sig.slot(), recorder(out)));
            BOOST_REQUIRE(run_until(ctx, [&] {
                auto s = client.stats();
                return s.retries == 1 && s.queued == 1;
            }));
            std::optional<std::error_code> shut;
            client.async_shutdown([&](std::error_code ec) { shut = ec; });
            if (cancel)
                sig.emit(asio::cancellation_type::terminal);
            BOOST_REQUIRE_MESSAGE(run_until(
                                      ctx, [&] { return out.done && shut.has_value(); }, 10s),
                                  "still waiting after 10 s: request done "
                                      << out.done << ", shutdown done " << shut.has_value());
            BOOST_TEST(out.calls == 1);
            if (cancel) {
                BOOST_TEST(out.ec == asio::error::operation_aborted, out.ec.message());
            } else {
                BOOST_TEST(out.ec == fcgi::error::request_timeout, out.ec.message());
                BOOST_TEST(ms_since(started) >= 290);  // not before its deadline
            }
            BOOST_TEST(!*shut, shut->message());
            BOOST_TEST(times_seen(fake.snapshot(), "again") == 1u);
            BOOST_TEST(drains(ctx), "the io_context still had work 5 s after shutdown");
        }
    }
}

// -- Connect failures are counted however their completions interleave with the pool's
// events: two connects to an endpoint that refuses (no socket) fail in the same turn, and the
// first failure's pump must not drop the second connection before its own completion counts it.
BOOST_AUTO_TEST_CASE(every_connect_failure_is_counted) {
    fcgi::test::temp_socket_path nowhere;  // nothing listens there
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(),
                        plain_pool(fcgi::endpoint::unix_socket(nowhere.path), 2, 60s));
    outcomes o;
    for (const char* id : {"r1", "r2"})
        start(client, fcgi::test::tagged_request(id), o[id]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const auto& [id, out] : o)
        BOOST_TEST(out.ec == fcgi::error::no_endpoint, id << ": " << out.ec.message());
    ctx.restart();
    ctx.poll();  // completions already due
    auto refusing = client.stats().endpoints.at(0);
    BOOST_TEST(refusing.connects == 2u);
    BOOST_TEST(refusing.connect_failures == 2u);
    BOOST_TEST(refusing.open == 0u);
    client.stop();
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after cancel()");
}

// -- max_pending counts requests waiting for a busy connection, not those a new connection is
// being opened for: with max_pending 0 the pool still opens its connections. With auto_detect,
// requests made while the GET_VALUES probe runs wait for connections the pool has yet to open,
// one per connection.
BOOST_AUTO_TEST_CASE(max_pending_zero_still_opens_the_pool) {
    for (auto mode : {fcgi::multiplexing::off, fcgi::multiplexing::auto_detect}) {
        BOOST_TEST_CONTEXT("auto_detect: " << (mode == fcgi::multiplexing::auto_detect)) {
            asio::io_context ctx;
            fake_responder fake(fcgi::test::fake_responder_options{});
            auto opts = plain_pool(fake.unix_endpoint(), 2, 100ms);
            opts.mode = mode;
            opts.max_pending = 0;
            fcgi::client client(ctx.get_executor(), opts);

            outcomes o;
            for (const char* id : {"p1", "p2", "p3"})
                start(client, fcgi::test::tagged_request(id), o[id]);
            BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
            for (const char* id : {"p1", "p2"}) {
                BOOST_TEST(!o[id].ec,
                           id << ": " << o[id].ec.message() << " " << o[id].resp.diagnostics);
                BOOST_TEST(o[id].resp.body == fcgi::test::tagged_body(id));
            }
            BOOST_TEST(o["p3"].ec == fcgi::error::pool_exhausted, o["p3"].ec.message());
            // While the probe runs no connection is open: "busy" would mislead.
            BOOST_TEST(o["p3"].resp.diagnostics ==
                       (mode == fcgi::multiplexing::off
                            ? "every connection is busy, and with max_pending 0 no request may "
                              "wait for one"
                            : "no connection is open yet (the auto_detect probe is still "
                              "running, and the requests it opens connections for are taken), "
                              "and with max_pending 0 no request may wait for one"));
            BOOST_TEST(client.stats().rejected == 1u);
            BOOST_TEST(times_seen(fake.snapshot(), "p3") == 0u);
            if (mode == fcgi::multiplexing::auto_detect)  // it did probe
                BOOST_TEST(client.stats().endpoints.at(0).max_in_flight_per_connection > 1u);
            shutdown(ctx, client);
        }
    }
}

// A multiplexed connection being opened was counted as max_requests_per_connection places (16)
// for the queue, even when it retires after one request: with max_pending 0, 16 of 20 were
// admitted to wait for one connection at a time.
BOOST_AUTO_TEST_CASE(max_pending_zero_counts_a_retiring_connection_as_its_lifetime) {
    asio::io_context ctx;
    fake_responder fake(fcgi::test::fake_responder_options{});
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection_lifetime = 1;
    opts.max_pending = 0;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    for (int i = 0; i < 20; ++i)
        start(client, fcgi::test::tagged_request("r" + std::to_string(i)),
              o["r" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    std::size_t served = 0, rejected = 0;
    for (const auto& [id, out] : o) {
        served += !out.ec;
        rejected += out.ec == fcgi::error::pool_exhausted;
    }
    BOOST_TEST(served == 1u);
    BOOST_TEST(rejected == 19u);
    shutdown(ctx, client);
}

// A pool of one connection to a socket nobody listens on, waiting for it (wait_when_down) with
// a 5 s backoff, so no reconnect comes during a test.
struct pool_with_the_endpoint_down {
    explicit pool_with_the_endpoint_down(std::size_t max_pending)
        : client(ctx.get_executor(), options(nowhere, max_pending)) {}
    static fcgi::client_options options(const fcgi::test::temp_socket_path& p,
                                        std::size_t max_pending) {
        auto opts = plain_pool(fcgi::endpoint::unix_socket(p.path), 1, 5s);
        opts.max_pending = max_pending;
        opts.wait_when_down = true;
        return opts;
    }
    std::string where() const { return fcgi::endpoint::unix_socket(nowhere.path).to_string(); }

    fcgi::test::temp_socket_path nowhere;  // nothing listens there
    asio::io_context ctx;
    fcgi::client client;
};

// max_pending 0 with no connection open (the endpoint down, wait_when_down): the rejection says
// so and why, not "every connection is busy".
BOOST_AUTO_TEST_CASE(max_pending_zero_with_the_endpoint_down_says_so) {
    pool_with_the_endpoint_down p(0);
    auto& ctx = p.ctx;
    auto& client = p.client;
    outcomes o;
    start(client, fcgi::test::tagged_request("first"), o["first"]);  // a connect is opened for it
    BOOST_REQUIRE(run_until(ctx, [&] { return client.stats().endpoints.at(0).down; }));
    start(client, fcgi::test::tagged_request("second"), o["second"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return o["second"].done; }));
    BOOST_TEST(o["second"].ec == fcgi::error::pool_exhausted, o["second"].ec.message());
    BOOST_TEST(o["second"].resp.diagnostics.starts_with(
                   "no connection is open, and with max_pending 0 no request may wait for one; "
                   "endpoints down: " +
                   p.where() + ": "),
               o["second"].resp.diagnostics);
    BOOST_TEST(!o["first"].done);  // it waits for the endpoint, as wait_when_down says
    client.stop();
    BOOST_REQUIRE(run_until(ctx, [&] { return o["first"].done; }));
    BOOST_TEST(o["first"].ec == fcgi::error::client_stopped, o["first"].ec.message());
}

// max_pending above 0, the endpoint down (wait_when_down): the rejection names it too. The
// requests let in for the connect that failed wait beyond max_pending, which it says why.
BOOST_AUTO_TEST_CASE(max_pending_with_the_endpoint_down_says_so) {
    pool_with_the_endpoint_down p(1);
    auto& ctx = p.ctx;
    auto& client = p.client;
    outcomes o;
    for (const char* id : {"a", "b"})  // a connect is opened for "a"; "b" may wait
        start(client, fcgi::test::tagged_request(id), o[id]);
    BOOST_REQUIRE(run_until(ctx, [&] { return client.stats().endpoints.at(0).down; }));
    start(client, fcgi::test::tagged_request("c"), o["c"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return o["c"].done; }));
    BOOST_TEST(o["c"].ec == fcgi::error::pool_exhausted, o["c"].ec.message());
    BOOST_TEST(o["c"].resp.diagnostics.starts_with(
                   "2 requests already wait for a connection (max_pending 1; more were let in "
                   "earlier, for connections being opened or back for a retry); endpoints "
                   "down: " +
                   p.where() + ": "),
               o["c"].resp.diagnostics);
    BOOST_TEST(!o["a"].done);
    BOOST_TEST(!o["b"].done);
    client.stop();
    BOOST_REQUIRE(run_until(ctx, [&] { return o["a"].done && o["b"].done; }));
}

// -- initial_backoff 0 still marks a refusing endpoint down (as 1 ms): the request fails with
// no_endpoint instead of reconnecting in a loop until its deadline.
BOOST_AUTO_TEST_CASE(zero_backoff_still_fails_with_no_endpoint) {
    fcgi::test::temp_socket_path nowhere;  // nothing listens there
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(nowhere.path), 2, 0ms);
    opts.max_backoff = 0ms;
    fcgi::client client(ctx.get_executor(), opts);
    auto req = fcgi::test::tagged_request("z");
    req.timeout = 5s;
    outcome out;
    start(client, std::move(req), out);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return out.done; }, 10s));
    BOOST_TEST(out.ec == fcgi::error::no_endpoint, out.ec.message() << " " << out.resp.diagnostics);
    BOOST_TEST(out.resp.times_sent == 0u);
    BOOST_TEST((out.ec == fcgi::condition::transport_error));  // "backend unreachable"
    BOOST_TEST(client.stats().endpoints.at(0).connect_failures >= 1u);
    // The cause, for a program to act on without parsing the diagnostics.
    const auto cause = client.stats().endpoints.at(0).last_down_error;
    BOOST_TEST(cause.value() == ENOENT, cause.message());  // Asio's category: no errc match
    client.stop();
    BOOST_TEST(drains(ctx));
}

// A round of connects refused together is one failure of the endpoint: the backoff doubles once
// per round. It doubled per connect, so with 4 connections one round took a 300 ms backoff to
// 2.4 s, and a server back after a moment stayed locked out for seconds.
BOOST_AUTO_TEST_CASE(backoff_doubles_once_per_round_of_refused_connects) {
    fake_responder fake({.tcp = false});
    // Refused (ENOENT) until the link to the responder's socket exists.
    std::filesystem::path link = fake.unix_endpoint().path + ".link";
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(link.string()), 4, 300ms);
    opts.max_backoff = 10s;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    start_tagged(client, "down", 4, o);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const auto& [id, out] : o)
        BOOST_TEST(out.ec == fcgi::error::no_endpoint, id << ": " << out.ec.message());
    BOOST_TEST(client.stats().endpoints.at(0).connect_failures == 4u);

    std::filesystem::create_symlink(fake.unix_endpoint().path, link);
    auto back = steady::now();
    // Ask every 20 ms until a request gets through; one fails with no_endpoint at once while
    // the endpoint is still in its backoff.
    outcome last;
    asio::steady_timer pause(ctx);
    std::function<void()> ask = [&] {
        client.async_request(fcgi::test::tagged_request("up"),
                             [&](std::error_code ec, fcgi::response r) {
                                 recorder(last)(ec, std::move(r));
                                 if (ec == fcgi::error::no_endpoint && ms_since(back) < 5000) {
                                     last.done = false;
                                     pause.expires_after(20ms);
                                     pause.async_wait([&](std::error_code) { ask(); });
                                 }
                             });
    };
    ask();
    BOOST_REQUIRE(run_until(ctx, [&] { return last.done; }));
    BOOST_TEST(!last.ec, last.ec.message() << ": " << last.resp.diagnostics);
    BOOST_TEST(ms_since(back) < 2000);  // one backoff of 300 ms, not 2.4 s
    std::filesystem::remove(link);
    shutdown(ctx, client);
}

// And each round that fails doubles it: a regression that stopped the growth (or reset it on
// every failure) would keep every round initial_backoff apart. Lower bounds only: a loaded
// machine can only stretch the gaps.
BOOST_AUTO_TEST_CASE(backoff_grows_with_each_failed_round) {
    fcgi::test::temp_socket_path nowhere;  // nothing listens there
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(nowhere.path), 1, 200ms);
    opts.max_backoff = 10s;
    fcgi::client client(ctx.get_executor(), opts);
    std::vector<steady::time_point> rounds;  // when each refused connect was reported
    std::uint64_t seen = 0;
    asio::steady_timer pause(ctx);
    // A request every 10 ms; one made while the endpoint is down fails at once without a connect.
    std::function<void()> ask = [&] {
        client.async_request(fcgi::test::tagged_request("r"),
                             [&](std::error_code ec, fcgi::response) {
                                 auto failures = client.stats().endpoints.at(0).connect_failures;
                                 if (failures > seen) {
                                     seen = failures;
                                     rounds.push_back(steady::now());
                                 }
                                 if (rounds.size() < 3 && ec == fcgi::error::no_endpoint) {
                                     pause.expires_after(10ms);
                                     pause.async_wait([&](std::error_code) { ask(); });
                                 }
                             });
    };
    ask();
    BOOST_REQUIRE(run_until(ctx, [&] { return rounds.size() == 3; }));
    auto gap = [&](std::size_t i) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(rounds[i + 1] - rounds[i])
            .count();
    };
    // Margins for the time between arming a timer and seeing its result on a loaded machine.
    BOOST_TEST(gap(0) >= 100);  // the initial 200 ms
    BOOST_TEST(gap(1) >= 250);  // doubled: 400 ms
    client.stop();
    BOOST_TEST(drains(ctx));
}

// A handler may run the io_context itself until its next request is done (Asio allows it): that
// nested run delivered its completion through the batch the outer delivery was iterating, cut
// that batch short and left the running handler queued, which the next read dispatched again,
// empty: a null dereference.
BOOST_AUTO_TEST_CASE(handler_that_runs_the_context_again) {
    fake_responder fake({.tcp = false});
    asio::io_context ctx;
    fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcome first, second, third;
    client.async_request(fcgi::test::tagged_request("first"),
                         [&](std::error_code ec, fcgi::response r) {
                             recorder(first)(ec, std::move(r));
                             start(client, fcgi::test::tagged_request("second"), second);
                             while (!second.done && ctx.run_one() > 0) {
                             }
                             start(client, fcgi::test::tagged_request("third"), third);
                         });
    BOOST_REQUIRE(run_until(ctx, [&] { return first.done && second.done && third.done; }));
    for (auto* o : {&first, &second, &third}) {
        BOOST_TEST(!o->ec, o->ec.message() << ": " << o->resp.diagnostics);
        BOOST_TEST(o->calls == 1);
    }
    BOOST_TEST(third.resp.body == fcgi::test::tagged_body("third"));
    shutdown(ctx, client);
}

// No endpoint at all is the caller's mistake, not an outage: invalid_endpoint, not no_endpoint
// (which an alert on transport_error catches).
BOOST_AUTO_TEST_CASE(no_endpoint_configured_is_a_caller_error) {
    asio::io_context ctx;
    fcgi::client client(ctx, fcgi::client_options{});  // on the context, as Asio's objects take
    outcome out;
    start(client, fcgi::test::tagged_request("none"), out);
    BOOST_REQUIRE(run_until(ctx, [&] { return out.done; }));
    BOOST_TEST(out.ec == fcgi::error::invalid_endpoint, out.ec.message());
    BOOST_TEST((out.ec == fcgi::condition::caller_error));
    BOOST_TEST(out.resp.diagnostics.find("client_options::endpoints is empty") != std::string::npos,
               out.resp.diagnostics);
    client.stop();
    BOOST_TEST(drains(ctx));
}

// An endpoint built with unix_socket() or tcp() that cannot be connected to is the caller's
// mistake too: every request fails at once with invalid_endpoint naming it, also beside a good
// endpoint and under wait_when_down, rather than back off as a refusing server (no_endpoint, or
// a wait until the deadline).
BOOST_AUTO_TEST_CASE(an_endpoint_that_cannot_be_connected_to_is_a_caller_error) {
    fake_responder fake({.tcp = false});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 60s);
    opts.endpoints.push_back(fcgi::endpoint::unix_socket("/tmp/" + std::string(200, 'l')));
    opts.wait_when_down = true;
    fcgi::client client(ctx.get_executor(), opts);
    outcome first, second;
    start(client, fcgi::test::tagged_request("one"), first);
    start(client, fcgi::test::tagged_request("two"), second);
    BOOST_REQUIRE(run_until(ctx, [&] { return first.done && second.done; }));
    for (auto* o : {&first, &second}) {
        BOOST_TEST(o->ec == fcgi::error::invalid_endpoint, o->ec.message());
        BOOST_TEST(o->resp.diagnostics.find("client_options::endpoints[1] cannot be connected "
                                            "to: the unix socket path is longer than 107") !=
                       std::string::npos,
                   o->resp.diagnostics);
        BOOST_TEST(o->resp.times_sent == 0u);
    }
    BOOST_TEST(fake.snapshot().connections_accepted == 0u);
    client.stop();
    BOOST_TEST(drains(ctx));

    // The connection refuses one too, before resolving a host name no resolver would take.
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected;
    conn.async_connect(fcgi::endpoint::tcp("local\nhost", 9000),
                       [&](std::error_code ec) { connected = ec; });
    ctx.restart();
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_TEST(*connected == fcgi::error::invalid_endpoint, connected->message());
}

// reset_backoff() ends a backoff the caller knows is stale: php-fpm is back, and neither a new
// request nor one waiting for it (wait_when_down) waits the rest of a 60 s backoff.
BOOST_AUTO_TEST_CASE(reset_backoff_connects_at_once) {
    fake_responder fake({.tcp = false});
    std::filesystem::path link = fake.unix_endpoint().path + ".link";
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(link.string()), 1, 60s);
    fcgi::client client(ctx.get_executor(), opts);
    outcome down;
    start(client, fcgi::test::tagged_request("down"), down);
    BOOST_REQUIRE(run_until(ctx, [&] { return down.done; }));
    BOOST_TEST(down.ec == fcgi::error::no_endpoint, down.ec.message());

    // Back, but the pool does not know: still in its backoff.
    std::filesystem::create_symlink(fake.unix_endpoint().path, link);
    outcome still;
    start(client, fcgi::test::tagged_request("still"), still);
    BOOST_REQUIRE(run_until(ctx, [&] { return still.done; }));
    BOOST_TEST(still.ec == fcgi::error::no_endpoint, still.ec.message());

    client.reset_backoff();
    BOOST_TEST(!client.stats().endpoints.at(0).down);
    outcome up;
    start(client, fcgi::test::tagged_request("up"), up);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return up.done; }, 10s));
    BOOST_TEST(!up.ec, up.ec.message() << ": " << up.resp.diagnostics);
    std::filesystem::remove(link);
    shutdown(ctx, client);
}

BOOST_AUTO_TEST_CASE(reset_backoff_sends_what_waits_for_the_endpoint) {
    fake_responder fake({.tcp = false});
    std::filesystem::path link = fake.unix_endpoint().path + ".link";
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(link.string()), 1, 60s);
    opts.wait_when_down = true;
    fcgi::client client(ctx.get_executor(), opts);
    outcome waiting;
    start(client, fcgi::test::tagged_request("waiting"), waiting);
    BOOST_REQUIRE(run_until(ctx, [&] { return client.stats().endpoints.at(0).down; }));
    std::filesystem::create_symlink(fake.unix_endpoint().path, link);
    ctx.poll();
    BOOST_TEST(!waiting.done);  // waits out the 60 s backoff unless told
    client.reset_backoff();
    BOOST_REQUIRE(run_until(
        ctx, [&] { return waiting.done; }, 10s));
    BOOST_TEST(!waiting.ec, waiting.ec.message() << ": " << waiting.resp.diagnostics);
    std::filesystem::remove(link);
    shutdown(ctx, client);
}

// A request that cannot be sent fails at once with invalid_request, before it waits. It used to
// be checked only by the connection that took it: it failed with whatever happened meanwhile
// (no_endpoint here, request_timeout behind a busy pool), or opened a connection to be refused.
BOOST_AUTO_TEST_CASE(invalid_request_fails_before_it_waits) {
    fcgi::test::temp_socket_path nowhere;  // nothing listens there
    asio::io_context ctx;
    auto opts = plain_pool(fcgi::endpoint::unix_socket(nowhere.path), 1, 100ms);
    fcgi::client client(ctx.get_executor(), opts);
    auto relative = fcgi::test::tagged_request("relative");
    relative.script = "relative.php";
    auto wrong_length = fcgi::test::tagged_request("wrong_length");
    wrong_length.body = "abc";
    wrong_length.headers = {{"Content-Length", "4"}};
    outcome plain, empty, length;
    start(client, std::move(relative), plain);
    client.async_request(fcgi::prepared_request(), recorder(empty));
    start(client, std::move(wrong_length), length);
    BOOST_REQUIRE(run_until(ctx, [&] { return plain.done && empty.done && length.done; }));
    BOOST_TEST(plain.ec == fcgi::error::invalid_request, plain.ec.message());
    BOOST_TEST(plain.resp.diagnostics.find("'relative.php'") != std::string::npos,
               plain.resp.diagnostics);
    BOOST_TEST(empty.ec == fcgi::error::invalid_request, empty.ec.message());
    BOOST_TEST(empty.resp.diagnostics.find("prepared request is empty") != std::string::npos,
               empty.resp.diagnostics);
    BOOST_TEST(length.ec == fcgi::error::invalid_request, length.ec.message());
    BOOST_TEST(length.resp.diagnostics.find("Content-Length header '4'") != std::string::npos,
               length.resp.diagnostics);
    BOOST_TEST(client.stats().endpoints.at(0).connects == 0u);
    BOOST_TEST(client.stats().failed == 3u);
    client.stop();
    BOOST_TEST(drains(ctx));
}

// -- Durations far beyond any run mean "never", not an overflow: a request timeout and an idle
// timeout of milliseconds::max() neither fail the request nor close the connection at once.
BOOST_AUTO_TEST_CASE(huge_timeouts_mean_never) {
    asio::io_context ctx;
    fake_responder fake(fcgi::test::fake_responder_options{});
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.idle_timeout = std::chrono::milliseconds::max();
    opts.backlog_relief = std::chrono::milliseconds::max();
    opts.connection.request_timeout = std::chrono::milliseconds::max();
    fcgi::client client(ctx.get_executor(), opts);

    outcomes o;
    auto own = fcgi::test::tagged_request("own");
    own.timeout = std::chrono::milliseconds::max();
    start(client, std::move(own), o["own"]);
    start(client, fcgi::test::tagged_request("default"), o["default"]);  // queued behind
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    expect_echoed(o);
    ctx.restart();
    ctx.poll();  // an idle timer due "now" would fire here
    outcome again;
    start(client, fcgi::test::tagged_request("again"), again);
    BOOST_REQUIRE(run_until(ctx, [&] { return again.done; }));
    BOOST_TEST(!again.ec, again.ec.message());
    BOOST_TEST(client.stats().endpoints.at(0).connects == 1u);  // the connection was kept
    shutdown(ctx, client);
}

// -- A negative request timeout is `deadline - now` for a job already late: it fails at once
// with request_timeout and is never sent, from a client and from a connection alike. It once
// meant "no deadline", and a late job ran unbounded.
BOOST_AUTO_TEST_CASE(negative_timeout_is_a_deadline_passed) {
    asio::io_context ctx;
    fake_responder fake(fcgi::test::fake_responder_options{});
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.connection.request_timeout = -1ms;  // a negative default is none
    fcgi::client client(ctx.get_executor(), opts);

    outcomes o;
    auto late = fcgi::test::tagged_request("late");
    late.timeout = -5ms;
    start(client, std::move(late), o["late"]);
    start(client, fcgi::test::tagged_request("default"), o["default"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(o["late"].ec == fcgi::error::request_timeout, o["late"].ec.message());
    BOOST_TEST(o["late"].resp.diagnostics.find("request::timeout is -5 ms") != std::string::npos,
               o["late"].resp.diagnostics);
    BOOST_TEST(!o["default"].ec, o["default"].ec.message());

    fcgi::connection conn(ctx.get_executor());
    std::error_code cec;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { cec = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return conn.is_open() || cec; }));
    BOOST_REQUIRE(!cec);
    outcome direct;
    auto also_late = fcgi::test::tagged_request("also-late");
    also_late.timeout = -1ms;
    conn.async_request(std::move(also_late), recorder(direct));
    BOOST_REQUIRE(run_until(ctx, [&] { return direct.done; }));
    BOOST_TEST(direct.ec == fcgi::error::request_timeout, direct.ec.message());
    BOOST_TEST(conn.is_open());  // nothing was sent, so nothing to close

    auto snap = fake.snapshot();
    BOOST_TEST(times_seen(snap, "late") == 0u);
    BOOST_TEST(times_seen(snap, "also-late") == 0u);
    BOOST_TEST(times_seen(snap, "default") == 1u);
    conn.close();
    shutdown(ctx, client);
}

// -- A burst of requests against idle endpoints spreads its new connections over them: ties in
// outstanding requests go to the endpoint with fewer connections.
BOOST_AUTO_TEST_CASE(a_burst_opens_connections_on_every_endpoint) {
    asio::io_context ctx;
    fake_responder a(fcgi::test::fake_responder_options{});
    fake_responder b(fcgi::test::fake_responder_options{});
    fcgi::client_options opts;
    opts.endpoints = {a.unix_endpoint(), b.unix_endpoint()};
    opts.max_connections_per_endpoint = 4;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    start_tagged(client, "b", 4, o);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const auto& [id, out] : o)
        BOOST_TEST(!out.ec, id << ": " << out.ec.message());
    auto s = client.stats();
    BOOST_TEST(s.endpoints.at(0).connects == 2u);
    BOOST_TEST(s.endpoints.at(1).connects == 2u);
    shutdown(ctx, client);
}

// A multiplexed connection that a server closes with several GETs on it and not a byte back:
// each goes once to the other endpoint. Only the first was: whether the connection had read
// anything was asked of it when each posted completion ran, and by then the pool had dropped
// it, so the rest failed with connection_lost (the fallback assumed a shared connection).
BOOST_AUTO_TEST_CASE(multiplexed_silent_close_fails_every_request_over) {
    fake_responder closing({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::close()};
    }});
    fake_responder healthy;
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {closing.unix_endpoint(), healthy.unix_endpoint()};
    opts.mode = fcgi::multiplexing::on;
    opts.max_connections_per_endpoint = 1;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    for (int i = 0; i < 6; ++i)
        start(client, fcgi::test::tagged_request("m" + std::to_string(i)),
              o["m" + std::to_string(i)]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_REQUIRE(closing.snapshot().requests.size() >= 2u);  // the premise: several on it
    for (auto& [id, out] : o) {
        BOOST_TEST(!out.ec, id << ": " << out.ec.message() << ": " << out.resp.diagnostics);
        BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id));
    }
    shutdown(ctx, client);
}

// Failover to an endpoint that accepts connections and then fails them without a byte: one
// that closes each at once, one that never answers. Only refused connects marked an endpoint
// down, and a full tie went to the first endpoint, so one request at a time all went to the
// failing one (20 of 20 failed) while the other sat unused.
BOOST_AUTO_TEST_CASE(failover_from_an_endpoint_that_accepts_then_fails) {
    for (bool silent : {false, true}) {
        BOOST_TEST_CONTEXT((silent ? "never answers" : "closes at once")) {
            asio::io_context ctx;
            fake_responder bad({.close_on_accept = !silent, .silent = silent});
            fake_responder good(fcgi::test::fake_responder_options{});
            fcgi::client_options opts;
            opts.endpoints = {bad.unix_endpoint(), good.unix_endpoint()};
            opts.max_connections_per_endpoint = 1;
            fcgi::client client(ctx.get_executor(), opts);
            int ok = 0, failed = 0;
            for (int i = 0; i < 10; ++i) {
                const std::string id = "r" + std::to_string(i);
                auto req = fcgi::test::tagged_request(id);
                req.timeout = 300ms;
                outcome o;
                start(client, req, o);
                BOOST_REQUIRE(run_until(ctx, [&] { return o.done; }));
                if (!o.ec && o.resp.body == fcgi::test::tagged_body(id))
                    ++ok;
                else
                    ++failed;
            }
            // The request that meets the closing endpoint goes again to the other (a GET), unless
            // the close came while connecting; the one that meets the silent one waits out its
            // deadline, and the next ones go on.
            BOOST_TEST(failed == (silent ? 1 : 0));
            BOOST_TEST(ok == 10 - failed);
            auto s = client.stats();
            BOOST_TEST(s.endpoints.at(1).completed == static_cast<std::uint64_t>(ok));
            // A close seen while connecting counts as a refused connect: no retry is needed.
            BOOST_TEST(s.retries <= (silent ? 0u : 1u));
            shutdown(ctx, client);
        }
    }
}

// The same with requests in flight together, several connections per endpoint: the one retry
// of a GET that the closing endpoint failed goes to the other endpoint. It used to go to the
// least busy endpoint, often the failing one again (a sibling connection opened in the same
// round, or a new one), and the GET was lost.
BOOST_AUTO_TEST_CASE(failover_retry_goes_to_another_endpoint) {
    asio::io_context ctx;
    fake_responder bad({.close_on_accept = true});
    fake_responder good(fcgi::test::fake_responder_options{});
    fcgi::client_options opts;
    opts.endpoints = {bad.unix_endpoint(), good.unix_endpoint()};
    opts.max_connections_per_endpoint = 4;
    opts.initial_backoff = 1ms;  // the bad endpoint keeps getting a share of new connections
    fcgi::client client(ctx.get_executor(), opts);
    for (int round = 0; round < 5; ++round) {
        outcomes o;
        for (int i = 0; i < 8; ++i) {
            auto id = "r" + std::to_string(round) + "-" + std::to_string(i);
            auto req = fcgi::test::tagged_request(id);
            req.timeout = 5s;
            start(client, std::move(req), o[id]);
        }
        BOOST_REQUIRE(run_until(
            ctx, [&] { return all_done(o); }, 10s));
        for (const auto& [id, out] : o) {
            BOOST_TEST(!out.ec, id << ": " << out.ec.message() << " sent " << out.resp.times_sent
                                   << " " << out.resp.diagnostics);
            BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id));
        }
    }
    BOOST_TEST(client.stats().endpoints.at(0).completed == 0u);
    BOOST_TEST(client.stats().endpoints.at(1).completed == 40u);
    shutdown(ctx, client);
}

// Two healthy endpoints, each held after a slow script ran past its deadline on a new
// connection (failover): requests that come meanwhile wait for a hold to end and are served.
// They failed at once with no_endpoint, "the last connect to each one failed", though every
// connect had succeeded and both servers were answering.
BOOST_AUTO_TEST_CASE(endpoints_held_after_failover_are_not_down) {
    asio::io_context ctx;
    fake_responder fake({.script_for = [](const seen_request& r) {
        return r.param("X_ID").value_or("").starts_with("slow") ? fcgi::test::script{}
                                                                : fcgi::test::echo_script(r);
    }});
    fcgi::client client(ctx.get_executor(),
                        one_connection_each(fake.unix_endpoint(), fake.tcp_endpoint(), 100ms));
    outcomes slow;
    for (const char* id : {"slow-1", "slow-2"}) {
        auto req = fcgi::test::tagged_request(id);
        req.timeout = 50ms;
        start(client, std::move(req), slow[id]);
    }
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(slow); }));
    for (const auto& [id, out] : slow)
        BOOST_TEST(out.ec == fcgi::error::request_timeout, id << ": " << out.ec.message());
    // The premise: one on each endpoint, so that both are held now.
    auto held = client.stats();
    BOOST_REQUIRE(held.endpoints.at(0).failed == 1u);
    BOOST_REQUIRE(held.endpoints.at(1).failed == 1u);
    outcomes fast;
    start_tagged(client, "fast", 6, fast);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(fast); }));
    expect_echoed(fast);
    shutdown(ctx, client);
}

// A retry that waits for the other endpoint (here after OVERLOADED, with that endpoint's one
// connection busy) holds up no request behind it that the endpoint it left can serve once its
// hold ends. They all waited for the busy endpoint, while the other one sat idle.
BOOST_AUTO_TEST_CASE(requests_behind_a_retry_go_to_an_endpoint_it_avoids) {
    std::atomic<bool> release{false};
    std::atomic<int> overs{0};
    auto script = [&](const seen_request& r) {
        auto id = r.param("X_ID").value_or("");
        auto s = fcgi::test::echo_script(r);
        if (id == "long")
            s.insert(s.begin(), act::wait_until([&] { return release.load(); }));
        if (id == "over" && ++overs == 1)
            return fcgi::test::script{act::end(fcgi::protocol::protocol_status::overloaded)};
        return s;
    };
    fake_responder a({.script_for = script});
    fake_responder b({.script_for = script});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(),
                        one_connection_each(a.unix_endpoint(), b.unix_endpoint(), 20ms));
    outcomes o;
    start(client, fcgi::test::tagged_request("long"), o["long"]);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return a.snapshot().requests.size() + b.snapshot().requests.size() == 1; }));
    // "over" goes to the other endpoint, is refused, and waits to go again where "long" runs.
    start(client, fcgi::test::tagged_request("over"), o["over"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return overs.load() == 1; }));
    start(client, fcgi::test::tagged_request("behind-1"), o["behind-1"]);
    start(client, fcgi::test::tagged_request("behind-2"), o["behind-2"]);
    // Bounded below the responder's 20 s cap on wait_until, which would release "long".
    BOOST_TEST(run_until(
        ctx, [&] { return o["behind-1"].done && o["behind-2"].done; }, 10s));
    BOOST_TEST(!o["long"].done);
    BOOST_TEST(!o["over"].done);
    release = true;
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    expect_echoed(o);
    BOOST_TEST(o["over"].resp.times_sent == 2u);
    shutdown(ctx, client);
}

// A connect that hangs (its SYN dropped) on the first endpoint holds a request back from the
// second for connect_race_delay (250 ms), not for the whole connect_timeout: the request got
// nothing before its deadline, though the second endpoint was idle and healthy.
BOOST_AUTO_TEST_CASE(a_hanging_connect_does_not_starve_another_endpoint,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    asio::io_context ctx;
    fcgi::test::unaccepted_listener hole;
    fake_responder fake;
    fcgi::client_options opts;
    opts.endpoints = {hole.endpoint(), fake.unix_endpoint()};
    opts.connection.connect_timeout = 10s;
    fcgi::client client(ctx.get_executor(), opts);
    for (int i = 0; i < 3; ++i) {
        auto id = "r" + std::to_string(i);
        auto req = fcgi::test::tagged_request(id);
        req.timeout = 3s;
        outcome out;
        start(client, std::move(req), out);
        BOOST_REQUIRE(run_until(ctx, [&] { return out.done; }));
        BOOST_TEST(!out.ec, id << ": " << out.ec.message() << ": " << out.resp.diagnostics);
        BOOST_TEST(out.resp.body == fcgi::test::tagged_body(id));
    }
    auto st = client.stats();
    BOOST_TEST(st.endpoints.at(0).connects >= 1u);  // the premise: the first one was tried
    BOOST_TEST(st.endpoints.at(1).completed == 3u);
    client.stop();
}

// A single endpoint is never marked down by a request that got no byte back: a script that
// crashed or ran past its deadline must not fail the requests behind it with no_endpoint.
BOOST_AUTO_TEST_CASE(one_endpoint_is_not_marked_down_by_a_silent_request) {
    asio::io_context ctx;
    fake_responder fake({.script_for = [](const seen_request& r) {
        return r.param("X_ID") == "slow" ? fcgi::test::script{} : fcgi::test::echo_script(r);
    }});
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 5s));
    outcomes o;
    auto slow = fcgi::test::tagged_request("slow");
    slow.timeout = 100ms;
    start(client, slow, o["slow"]);
    start(client, fcgi::test::tagged_request("next"), o["next"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(o["slow"].ec == fcgi::error::request_timeout);
    BOOST_TEST(!o["next"].ec, o["next"].ec.message() << ": " << o["next"].resp.diagnostics);
    BOOST_TEST(!client.stats().endpoints.at(0).down);
    shutdown(ctx, client);
}

// The stop phase of a php-fpm restart, one endpoint, wait_when_down: the stopping master still
// accepts connections into its listen backlog and resets them with the request unread. A GET
// waits for the endpoint as it would for one that refuses, until the restarted server answers;
// a POST fails (the reset may also be a script that crashed at once); a reset past
// stale_close_window is a script that ran, and fails too. Every such GET used to fail with
// connection_lost: with one endpoint a new connection's close was never retried.
BOOST_AUTO_TEST_CASE(wait_when_down_rides_out_a_stopping_endpoint) {
    using fcgi::test::act::delay;
    using fcgi::test::act::reset;
    // One request per connection, so that each request below meets a new one.
    fake_responder fake({.script_for =
                             [](const seen_request& r) {
                                 if (r.connection <= 3)  // the first three connections: stopping
                                     return fcgi::test::script{reset()};
                                 if (r.param("X_ID") == "late")
                                     return fcgi::test::script{delay(300ms), reset()};
                                 return fcgi::test::echo_script(r);
                             },
                         .close_after_requests = 1});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 5ms);
    opts.wait_when_down = true;
    opts.stale_close_window = 150ms;
    fcgi::client client(ctx.get_executor(), opts);
    auto run = [&](fcgi::request req) {
        req.timeout = 10s;
        outcome out;
        start(client, std::move(req), out);
        BOOST_REQUIRE(run_until(
            ctx, [&] { return out.done; }, 15s));
        return out;
    };
    auto post = fcgi::test::tagged_request("post", "body");
    post.method = "POST";
    auto refused_post = run(post);  // connection 1
    BOOST_TEST(refused_post.ec == fcgi::error::connection_lost, refused_post.ec.message());
    BOOST_TEST(refused_post.resp.times_sent == 1u);
    BOOST_TEST(refused_post.resp.diagnostics.find("stopping php-fpm") != std::string::npos,
               refused_post.resp.diagnostics);

    auto get = run(fcgi::test::tagged_request("get"));  // connections 2, 3, then 4 answers
    BOOST_TEST(!get.ec, get.ec.message() << ": " << get.resp.diagnostics);
    BOOST_TEST(get.resp.body == fcgi::test::tagged_body("get"));
    BOOST_TEST(get.resp.times_sent == 3u);
    BOOST_TEST(times_seen(fake.snapshot(), "get") == 3u);
    BOOST_TEST(client.stats().retries == 2u);

    // Connection 4 closed after its answer: once the pool has seen that, "late" gets a new one.
    BOOST_REQUIRE(run_until(ctx, [&] { return client.stats().endpoints.at(0).open == 0u; }));
    auto late = run(fcgi::test::tagged_request("late"));  // connection 5
    BOOST_TEST(late.ec == fcgi::error::connection_lost, late.ec.message());
    BOOST_TEST(late.resp.times_sent == 1u);
    // When it closed is the clue (request_terminate_timeout?), on a new connection too.
    BOOST_TEST(late.resp.diagnostics.find("ms after the request was sent") != std::string::npos,
               late.resp.diagnostics);
    BOOST_TEST(times_seen(fake.snapshot(), "late") == 1u);
    BOOST_TEST(client.stats().retries == 2u);
    BOOST_TEST(fake.snapshot().connections_accepted == 5u);
    shutdown(ctx, client);
}

// -- max_requests_per_connection_lifetime on a multiplexed connection, which is never idle
// while requests keep coming: it takes no more than its lifetime, then closes once idle.
BOOST_AUTO_TEST_CASE(lifetime_retires_a_busy_multiplexed_connection) {
    asio::io_context ctx;
    fake_responder fake({.interleave = 3, .interleave_wait = 20ms});  // answers overlap
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection = 4;
    opts.max_requests_per_connection_lifetime = 3;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    start_tagged(client, "m", 12, o);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    expect_echoed(o);
    auto snap = fake.snapshot();
    for (const auto& r : snap.requests)
        BOOST_TEST(r.index_on_conn <= 3u,
                   "request " << r.index_on_conn << " on connection " << r.connection);
    BOOST_TEST(snap.connections_accepted == 4u);
    BOOST_TEST(snap.max_live >= 2u);  // it did multiplex
    shutdown(ctx, client);
}

// -- A server that closes each connection after three answers (pm.max_requests = 3), under a
// closed loop of 8 over a pool of 8: the pool keeps its connections apart by the events they
// report (endpoint_pool's hints and closed_pending). Each closed one leaves the pool, a new one
// takes its place, none is handed a request once closed and none stays counted.
BOOST_AUTO_TEST_CASE(connections_the_server_closes_leave_the_pool_under_load) {
    fake_responder fake({.tcp = false, .close_after_requests = 3});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 8, 5ms));
    constexpr std::size_t n = 600;
    std::vector<fcgi::request> reqs;
    for (std::size_t i = 0; i < n; ++i)
        reqs.push_back(fcgi::test::tagged_request("c-" + std::to_string(i)));
    std::size_t ok = 0, max_open = 0;
    bool done = false;
    fcgi::async_fanout_each(
        client, std::move(reqs), 8,
        [&](std::size_t i, fcgi::fanout_result r) {
            max_open = std::max(max_open, client.stats().endpoints.at(0).open);
            const auto id = "c-" + std::to_string(i);
            if (!r.ec && r.resp.body == fcgi::test::tagged_body(id))
                ++ok;
            else
                BOOST_ERROR(id << ": " << r.ec.message() << " " << r.resp.diagnostics);
        },
        [&](std::error_code) { done = true; });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done; }, 30s),
                          "600 requests over connections closing every 3 did not finish");
    BOOST_TEST(ok == n);
    BOOST_TEST(max_open <= 8u);
    // The last closes may still be on their way; once seen, nothing closed stays in the pool
    // (counted busy: open but not ready).
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return client.stats().endpoints.at(0).busy == 0u; }, 5s),
                          "a closed connection stayed in the pool");
    const auto e = client.stats().endpoints.at(0);
    const auto snap = fake.snapshot();
    BOOST_TEST(e.connects == snap.connections_accepted);
    BOOST_TEST(e.connects == e.reconnects + e.open);
    BOOST_TEST(e.idle == e.open);
    BOOST_TEST(e.reconnects >= n / 3 - 8);  // most connections served their three
    // A request sent after a connection's third answer, before its close was seen, went again
    // (a GET after a stale close): at most one per connection closed.
    BOOST_TEST(client.stats().retries <= e.reconnects);
    shutdown(ctx, client);
}

// -- A retry after a stale kept-alive connection does not hold up a multiplexed pool at its
// limit: with no idle connection, it and the requests queued behind it join the connection
// that has requests in flight instead of waiting for one to go idle.
BOOST_AUTO_TEST_CASE(stale_retry_joins_a_busy_multiplexed_connection) {
    asio::io_context ctx;
    // "x" and "y" on the first connection: it closes once both arrived, before any answer, so
    // both come back as sent on a stale kept-alive connection. Their retries are never answered:
    // the new connection stays busy until the end.
    auto first_tries = std::make_shared<int>(0);  // responder thread only
    fake_responder fake(
        {.tcp = false, .script_for = [first_tries](const seen_request& r) -> fcgi::test::script {
             auto id = r.param("X_ID").value_or("");
             if (id != "x" && id != "y")
                 return fcgi::test::echo_script(r);
             if (r.connection != 1)
                 return {};
             return ++*first_tries == 2 ? fcgi::test::script{act::close()} : fcgi::test::script{};
         }});
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection = 4;
    fcgi::client client(ctx.get_executor(), opts);

    outcomes o;
    start(client, fcgi::test::tagged_request("warm"), o["warm"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return o["warm"].done; }));
    BOOST_REQUIRE_MESSAGE(!o["warm"].ec, o["warm"].ec.message());
    start(client, fcgi::test::tagged_request("x"), o["x"]);
    start(client, fcgi::test::tagged_request("y"), o["y"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return client.stats().retries == 2u; }));
    // Queued behind whichever retry did not get the new connection to itself.
    start(client, fcgi::test::tagged_request("z"), o["z"]);
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return o["z"].done; }, 5s),
                          "a request waited behind a retry while a connection had free slots");
    BOOST_TEST(!o["z"].ec, o["z"].ec.message() << " " << o["z"].resp.diagnostics);
    BOOST_TEST(o["z"].resp.body == fcgi::test::tagged_body("z"));
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return times_seen(s, "x") == 2u && times_seen(s, "y") == 2u; },
        5s));
    BOOST_TEST(!o["x"].done);  // held by the server
    BOOST_TEST(!o["y"].done);
    auto s = client.stats();
    BOOST_TEST(s.queued == 0u);
    BOOST_TEST(s.endpoints.at(0).connects == 2u);
    BOOST_TEST(s.endpoints.at(0).in_flight == 2u);
    for (const auto& r : fake.snapshot().requests)
        if (r.param("X_ID") == "z")
            BOOST_TEST(r.connection == 2u);  // beside the two retries
    client.stop();
    BOOST_TEST(drains(ctx), "the io_context still had work 5 s after cancel()");
    BOOST_TEST(o["x"].ec == fcgi::error::client_stopped, o["x"].ec.message());
}

// A request retried after OVERLOADED on a connection that has had its lifetime of requests:
// the connection stays open after OVERLOADED, so the retry path must retire it too. It once
// skipped that, and with one connection allowed the pool could neither use nor replace it:
// the retry, and every request after it, waited for its deadline.
BOOST_AUTO_TEST_CASE(retry_after_overloaded_retires_a_spent_connection) {
    fake_responder fake({.script_for = refusing_by_attempt(
                             [](const std::string& id, int n) -> std::optional<protocol_status> {
                                 if (id == "first" && n == 1)
                                     return protocol_status::overloaded;
                                 return std::nullopt;
                             })});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 20ms);
    opts.max_requests_per_connection_lifetime = 1;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    auto first = fcgi::test::tagged_request("first");
    first.timeout = 3s;
    start(client, first, o["first"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(!o["first"].ec, o["first"].ec.message() << ": " << o["first"].resp.diagnostics);
    auto second = fcgi::test::tagged_request("second");
    second.timeout = 3s;
    start(client, second, o["second"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(!o["second"].ec, o["second"].ec.message() << ": " << o["second"].resp.diagnostics);
    BOOST_TEST(fake.snapshot().connections_accepted == 3u);  // one request each
    shutdown(ctx, client);
}

// OVERLOADED, then the server closes the connection: the endpoint is in its OVERLOADED backoff
// with no connection open. That is not "down" (it accepts connections): the retry goes after
// the backoff. It once failed with no_endpoint "(Success)", as if connects had been refused.
BOOST_AUTO_TEST_CASE(overloaded_then_closed_is_retried_not_no_endpoint) {
    auto attempts = std::make_shared<std::atomic<int>>(0);
    fake_responder fake({.script_for = [attempts](const seen_request& r) {
        if (++*attempts == 1)
            return fcgi::test::script{act::end(protocol_status::overloaded), act::close()};
        return fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcomes o;
    start(client, fcgi::test::tagged_request("again"), o["again"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(!o["again"].ec, o["again"].ec.message() << ": " << o["again"].resp.diagnostics);
    BOOST_TEST(times_seen(fake.snapshot(), "again") == 2u);
    BOOST_TEST(client.stats().endpoints.at(0).connect_failures == 0u);
    shutdown(ctx, client);
}

// A connect that fails while the endpoint has an open connection stops the pool growing, not
// that connection serving: a queued request goes to it as soon as it is free. It once waited
// out the whole backoff (here 5 s, past its deadline).
BOOST_AUTO_TEST_CASE(refused_connect_keeps_open_connections_serving) {
    auto g = std::make_shared<gate>();
    asio::io_context ctx;
    fake_responder fake({.script_for = [g, &ctx](const seen_request& r) {
        if (r.param("X_ID") == "held") {
            wake(ctx);
            g->wait();
        }
        return fcgi::test::echo_script(r);
    }});
    opener open_at_exit{g};
    const std::string path = fake.unix_endpoint().path;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 2, 5s));
    outcomes o;
    start(client, fcgi::test::tagged_request("held"), o["held"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return times_seen(fake.snapshot(), "held") == 1; }));
    // New connects fail from now on (the listening socket keeps serving the open one).
    BOOST_REQUIRE(std::rename(path.c_str(), (path + ".moved").c_str()) == 0);
    auto next = fcgi::test::tagged_request("next");
    next.timeout = 2s;
    start(client, next, o["next"]);
    BOOST_REQUIRE(
        run_until(ctx, [&] { return client.stats().endpoints.at(0).connect_failures == 1; }));
    auto opened = steady::now();
    g->open();
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(!o["held"].ec, o["held"].ec.message());
    BOOST_TEST(!o["next"].ec, o["next"].ec.message() << ": " << o["next"].resp.diagnostics);
    BOOST_TEST(ms_since(opened) < 1000);
    BOOST_REQUIRE(std::rename((path + ".moved").c_str(), path.c_str()) == 0);
    shutdown(ctx, client);
}

// cancel(), then async_shutdown(), then the client destroyed, all while a request is in flight:
// the shutdown still completes, with client_stopped. Its handler was once dropped uncalled
// (only stop() kept the pool alive for a shutdown, and here the shutdown came after it).
BOOST_AUTO_TEST_CASE(shutdown_after_cancel_completes_when_the_client_is_destroyed) {
    fake_responder fake({.silent = true});
    asio::io_context ctx;
    std::optional<fcgi::client> client(std::in_place, ctx.get_executor(),
                                       plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcomes o;
    start(*client, fcgi::test::tagged_request("held"), o["held"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().requests.size() == 1; }));
    std::optional<std::error_code> shut;
    asio::post(ctx, [&] {
        client->stop();
        client->async_shutdown([&](std::error_code ec) { shut = ec; });
        client.reset();
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return shut.has_value() && all_done(o); }));
    BOOST_TEST(*shut == fcgi::error::client_stopped, shut->message());
    BOOST_TEST(o["held"].ec == fcgi::error::client_stopped, o["held"].ec.message());
    BOOST_TEST(drains(ctx));
}

// cancel() with a request queued on a multiplexed connection behind another's long write: both
// fail with client_stopped. The unwritten one once got not_connected, which is_retryable()
// calls retryable (and a caller would resend to a stopped client).
BOOST_AUTO_TEST_CASE(cancel_fails_unwritten_requests_with_client_stopped) {
    fake_responder fake;
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection = 4;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes warm, o;
    start(client, fcgi::test::tagged_request("warm"), warm["warm"]);  // the connection is open
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(warm); }));
    BOOST_REQUIRE(!warm["warm"].ec);
    o["big"];
    o["behind"];
    asio::post(ctx, [&] {
        start(client, fcgi::test::tagged_request("big", std::string(16u << 20, 'x')), o["big"]);
        start(client, fcgi::test::tagged_request("behind"), o["behind"]);
        client.stop();
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    for (const char* id : {"big", "behind"})
        BOOST_TEST(o[id].ec == fcgi::error::client_stopped,
                   id << ": " << o[id].ec.message() << ": " << o[id].resp.diagnostics);
    BOOST_TEST(drains(ctx));
}

// Multiplexing auto-detection against a server that accepts and closes every connection: the
// probe's failure is not a refused connect, so the endpoint is not "down". Requests fail with
// what the server does (connection_lost), not no_endpoint naming a refusal that never was.
BOOST_AUTO_TEST_CASE(auto_detect_with_a_server_that_closes_at_once) {
    fake_responder fake({.close_on_accept = true});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.mode = fcgi::multiplexing::auto_detect;
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    start(client, fcgi::test::tagged_request("a"), o["a"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(o["a"].ec == fcgi::error::connection_lost, o["a"].ec.message()
                                                              << ": " << o["a"].resp.diagnostics);
    BOOST_TEST(client.stats().endpoints.at(0).connect_failures == 0u);
    BOOST_TEST((client.stats().endpoints.at(0).probe == fcgi::probe_result::no_answer));
    BOOST_TEST(client.stats().endpoints.at(0).probe_error == fcgi::error::connection_lost);
    shutdown(ctx, client);
}

// async_fanout's handler runs on its own associated executor, not the client's: here a client
// runs on one io_context and thread, the caller on another. It once ran on the client's thread.
BOOST_AUTO_TEST_CASE(fanout_completes_on_the_handlers_executor) {
    fake_responder fake;
    asio::io_context client_ctx, caller_ctx;
    auto guard = asio::make_work_guard(client_ctx);
    std::thread client_thread([&] { client_ctx.run(); });
    std::optional<fcgi::client> client(std::in_place, client_ctx.get_executor(),
                                       plain_pool(fake.unix_endpoint(), 2, 100ms));
    std::optional<bool> on_caller;
    std::size_t results = 0;
    fcgi::async_fanout(
        *client, {fcgi::test::tagged_request("a"), fcgi::test::tagged_request("b")}, 2,
        asio::bind_executor(caller_ctx, [&](std::error_code, std::vector<fcgi::fanout_result> r) {
            on_caller = caller_ctx.get_executor().running_in_this_thread();
            results = r.size();
        }));
    bool done = run_until(
        caller_ctx, [&] { return on_caller.has_value(); }, 10s);
    asio::post(client_ctx, [&] { client.reset(); });
    guard.reset();
    client_thread.join();
    BOOST_REQUIRE(done);
    BOOST_TEST(*on_caller);
    BOOST_TEST(results == 2u);
}

// Requests tagged "hang..." are never answered; the rest are echoed.
fcgi::test::script hang_or_echo(const seen_request& r) {
    if (r.param("X_ID").value_or("").starts_with("hang"))
        return {};
    return fcgi::test::echo_script(r);
}

// Checks that every result of an ended fan-out failed with `ec`, and returns how many say in
// their diagnostics that they were never sent ("<why> before request N was sent").
std::size_t never_sent(const std::vector<fcgi::fanout_result>& results, std::error_code ec,
                       const std::string& why) {
    std::size_t n = 0;
    for (const auto& r : results) {
        BOOST_TEST(r.ec == ec, r.ec.message());
        n += r.resp.diagnostics.find(why + " before request") != std::string::npos;
    }
    return n;
}

// A client with two connections to a responder that never answers "hang*" requests.
struct hanging_pool {
    fake_responder fake{{.script_for = hang_or_echo}};
    asio::io_context ctx;
    fcgi::client client{ctx.get_executor(), plain_pool(fake.unix_endpoint(), 2, 100ms)};
};

// Runs `ctx` until `done` is set, calling run() again after an exception from on_result (three
// rounds at most); how many were thrown.
int run_until_done_catching(asio::io_context& ctx, const std::optional<std::error_code>& done) {
    int thrown = 0;
    for (int round = 0; round < 3 && !done; ++round) {
        try {
            run_until(
                ctx, [&] { return done.has_value(); }, 10s);
        } catch (const std::runtime_error&) {
            ++thrown;
        }
    }
    return thrown;
}

std::vector<fcgi::request> hanging_requests(std::size_t n) {
    std::vector<fcgi::request> reqs;
    for (std::size_t i = 0; i < n; ++i)
        reqs.push_back(fcgi::test::tagged_request("hang" + std::to_string(i)));
    return reqs;
}

// A fan-out cancelled through its handler's slot: the requests not sent fail at once, those in
// flight are cancelled, the handler gets operation_aborted, and the client carries on. It was
// not cancellable at all: only client::cancel() stopped it, and everything else with it.
BOOST_FIXTURE_TEST_CASE(fanout_cancelled_through_its_slot, hanging_pool) {
    for (auto type : {asio::cancellation_type::terminal, asio::cancellation_type::partial}) {
        BOOST_TEST_CONTEXT("cancellation type " << static_cast<int>(type)) {
            const std::size_t seen_before = fake.snapshot().requests.size();
            asio::cancellation_signal signal;
            std::optional<std::error_code> done;
            std::vector<fcgi::fanout_result> results;
            fcgi::async_fanout(
                client, hanging_requests(10), 2,
                asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec, auto r) {
                    done = ec;
                    results = std::move(r);
                }));
            BOOST_REQUIRE(run_until(
                ctx, [&] { return fake.snapshot().requests.size() == seen_before + 2; }, 10s));
            BOOST_TEST(!run_until(
                ctx, [&] { return done.has_value(); }, 50ms));
            signal.emit(type);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return done.has_value(); }, 10s));
            BOOST_TEST(*done == asio::error::operation_aborted, done->message());
            BOOST_REQUIRE(results.size() == 10u);
            BOOST_TEST(never_sent(results, asio::error::operation_aborted, "cancelled") == 8u);
            BOOST_TEST(fake.snapshot().requests.size() == seen_before + 2);
            // The client still serves requests.
            std::optional<fcgi::response> after;
            client.async_request(fcgi::test::tagged_request("after"),
                                 [&](std::error_code ec, fcgi::response r) {
                                     BOOST_TEST(!ec, ec.message());
                                     after = std::move(r);
                                 });
            BOOST_REQUIRE(run_until(
                ctx, [&] { return after.has_value(); }, 10s));
            BOOST_TEST(after->body == fcgi::test::tagged_body("after"));
        }
    }
    shutdown(ctx, client);
}

// The client stopped under a running fan-out, by cancel() or by its destructor: what is in
// flight fails with client_stopped, what is not sent fails at once without reaching the
// client, and the fan-out completes with client_stopped. The fan-out held a reference to the
// client and went on sending through it after the destructor (heap-use-after-free under ASan),
// and after cancel() reported success with every result a failure.
BOOST_AUTO_TEST_CASE(fanout_ends_when_its_client_stops) {
    fake_responder fake({.script_for = hang_or_echo});
    for (bool destroy : {false, true}) {
        BOOST_TEST_CONTEXT((destroy ? "client destroyed" : "client.stop()")) {
            asio::io_context ctx;
            const std::size_t seen_before = fake.snapshot().requests.size();
            std::optional<fcgi::client> client(std::in_place, ctx.get_executor(),
                                               plain_pool(fake.unix_endpoint(), 2, 100ms));
            std::optional<std::error_code> done;
            std::vector<fcgi::fanout_result> results;
            fcgi::async_fanout(*client, hanging_requests(10), 2,
                               [&](std::error_code ec, std::vector<fcgi::fanout_result> r) {
                                   done = ec;
                                   results = std::move(r);
                               });
            BOOST_REQUIRE(run_until(
                ctx, [&] { return fake.snapshot().requests.size() == seen_before + 2; }, 10s));
            if (destroy)
                client.reset();
            else
                client->stop();
            BOOST_REQUIRE(run_until(
                ctx, [&] { return done.has_value(); }, 10s));
            BOOST_TEST(*done == fcgi::error::client_stopped, done->message());
            BOOST_REQUIRE(results.size() == 10u);
            BOOST_TEST(never_sent(results, fcgi::error::client_stopped,
                                  "the client stopped taking requests") == 8u);
            BOOST_TEST(fake.snapshot().requests.size() == seen_before + 2);
        }
    }
}

// An exception from on_result leaves run() as Asio lets it, and the fan-out goes on when run()
// is called again: the rest of the requests were never sent, and its handler was destroyed
// without being called.
BOOST_AUTO_TEST_CASE(fanout_goes_on_after_on_result_throws) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
    std::vector<fcgi::request> reqs;
    for (const char* id : {"a", "b", "c"})
        reqs.push_back(fcgi::test::tagged_request(id));
    std::vector<std::size_t> reported;
    std::optional<std::error_code> done;
    fcgi::async_fanout_each(
        client, std::move(reqs), 1,
        [&](std::size_t i, fcgi::fanout_result r) {
            BOOST_TEST(!r.ec, r.ec.message());
            reported.push_back(i);
            if (i == 0)
                throw std::runtime_error("on_result failed");
        },
        [&](std::error_code ec) { done = ec; });
    const int thrown = run_until_done_catching(ctx, done);
    BOOST_TEST(thrown == 1);
    BOOST_REQUIRE(done.has_value());
    BOOST_TEST(!*done, done->message());
    BOOST_TEST(reported == (std::vector<std::size_t>{0, 1, 2}));
    shutdown(ctx, client);
}

// on_result throwing for the first request a cancellation fails: the cancellation still reaches
// the requests in flight and the rest, and nothing more is sent. The throw skipped both, and the
// next completion sent the other 7 requests as if nothing had been cancelled.
BOOST_FIXTURE_TEST_CASE(fanout_cancellation_survives_on_result_throwing, hanging_pool) {
    asio::cancellation_signal signal;
    std::vector<std::size_t> reported;
    std::size_t aborted = 0;
    std::optional<std::error_code> done;
    fcgi::async_fanout_each(
        client, hanging_requests(10), 2,
        [&](std::size_t i, fcgi::fanout_result r) {
            reported.push_back(i);
            if (r.ec == asio::error::operation_aborted && ++aborted == 1)
                throw std::runtime_error("on_result failed");
        },
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { done = ec; }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return fake.snapshot().requests.size() == 2; }, 10s));
    signal.emit(asio::cancellation_type::terminal);
    const int thrown = run_until_done_catching(ctx, done);
    BOOST_TEST(thrown == 1);
    BOOST_REQUIRE(done.has_value());
    BOOST_TEST(*done == asio::error::operation_aborted, done->message());
    BOOST_TEST(aborted == 10u);
    std::sort(reported.begin(), reported.end());
    BOOST_TEST(reported == (std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    BOOST_TEST(fake.snapshot().requests.size() == 2u);
    shutdown(ctx, client);
}

// The cancellation types keep Asio's meanings. Total promises no side effect, so a request
// already written (its script runs) goes on; partial and terminal abandon it, the pool staying
// usable. A connection of its own: partial closes nothing there, so only terminal ends a written
// request on a non-multiplexed one. Every type ends a request not written yet.
BOOST_AUTO_TEST_CASE(cancellation_types_keep_asio_meanings) {
    std::atomic<asio::io_context*> waiting{nullptr};  // woken when a request is recorded
    fake_responder fake({.script_for = [&waiting](const seen_request& r) {
        if (auto* ctx = waiting.load())
            wake(*ctx);
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), act::delay(300ms));
        return s;
    }});
    using ct = asio::cancellation_type;
    struct expect {
        ct type;
        bool client_aborts, connection_aborts;
    };
    for (auto e : {expect{ct::total, false, false}, expect{ct::partial, true, false},
                   expect{ct::terminal, true, true}}) {
        BOOST_TEST_CONTEXT("type " << static_cast<int>(e.type)) {
            asio::io_context ctx;
            waiting = &ctx;
            fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
            asio::cancellation_signal written_sig, queued_sig;
            outcome written, queued;
            const std::size_t seen = fake.snapshot().requests.size();
            client.async_request(
                fcgi::test::tagged_request("written"),
                asio::bind_cancellation_slot(written_sig.slot(), recorder(written)));
            client.async_request(fcgi::test::tagged_request("queued"),
                                 asio::bind_cancellation_slot(queued_sig.slot(), recorder(queued)));
            BOOST_REQUIRE(run_until(
                ctx, [&] { return fake.snapshot().requests.size() == seen + 1; }, 10s));
            written_sig.emit(e.type);
            queued_sig.emit(e.type);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return written.done && queued.done; }, 10s));
            BOOST_TEST(queued.ec == asio::error::operation_aborted, queued.ec.message());
            if (e.client_aborts) {
                BOOST_TEST(written.ec == asio::error::operation_aborted, written.ec.message());
            } else {
                BOOST_TEST(!written.ec, written.ec.message());
                BOOST_TEST(written.resp.body == fcgi::test::tagged_body("written"));
            }
            shutdown(ctx, client);

            // A connection: the same request written, then the type emitted.
            fcgi::connection conn(ctx);
            std::optional<std::error_code> connected;
            conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
            BOOST_REQUIRE(run_until(
                ctx, [&] { return connected.has_value(); }, 10s));
            BOOST_REQUIRE(!*connected);
            const std::size_t seen2 = fake.snapshot().requests.size();
            asio::cancellation_signal sig;
            outcome direct;
            conn.async_request(
                fcgi::test::tagged_request("direct"),
                asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, fcgi::response r) {
                    direct.done = true;
                    direct.ec = ec;
                    direct.resp = std::move(r);
                }));
            BOOST_REQUIRE(run_until(
                ctx, [&] { return fake.snapshot().requests.size() == seen2 + 1; }, 10s));
            sig.emit(e.type);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return direct.done; }, 10s));
            if (e.connection_aborts) {
                BOOST_TEST(direct.ec == asio::error::operation_aborted, direct.ec.message());
                BOOST_TEST(!conn.is_open());
            } else {
                BOOST_TEST(!direct.ec, direct.ec.message());
                BOOST_TEST(conn.is_open());  // usable, as partial and total promise
            }
            conn.close();
            ctx.poll();
            waiting = nullptr;
        }
    }
}

// A handler that owns the signal its slot belongs to (a common way to keep the signal alive)
// and an io_context destroyed with the request pending: the slot's handler held the pool
// strongly, so pool -> request -> handler -> signal -> slot handler -> pool was a cycle, and
// the pool leaked with its socket (ASan: 70 KB; the server kept a worker on it).
BOOST_AUTO_TEST_CASE(handler_owning_its_signal_does_not_leak_the_pool) {
    fake_responder fake({.script_for = hang_or_echo});
    for (bool direct : {false, true}) {
        BOOST_TEST_CONTEXT((direct ? "connection" : "client")) {
            const auto before = fake.snapshot();
            {
                asio::io_context ctx;
                fcgi::test::ticker look(ctx);  // wakes run_until while the server holds it
                auto sig = std::make_shared<asio::cancellation_signal>();
                auto handler = asio::bind_cancellation_slot(
                    sig->slot(), [sig](std::error_code, fcgi::response) {});
                std::optional<fcgi::client> client;
                // Not std::optional: GCC 12 warns, wrongly, of its pointer read uninitialised.
                std::unique_ptr<fcgi::connection> conn;
                if (direct) {
                    conn = std::make_unique<fcgi::connection>(ctx);
                    std::optional<std::error_code> connected;
                    conn->async_connect(fake.unix_endpoint(),
                                        [&](std::error_code ec) { connected = ec; });
                    BOOST_REQUIRE(run_until(
                        ctx, [&] { return connected.has_value(); }, 10s));
                    conn->async_request(hanging_requests(1).front(), std::move(handler));
                } else {
                    client.emplace(ctx, plain_pool(fake.unix_endpoint(), 1, 100ms));
                    client->async_request(hanging_requests(1).front(), std::move(handler));
                }
                sig.reset();  // the handler holds the only reference
                BOOST_REQUIRE(run_until(
                    ctx,
                    [&] { return fake.snapshot().requests.size() == before.requests.size() + 1; },
                    10s));
                client.reset();  // documented order: the client, then its io_context
                conn.reset();
            }
            // Freed, the socket closed: the server sees the end (php-fpm frees the worker).
            BOOST_TEST(fake.wait_for(
                [&](const fake_snapshot& s) {
                    return s.connections_closed_by_peer == before.connections_closed_by_peer + 1;
                },
                5s));
        }
    }
}

// async_fanout_each's own completion under cancellation, and the edges: total cancellation, a
// second emit, an emit after completion, an empty list with concurrency 0.
BOOST_FIXTURE_TEST_CASE(fanout_each_cancellation_edges, hanging_pool) {
    asio::cancellation_signal signal;
    std::optional<std::error_code> done;
    std::vector<int> seen(6, 0);
    fcgi::async_fanout_each(
        client, hanging_requests(6), 2,
        [&](std::size_t i, fcgi::fanout_result r) {
            ++seen.at(i);
            BOOST_TEST(r.ec == asio::error::operation_aborted, r.ec.message());
        },
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { done = ec; }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return fake.snapshot().requests.size() == 2; }, 10s));
    // Total fails the 4 not sent and leaves the 2 written running (their scripts run); the
    // terminal emit after it cancels those.
    signal.emit(asio::cancellation_type::total);
    BOOST_TEST(!run_until(
        ctx, [&] { return done.has_value(); }, 50ms));
    BOOST_TEST(std::count(seen.begin(), seen.end(), 1) == 4);
    signal.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return done.has_value(); }, 10s));
    BOOST_TEST(*done == asio::error::operation_aborted, done->message());
    BOOST_TEST((seen == std::vector<int>(6, 1)));
    signal.emit(asio::cancellation_type::terminal);  // after completion: nothing to cancel
    BOOST_TEST(!run_until(
        ctx, [&] { return seen != std::vector<int>(6, 1); }, 50ms));

    // Nothing to run, concurrency 0 (taken as 1), a connected slot: success at once.
    std::optional<std::error_code> empty_done;
    bool any_result = false;
    fcgi::async_fanout_each(
        client, {}, 0, [&](std::size_t, fcgi::fanout_result) { any_result = true; },
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { empty_done = ec; }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return empty_done.has_value(); }, 10s));
    BOOST_TEST(!*empty_done, empty_done->message());
    BOOST_TEST(!any_result);

    // A fan-out that finished before the cancellation reports success.
    std::optional<std::error_code> quick_done;
    std::vector<fcgi::request> quick{fcgi::test::tagged_request("q1")};
    fcgi::async_fanout_each(
        client, std::move(quick), 1,
        [&](std::size_t, fcgi::fanout_result r) { BOOST_TEST(!r.ec, r.ec.message()); },
        asio::bind_cancellation_slot(signal.slot(), [&](std::error_code ec) { quick_done = ec; }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return quick_done.has_value(); }, 10s));
    signal.emit(asio::cancellation_type::terminal);
    BOOST_TEST(!*quick_done, quick_done->message());
    BOOST_TEST(fake.snapshot().requests.size() == 3u);  // 2 hanging, q1
    shutdown(ctx, client);
}

// The way a coroutine bounds a batch: the fan-out against a timer. The timer wins and the
// fan-out ends instead of hanging the `||`; a fan-out that finishes first wins with its results.
BOOST_FIXTURE_TEST_CASE(fanout_against_a_timer_with_awaitable_operators, hanging_pool) {
    using namespace asio::experimental::awaitable_operators;
    fcgi::test::run_coro(ctx, [&]() -> asio::awaitable<void> {
        asio::steady_timer short_timer(ctx, 200ms);
        auto lost =
            co_await (fcgi::async_fanout(client, hanging_requests(6), 2, asio::use_awaitable) ||
                      short_timer.async_wait(asio::use_awaitable));
        BOOST_TEST(lost.index() == 1u);

        asio::steady_timer long_timer(ctx, 10s);
        std::vector<fcgi::request> quick{fcgi::test::tagged_request("q1"),
                                         fcgi::test::tagged_request("q2")};
        auto won = co_await (fcgi::async_fanout(client, std::move(quick), 2, asio::use_awaitable) ||
                             long_timer.async_wait(asio::use_awaitable));
        BOOST_REQUIRE(won.index() == 0u);
        const auto& results = std::get<0>(won);
        BOOST_REQUIRE(results.size() == 2u);
        BOOST_TEST(results[0].resp.body == fcgi::test::tagged_body("q1"));
        BOOST_TEST(results[1].resp.body == fcgi::test::tagged_body("q2"));
    });
    BOOST_TEST(fake.snapshot().requests.size() == 4u);  // 2 hanging sent, 4 never, then q1 q2
    shutdown(ctx, client);
}

// A connection opened for a request that went away before the connect completed (cancelled
// here; a deadline or another connection freeing up do the same) used to stay open for good:
// nothing started its idle clock, and against php-fpm it pinned a worker.
BOOST_AUTO_TEST_CASE(connection_left_without_its_request_still_idles_out) {
    asio::io_context ctx;
    fake_responder fake;
    auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
    opts.idle_timeout = 200ms;
    fcgi::client client(ctx.get_executor(), opts);
    asio::cancellation_signal sig;
    outcome out;
    asio::post(ctx, [&] {
        client.async_request(fcgi::test::tagged_request("x"),
                             asio::bind_cancellation_slot(sig.slot(), recorder(out)));
        sig.emit(asio::cancellation_type::terminal);  // queued: its connect is under way
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return out.done; }));
    BOOST_TEST(out.ec == asio::error::operation_aborted);
    BOOST_REQUIRE(run_until(ctx, [&] {
        auto e = client.stats().endpoints.at(0);
        return e.open == 1 && e.idle == 1;  // connected, with nothing to do
    }));
    BOOST_TEST(run_until(
                   ctx, [&] { return client.stats().endpoints.at(0).open == 0; }, 5s),
               "the connection outlived idle_timeout");
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer == 1; }, 5s));
    BOOST_TEST(fake.snapshot().requests.empty());
}

namespace {

// A sink whose write finishes only when it is cancelled or released: a pipe whose reader has
// stopped reading.
struct stuck_sink : fcgi::body_sink::implementation {
    fcgi::sink_write_handler pending;
    asio::any_io_executor ex;
    int writes = 0;
    bool cancelled = false;
    std::error_code start(std::string&) override { return {}; }
    void async_write(std::string_view, const asio::any_io_executor& e,
                     fcgi::sink_write_handler done) override {
        ++writes;
        ex = e;
        pending = std::move(done);
    }
    void cancel() noexcept override {
        cancelled = true;
        release(asio::error::operation_aborted);
    }
    void release(std::error_code ec) {
        if (pending)
            asio::post(ex, [d = std::move(pending), ec] { d(ec); });
        pending = nullptr;
    }
};

}  // namespace

// cancel() fails every request in flight with client_stopped, one whose response has ended but
// whose sink is still writing it out included: it used to wait for the sink, forever when the
// sink never finishes, and async_shutdown with it.
BOOST_AUTO_TEST_CASE(cancel_ends_a_request_whose_sink_is_draining) {
    asio::io_context ctx;
    fake_responder fake;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    auto sink = std::make_shared<stuck_sink>();
    auto req = fcgi::test::tagged_request("s");
    req.stdout_sink = fcgi::body_sink(sink);
    outcome out;
    start(client, std::move(req), out);
    BOOST_REQUIRE(run_until(ctx, [&] { return sink->writes == 1; }));
    BOOST_REQUIRE(fake.wait_for([](const fake_snapshot& s) { return s.ends_sent == 1; }, 5s));
    // The fake wrote the body and END_REQUEST together, so the read that fed the sink took the
    // END_REQUEST too: the request has ended and waits for its sink.
    BOOST_REQUIRE(!out.done);

    std::optional<std::error_code> shut;
    client.stop();
    client.async_shutdown([&](std::error_code ec) { shut = ec; });
    BOOST_TEST(run_until(
        ctx, [&] { return out.done && shut.has_value(); }, 5s));
    BOOST_TEST(out.ec == fcgi::error::client_stopped, out.ec.message());
    BOOST_TEST(sink->cancelled);
    sink->release({});  // a no-op once cancelled; the test ends either way
    BOOST_TEST(drains(ctx));
    BOOST_TEST(out.calls == 1);
}

// A request that timed out while its sink was still writing leaves its connection open but
// unable to take a request until the sink is done: stats() counts it busy, not idle.
BOOST_AUTO_TEST_CASE(connection_held_by_a_finishing_sink_is_busy) {
    asio::io_context ctx;
    fake_responder fake;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    // Deaf to cancel(): its write ends only when the test says so.
    struct deaf_sink : stuck_sink {
        void cancel() noexcept override { cancelled = true; }
    };
    auto sink = std::make_shared<deaf_sink>();
    auto req = fcgi::test::tagged_request("s");
    req.stdout_sink = fcgi::body_sink(sink);
    req.timeout = 100ms;
    outcome out;
    start(client, std::move(req), out);
    BOOST_REQUIRE(run_until(ctx, [&] { return out.done; }));
    BOOST_TEST(out.ec == fcgi::error::request_timeout, out.ec.message());
    BOOST_TEST(sink->cancelled);
    auto held = client.stats().endpoints.at(0);
    BOOST_TEST(held.open == 1u);
    BOOST_TEST(held.idle == 0u);
    BOOST_TEST(held.busy == 1u);
    BOOST_TEST(held.in_flight == 0u);
    sink->release({});
    BOOST_TEST(run_until(
        ctx, [&] { return client.stats().endpoints.at(0).idle == 1; }, 5s));
    BOOST_TEST(client.stats().endpoints.at(0).busy == 0u);
    // And it serves the next request.
    outcome next;
    start(client, fcgi::test::tagged_request("n"), next);
    BOOST_REQUIRE(run_until(ctx, [&] { return next.done; }));
    BOOST_TEST(!next.ec, next.ec.message());
    BOOST_TEST(fake.snapshot().connections_accepted == 1u);
}

// auto_detect's GET_VALUES question stops with the client: it used to keep its connection (a
// php-fpm worker) and the io_context until probe_timeout.
BOOST_AUTO_TEST_CASE(cancel_or_destruction_stops_the_probe) {
    for (bool destroy : {false, true}) {
        BOOST_TEST_CONTEXT((destroy ? "destroyed" : "cancel()")) {
            asio::io_context ctx;
            fake_responder fake({.answer_get_values = false});  // as libfcgi
            auto opts = plain_pool(fake.unix_endpoint(), 1, 100ms);
            opts.mode = fcgi::multiplexing::auto_detect;
            opts.probe_timeout = 60s;
            std::optional<fcgi::client> client(std::in_place, ctx.get_executor(), opts);
            outcome out;
            start(*client, fcgi::test::tagged_request("p"), out);
            // The question is on the server's side: the client waits on its socket, so a timer
            // wakes run_until to look.
            auto asked = [&] { return fake.snapshot().get_values == 1; };
            fcgi::test::ticker look(ctx);
            BOOST_REQUIRE(run_until(ctx, asked, 5s));
            look.stop();
            if (destroy)
                client.reset();
            else
                client->stop();
            BOOST_TEST(drains(ctx), "the probe outlived the client");
            BOOST_TEST(out.ec == fcgi::error::client_stopped, out.ec.message());
            BOOST_TEST(fake.wait_for(
                [](const fake_snapshot& s) { return s.connections_closed_by_peer == 1; }, 5s));
            BOOST_TEST(fake.snapshot().requests.empty());
        }
    }
}

// One request through an auto_detect pool whose server never answers GET_VALUES (as libfcgi
// with a lone GET_VALUES), run until it ends.
struct behind_a_silent_probe {
    asio::io_context ctx;
    fake_responder fake{{.answer_get_values = false}};
    fcgi::client client;
    outcome out;

    behind_a_silent_probe(std::chrono::milliseconds probe_timeout,
                          std::chrono::milliseconds request_timeout, const char* id)
        : client(ctx.get_executor(), options(fake.unix_endpoint(), probe_timeout)) {
        auto req = fcgi::test::tagged_request(id);
        req.timeout = request_timeout;
        start(client, std::move(req), out);
        BOOST_REQUIRE(run_until(
            ctx, [&] { return out.done; }, request_timeout + 5s));
    }

    static fcgi::client_options options(const fcgi::endpoint& ep, std::chrono::milliseconds t) {
        auto opts = plain_pool(ep, 1, 100ms);
        opts.mode = fcgi::multiplexing::auto_detect;
        opts.probe_timeout = t;
        return opts;
    }
};

// A request that times out in the queue while auto_detect's GET_VALUES question is unanswered
// says so: no connection was pending, so nothing else explained the wait.
BOOST_AUTO_TEST_CASE(queue_timeout_names_an_unanswered_probe) {
    behind_a_silent_probe run(60s, 300ms, "q");
    const auto& out = run.out;
    BOOST_TEST(out.ec == fcgi::error::request_timeout, out.ec.message());
    BOOST_TEST(out.resp.diagnostics.find("the GET_VALUES probe of unix:") != std::string::npos,
               out.resp.diagnostics);
    BOOST_TEST(out.resp.diagnostics.find("probe_timeout 60000 ms") != std::string::npos,
               out.resp.diagnostics);
    BOOST_TEST(run.fake.snapshot().requests.empty());
    shutdown(run.ctx, run.client);
}

// A fan-out in flight when the io_context stops, the client destroyed before the context as
// documented: the pool's sockets close when the context goes. The fan-out held the client's
// implementation, whose connections held the fan-out's handlers: a cycle the client's stop would
// have broken, but that never ran, so the pool and its sockets leaked. Plain requests did not.
BOOST_AUTO_TEST_CASE(fanout_in_a_stopped_context_leaks_nothing) {
    for (bool each : {false, true}) {
        BOOST_TEST_CONTEXT((each ? "async_fanout_each" : "async_fanout")) {
            fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
                return fcgi::test::script{act::delay(20s), act::stdout_("Status: 200\r\n\r\n"),
                                          act::end()};
            }});
            {
                asio::io_context ctx;
                fcgi::client_options opts;
                opts.endpoints = {fake.unix_endpoint()};
                opts.max_connections_per_endpoint = 4;
                auto client = std::make_unique<fcgi::client>(ctx.get_executor(), opts);
                std::vector<fcgi::request> reqs;
                for (int i = 0; i < 20; ++i)
                    reqs.push_back(fcgi::test::tagged_request(std::to_string(i)));
                if (each)
                    fcgi::async_fanout_each(
                        *client, std::move(reqs), 8, [](std::size_t, fcgi::fanout_result) {},
                        [](std::error_code) {});
                else
                    fcgi::async_fanout(*client, std::move(reqs), 8,
                                       [](std::error_code, std::vector<fcgi::fanout_result>) {});
                // Four requests are on the server, which holds them: the client waits on its
                // sockets, so a timer wakes run_until to look.
                fcgi::test::ticker look(ctx);
                BOOST_REQUIRE(run_until(
                    ctx, [&] { return fake.snapshot().requests.size() == 4; }, 10s));
                look.stop();
                ctx.stop();
                client.reset();
            }
            BOOST_TEST(fake.wait_for(
                [](const fake_snapshot& st) {
                    return st.connections_accepted == 4 && st.connections_closed_by_peer == 4;
                },
                5s));
        }
    }
}

// probe_timeout = 0 used to mean no deadline: against a server that never answers a lone
// GET_VALUES, no request was ever sent. Zero now means the default (1 s).
BOOST_AUTO_TEST_CASE(probe_timeout_zero_means_the_default) {
    behind_a_silent_probe run(0ms, 20s, "z");
    BOOST_TEST(!run.out.ec, run.out.ec.message() << ": " << run.out.resp.diagnostics);
    BOOST_TEST(times_seen(run.fake.snapshot(), "z") == 1u);
    BOOST_TEST(run.client.stats().endpoints.at(0).max_in_flight_per_connection == 1u);
    shutdown(run.ctx, run.client);
}

// A request made from another thread while the client's executor is held up (a slow handler):
// its deadline counts from the call, and once it has passed the request is failed, not sent
// with a spent deadline (that would close the connection and leave a php-fpm worker running a
// script nobody waits for). It used to get its whole timeout from when the executor got to it.
BOOST_AUTO_TEST_CASE(request_past_its_deadline_is_not_sent) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcomes o;
    start(client, fcgi::test::tagged_request("warm"), o["warm"]);  // an idle connection
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    constexpr auto timeout = 100ms;
    auto late = fcgi::test::tagged_request("late");
    late.timeout = timeout;
    start(client, std::move(late), o["late"]);  // nothing runs ctx: posted
    // The executor is held up past the deadline, which counts from the call inside start().
    std::this_thread::sleep_for(timeout + 50ms);
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_TEST(o["late"].ec == fcgi::error::request_timeout, o["late"].ec.message());
    BOOST_TEST(o["late"].resp.diagnostics == "deadline passed while waiting for a connection");
    BOOST_TEST(times_seen(fake.snapshot(), "late") == 0u);
    shutdown(ctx, client);
}

// A request that waited out its deadline behind busy connections says so (it used to say
// nothing more; behind a connection that had just closed under another request, it blamed the
// reconnect, "pending for 0 ms").
BOOST_AUTO_TEST_CASE(request_timed_out_behind_busy_connections_says_so) {
    fake_responder fake({.script_for = [](const fcgi::test::seen_request& r) {
        return r.param("X_ID") == "hang" ? fcgi::test::script{} : fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.unix_endpoint(), 1, 100ms));
    outcomes o;
    auto hang = fcgi::test::tagged_request("hang");
    hang.timeout = 10s;
    start(client, std::move(hang), o["hang"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().requests.size() == 1; }));
    auto queued = fcgi::test::tagged_request("queued");
    queued.timeout = 100ms;
    start(client, std::move(queued), o["queued"]);
    BOOST_REQUIRE(run_until(ctx, [&] { return o["queued"].done; }));
    BOOST_TEST(o["queued"].ec == fcgi::error::request_timeout, o["queued"].ec.message());
    BOOST_TEST(o["queued"].resp.diagnostics ==
               "deadline passed while waiting for a connection; every connection was busy with "
               "other requests (1 open, max_connections_per_endpoint 1)");
    BOOST_TEST(!o["hang"].done);
    client.stop();
    BOOST_REQUIRE(run_until(ctx, [&] { return o["hang"].done; }));
}

// A retry after a stale kept-alive connection needs a new connection; while it waits for one
// (here the endpoint refuses new connects and backs off), a request behind it takes the idle
// connection at once. It used to wait behind the retry until its own deadline.
BOOST_AUTO_TEST_CASE(request_behind_a_waiting_retry_takes_an_idle_connection) {
    fake_responder fake({.script_for = [](const seen_request& r) -> fcgi::test::script {
        if (r.param("X_ID").value_or("") == "stale")
            return {act::close()};  // as a server closing a kept-alive connection
        return fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    auto opts = plain_pool(fake.unix_endpoint(), 2, 10s);
    fcgi::client client(ctx.get_executor(), opts);
    outcomes o;
    start_tagged(client, "warm", 2, o);  // two connections, both used once, then idle
    BOOST_REQUIRE(run_until(ctx, [&] { return all_done(o); }));
    BOOST_REQUIRE(client.stats().endpoints.at(0).open == 2u);

    // New connects now fail: the retry's fresh connection never comes.
    std::filesystem::remove(fake.unix_endpoint().path);
    auto stale = fcgi::test::tagged_request("stale");
    stale.timeout = 20s;
    start(client, std::move(stale), o["stale"]);
    BOOST_REQUIRE(run_until(ctx, [&] {
        auto s = client.stats();
        return s.retries == 1 && s.endpoints.at(0).connect_failures == 1;
    }));
    auto b = fcgi::test::tagged_request("b");
    b.timeout = 10s;
    start(client, std::move(b), o["b"]);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return o["b"].done; }, 15s));
    BOOST_TEST(!o["b"].ec, o["b"].ec.message() << ": " << o["b"].resp.diagnostics);
    BOOST_TEST(times_seen(fake.snapshot(), "b") == 1u);
    BOOST_TEST(!o["stale"].done);  // still waiting for its new connection
    client.stop();
    BOOST_REQUIRE(run_until(ctx, [&] { return o["stale"].done; }));
    BOOST_TEST(o["stale"].ec == fcgi::error::client_stopped, o["stale"].ec.message());
}

// A request that waits out its deadline behind a connect that never completes (its SYN
// dropped: the accept queue of a listener that never accepts is full) says so, rather than
// only "waiting for a connection".
BOOST_AUTO_TEST_CASE(queue_timeout_names_a_pending_connect,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    asio::io_context ctx;
    fcgi::test::unaccepted_listener listener;
    fcgi::client_options opts;
    opts.endpoints = {listener.endpoint()};
    fcgi::client client(ctx.get_executor(), opts);
    auto req = fcgi::test::tagged_request("stuck");
    req.timeout = 300ms;
    outcome o;
    start(client, std::move(req), o);
    BOOST_REQUIRE(run_until(ctx, [&] { return o.done; }));
    BOOST_TEST(o.ec == fcgi::error::request_timeout, o.ec.message());
    BOOST_TEST(o.resp.diagnostics.find("a connect to 127.0.0.1:") != std::string::npos,
               o.resp.diagnostics);
    BOOST_TEST(o.resp.diagnostics.find("has been pending for") != std::string::npos,
               o.resp.diagnostics);
    BOOST_TEST(o.resp.times_sent == 0u);
    shutdown(ctx, client);
}

// auto_detect's probe_timeout (100 ms) ending a slow connect (connect_timeout 5 s): the
// endpoint was marked down as if it refused ("could not connect within the connect timeout",
// no_endpoint after 100 ms); it is slow, so the request waits out its own deadline behind the
// pool's connect, which has its whole connect_timeout.
BOOST_AUTO_TEST_CASE(probe_timeout_ending_a_connect_does_not_mark_the_endpoint_down,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    asio::io_context ctx;
    fcgi::test::unaccepted_listener listener;
    fcgi::client_options opts;
    opts.endpoints = {listener.endpoint()};
    opts.mode = fcgi::multiplexing::auto_detect;
    opts.probe_timeout = 100ms;
    fcgi::client client(ctx.get_executor(), opts);
    auto req = fcgi::test::tagged_request("slow");
    req.timeout = 600ms;
    outcome o;
    start(client, std::move(req), o);
    BOOST_REQUIRE(run_until(ctx, [&] { return o.done; }));
    BOOST_TEST(o.ec == fcgi::error::request_timeout, o.ec.message() << ": " << o.resp.diagnostics);
    BOOST_TEST(o.resp.diagnostics.find("has been pending for") != std::string::npos,
               o.resp.diagnostics);
    const auto ep = client.stats().endpoints.at(0);
    BOOST_TEST(!ep.down);
    BOOST_TEST((ep.probe == fcgi::probe_result::no_answer));
    BOOST_TEST(ep.probe_error == fcgi::error::connect_timeout, ep.probe_error.message());
    shutdown(ctx, client);
}

// An endpoint holding requests after OVERLOADED, with an idle connection open: a request that
// waited out its deadline said only "waiting for a connection".
BOOST_AUTO_TEST_CASE(queue_timeout_names_an_overloaded_hold) {
    fake_responder fake({.script_for = refusing_by_attempt(
                             [](const std::string& id, int) -> std::optional<protocol_status> {
                                 if (id == "refused")
                                     return protocol_status::overloaded;
                                 return std::nullopt;
                             })});
    asio::io_context ctx;
    fcgi::client client(ctx.get_executor(), plain_pool(fake.tcp_endpoint(), 1, 2000ms));
    auto refused = fcgi::test::tagged_request("refused");
    refused.timeout = 300ms;
    outcome first;
    start(client, std::move(refused), first);
    BOOST_REQUIRE(run_until(ctx, [&] { return first.done; }));
    BOOST_TEST(first.ec == fcgi::error::request_timeout, first.ec.message());
    BOOST_TEST(first.resp.diagnostics.find("answered OVERLOADED: no request goes to it for "
                                           "another ") != std::string::npos,
               first.resp.diagnostics);
    BOOST_TEST(
        first.resp.diagnostics.find("client_options::initial_backoff 2000 ms") != std::string::npos,
        first.resp.diagnostics);
    shutdown(ctx, client);
}

// A read buffer asked for beyond what can be allocated: std::length_error came out of
// io_context::run(), and the queued request never completed. It is capped at 16 MiB.
BOOST_AUTO_TEST_CASE(a_huge_read_buffer_size_is_capped) {
    fake_responder fake;
    asio::io_context ctx;
    auto opts = plain_pool(fake.tcp_endpoint(), 1, 100ms);
    opts.connection.read_buffer_size = std::numeric_limits<std::size_t>::max();
    fcgi::client client(ctx.get_executor(), opts);
    outcome o;
    start(client, fcgi::test::tagged_request("big-buffer"), o);
    BOOST_REQUIRE(run_until(ctx, [&] { return o.done; }));
    BOOST_TEST(!o.ec, o.ec.message() << ": " << o.resp.diagnostics);
    BOOST_TEST(o.resp.body == fcgi::test::tagged_body("big-buffer"));
    shutdown(ctx, client);
}

// A connection or client owned by the coroutine awaiting it, its io_context destroyed while
// the request is out (a run_for() that ran out, an early return): the frame owned the object,
// which held the frame's handler, so neither was ever freed and the socket stayed open (a
// php-fpm worker held until the process ended). The context's shutdown now closes the socket
// and destroys the handler, and the frame with it.
BOOST_AUTO_TEST_CASE(context_destroyed_under_an_awaiting_coroutine_frees_it) {
    fake_responder fake({.silent = true});
    struct on_destroy {
        bool* flag;
        ~on_destroy() { *flag = true; }
    };
    for (bool direct : {true, false}) {
        BOOST_TEST_CONTEXT("fcgi::" << (direct ? "connection" : "client")) {
            const auto before = fake.snapshot();
            bool frame_destroyed = false;
            bool resumed = false;
            {
                asio::io_context ctx;
                fcgi::test::ticker look(ctx);  // wakes run_until while the server is silent
                auto body = [&]() -> asio::awaitable<void> {
                    on_destroy guard{&frame_destroyed};
                    auto ex = co_await asio::this_coro::executor;
                    auto req = fcgi::test::tagged_request("held");
                    if (direct) {
                        fcgi::connection conn(ex);
                        co_await conn.async_connect(fake.unix_endpoint(), asio::use_awaitable);
                        co_await conn.async_request(std::move(req), asio::use_awaitable);
                    } else {
                        fcgi::client client(ex, plain_pool(fake.unix_endpoint(), 1, 100ms));
                        co_await client.async_request(std::move(req), asio::use_awaitable);
                    }
                    resumed = true;
                };
                asio::co_spawn(ctx, body(), asio::detached);
                BOOST_REQUIRE(run_until(
                    ctx,
                    [&] { return fake.snapshot().requests.size() == before.requests.size() + 1; },
                    10s));
            }
            BOOST_TEST(frame_destroyed);
            BOOST_TEST(!resumed);  // destroyed, not called
            BOOST_TEST(fake.wait_for(
                [&](const fake_snapshot& s) {
                    return s.connections_closed_by_peer == before.connections_closed_by_peer + 1;
                },
                5s));
        }
    }
}

// Every kind of completion token the brief names, on each of the client's operations: a
// callback, use_future, use_awaitable (plain and as_tuple), and deferred, launched later with a
// token of its own. Each must run its request (or fan-out, or shutdown) exactly once and hand
// over what the callback form would.
BOOST_AUTO_TEST_CASE(every_completion_token_on_every_operation) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::client client(ctx, plain_pool(fake.unix_endpoint(), 2, 100ms));
    auto body_of = [](const std::string& id) { return fcgi::test::tagged_body(id); };

    // Deferred: nothing is sent until the deferred operation is launched.
    auto later =
        client.async_request(fcgi::test::tagged_request("deferred"), asio::experimental::deferred);
    auto later_prepared =
        client.async_request(fcgi::prepared_request(fcgi::test::tagged_request("deferred-prep")),
                             asio::experimental::deferred);
    auto later_fanout = fcgi::async_fanout(
        client,
        {fcgi::test::tagged_request("deferred-f1"), fcgi::test::tagged_request("deferred-f2")}, 2,
        asio::experimental::deferred);
    std::vector<std::string> each_seen;
    auto later_each = fcgi::async_fanout_each(
        client, {fcgi::test::tagged_request("deferred-e1")}, 1,
        [&](std::size_t, fcgi::fanout_result r) { each_seen.push_back(r.resp.body); },
        asio::experimental::deferred);
    for (int i = 0; i < 100 && ctx.poll() > 0; ++i) {
    }
    BOOST_TEST(fake.snapshot().connections_accepted == 0u);

    // Callback.
    outcome cb;
    start(client, fcgi::test::tagged_request("callback"), cb);
    // use_future, ready once the io_context has run the request (the handler sets it inline).
    auto fut = client.async_request(fcgi::test::tagged_request("future"), asio::use_future);
    BOOST_REQUIRE(
        run_until(ctx, [&] { return cb.done && fut.wait_for(0s) == std::future_status::ready; }));
    BOOST_TEST(!cb.ec, cb.ec.message());
    BOOST_TEST(cb.resp.body == body_of("callback"));
    BOOST_TEST(fut.get().body == body_of("future"));

    // The deferred ones, each launched with a different token.
    std::optional<fcgi::response> d1;
    std::move(later)([&](std::error_code ec, fcgi::response r) {
        BOOST_TEST(!ec, ec.message());
        d1 = std::move(r);
    });
    auto d2 = std::move(later_prepared)(asio::use_future);
    std::optional<std::vector<fcgi::fanout_result>> d3;
    std::move(later_fanout)([&](std::error_code ec, std::vector<fcgi::fanout_result> rs) {
        BOOST_TEST(!ec, ec.message());
        d3 = std::move(rs);
    });
    std::optional<std::error_code> d4;
    std::move(later_each)([&](std::error_code ec) { d4 = ec; });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return d1 && d2.wait_for(0s) == std::future_status::ready && d3 && d4; }));
    BOOST_TEST(d1->body == body_of("deferred"));
    BOOST_TEST(d2.get().body == body_of("deferred-prep"));
    BOOST_REQUIRE(d3->size() == 2u);
    BOOST_TEST((*d3)[0].resp.body == body_of("deferred-f1"));
    BOOST_TEST((*d3)[1].resp.body == body_of("deferred-f2"));
    BOOST_TEST(!*d4, d4->message());
    BOOST_TEST(each_seen == std::vector<std::string>{body_of("deferred-e1")});

    // use_awaitable, plain and as_tuple, on the request and the fan-out. (The job list is made
    // outside the coroutine: GCC 12 rejects a braced list of requests in it.)
    std::vector<fcgi::request> await_jobs{fcgi::test::tagged_request("await-f")};
    fcgi::test::run_coro(ctx, [&]() -> asio::awaitable<void> {
        auto r =
            co_await client.async_request(fcgi::test::tagged_request("await"), asio::use_awaitable);
        BOOST_TEST(r.body == body_of("await"));
        auto t = co_await client.async_request(fcgi::test::tagged_request("tuple"),
                                               asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(!std::get<0>(t), std::get<0>(t).message());
        BOOST_TEST(std::get<1>(t).body == body_of("tuple"));
        auto f = co_await fcgi::async_fanout(client, std::move(await_jobs), 1,
                                             asio::experimental::as_tuple(asio::use_awaitable));
        BOOST_TEST(!std::get<0>(f), std::get<0>(f).message());
        BOOST_REQUIRE(std::get<1>(f).size() == 1u);
        BOOST_TEST(std::get<1>(f)[0].resp.body == body_of("await-f"));
    });

    // Every request went to the server once.
    auto snap = fake.snapshot();
    for (std::string id : {"callback", "future", "deferred", "deferred-prep", "deferred-f1",
                           "deferred-f2", "deferred-e1", "await", "tuple", "await-f"})
        BOOST_TEST(times_seen(snap, id) == 1u, id);
    BOOST_TEST(snap.requests.size() == 10u);

    // async_shutdown, deferred and then launched with use_future.
    auto shut = client.async_shutdown(asio::experimental::deferred);
    auto shut_fut = std::move(shut)(asio::use_future);
    // A posted completion reaches use_future's promise through Asio's system executor, on a
    // thread of its own: ctx may run out of work before that thread has set it.
    run_until(ctx, [&] { return shut_fut.wait_for(0s) == std::future_status::ready; });
    BOOST_REQUIRE(shut_fut.wait_for(20s) == std::future_status::ready);
    BOOST_CHECK_NO_THROW(shut_fut.get());
}

BOOST_AUTO_TEST_SUITE_END()
