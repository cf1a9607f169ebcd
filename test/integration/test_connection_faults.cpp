// fcgi::connection against the scripted fake responder: every fault php-fpm will not produce,
// multiplexing, cancellation and each completion token.
#include <algorithm>
#include <array>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fcgi/connection.hpp"
#include "fcgi/detail/connection_impl.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "support/fake_responder.hpp"
#include "support/held_sink.hpp"
#include "support/run_until.hpp"
#include "support/temp_file.hpp"
#include "support/unaccepted_listener.hpp"

namespace act = fcgi::test::act;
using asio::awaitable;
using asio::use_awaitable;
using fcgi::test::fake_responder;
using fcgi::test::fake_responder_options;
using fcgi::test::fake_snapshot;
using fcgi::test::seen_request;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

using fcgi::test::run_coro;
using fcgi::test::run_until;

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(use_awaitable);

// Milliseconds since `start` (printable in assertions, unlike durations).
long long ms_since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

bool names(const std::string& diagnostics, const fcgi::endpoint& ep) {
    return diagnostics.find(ep.to_string()) != std::string::npos;
}

// A script that answers request "X_ID=<id>" with `special` and every other one with the echo.
std::function<fcgi::test::script(const seen_request&)> special_for(std::string id,
                                                                   fcgi::test::script special) {
    return [id, special](const seen_request& r) {
        return r.param("X_ID") == id ? special : fcgi::test::echo_script(r);
    };
}

// One request on a fresh connection to `ep`; the error and the response, whatever happened.
std::pair<std::error_code, fcgi::response> one_request(const fcgi::endpoint& ep, fcgi::request req,
                                                       fcgi::connection_options copts = {},
                                                       bool* open_after = nullptr) {
    asio::io_context ctx;
    std::pair<std::error_code, fcgi::response> out;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor(), copts);
        co_await conn.async_connect(ep, use_awaitable);
        auto [ec, resp] = co_await conn.async_request(std::move(req), as_tuple_awaitable);
        out = {ec, std::move(resp)};
        if (open_after)
            *open_after = conn.is_open();
    });
    return out;
}

// Connects `conn` to `ep`, running `ctx` until it has; fails the test if it cannot.
void connect_or_fail(asio::io_context& ctx, fcgi::connection& conn, const fcgi::endpoint& ep) {
    std::optional<std::error_code> connected;
    conn.async_connect(ep, [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE_MESSAGE(!*connected, connected->message());
}

// Sends `req` on `conn`, running `ctx` until it completes; the error and the response.
std::pair<std::error_code, fcgi::response> request_on(asio::io_context& ctx, fcgi::connection& conn,
                                                      fcgi::request req) {
    std::optional<std::pair<std::error_code, fcgi::response>> out;
    conn.async_request(std::move(req), [&](std::error_code ec, fcgi::response r) {
        out.emplace(ec, std::move(r));
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
    return std::move(*out);
}

// Runs an io_context on its own thread; stops and joins it when destroyed, also on failure.
struct io_thread {
    explicit io_thread(asio::io_context& c) : ctx(c), guard(c.get_executor()) {
        thread = std::thread([this] { ctx.run(); });
    }
    ~io_thread() {
        guard.reset();
        ctx.stop();
        thread.join();
    }
    asio::io_context& ctx;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::thread thread;
};

template <class T>
T get_within(std::future<T>& f, std::chrono::seconds limit = 10s) {
    BOOST_REQUIRE_MESSAGE(f.wait_for(limit) == std::future_status::ready,
                          "future not ready in time");
    return f.get();
}

// A connection_impl connected to `ep`, for tests of what a pool sees of it.
std::shared_ptr<fcgi::detail::connection_impl> connected_impl(asio::io_context& ctx,
                                                              const fcgi::endpoint& ep,
                                                              fcgi::connection_options copts = {}) {
    auto conn = std::make_shared<fcgi::detail::connection_impl>(ctx.get_executor(), copts);
    std::optional<std::error_code> connected;
    conn->start_connect(ep, fcgi::detail::error_handler([&](std::error_code ec) { connected = ec; },
                                                        ctx.get_executor()));
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);
    return conn;
}

// Starts `req` on `conn`, its outcome going to `*out` when that is set; returns its serial.
std::uint64_t start_op(asio::io_context& ctx, fcgi::detail::connection_impl& conn,
                       fcgi::request req, std::optional<std::error_code>* out) {
    auto serial = conn.next_serial();
    conn.start_request(
        std::make_unique<fcgi::detail::request_op>(std::move(req),
                                                   fcgi::detail::request_handler(
                                                       [out](std::error_code ec, fcgi::response&&) {
                                                           if (out)
                                                               *out = ec;
                                                       },
                                                       ctx.get_executor()),
                                                   serial));
    return serial;
}

// A raw unix server that accepts one connection and reads nothing until told: a long write to
// it stays pending, and requests assigned a slot meanwhile queue behind it unsent.
struct never_reading_server {
    explicit never_reading_server(asio::io_context& ctx)
        : path(socket_path.path),
          acceptor(ctx, asio::local::stream_protocol::endpoint(path)),
          socket(ctx) {
        acceptor.async_accept(socket, [this](std::error_code ec) { accepted = ec; });
    }
    fcgi::endpoint endpoint() const { return fcgi::endpoint::unix_socket(path); }

    fcgi::test::temp_socket_path socket_path;
    std::string path;
    asio::local::stream_protocol::acceptor acceptor;
    asio::local::stream_protocol::socket socket;
    std::optional<std::error_code> accepted;
};

// What a request ended with, diagnostics included.
struct op_result {
    std::optional<std::error_code> ec;
    std::string diagnostics;
};

// Starts `req` on `conn` with its outcome in `out` and, when it fails in a way that allows
// sending it again, the request back in `back`.
void start_op_back(asio::io_context& ctx, fcgi::detail::connection_impl& conn, fcgi::request req,
                   op_result& out, std::optional<fcgi::request>* back = nullptr) {
    auto op = std::make_unique<fcgi::detail::request_op>(
        std::move(req),
        fcgi::detail::request_handler(
            [&out](std::error_code ec, fcgi::response&& r) {
                out.ec = ec;
                out.diagnostics = r.diagnostics;
            },
            ctx.get_executor()),
        conn.next_serial());
    op->hand_back = back;
    conn.start_request(std::move(op));
}

// A 2-slot connection to a never_reading_server: "big" (8 MiB) is being written and stays so;
// "small" got the second slot (ID 2) and waits behind it, unsent, with `back` to return to.
struct small_behind_big {
    small_behind_big() {
        fcgi::connection_options copts;
        copts.max_in_flight = 2;
        conn = connected_impl(ctx, server.endpoint(), copts);
        BOOST_REQUIRE(run_until(ctx, [&] { return server.accepted.has_value(); }));
        start_op_back(ctx, *conn, fcgi::test::tagged_request("big", std::string(8u << 20, 'x')),
                      big);
        start_op_back(ctx, *conn, fcgi::test::tagged_request("small", "a POST body"), small, &back);
        ctx.restart();
        ctx.poll();
        BOOST_REQUIRE(!big.ec && !small.ec);
    }
    bool both_done() const { return big.ec && small.ec; }

    asio::io_context ctx;
    never_reading_server server{ctx};
    std::shared_ptr<fcgi::detail::connection_impl> conn;
    op_result big, small;
    std::optional<fcgi::request> back;
};

// -- A host name with several addresses. An empty host name resolves to the loopback addresses
// (getaddrinfo with no node name): ::1 and 127.0.0.1 here. The tests read their order rather than
// assume it, and give the first address a fault and the second a listener.

std::vector<asio::ip::address> loopback_addresses() {
    asio::io_context ctx;
    asio::ip::tcp::resolver resolver(ctx);
    std::vector<asio::ip::address> out;
    for (const auto& e : resolver.resolve("", "1"))
        out.push_back(e.endpoint().address());
    return out;
}

// A socket bound to each of the first two loopback addresses on one free port, neither
// listening yet; none, with the test's skip message, where the host has fewer (no IPv6) or no
// port is free on both.
std::optional<std::pair<asio::ip::tcp::acceptor, asio::ip::tcp::acceptor>> bound_on_one_port(
    asio::io_context& ctx) {
    auto addresses = loopback_addresses();
    // Said on stderr, not with BOOST_TEST_MESSAGE: that shows only at a higher log level, and
    // a test that tested nothing should say so in CI's log.
    auto skipped = [] {
        std::cerr << boost::unit_test::framework::current_test_case().p_name.get()
                  << ": skipped, the host has no two loopback addresses (IPv6) to use\n";
        return std::nullopt;
    };
    if (addresses.size() < 2)
        return skipped();
    const auto &a = addresses[0], &b = addresses[1];
    auto protocol = [](const asio::ip::address& x) {
        return x.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
    };
    for (int attempt = 0; attempt < 20; ++attempt) {
        asio::ip::tcp::acceptor first(ctx), second(ctx);
        std::error_code ec;
        second.open(protocol(b), ec);
        if (!ec)
            second.bind({b, 0}, ec);
        if (!ec)
            first.open(protocol(a), ec);
        if (ec)
            return skipped();
        first.bind({a, second.local_endpoint().port()}, ec);
        if (!ec)
            return std::pair(std::move(first), std::move(second));
    }
    return skipped();
}

// The error of accepting on `listening` now, without waiting: would_block when nothing came.
std::error_code accept_now(asio::ip::tcp::acceptor& listening) {
    asio::ip::tcp::socket peer(listening.get_executor());
    std::error_code ec;
    listening.non_blocking(true);
    listening.accept(peer, ec);
    return ec;
}

// How many connects to `port` the kernel shows still in SYN_SENT (/proc/net/tcp*).
int syn_sent_count(std::uint16_t port) {
    char want[8];
    std::snprintf(want, sizeof want, ":%04X", port);
    int n = 0;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // the column names
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state == "02" && remote.size() > 5 && remote.ends_with(want))
                ++n;
        }
    }
    return n;
}

// Whether the kernel shows a connect to `port` that is still in SYN_SENT.
bool syn_sent_to(std::uint16_t port) {
    return syn_sent_count(port) > 0;
}

// Fills `full`'s listen queue (a backlog of 0 holds one connection) with `filler`: the kernel
// then drops further SYNs to it, so a connect there stays pending, as behind a firewall.
void drop_further_connects(asio::ip::tcp::acceptor& full, asio::ip::tcp::socket& filler) {
    full.listen(0);
    filler.connect(full.local_endpoint());
}

// Both loopback addresses on one port: the first drops connects, the second listens.
struct dropping_then_listening {
    asio::ip::tcp::acceptor full, listening;
    asio::ip::tcp::socket filler;
    std::uint16_t port() const { return listening.local_endpoint().port(); }
};

// bound_on_one_port's pair set up as dropping_then_listening; none where it gives none.
std::optional<dropping_then_listening> first_drops_second_listens(asio::io_context& ctx) {
    auto sockets = bound_on_one_port(ctx);
    if (!sockets)
        return std::nullopt;
    std::optional<dropping_then_listening> out(std::in_place, std::move(sockets->first),
                                               std::move(sockets->second),
                                               asio::ip::tcp::socket(ctx));
    drop_further_connects(out->full, out->filler);
    out->listening.listen();
    return out;
}

// Connects `conn` by the name "" (both loopback addresses, as bound_on_one_port binds them) on
// `port`, running `ctx` until the connect completes; its result, or none if it never did.
std::optional<std::error_code> connect_by_name(asio::io_context& ctx, fcgi::connection& conn,
                                               std::uint16_t port) {
    std::optional<std::error_code> connected;
    conn.async_connect(fcgi::endpoint::tcp("", port), [&](std::error_code ec) { connected = ec; });
    run_until(ctx, [&] { return connected.has_value(); });
    return connected;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(connection_faults)

// A handler on another executor (use_future) and a sink that completes later from a thread of
// its own: with the reader paused for the sink, nothing was pending on the io_context, so run()
// returned with the request unfinished, and the sink's completion then waited for a run() that
// never came. The pending request now counts as work on the connection's executor.
BOOST_AUTO_TEST_CASE(pending_request_keeps_run_going_for_a_handler_elsewhere) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection_options co;
    co.sink_buffer_size = 1;  // every chunk waits for the sink
    fcgi::connection conn(ctx, co);
    std::optional<std::error_code> connected;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return connected.has_value(); }, 10s));
    BOOST_REQUIRE(!*connected);

    fcgi::test::held_sink held;
    auto req = fcgi::test::tagged_request("elsewhere");
    req.stdout_sink = held.sink();
    auto response = conn.async_request(std::move(req), asio::use_future);
    BOOST_TEST(!fcgi::test::run_returned_early(ctx, held, response, [&] { conn.close(); }),
               "io_context::run() returned with the request pending");
    BOOST_REQUIRE(response.wait_for(0s) == std::future_status::ready);
    auto r = response.get();
    BOOST_TEST(held.body() == fcgi::test::tagged_body("elsewhere"));
    BOOST_TEST(r.status == 200);
}

// request::timeout counts from the call, also when the request hops onto the connection's
// executor: one whose deadline passed while that executor was busy is not sent, and one with
// time left gets only what is left (here 300 ms, of which 150 went waiting, against a server
// that takes 250 ms). The deadline used to start when the executor took the request.
BOOST_AUTO_TEST_CASE(deadline_counts_from_the_call_across_executors) {
    fake_responder fake({.script_for = [](const seen_request& r) -> fcgi::test::script {
        auto script = fcgi::test::echo_script(r);
        if (r.param("X_ID").value_or("") == "slow")
            script.insert(script.begin(), act::delay(250ms));
        return script;
    }});
    asio::io_context ctx;
    fcgi::connection conn(ctx);
    connect_or_fail(ctx, conn, fake.unix_endpoint());

    std::map<std::string, std::pair<std::error_code, fcgi::response>> out;
    auto send = [&](const std::string& id, std::chrono::milliseconds timeout) {
        auto req = fcgi::test::tagged_request(id);
        req.timeout = timeout;
        // Not inside run(): the call posts the request onto the connection's executor.
        conn.async_request(std::move(req), [&out, id](std::error_code ec, fcgi::response r) {
            out[id] = {ec, std::move(r)};
        });
    };
    send("late", 100ms);
    send("slow", 300ms);
    std::this_thread::sleep_for(150ms);  // the executor busy elsewhere: the scenario, not a wait
    BOOST_REQUIRE(run_until(
        ctx, [&] { return out.size() == 2; }, 10s));
    BOOST_TEST(out["late"].first == fcgi::error::request_timeout, out["late"].first.message());
    BOOST_TEST(out["late"].second.diagnostics.find("was not sent") != std::string::npos,
               out["late"].second.diagnostics);
    BOOST_TEST(out["late"].second.times_sent == 0u);
    BOOST_TEST(out["slow"].first == fcgi::error::request_timeout, out["slow"].first.message());
    auto snap = fake.snapshot();
    BOOST_TEST(std::none_of(snap.requests.begin(), snap.requests.end(),
                            [](const seen_request& r) { return r.param("X_ID") == "late"; }));
    conn.close();
    ctx.restart();
    ctx.run();
}

BOOST_AUTO_TEST_CASE(round_trip_over_tcp_and_unix) {
    fake_responder fake;
    for (const auto& ep : {fake.tcp_endpoint(), fake.unix_endpoint()}) {
        asio::io_context ctx;
        run_coro(ctx, [&]() -> awaitable<void> {
            fcgi::connection conn(ctx);  // on the context, as Asio's objects take
            co_await conn.async_connect(ep, use_awaitable);
            BOOST_TEST(conn.is_open());
            for (int i = 0; i < 3; ++i) {
                std::string id = "req-" + std::to_string(i);
                std::string body = i == 2 ? "posted body" : "";
                auto resp = co_await conn.async_request(fcgi::test::tagged_request(id, body),
                                                        use_awaitable);
                BOOST_TEST(resp.status == 200);
                BOOST_TEST(resp.reason == "OK");
                BOOST_TEST(resp.header("Content-Type").value_or("") == "text/plain");
                BOOST_TEST(resp.body == fcgi::test::tagged_body(id, body));
                BOOST_TEST(resp.stderr_text.empty());
                BOOST_TEST(resp.diagnostics.empty());
                BOOST_TEST(conn.is_open());
            }
            BOOST_TEST(conn.stats().requests_completed == 3u);
        });
    }
    auto snap = fake.snapshot();
    BOOST_TEST(snap.connections_accepted == 2u);  // one per endpoint: each was reused
    BOOST_REQUIRE(snap.requests.size() == 6u);
    for (const auto& r : snap.requests) {
        BOOST_TEST((r.flags == fcgi::protocol::begin_flags::keep_conn));
        BOOST_TEST((r.role == fcgi::protocol::role::responder));
        BOOST_TEST(r.complete);
        // One request at a time, a new ID each: 1, 2, 3 on each connection.
        BOOST_TEST(r.id == r.index_on_conn);
    }
    BOOST_TEST(snap.requests[2].stdin_data == "posted body");
    BOOST_TEST(snap.requests[2].param("REQUEST_METHOD").value_or("") == "POST");
    BOOST_TEST(snap.requests[2].param("CONTENT_LENGTH").value_or("") == "11");
    BOOST_TEST(snap.violations.empty());
}

// A connection connects once: a second async_connect names why it cannot, whatever the state.
BOOST_AUTO_TEST_CASE(second_connect_says_why_it_cannot) {
    fake_responder fake(fcgi::test::fake_responder_options{});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::vector<std::error_code> first, during, after, closed;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { first.push_back(ec); });
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { during.push_back(ec); });
    BOOST_REQUIRE(run_until(ctx, [&] { return !first.empty() && !during.empty(); }));
    BOOST_TEST(!first.at(0), first.at(0).message());
    BOOST_TEST(during.at(0) == asio::error::already_started, during.at(0).message());
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { after.push_back(ec); });
    BOOST_REQUIRE(run_until(ctx, [&] { return !after.empty(); }));
    BOOST_TEST(after.at(0) == asio::error::already_connected, after.at(0).message());
    conn.close();
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { closed.push_back(ec); });
    BOOST_REQUIRE(run_until(ctx, [&] { return !closed.empty(); }));
    BOOST_TEST(closed.at(0) == fcgi::error::not_connected, closed.at(0).message());
    BOOST_TEST(first.size() == 1u);
}

// The slot of a refused second connect does not reach the first: its cancellation handler
// was not keyed, so an emit there ended the connect under way with operation_aborted.
BOOST_AUTO_TEST_CASE(cancelling_a_refused_connect_leaves_the_first,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    fcgi::test::unaccepted_listener nowhere;  // the first connect stays pending
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.connect_timeout = 300ms;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> first, second, third;
    asio::cancellation_signal first_signal, second_signal;
    conn.async_connect(
        nowhere.endpoint(),
        asio::bind_cancellation_slot(first_signal.slot(), [&](std::error_code ec) { first = ec; }));
    conn.async_connect(nowhere.endpoint(),
                       asio::bind_cancellation_slot(second_signal.slot(),
                                                    [&](std::error_code ec) { second = ec; }));
    BOOST_REQUIRE(run_until(ctx, [&] { return second.has_value(); }));
    BOOST_TEST(*second == asio::error::already_started, second->message());
    second_signal.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(ctx, [&] { return first.has_value(); }));
    BOOST_TEST(*first == fcgi::error::connect_timeout, first->message());

    // Its own slot still cancels it.
    fcgi::connection again(ctx.get_executor(), copts);
    again.async_connect(
        nowhere.endpoint(),
        asio::bind_cancellation_slot(first_signal.slot(), [&](std::error_code ec) { third = ec; }));
    ctx.poll();
    first_signal.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(ctx, [&] { return third.has_value(); }));
    BOOST_TEST(*third == asio::error::operation_aborted, third->message());
}

// endpoint::unix_socket() takes any path; one longer than sockaddr_un holds made Asio throw
// from inside the connect (out of run(), the handler never called) and made async_get_values
// wait for its timeout. Each now completes at once with invalid_endpoint.
BOOST_AUTO_TEST_CASE(unix_path_too_long_is_invalid_endpoint) {
    auto ep = fcgi::endpoint::unix_socket("/tmp/" + std::string(200, 'x') + ".sock");
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected, probed;
    conn.async_connect(ep, [&](std::error_code ec) { connected = ec; });
    fcgi::get_values_options gv;
    gv.connect_timeout = 10s;
    gv.timeout = 10s;
    fcgi::async_get_values(
        ctx.get_executor(), ep, gv,
        [&](std::error_code ec, fcgi::protocol::get_values_result) { probed = ec; });
    auto t0 = steady::now();
    BOOST_REQUIRE(run_until(ctx, [&] { return connected && probed; }));
    BOOST_TEST(*connected == fcgi::error::invalid_endpoint, connected->message());
    BOOST_TEST(*probed == fcgi::error::invalid_endpoint, probed->message());
    BOOST_TEST(ms_since(t0) < 5000);
    BOOST_TEST(!conn.is_open());
}

// A name whose first address refuses is connected through the next one (php-fpm listens on
// 127.0.0.1:9000 by default, while "localhost" may resolve to ::1 first). The refusal starts
// the next address at once: waiting for the attempt delay, an hour, it would not connect.
BOOST_AUTO_TEST_CASE(connect_falls_back_to_the_next_address) {
    asio::io_context ctx;
    auto sockets = bound_on_one_port(ctx);
    if (!sockets)
        return;
    auto& [refusing, listening] = *sockets;
    listening.listen();
    fcgi::connection_options co;
    co.connect_attempt_delay = 1h;
    fcgi::connection conn(ctx, co);
    auto connected = connect_by_name(ctx, conn, listening.local_endpoint().port());
    BOOST_REQUIRE(connected.has_value());
    BOOST_TEST(!*connected, connected->message());
    BOOST_TEST(conn.is_open());
    auto ec = accept_now(listening);
    BOOST_TEST(!ec, "nothing connected to " << listening.local_endpoint() << ": " << ec.message());
}

// close() while connecting to the first of several addresses ends the connect there. The aborted
// connect used to go on to the next address on the closed connection and open a socket no one
// would close (against php-fpm, a worker pinned until its idle kill).
BOOST_AUTO_TEST_CASE(close_while_connecting_tries_no_further_address) {
    asio::io_context ctx;
    auto sockets = first_drops_second_listens(ctx);
    if (!sockets)
        return;
    auto& listening = sockets->listening;
    auto port = sockets->port();
    fcgi::test::ticker wake(ctx);
    fcgi::connection_options co;
    co.connect_attempt_delay = 0ms;  // no second attempt beside the first: the close ends it
    fcgi::connection conn(ctx, co);
    std::optional<std::error_code> connected;
    conn.async_connect(fcgi::endpoint::tcp("", port), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return syn_sent_to(port) || connected.has_value(); }));
    BOOST_REQUIRE_MESSAGE(!connected, "connected while the first address's backlog was full");
    conn.close();
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_TEST(*connected);
    wake.stop();
    ctx.restart();
    ctx.run_for(5s);  // every handler the close released (a next connect would complete too)
    BOOST_TEST(accept_now(listening) == asio::error::would_block,
               "a connection reached " << listening.local_endpoint());
    BOOST_TEST(!conn.is_open());
}

// An address that drops the connect (a firewall, a dead route) holds the next one back for the
// attempt delay, not for connect_timeout: the next starts beside it and wins, and the first
// attempt is closed. One address at a time, the first used up connect_timeout.
BOOST_AUTO_TEST_CASE(connect_races_past_an_address_that_drops_the_connect) {
    asio::io_context ctx;
    auto sockets = first_drops_second_listens(ctx);
    if (!sockets)
        return;
    auto& [full, listening, filler] = *sockets;
    const auto port = sockets->port();
    fcgi::test::ticker wake(ctx);
    fcgi::connection_options co;
    co.connect_timeout = 60s;  // far past run_until's limit: only the race connects in time
    fcgi::connection conn(ctx, co);
    auto connected = connect_by_name(ctx, conn, port);
    BOOST_REQUIRE(connected.has_value());
    BOOST_TEST(!*connected, connected->message());
    BOOST_TEST(conn.is_open());
    auto ec = accept_now(listening);
    BOOST_TEST(!ec, "nothing connected to " << listening.local_endpoint() << ": " << ec.message());
    BOOST_TEST(run_until(ctx, [&] { return !syn_sent_to(port); }),
               "the attempt at " << full.local_endpoint() << " was left connecting");
    wake.stop();
}

// With the attempt delay at zero, addresses go one at a time: the first, dropping the connect,
// uses up connect_timeout and the next is never tried. A delay too long to add to the clock
// (milliseconds::max()) is capped, as every duration option is: it fired at once, overflowed.
BOOST_AUTO_TEST_CASE(connect_attempt_delay_zero_or_endless_tries_one_address_at_a_time) {
    for (auto delay : {0ms, std::chrono::milliseconds::max()}) {
        BOOST_TEST_CONTEXT("connect_attempt_delay " << delay.count() << " ms") {
            asio::io_context ctx;
            auto sockets = first_drops_second_listens(ctx);
            if (!sockets)
                return;
            auto& listening = sockets->listening;
            fcgi::connection_options co;
            co.connect_timeout = 500ms;
            co.connect_attempt_delay = delay;
            fcgi::connection conn(ctx, co);
            auto connected = connect_by_name(ctx, conn, listening.local_endpoint().port());
            BOOST_REQUIRE(connected.has_value());
            BOOST_TEST(*connected == fcgi::error::connect_timeout, connected->message());
            BOOST_TEST(accept_now(listening) == asio::error::would_block,
                       "a connection reached " << listening.local_endpoint());
        }
    }
}

// close() while two attempts race (both addresses drop the connect) closes both, and the
// connect completes once, with an error.
BOOST_AUTO_TEST_CASE(close_while_attempts_race_closes_every_attempt) {
    asio::io_context ctx;
    auto sockets = bound_on_one_port(ctx);
    if (!sockets)
        return;
    auto& [first, second] = *sockets;
    asio::ip::tcp::socket filler1(ctx), filler2(ctx);
    drop_further_connects(first, filler1);
    drop_further_connects(second, filler2);
    const auto port = first.local_endpoint().port();
    fcgi::test::ticker wake(ctx);
    fcgi::connection_options co;
    co.connect_timeout = 60s;
    co.connect_attempt_delay = 10ms;
    fcgi::connection conn(ctx, co);
    int calls = 0;
    std::optional<std::error_code> connected;
    conn.async_connect(fcgi::endpoint::tcp("", port), [&](std::error_code ec) {
        ++calls;
        connected = ec;
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return syn_sent_count(port) >= 2 || connected; }));
    BOOST_REQUIRE_MESSAGE(!connected, "connected while both backlogs were full");
    conn.close();
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_TEST(*connected);
    BOOST_TEST(run_until(ctx, [&] { return syn_sent_count(port) == 0; }),
               syn_sent_count(port) << " attempts left connecting to port " << port);
    wake.stop();
    ctx.restart();
    ctx.run_for(1s);  // the attempts' handlers, aborted by the close
    BOOST_TEST(calls == 1);
    BOOST_TEST(!conn.is_open());
}

// Every address refusing: the connect fails at once with the refusal, whatever the delay.
BOOST_AUTO_TEST_CASE(connect_fails_with_the_refusal_when_every_address_refuses) {
    asio::io_context ctx;
    auto sockets = bound_on_one_port(ctx);
    if (!sockets)
        return;
    auto& [a, b] = *sockets;
    fcgi::connection_options co;
    co.connect_attempt_delay = 1h;
    fcgi::connection conn(ctx, co);
    auto connected = connect_by_name(ctx, conn, a.local_endpoint().port());
    BOOST_REQUIRE(connected.has_value());
    BOOST_TEST(*connected == asio::error::connection_refused, connected->message());
    BOOST_TEST(!conn.is_open());
}

// A connect that hangs (a full backlog drops the SYN) ends when the handler's slot is
// cancelled, as Asio's own async_connect does: `connect || timer` waited for connect_timeout.
// An emit after the connect completed leaves the connection open.
BOOST_AUTO_TEST_CASE(connect_cancelled_through_its_slot) {
    asio::io_context ctx;
    asio::ip::tcp::acceptor full(ctx, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    full.listen(0);
    asio::ip::tcp::socket filler(ctx);
    filler.connect(full.local_endpoint());
    const auto port = full.local_endpoint().port();
    fcgi::test::ticker wake(ctx);
    fcgi::connection_options co;
    co.connect_timeout = 60s;
    fcgi::connection conn(ctx, co);
    asio::cancellation_signal sig;
    std::optional<std::error_code> connected;
    conn.async_connect(
        fcgi::endpoint::tcp("127.0.0.1", port),
        asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec) { connected = ec; }));
    BOOST_REQUIRE(run_until(ctx, [&] { return syn_sent_to(port) || connected.has_value(); }));
    BOOST_REQUIRE_MESSAGE(!connected, "connected while the backlog was full");
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return connected.has_value(); }, 5s));
    BOOST_TEST(*connected == asio::error::operation_aborted, connected->message());
    BOOST_TEST(!conn.is_open());

    fake_responder fake;
    fcgi::connection open(ctx);
    std::optional<std::error_code> opened;
    open.async_connect(
        fake.unix_endpoint(),
        asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec) { opened = ec; }));
    BOOST_REQUIRE(run_until(
        ctx, [&] { return opened.has_value(); }, 5s));
    BOOST_REQUIRE(!*opened);
    sig.emit(asio::cancellation_type::terminal);  // too late: nothing to cancel
    ctx.poll();
    BOOST_TEST(open.is_open());
    wake.stop();
    open.close();
}

BOOST_AUTO_TEST_CASE(records_split_byte_by_byte) {
    fake_responder fake({.split = fcgi::test::write_split::every_byte, .fragment_delay = 1ms});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.tcp_endpoint(), use_awaitable);
        for (int i = 0; i < 2; ++i) {
            auto resp = co_await conn.async_request(fcgi::test::tagged_request("split", "abc"),
                                                    use_awaitable);
            BOOST_TEST(resp.status == 200);
            BOOST_TEST(resp.body == fcgi::test::tagged_body("split", "abc"));
            BOOST_TEST(conn.is_open());
        }
    });
    BOOST_TEST(fake.snapshot().violations.empty());
}

BOOST_AUTO_TEST_CASE(records_split_at_random_points) {
    fake_responder fake({.split = fcgi::test::write_split::random, .random_max_fragment = 13});
    for (const auto& ep : {fake.tcp_endpoint(), fake.unix_endpoint()}) {
        asio::io_context ctx;
        run_coro(ctx, [&]() -> awaitable<void> {
            fcgi::connection conn(ctx.get_executor());
            co_await conn.async_connect(ep, use_awaitable);
            for (int i = 0; i < 30; ++i) {
                std::string id = "r" + std::to_string(i);
                std::string body(static_cast<std::size_t>(i * 37), 'b');
                auto resp = co_await conn.async_request(fcgi::test::tagged_request(id, body),
                                                        use_awaitable);
                BOOST_TEST(resp.body == fcgi::test::tagged_body(id, body));
            }
            BOOST_TEST(conn.is_open());
        });
    }
}

BOOST_AUTO_TEST_CASE(close_before_responding_is_connection_lost) {
    fake_responder fake(
        {.script_for = [](const seen_request&) { return fcgi::test::script{act::close()}; }});
    for (const auto& ep : {fake.tcp_endpoint(), fake.unix_endpoint()}) {
        bool open = true;
        auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
        BOOST_TEST(ec == fcgi::error::connection_lost, ec.message());
        BOOST_TEST(ec == fcgi::condition::transport_error);
        BOOST_TEST(!resp.diagnostics.empty());
        BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
        BOOST_TEST(resp.diagnostics.find("listen.allowed_clients") != std::string::npos,
                   resp.diagnostics);
        BOOST_TEST(!open);
    }
}

BOOST_AUTO_TEST_CASE(close_mid_response_is_connection_lost) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\n\r\npartial"),
                                  act::stderr_("PHP message: dying"), act::close()};
    }});
    for (const auto& ep : {fake.tcp_endpoint(), fake.unix_endpoint()}) {
        bool open = true;
        auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
        BOOST_TEST(ec == fcgi::error::connection_lost, ec.message());
        BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
        // Output came back: the server took this client, so no word of allowed_clients.
        BOOST_TEST(resp.diagnostics.find("allowed_clients") == std::string::npos, resp.diagnostics);
        BOOST_TEST(!open);
    }
}

BOOST_AUTO_TEST_CASE(close_right_after_accept) {
    fake_responder fake({.close_on_accept = true});
    for (const auto& ep : {fake.tcp_endpoint(), fake.unix_endpoint()}) {
        bool open = true;
        auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
        // Either the EOF is seen before the request is submitted (not_connected) or after it
        // was written (connection_lost); both must name the endpoint.
        BOOST_TEST((ec == fcgi::error::connection_lost || ec == fcgi::error::not_connected),
                   ec.message());
        BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
        // Not a byte came back: as php-fpm does to a client listen.allowed_clients leaves out.
        BOOST_TEST(resp.diagnostics.find("(php-fpm: listen.allowed_clients)") != std::string::npos,
                   resp.diagnostics);
        BOOST_TEST(!open);
    }
}

// A new connection closed without a byte back long after the request went: a script that died
// (php-fpm's request_terminate_timeout kills it so), not a server refusing this client, which
// closes at once. The hint named listen.allowed_clients alone, whenever the close came.
BOOST_AUTO_TEST_CASE(a_late_silent_close_is_not_blamed_on_allowed_clients) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::delay(250ms), act::close()};
    }});
    auto [ec, resp] = one_request(fake.unix_endpoint(), fcgi::test::tagged_request("x"));
    BOOST_TEST(ec == fcgi::error::connection_lost, ec.message());
    const std::string& d = resp.diagnostics;
    BOOST_TEST(d.find("ms after it opened without a byte back: its script may have run and died "
                      "(a killed or crashed worker; php-fpm: request_terminate_timeout)") !=
                   std::string::npos,
               d);
    BOOST_TEST(d.find("a server that closes a new connection") == std::string::npos, d);
}

// A server that ignores ABORT_REQUEST: after abort_timeout the connection takes no more
// requests, and one waiting for a slot fails then, saying why. It waited for as long as another
// live request ran (here for good), then heard only "closed before the request was sent".
BOOST_AUTO_TEST_CASE(requests_waiting_on_a_retired_connection_hear_why) {
    fake_responder fake({.script_for = [](const seen_request&) { return fcgi::test::script{}; },
                         .answer_abort = false});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    copts.abort_timeout = 100ms;
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.unix_endpoint());
    auto timed = fcgi::test::tagged_request("timed");
    timed.timeout = 100ms;
    std::optional<std::pair<std::error_code, std::string>> waiting;
    conn.async_request(timed, [](std::error_code, fcgi::response) {});
    conn.async_request(fcgi::test::tagged_request("held"), [](std::error_code, fcgi::response) {});
    conn.async_request(
        fcgi::test::tagged_request("waiting"),
        [&](std::error_code ec, fcgi::response r) { waiting.emplace(ec, r.diagnostics); });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return waiting.has_value(); }, 5s));
    BOOST_TEST(waiting->first == fcgi::error::not_connected, waiting->first.message());
    BOOST_TEST(waiting->second.find(" takes no more requests: the server did not end aborted "
                                    "request 1 within 100 ms") != std::string::npos,
               waiting->second);
    BOOST_TEST(conn.is_open());  // "held" still runs
}

// A request on a connection never connected: it said "connection to unix: is not open", naming
// an endpoint nobody gave.
BOOST_AUTO_TEST_CASE(request_before_connect_says_to_connect_first) {
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    auto [ec, resp] = request_on(ctx, conn, fcgi::test::tagged_request("x"));
    BOOST_TEST(ec == fcgi::error::not_connected, ec.message());
    BOOST_TEST(resp.diagnostics == "the connection is not connected: call async_connect first");
}

// The not_connected side of the race above, made certain: the close is seen before the request
// is made, and the request's diagnostics say who closed the connection and when.
BOOST_AUTO_TEST_CASE(request_after_the_server_closed_says_so) {
    fake_responder fake({.close_on_accept = true});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    connect_or_fail(ctx, conn, fake.unix_endpoint());
    BOOST_REQUIRE(run_until(ctx, [&] { return !conn.is_open(); }));
    auto [ec, resp] = request_on(ctx, conn, fcgi::test::tagged_request("x"));
    BOOST_TEST(ec == fcgi::error::not_connected, ec.message());
    const std::string& d = resp.diagnostics;
    BOOST_TEST(d.find("is not open: the server closed it after 0 requests") != std::string::npos,
               d);
    BOOST_TEST(d.find("(php-fpm: listen.allowed_clients)") != std::string::npos, d);
}

// The client's own close, after a request that only closing stops (its deadline passed, on a
// connection that does not multiplex): the next request's diagnostics say the client closed it.
// They said the server had, and, with no byte read, hinted at listen.allowed_clients.
BOOST_AUTO_TEST_CASE(request_after_the_client_closed_says_so) {
    fake_responder fake({.script_for = [](const seen_request&) { return fcgi::test::script{}; }});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    connect_or_fail(ctx, conn, fake.unix_endpoint());
    auto silent = fcgi::test::tagged_request("silent");
    silent.timeout = 50ms;
    auto first = request_on(ctx, conn, silent);
    BOOST_TEST(first.first == fcgi::error::request_timeout, first.first.message());
    BOOST_TEST(!conn.is_open());
    auto second = request_on(ctx, conn, fcgi::test::tagged_request("next"));
    BOOST_TEST(second.first == fcgi::error::not_connected, second.first.message());
    const std::string& d = second.second.diagnostics;
    BOOST_TEST(
        d.find("is not open: closed after 0 requests: closed by this client when request "
               "1 failed (the request did not complete within its deadline") != std::string::npos,
        d);
    BOOST_TEST(d.find("only closing stops its script") != std::string::npos, d);
    BOOST_TEST(d.find("the server closed it") == std::string::npos, d);
    BOOST_TEST(d.find("allowed_clients") == std::string::npos, d);
}

// PROTOCOL.md item 8 for bytes that come on their own: part of a record with nothing in flight
// would be read as the start of the next request's response, so the idle connection closes at
// once (a whole stray record closes it as a record for no request), and says why.
BOOST_AUTO_TEST_CASE(partial_record_on_an_idle_connection_closes_it) {
    std::atomic<bool> answered{false};
    fake_responder fake({.script_for = [&](const seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        // After the client has handled the answer: in a read of their own.
        s.push_back(act::wait_until([&] { return answered.load(); }));
        s.push_back(act::raw(std::string("\x01\x06", 2)));  // a STDOUT header's first bytes
        return s;
    }});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    connect_or_fail(ctx, conn, fake.unix_endpoint());
    std::optional<std::pair<std::error_code, fcgi::response>> first;
    conn.async_request(fcgi::test::tagged_request("one"),
                       [&](std::error_code ec, fcgi::response r) {
                           first.emplace(ec, std::move(r));
                           answered = true;
                       });
    BOOST_REQUIRE(run_until(ctx, [&] { return first.has_value(); }));
    BOOST_TEST(!first->first, first->first.message());
    BOOST_TEST(first->second.body == fcgi::test::tagged_body("one"));
    BOOST_REQUIRE(run_until(ctx, [&] { return !conn.is_open(); }));
    auto second = request_on(ctx, conn, fcgi::test::tagged_request("two"));
    BOOST_TEST(second.first == fcgi::error::not_connected, second.first.message());
    const std::string& d = second.second.diagnostics;
    BOOST_TEST(d.find("is not open: closed after 1 request: the start of a record from " +
                      fake.unix_endpoint().to_string() +
                      " with no request in flight: the stream is out of step") != std::string::npos,
               d);
    BOOST_TEST(fake.snapshot().requests.size() == 1u);  // the second was never sent
}

// A response that fails as its END_REQUEST arrives (no head before it) is not among the
// requests "completed earlier" its diagnostics count.
BOOST_AUTO_TEST_CASE(failing_at_its_end_request_does_not_count_itself) {
    std::atomic<int> seen{0};
    fake_responder fake({.script_for = [&](const seen_request& r) {
        if (++seen == 2)
            return fcgi::test::echo_script(r);
        return fcgi::test::script{act::stdout_("a body with no head"), act::end()};
    }});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);
        auto [ec1, r1] =
            co_await conn.async_request(fcgi::test::tagged_request("1"), as_tuple_awaitable);
        BOOST_TEST(ec1 == fcgi::error::bad_response_head, ec1.message());
        BOOST_TEST(r1.diagnostics.find("(0 requests completed earlier") != std::string::npos,
                   r1.diagnostics);
        auto [ec2, r2] =
            co_await conn.async_request(fcgi::test::tagged_request("2"), as_tuple_awaitable);
        BOOST_TEST(!ec2, ec2.message());
        auto [ec3, r3] =
            co_await conn.async_request(fcgi::test::tagged_request("3"), as_tuple_awaitable);
        BOOST_TEST(ec3 == fcgi::error::bad_response_head, ec3.message());
        BOOST_TEST(r3.diagnostics.find("(2 requests completed earlier") != std::string::npos,
                   r3.diagnostics);
    });
}

BOOST_AUTO_TEST_CASE(close_after_n_requests) {
    fake_responder fake({.close_after_requests = 2});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.tcp_endpoint(), use_awaitable);
        for (int i = 0; i < 2; ++i) {
            auto resp =
                co_await conn.async_request(fcgi::test::tagged_request("ok"), use_awaitable);
            BOOST_TEST(resp.body == fcgi::test::tagged_body("ok"));
        }
        auto [ec, resp] =
            co_await conn.async_request(fcgi::test::tagged_request("third"), as_tuple_awaitable);
        BOOST_TEST((ec == fcgi::error::connection_lost || ec == fcgi::error::not_connected),
                   ec.message());
        BOOST_TEST(!resp.diagnostics.empty());
        if (ec == fcgi::error::not_connected)  // the close was seen first: said with its count
            BOOST_TEST(
                resp.diagnostics.find("the server closed it after 2 requests") != std::string::npos,
                resp.diagnostics);
        // Bytes came back on it: the server took this client.
        BOOST_TEST(resp.diagnostics.find("allowed_clients") == std::string::npos, resp.diagnostics);
        BOOST_TEST(!conn.is_open());
    });
    BOOST_TEST(fake.snapshot().connections_accepted == 1u);
    BOOST_TEST(fake.snapshot().ends_sent == 2u);
}

// The server stopped receiving, unseen by the reader: the kernel refuses the next write
// whole, so that request was never sent (not_connected, which a pool retries for any method).
BOOST_AUTO_TEST_CASE(write_refused_whole_is_not_sent) {
    fake_responder fake({.tcp = false, .refuse_after_requests = 1});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);
        auto resp = co_await conn.async_request(fcgi::test::tagged_request("ok"), use_awaitable);
        BOOST_TEST(resp.body == fcgi::test::tagged_body("ok"));
        auto [ec, lost] = co_await conn.async_request(fcgi::test::tagged_request("post", "a=1"),
                                                      as_tuple_awaitable);
        BOOST_TEST(ec == fcgi::error::not_connected, ec.message());
        BOOST_TEST(lost.diagnostics.find("the write was refused whole") != std::string::npos,
                   lost.diagnostics);
        BOOST_TEST(!conn.is_open());
        // Started means a first byte went out (connection_stats): this one's never did.
        BOOST_TEST(conn.stats().requests_started == 1u);
        BOOST_TEST(conn.stats().requests_completed == 1u);
    });
    BOOST_TEST(fake.snapshot().requests.size() == 1u);
}

BOOST_AUTO_TEST_CASE(garbage_is_bad_version) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{
            act::raw("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")};
    }});
    auto ep = fake.tcp_endpoint();
    bool open = true;
    auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
    BOOST_TEST(ec == fcgi::error::bad_version, ec.message());
    BOOST_TEST(ec == fcgi::condition::protocol_error);
    BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
    BOOST_TEST(!open);
}

BOOST_AUTO_TEST_CASE(version_2_record_is_bad_version) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        return fcgi::test::script{act::raw(fcgi::test::make_record(
            fcgi::protocol::record_type::stdout_, r.id, "Content-Type: text/plain\r\n\r\nhi", 2))};
    }});
    auto ep = fake.unix_endpoint();
    bool open = true;
    auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
    BOOST_TEST(ec == fcgi::error::bad_version, ec.message());
    BOOST_TEST(ec == fcgi::condition::protocol_error);
    BOOST_TEST(!open);
}

BOOST_AUTO_TEST_CASE(record_for_unknown_request_id) {
    // ID 77 is beyond every slot; ID 3 is a slot that is not in use.
    for (std::uint16_t stray : {std::uint16_t{77}, std::uint16_t{3}}) {
        fake_responder fake({.script_for = [stray](const seen_request&) {
            return fcgi::test::script{
                act::stdout_("Content-Type: text/plain\r\n\r\nnot yours").for_id(stray),
                act::end()};
        }});
        auto ep = fake.tcp_endpoint();
        bool open = true;
        fcgi::connection_options copts;
        copts.max_in_flight = 4;
        auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), copts, &open);
        BOOST_TEST(ec == fcgi::error::unexpected_record, ec.message());
        BOOST_TEST(ec == fcgi::condition::protocol_error);
        BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
        BOOST_TEST(!open);
    }
}

BOOST_AUTO_TEST_CASE(other_malformed_responses) {
    using fcgi::protocol::record_type;
    struct fault {
        std::string name;
        fcgi::test::script (*make)(const seen_request&);
        fcgi::error expected;
    };
    const fault faults[] = {
        {"UNKNOWN_TYPE for ABORT_REQUEST",
         [](const seen_request&) {
             return fcgi::test::script{act::raw(fcgi::test::make_record(
                 record_type::unknown_type, 0, std::string("\x02\0\0\0\0\0\0\0", 8)))};
         },
         fcgi::error::unknown_type_reply},
        // Type 42 was never sent: not a server lacking a feature, a stray record.
        {"UNKNOWN_TYPE for a type never sent",
         [](const seen_request&) {
             return fcgi::test::script{act::raw(fcgi::test::make_record(
                 record_type::unknown_type, 0, std::string("\x2a\0\0\0\0\0\0\0", 8)))};
         },
         fcgi::error::unexpected_record},
        {"record of type 42",
         [](const seen_request& r) {
             return fcgi::test::script{
                 act::raw(fcgi::test::make_record(static_cast<record_type>(42), r.id, "what"))};
         },
         fcgi::error::unknown_record_type},
        {"END_REQUEST of 4 bytes",
         [](const seen_request& r) {
             return fcgi::test::script{act::raw(
                 fcgi::test::make_record(record_type::end_request, r.id, std::string(4, '\0')))};
         },
         fcgi::error::bad_record_length},
        {"STDIN from the server",
         [](const seen_request& r) {
             return fcgi::test::script{
                 act::raw(fcgi::test::make_record(record_type::stdin_, r.id, "echo"))};
         },
         fcgi::error::unexpected_record},
        {"head line without a colon",
         [](const seen_request&) {
             return fcgi::test::script{act::stdout_("this is not a header\r\n\r\nbody"),
                                       act::end()};
         },
         fcgi::error::bad_response_head},
    };
    for (const auto& f : faults) {
        BOOST_TEST_CONTEXT(f.name) {
            fake_responder fake({.script_for = f.make});
            auto ep = fake.tcp_endpoint();
            bool open = true;
            auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("x"), {}, &open);
            BOOST_TEST(ec == f.expected, ec.message());
            BOOST_TEST(ec == fcgi::condition::protocol_error);
            BOOST_TEST(!resp.diagnostics.empty());
            BOOST_TEST(!open);
            if (f.name == "UNKNOWN_TYPE for a type never sent")
                BOOST_TEST(resp.diagnostics.find("names type 42, which this connection never "
                                                 "sends") != std::string::npos,
                           resp.diagnostics);
            if (f.name == "UNKNOWN_TYPE for ABORT_REQUEST")
                BOOST_TEST(resp.diagnostics.find("UNKNOWN_TYPE for ABORT_REQUEST (type 2)") !=
                               std::string::npos,
                           resp.diagnostics);
            if (ec == fcgi::error::bad_response_head)  // the line to fix, not only the rule
                BOOST_TEST(resp.diagnostics.find("the head line \"this is not a header\"") !=
                               std::string::npos,
                           resp.diagnostics);
        }
    }
}

BOOST_AUTO_TEST_CASE(silence_with_request_timeout) {
    fake_responder fake({.silent = true});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.tcp_endpoint(), use_awaitable);
        auto req = fcgi::test::tagged_request("silent");
        req.timeout = 200ms;
        auto start = steady::now();
        auto [ec, resp] = co_await conn.async_request(req, as_tuple_awaitable);
        auto elapsed = ms_since(start);
        BOOST_TEST(ec == fcgi::error::request_timeout, ec.message());
        BOOST_TEST(elapsed >= 200);  // steady timers never fire early
        BOOST_TEST(elapsed < 2000);  // bounds a hang; not a performance assertion
        BOOST_TEST(names(resp.diagnostics, fake.tcp_endpoint()), resp.diagnostics);
        // Nothing ever came back: the diagnostics point at the listen backlog.
        BOOST_TEST(resp.diagnostics.find("not one byte has come back") != std::string::npos,
                   resp.diagnostics);
        BOOST_TEST(!conn.is_open());  // php-fpm ignores ABORT_REQUEST: closing is the abort
    });
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer >= 1; }, 5s));
    BOOST_TEST(fake.snapshot().requests.size() == 1u);

    // On a multiplexed connection (never php-fpm's) the backlog hint would mislead.
    asio::io_context mctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    fcgi::connection mconn(mctx.get_executor(), copts);
    connect_or_fail(mctx, mconn, fake.unix_endpoint());
    auto req = fcgi::test::tagged_request("silent");
    req.timeout = 200ms;
    auto [ec, resp] = request_on(mctx, mconn, req);
    BOOST_TEST(ec == fcgi::error::request_timeout, ec.message());
    BOOST_TEST(resp.diagnostics.find("not one byte has come back") == std::string::npos,
               resp.diagnostics);
}

// A request that fails after its script logged something keeps the log in its response: it is
// often the reason (a PHP warning before a hang). It was once dropped with the response.
BOOST_AUTO_TEST_CASE(failed_request_keeps_the_stderr_that_arrived) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::stdout_("Status: 200 OK\r\n\r\npartial"),
                                  act::stderr_("PHP Warning: stuck in a loop\n")};
    }});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);
        auto req = fcgi::test::tagged_request("stuck");
        req.timeout = 200ms;
        auto [ec, resp] = co_await conn.async_request(req, as_tuple_awaitable);
        BOOST_TEST(ec == fcgi::error::request_timeout, ec.message());
        BOOST_TEST(resp.stderr_text == "PHP Warning: stuck in a loop\n");
        BOOST_TEST(resp.body.empty());  // a partial body is not a response
    });
}

// The backlog hint is for connections that never heard back, not for a slow second request.
BOOST_AUTO_TEST_CASE(silence_after_an_answer_gets_no_backlog_hint) {
    std::atomic<int> seen{0};
    fake_responder fake({.script_for = [&](const seen_request& r) {
        return ++seen == 1 ? fcgi::test::echo_script(r) : fcgi::test::script{};
    }});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);
        auto [ec1, r1] =
            co_await conn.async_request(fcgi::test::tagged_request("first"), as_tuple_awaitable);
        BOOST_TEST(!ec1, ec1.message());
        auto req = fcgi::test::tagged_request("silent");
        req.timeout = 100ms;
        auto [ec2, r2] = co_await conn.async_request(req, as_tuple_awaitable);
        BOOST_TEST(ec2 == fcgi::error::request_timeout, ec2.message());
        BOOST_TEST(r2.diagnostics.find("(1 request completed earlier") != std::string::npos,
                   r2.diagnostics);
        BOOST_TEST(r2.diagnostics.find("not one byte") == std::string::npos, r2.diagnostics);
    });
}

BOOST_AUTO_TEST_CASE(connection_default_request_timeout) {
    fake_responder fake({.silent = true});
    fcgi::connection_options copts;
    copts.request_timeout = 150ms;
    auto start = steady::now();
    bool open = true;
    auto [ec, resp] =
        one_request(fake.unix_endpoint(), fcgi::test::tagged_request("silent"), copts, &open);
    BOOST_TEST(ec == fcgi::error::request_timeout, ec.message());
    BOOST_TEST(ms_since(start) < 2000);
    BOOST_TEST(!open);
}

BOOST_AUTO_TEST_CASE(delay_before_answering) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        s.insert(s.begin(), act::delay(100ms));
        return s;
    }});
    auto req = fcgi::test::tagged_request("late");
    req.timeout = 5s;
    auto start = steady::now();
    auto [ec, resp] = one_request(fake.tcp_endpoint(), req);
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(resp.body == fcgi::test::tagged_body("late"));
    BOOST_TEST(ms_since(start) >= 100);
}

BOOST_AUTO_TEST_CASE(bytes_after_end_request_close_the_connection) {
    // Garbage, and a well-formed record nobody asked for: either way the stream is out of step.
    for (std::string trailer :
         {std::string("junk"),
          fcgi::test::make_record(fcgi::protocol::record_type::stdout_, 1, "late")}) {
        fake_responder fake({.script_for = [trailer](const seen_request& r) {
            auto s = fcgi::test::echo_script(r);
            s.push_back(act::raw(trailer));  // same write as END_REQUEST
            return s;
        }});
        bool open = true;
        auto [ec, resp] =
            one_request(fake.tcp_endpoint(), fcgi::test::tagged_request("trail"), {}, &open);
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(resp.body == fcgi::test::tagged_body("trail"));
        BOOST_TEST(!open);
    }
}

BOOST_AUTO_TEST_CASE(oversized_stdout_is_response_too_large) {
    constexpr std::size_t cap = 64u << 20;
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::stdout_(std::string(fcgi::test::echo_head)),
                                  act::endless_stdout(cap)};
    }});
    fcgi::connection_options copts;
    copts.max_stdout_size = 64 * 1024;
    bool open = true;
    auto ep = fake.tcp_endpoint();
    auto [ec, resp] = one_request(ep, fcgi::test::tagged_request("big"), copts, &open);
    BOOST_TEST(ec == fcgi::error::response_too_large, ec.message());
    BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
    // Which stream, which option, which limit.
    BOOST_TEST(resp.diagnostics.find("STDOUT exceeded connection_options::max_stdout_size (65536 "
                                     "bytes; client_options::connection in a client)") !=
                   std::string::npos,
               resp.diagnostics);
    BOOST_TEST(!open);
    // The client's close is what stopped the endless output.
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer >= 1; }, 5s));
    BOOST_TEST(fake.snapshot().endless_bytes < cap);
}

BOOST_AUTO_TEST_CASE(response_head_that_never_ends) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\nX-Long: "),
                                  act::endless_stdout(64u << 20, 4096, 'a')};
    }});
    fcgi::connection_options copts;
    copts.max_head_size = 16 * 1024;
    bool open = true;
    auto [ec, resp] =
        one_request(fake.unix_endpoint(), fcgi::test::tagged_request("head"), copts, &open);
    BOOST_TEST(ec == fcgi::error::response_head_too_large, ec.message());
    BOOST_TEST(resp.diagnostics.find("max_head_size (16384 bytes;") != std::string::npos,
               resp.diagnostics);
    BOOST_TEST(!open);
}

BOOST_AUTO_TEST_CASE(stderr_is_kept_apart_from_the_body) {
    fake_responder fake({.script_for = [](const seen_request&) {
        return fcgi::test::script{act::stderr_("PHP message: one"),
                                  act::stdout_("Status: 404 Not Found\r\n\r\n"),
                                  act::stderr_("; PHP message: two"),
                                  act::stdout_("missing"),
                                  act::stdout_(""),
                                  act::stderr_(""),
                                  act::end(fcgi::protocol::protocol_status::request_complete, 3)};
    }});
    auto [ec, resp] = one_request(fake.tcp_endpoint(), fcgi::test::tagged_request("err"));
    BOOST_TEST(!ec, ec.message());
    BOOST_TEST(resp.status == 404);
    BOOST_TEST(resp.body == "missing");
    BOOST_TEST(resp.stderr_text == "PHP message: one; PHP message: two");
    BOOST_TEST(resp.app_status == 3u);
}

BOOST_AUTO_TEST_CASE(end_request_protocol_statuses) {
    using fcgi::protocol::protocol_status;
    fake_responder fake({.script_for = [](const seen_request& r) -> fcgi::test::script {
        auto id = r.param("X_ID").value_or("");
        if (id == "overloaded")
            return {act::end(protocol_status::overloaded)};
        if (id == "cant")
            return {act::end(protocol_status::cant_mpx_conn)};
        return fcgi::test::echo_script(r);  // UNKNOWN_ROLE for roles other than RESPONDER
    }});
    auto ep = fake.tcp_endpoint();
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(ep, use_awaitable);
        {
            auto [ec, resp] = co_await conn.async_request(fcgi::test::tagged_request("overloaded"),
                                                          as_tuple_awaitable);
            BOOST_TEST(ec == fcgi::server_error::overloaded, ec.message());
            BOOST_TEST(fcgi::is_retryable(ec));
            BOOST_TEST(names(resp.diagnostics, ep), resp.diagnostics);
            BOOST_TEST(resp.status == 0);  // not the 200 of a head-less success
        }
        {
            auto [ec, resp] =
                co_await conn.async_request(fcgi::test::tagged_request("cant"), as_tuple_awaitable);
            BOOST_TEST(ec == fcgi::server_error::cant_mpx_conn, ec.message());
            BOOST_TEST(resp.status == 0);
        }
        {
            auto req = fcgi::test::tagged_request("auth");
            req.role = fcgi::protocol::role::authorizer;
            auto [ec, resp] = co_await conn.async_request(req, as_tuple_awaitable);
            BOOST_TEST(ec == fcgi::server_error::unknown_role, ec.message());
        }
        // A clean END_REQUEST leaves the stream in step: the connection is still usable.
        BOOST_TEST(conn.is_open());
        auto resp = co_await conn.async_request(fcgi::test::tagged_request("after"), use_awaitable);
        BOOST_TEST(resp.body == fcgi::test::tagged_body("after"));
    });
    BOOST_TEST(fake.snapshot().connections_accepted == 1u);
}

BOOST_AUTO_TEST_CASE(cant_mpx_conn_from_a_non_multiplexing_server) {
    // libfcgi-like: requests sent together overlap on the server, which refuses all but one.
    fake_responder fake(fcgi::test::one_live_request_options());
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> connected;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);

    std::size_t done = 0, ok = 0, refused = 0;
    auto wave = [&](const std::string& prefix) {
        for (int i = 0; i < 4; ++i) {
            std::string id = prefix + std::to_string(i);
            conn.async_request(fcgi::test::tagged_request(id),
                               [&, id](std::error_code ec, fcgi::response r) {
                                   ++done;
                                   if (!ec && r.body == fcgi::test::tagged_body(id))
                                       ++ok;
                                   else if (ec == fcgi::server_error::cant_mpx_conn)
                                       ++refused;
                                   else
                                       BOOST_ERROR("request " << id << ": " << ec.message());
                               });
        }
    };
    wave("a");
    BOOST_REQUIRE(run_until(ctx, [&] { return done == 4; }));
    BOOST_TEST(ok >= 1u);
    BOOST_TEST(refused >= 1u);  // the server really refused to multiplex
    BOOST_TEST(ok + refused == 4u);
    BOOST_TEST(conn.is_open());
    BOOST_TEST(fake.snapshot().violations.empty());

    // After CANT_MPX_CONN the connection must stop multiplexing (connection_impl.hpp:
    // "a CANT_MPX_CONN answer drops a connection to 1"), so a second wave all succeeds.
    done = ok = refused = 0;
    wave("b");
    BOOST_REQUIRE(run_until(ctx, [&] { return done == 4; }));
    BOOST_TEST(ok == 4u, "second wave: " << ok << " ok, " << refused << " CANT_MPX_CONN");
}

// A connection asked for 65535 in flight takes fcgi::max_in_flight_limit: with 65535 slots, slot
// 0 had ID 1 alone and gave it to every request, so a late record for one (a duplicate
// END_REQUEST) completed the next.
BOOST_AUTO_TEST_CASE(the_largest_max_in_flight_still_rotates_ids) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 65535;
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.unix_endpoint());
    for (const char* id : {"first", "second"}) {
        auto [ec, resp] = request_on(ctx, conn, fcgi::test::tagged_request(id));
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(resp.body == fcgi::test::tagged_body(id));
    }
    auto seen = fake.snapshot().requests;
    BOOST_REQUIRE(seen.size() == 2u);
    BOOST_TEST(seen[0].id == 1u);
    BOOST_TEST(seen[1].id == 1u + fcgi::max_in_flight_limit);
}

BOOST_AUTO_TEST_CASE(multiplexing_1000_interleaved_requests) {
    fake_responder fake({.interleave = 8});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 8;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> connected;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);

    constexpr int n = 1000;
    int done = 0, ok = 0;
    std::vector<int> completion_order;
    for (int i = 0; i < n; ++i) {
        std::string id = std::to_string(i);
        conn.async_request(
            fcgi::test::tagged_request(id), [&, i, id](std::error_code ec, fcgi::response r) {
                ++done;
                completion_order.push_back(i);
                if (ec)
                    BOOST_ERROR("request " << i << ": " << ec.message() << " " << r.diagnostics);
                else if (r.body != fcgi::test::tagged_body(id))
                    BOOST_ERROR("request " << i << " got body " << r.body);
                else
                    ++ok;
            });
    }
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done == n; }, 60s),
                          done << " of " << n << " requests completed");
    BOOST_TEST(ok == n);
    BOOST_TEST(conn.is_open());
    int inversions = 0;
    for (std::size_t i = 1; i < completion_order.size(); ++i)
        inversions += completion_order[i] < completion_order[i - 1];
    BOOST_TEST(inversions > 0);  // answers really came out of order

    auto snap = fake.snapshot();
    BOOST_TEST(snap.connections_accepted == 1u);
    BOOST_TEST(snap.requests.size() == static_cast<std::size_t>(n));
    BOOST_TEST(snap.max_live <= 8u);
    BOOST_TEST(snap.max_live > 1u);
    BOOST_TEST(snap.violations.empty());
    // 8 slots of 125 requests each: a new ID per request, none used twice.
    std::set<std::uint16_t> ids;
    for (const auto& r : snap.requests)
        BOOST_TEST((r.id >= 1 && ids.insert(r.id).second), "ID " << r.id);
}

// A server that sends a request's STDOUT and END_REQUEST a second time, late, once the
// connection carries the next request. The IDs were reused at once (ID 1 for every request on a
// non-multiplexed connection), so the next request took the stale records for its response and
// succeeded with the previous one's body, and every later one was one response behind. Now each
// request has an ID of its own: the stale records meet no live request and the connection closes.
BOOST_AUTO_TEST_CASE(late_duplicate_response_never_answers_the_next_request) {
    const std::string stale = std::string(fcgi::test::echo_head) + "STALE";
    fake_responder fake({.script_for = [stale](const seen_request& r) {
        auto s = fcgi::test::echo_script(r);
        // Delays long enough that "second" is surely sent before the stale records come, and
        // surely still out then, on a loaded machine too.
        if (r.param("X_ID") == "first") {
            s.push_back(act::delay(300ms));
            s.push_back(act::stdout_(stale));
            s.push_back(act::end());
        } else {
            s.insert(s.begin(), act::delay(1s));  // still out when the stale records come
        }
        return s;
    }});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    connect_or_fail(ctx, conn, fake.tcp_endpoint());
    std::map<std::string, std::pair<std::error_code, fcgi::response>> out;
    for (std::string id : {"first", "second"})
        conn.async_request(fcgi::test::tagged_request(id),
                           [&out, id](std::error_code ec, fcgi::response r) {
                               out[id] = {ec, std::move(r)};
                           });
    BOOST_REQUIRE(run_until(ctx, [&] { return out.size() == 2; }));
    BOOST_TEST(!out["first"].first, out["first"].second.diagnostics);
    BOOST_TEST(out["first"].second.body == fcgi::test::tagged_body("first"));
    const auto& [ec, second] = out["second"];
    BOOST_TEST(second.body != "STALE");
    BOOST_TEST(ec == fcgi::error::unexpected_record, ec.message() << ": " << second.diagnostics);
    BOOST_TEST(
        second.diagnostics.find("for request 1, which is not in flight") != std::string::npos,
        second.diagnostics);
}

// Go's net/http/fcgi answers ABORT_REQUEST with END_REQUEST at once, and its handler later
// writes the request's output and a second END_REQUEST. The ID went, freed, to the next request,
// which then succeeded with the aborted request's body. Now the aborted ID is not reused and its
// late records are dropped: the next request gets its own answer, the connection stays open.
BOOST_AUTO_TEST_CASE(late_records_of_an_aborted_request_are_dropped) {
    // On a fresh connection with two slots, "aborted" gets ID 1 and "other" ID 2; "other" sends
    // records for ID 1 after the abort, as the aborted request's handler would.
    const std::string stale = std::string(fcgi::test::echo_head) + "id=aborted";
    fake_responder fake({.script_for = [stale](const seen_request& r) {
        if (r.param("X_ID") == "aborted")
            return fcgi::test::script{};  // never answers; END_REQUEST comes with the abort
        // "aborted"'s 50 ms deadline passes well before the late records (1 s), and "next" is
        // still out then, with room for a loaded machine's stalls.
        auto s = fcgi::test::echo_script(r);
        if (r.param("X_ID") == "other")
            s.insert(s.begin(),
                     {act::delay(1s), act::stdout_(stale).for_id(1), act::end().for_id(1)});
        else
            s.insert(s.begin(), act::delay(1500ms));  // "next": out when the late records come
        return s;
    }});
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor(), copts);
    connect_or_fail(ctx, conn, fake.tcp_endpoint());
    std::map<std::string, std::pair<std::error_code, fcgi::response>> out;
    for (std::string id : {"aborted", "other", "next"}) {
        auto req = fcgi::test::tagged_request(id);
        if (id == "aborted")
            req.timeout = 50ms;
        // "next" waits for a free slot: the one "aborted" frees when its abort is answered.
        conn.async_request(std::move(req), [&out, id](std::error_code ec, fcgi::response r) {
            out[id] = {ec, std::move(r)};
        });
    }
    BOOST_REQUIRE(run_until(ctx, [&] { return out.size() == 3; }));
    BOOST_TEST(out["aborted"].first == fcgi::error::request_timeout);
    for (std::string id : {"other", "next"}) {
        const auto& [ec, r] = out[id];
        BOOST_TEST(!ec, id << ": " << ec.message() << ": " << r.diagnostics);
        BOOST_TEST(r.body == fcgi::test::tagged_body(id), id);
    }
    BOOST_TEST(conn.is_open());
    auto snap = fake.snapshot();
    BOOST_REQUIRE(snap.requests.size() == 3u);
    BOOST_TEST(snap.requests[0].aborted);
    BOOST_TEST(snap.requests[2].id != 1u);  // "next" did not get the aborted request's ID
}

BOOST_AUTO_TEST_CASE(multiplexing_with_random_fragments) {
    fake_responder fake(
        {.split = fcgi::test::write_split::random, .random_max_fragment = 29, .interleave = 4});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    copts.read_buffer_size = 1024;  // records larger than the buffer arrive in pieces too
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor(), copts);
        co_await conn.async_connect(fake.tcp_endpoint(), use_awaitable);
        int done = 0, ok = 0;
        asio::steady_timer all_done(ctx, steady::time_point::max());
        for (int i = 0; i < 200; ++i) {
            std::string id = "m" + std::to_string(i);
            std::string body(static_cast<std::size_t>(i * 11), 'q');
            conn.async_request(fcgi::test::tagged_request(id, body),
                               [&, id, body](std::error_code ec, fcgi::response r) {
                                   ok += !ec && r.body == fcgi::test::tagged_body(id, body);
                                   if (++done == 200)
                                       all_done.cancel();
                               });
        }
        std::error_code ignored;
        co_await all_done.async_wait(asio::redirect_error(use_awaitable, ignored));
        BOOST_TEST(ok == 200);
        BOOST_TEST(conn.is_open());
    });
    BOOST_TEST(fake.snapshot().max_live > 1u);
    BOOST_TEST(fake.snapshot().violations.empty());
}

BOOST_AUTO_TEST_CASE(cancellation_signal_closes_a_non_multiplexed_connection) {
    asio::io_context ctx;
    asio::cancellation_signal sig;
    // The responder cancels from its own thread once the request arrived: no guessing of delays.
    fake_responder fake({.script_for = [&](const seen_request&) {
        asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
        return fcgi::test::script{};  // never answer
    }});
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected, result;
    std::string diagnostics;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    conn.async_request(
        fcgi::test::tagged_request("slow"),
        asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, fcgi::response r) {
            result = ec;
            diagnostics = r.diagnostics;
        }));
    BOOST_REQUIRE(run_until(ctx, [&] { return result.has_value(); }));
    BOOST_TEST(*result == asio::error::operation_aborted, result->message());
    BOOST_TEST(names(diagnostics, fake.tcp_endpoint()), diagnostics);
    BOOST_TEST(!conn.is_open());
    BOOST_TEST(fake.wait_for(
        [](const fake_snapshot& s) { return s.connections_closed_by_peer >= 1; }, 5s));
}

BOOST_AUTO_TEST_CASE(cancelling_a_queued_request_keeps_the_connection) {
    fake_responder fake;
    asio::io_context ctx;
    asio::cancellation_signal sig;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected, first, second;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    conn.async_request(fcgi::test::tagged_request("first"),
                       [&](std::error_code ec, fcgi::response) { first = ec; });
    conn.async_request(fcgi::test::tagged_request("second"),
                       asio::bind_cancellation_slot(
                           sig.slot(), [&](std::error_code ec, fcgi::response) { second = ec; }));
    sig.emit(asio::cancellation_type::terminal);  // "second" waits behind "first": never sent
    BOOST_REQUIRE(run_until(ctx, [&] { return first && second; }));
    BOOST_TEST(!*first, first->message());
    BOOST_TEST(*second == asio::error::operation_aborted, second->message());
    BOOST_TEST(conn.is_open());
    BOOST_TEST(fake.snapshot().requests.size() == 1u);
}

BOOST_AUTO_TEST_CASE(cancellation_with_multiplexing_sends_abort_request) {
    asio::io_context ctx;
    asio::cancellation_signal sig;
    fake_responder fake({.script_for = [&](const seen_request& r) {
        if (r.param("X_ID") != "slow")
            return fcgi::test::echo_script(r);
        asio::post(ctx, [&] { sig.emit(asio::cancellation_type::terminal); });
        return fcgi::test::script{};  // answered only by the END_REQUEST for ABORT_REQUEST
    }});
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> connected, slow;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));

    conn.async_request(fcgi::test::tagged_request("slow"),
                       asio::bind_cancellation_slot(
                           sig.slot(), [&](std::error_code ec, fcgi::response) { slow = ec; }));
    int done = 0, ok = 0;
    auto normal = [&](const std::string& id) {
        conn.async_request(
            fcgi::test::tagged_request(id), [&, id](std::error_code ec, fcgi::response r) {
                ++done;
                if (!ec && r.body == fcgi::test::tagged_body(id))
                    ++ok;
                else
                    BOOST_ERROR("request " << id << ": " << ec.message() << " " << r.body);
            });
    };
    for (auto id : {"a", "b", "c"})
        normal(id);
    BOOST_REQUIRE(run_until(ctx, [&] { return slow && done == 3; }));
    BOOST_TEST(*slow == asio::error::operation_aborted, slow->message());
    BOOST_TEST(ok == 3);
    BOOST_TEST(conn.is_open());

    // The responder got ABORT_REQUEST for the slow request's ID.
    auto slow_id = [](const fake_snapshot& s) -> std::optional<std::uint16_t> {
        for (const auto& r : s.requests)
            if (r.param("X_ID") == "slow")
                return r.id;
        return std::nullopt;
    };
    BOOST_TEST(fake.wait_for(
        [&](const fake_snapshot& s) {
            auto id = slow_id(s);
            for (const auto& a : s.aborts)
                if (id && a.second == *id)
                    return true;
            return false;
        },
        5s));

    // The connection goes on; IDs are reused only after their END_REQUEST.
    for (auto id : {"d", "e", "f", "g", "h"})
        normal(id);
    BOOST_REQUIRE(run_until(ctx, [&] { return done == 8; }));
    BOOST_TEST(ok == 8);
    BOOST_TEST(conn.is_open());
    auto snap = fake.snapshot();
    BOOST_TEST(snap.connections_accepted == 1u);
    BOOST_TEST(snap.aborts.size() == 1u);
    BOOST_TEST(snap.violations.empty());
}

BOOST_AUTO_TEST_CASE(cancellation_through_awaitable_operators) {
    using namespace asio::experimental::awaitable_operators;
    fake_responder fake({.script_for = special_for("slow", {})});
    auto ep = fake.tcp_endpoint();
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(ep, use_awaitable);

        // The request wins against a long timer.
        asio::steady_timer long_timer(ctx, 10s);
        auto won =
            co_await (conn.async_request(fcgi::test::tagged_request("fast"), use_awaitable) ||
                      long_timer.async_wait(use_awaitable));
        BOOST_REQUIRE(won.index() == 0u);
        BOOST_TEST(std::get<0>(won).body == fcgi::test::tagged_body("fast"));
        BOOST_TEST(conn.is_open());

        // The timer wins against a request never answered: the request is cancelled.
        asio::steady_timer short_timer(ctx, 200ms);
        auto start = steady::now();
        auto lost =
            co_await (conn.async_request(fcgi::test::tagged_request("slow"), use_awaitable) ||
                      short_timer.async_wait(use_awaitable));
        BOOST_TEST(lost.index() == 1u);
        BOOST_TEST(ms_since(start) < 2000);
        // It had been written and php-fpm-style servers ignore ABORT_REQUEST: closed.
        BOOST_TEST(!conn.is_open());
    });
}

BOOST_AUTO_TEST_CASE(token_use_awaitable_and_as_tuple) {
    fake_responder fake({.script_for = special_for(
                             "bad", {act::end(fcgi::protocol::protocol_status::overloaded)})});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        auto [cec] = co_await conn.async_connect(fake.tcp_endpoint(), as_tuple_awaitable);
        BOOST_REQUIRE(!cec);
        auto [ec, resp] =
            co_await conn.async_request(fcgi::test::tagged_request("tuple"), as_tuple_awaitable);
        BOOST_TEST(!ec);
        BOOST_TEST(resp.body == fcgi::test::tagged_body("tuple"));
        auto [ec2, resp2] =
            co_await conn.async_request(fcgi::test::tagged_request("bad"), as_tuple_awaitable);
        BOOST_TEST(ec2 == fcgi::server_error::overloaded);
        // use_awaitable turns the error into an exception carrying the code.
        bool thrown = false;
        try {
            co_await conn.async_request(fcgi::test::tagged_request("bad"), use_awaitable);
        } catch (const std::system_error& e) {
            thrown = e.code() == fcgi::server_error::overloaded;
        }
        BOOST_TEST(thrown);
    });
}

BOOST_AUTO_TEST_CASE(token_use_future) {
    fake_responder fake({.script_for = special_for(
                             "bad", {act::end(fcgi::protocol::protocol_status::overloaded)})});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    io_thread io(ctx);
    // The connection is not thread-safe: initiate on its executor, wait here on the futures.
    auto on_ctx = [&](auto fn) {
        auto outer = asio::post(ctx, asio::use_future(std::move(fn)));
        return get_within(outer);
    };
    auto connected =
        on_ctx([&] { return conn.async_connect(fake.tcp_endpoint(), asio::use_future); });
    get_within(connected);
    auto fut = on_ctx(
        [&] { return conn.async_request(fcgi::test::tagged_request("future"), asio::use_future); });
    auto resp = get_within(fut);
    BOOST_TEST(resp.body == fcgi::test::tagged_body("future"));
    auto bad = on_ctx(
        [&] { return conn.async_request(fcgi::test::tagged_request("bad"), asio::use_future); });
    BOOST_REQUIRE(bad.wait_for(10s) == std::future_status::ready);
    BOOST_CHECK_EXCEPTION(bad.get(), std::system_error, [](const std::system_error& e) {
        return e.code() == fcgi::server_error::overloaded;
    });
    on_ctx([&] { conn.close(); });
}

BOOST_AUTO_TEST_CASE(token_plain_callback) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_TEST(!connected.has_value());  // never completes inside the initiating call
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);

    std::optional<fcgi::response> got;
    conn.async_request(fcgi::test::tagged_request("cb"), [&](std::error_code ec, fcgi::response r) {
        BOOST_TEST(!ec);
        got = std::move(r);
    });
    BOOST_TEST(!got.has_value());
    BOOST_REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    BOOST_TEST(got->body == fcgi::test::tagged_body("cb"));

    // Errors known at once are not delivered inline either.
    conn.close();
    std::optional<std::error_code> closed_ec;
    conn.async_request(fcgi::test::tagged_request("late"),
                       [&](std::error_code ec, fcgi::response) { closed_ec = ec; });
    BOOST_TEST(!closed_ec.has_value());
    BOOST_REQUIRE(run_until(ctx, [&] { return closed_ec.has_value(); }));
    BOOST_TEST(*closed_ec == fcgi::error::not_connected);
}

BOOST_AUTO_TEST_CASE(token_deferred) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected;
    auto connect_op = conn.async_connect(fake.tcp_endpoint(), asio::experimental::deferred);
    std::move(connect_op)([&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);

    auto op =
        conn.async_request(fcgi::test::tagged_request("deferred"), asio::experimental::deferred);
    BOOST_TEST(conn.outstanding() == 0u);  // nothing starts until the operation is invoked
    std::optional<fcgi::response> got;
    std::move(op)([&](std::error_code ec, fcgi::response r) {
        BOOST_TEST(!ec);
        got = std::move(r);
    });
    BOOST_REQUIRE(run_until(ctx, [&] { return got.has_value(); }));
    BOOST_TEST(got->body == fcgi::test::tagged_body("deferred"));
}

BOOST_AUTO_TEST_CASE(get_values_reports_configured_limits) {
    fake_responder fake({.mpxs_conns = "1", .max_reqs = "50", .max_conns = std::nullopt});
    asio::io_context ctx;
    run_coro(ctx, [&]() -> awaitable<void> {
        auto [ec, result] = co_await fcgi::async_get_values(ctx.get_executor(), fake.tcp_endpoint(),
                                                            {}, as_tuple_awaitable);
        BOOST_TEST(!ec, ec.message());
        BOOST_TEST(result.mpxs_conns.value_or(false));
        BOOST_TEST(result.max_reqs.value_or(0) == 50u);
        BOOST_TEST(!result.max_conns.has_value());  // omitted, as servers do for unknown names
    });
    BOOST_TEST(fake.snapshot().get_values == 1u);
}

// A failed request that may be sent again goes back to whoever asked for it
// (request_op::hand_back; the pool retries from it instead of keeping a copy of every request),
// whole; one that succeeded or timed out does not.
BOOST_AUTO_TEST_CASE(failed_request_is_handed_back) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        if (r.param("X_ID") == "dies")
            return fcgi::test::script{act::close()};
        if (r.param("X_ID") == "slow")
            return fcgi::test::script{act::delay(30s)};  // answers after the test's deadline
        return fcgi::test::echo_script(r);
    }});
    asio::io_context ctx;
    struct attempt {
        std::optional<fcgi::request> back;
        std::optional<std::error_code> ec;
    };
    auto send = [&](fcgi::detail::connection_impl& conn, const std::string& id, attempt& a,
                    std::chrono::milliseconds timeout = {}) {
        auto req = fcgi::test::tagged_request(id, "body of " + id);
        req.timeout = timeout;
        auto op = std::make_unique<fcgi::detail::request_op>(
            std::move(req),
            fcgi::detail::request_handler([&a](std::error_code ec, fcgi::response&&) { a.ec = ec; },
                                          ctx.get_executor()),
            conn.next_serial());
        op->hand_back = &a.back;
        conn.start_request(std::move(op));
        BOOST_REQUIRE(run_until(ctx, [&] { return a.ec.has_value(); }));
    };
    auto check_back = [](const attempt& a, const std::string& id) {
        BOOST_REQUIRE(a.back.has_value());
        auto expected = fcgi::test::tagged_request(id, "body of " + id);
        BOOST_TEST(a.back->script == expected.script);
        BOOST_TEST(a.back->body == expected.body);
        BOOST_TEST((a.back->params == expected.params));
    };

    // Never connected: not_connected, and the request comes back.
    auto never = std::make_shared<fcgi::detail::connection_impl>(ctx.get_executor(),
                                                                 fcgi::connection_options{});
    attempt unsent;
    send(*never, "unsent", unsent);
    BOOST_TEST(*unsent.ec == fcgi::error::not_connected, unsent.ec->message());
    check_back(unsent, "unsent");

    // A connection to the fake, open.
    auto open_connection = [&] {
        auto c = std::make_shared<fcgi::detail::connection_impl>(ctx.get_executor(),
                                                                 fcgi::connection_options{});
        std::optional<std::error_code> connected;
        c->start_connect(fake.unix_endpoint(),
                         fcgi::detail::error_handler([&](std::error_code ec) { connected = ec; },
                                                     ctx.get_executor()));
        BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
        BOOST_REQUIRE(!*connected);
        return c;
    };
    auto conn = open_connection();
    attempt ok;
    send(*conn, "ok", ok);
    BOOST_TEST(!*ok.ec, ok.ec->message());
    BOOST_TEST(!ok.back.has_value());  // nothing to retry: the connection keeps it

    // A timeout is not retried: nothing comes back (a large body would be copied for nothing).
    attempt late;
    send(*conn, "slow", late, 100ms);
    BOOST_TEST(*late.ec == fcgi::error::request_timeout, late.ec->message());
    BOOST_TEST(!late.back.has_value());

    // Written, then the server closes: connection_lost, and the request comes back whole.
    auto conn2 = open_connection();
    attempt lost;
    send(*conn2, "dies", lost);
    BOOST_TEST(*lost.ec == fcgi::error::connection_lost, lost.ec->message());
    check_back(lost, "dies");
    BOOST_TEST(fake.snapshot().requests.size() == 3u);
}

// The list of freed slots stays as long as the slots, however many requests a kept-alive
// connection carries (it grew by one entry per request: 2 bytes a request, without bound).
BOOST_AUTO_TEST_CASE(free_slots_do_not_pile_up_on_a_kept_alive_connection) {
    fake_responder fake({.interleave = 4});
    asio::io_context ctx;
    for (std::uint16_t in_flight : {1, 8}) {
        fcgi::connection_options copts;
        copts.max_in_flight = in_flight;
        auto conn = std::make_shared<fcgi::detail::connection_impl>(ctx.get_executor(), copts);
        std::optional<std::error_code> connected;
        conn->start_connect(fake.unix_endpoint(),
                            fcgi::detail::error_handler([&](std::error_code ec) { connected = ec; },
                                                        ctx.get_executor()));
        BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
        BOOST_REQUIRE(!*connected);
        int done = 0, ok = 0;
        auto start = [&](int i) {
            conn->start_request(std::make_unique<fcgi::detail::request_op>(
                fcgi::test::tagged_request(std::to_string(i)),
                fcgi::detail::request_handler(
                    [&](std::error_code ec, fcgi::response&&) {
                        ++done;
                        ok += !ec;
                    },
                    ctx.get_executor()),
                conn->next_serial()));
        };
        constexpr int rounds = 50;
        for (int r = 0; r < rounds; ++r) {
            // In_flight requests at once, then the next batch once they completed.
            for (int i = 0; i < in_flight; ++i)
                start(r * in_flight + i);
            BOOST_REQUIRE(run_until(ctx, [&] { return done == (r + 1) * in_flight; }));
            BOOST_TEST(conn->free_list_size() <= std::size_t(in_flight),
                       "after " << done << " requests: " << conn->free_list_size());
        }
        BOOST_TEST(ok == rounds * in_flight);
        conn->close(asio::error::operation_aborted);
    }
}

BOOST_AUTO_TEST_CASE(prepared_request_sends_what_the_request_sends) {
    fake_responder fake({.interleave = 4});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 4;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> connected;
    conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    BOOST_REQUIRE(!*connected);

    // The plain request first, then the same request prepared, 20 times over 4 IDs; the
    // prepared request is dropped at once, so only the sends in flight keep its state alive.
    std::optional<std::pair<std::error_code, fcgi::response>> plain;
    conn.async_request(fcgi::test::tagged_request("p", "a body"),
                       [&](std::error_code ec, fcgi::response r) { plain.emplace(ec, r); });
    BOOST_REQUIRE(run_until(ctx, [&] { return plain.has_value(); }));
    BOOST_REQUIRE(!plain->first);
    constexpr int n = 20;
    int done = 0, ok = 0;
    {
        fcgi::prepared_request prepared(fcgi::test::tagged_request("p", "a body"));
        for (int i = 0; i < n; ++i)
            conn.async_request(prepared, [&](std::error_code ec, fcgi::response r) {
                ++done;
                if (ec)
                    BOOST_ERROR(ec.message() << " " << r.diagnostics);
                else if (r.body == plain->second.body && r.status == plain->second.status)
                    ++ok;
            });
    }
    BOOST_REQUIRE(run_until(ctx, [&] { return done == n; }));
    BOOST_TEST(ok == n);

    auto snap = fake.snapshot();
    BOOST_REQUIRE(snap.requests.size() == std::size_t(n + 1));
    BOOST_TEST(snap.max_live > 1u);  // several IDs carried the same encoded params at once
    const auto& first = snap.requests.front();
    for (const auto& r : snap.requests) {
        BOOST_TEST((r.params == first.params));  // every pair, in order
        BOOST_TEST(r.stdin_data == "a body");
        BOOST_TEST(r.complete);
        BOOST_TEST((r.flags == fcgi::protocol::begin_flags::keep_conn));
    }
    BOOST_TEST(snap.violations.empty());
}

BOOST_AUTO_TEST_CASE(empty_prepared_request_is_invalid_and_sends_nothing) {
    fake_responder fake;
    asio::io_context ctx;
    std::pair<std::error_code, fcgi::response> empty, after;
    run_coro(ctx, [&]() -> awaitable<void> {
        fcgi::connection conn(ctx.get_executor());
        co_await conn.async_connect(fake.unix_endpoint(), use_awaitable);
        auto [ec, r] = co_await conn.async_request(fcgi::prepared_request(), as_tuple_awaitable);
        empty = {ec, std::move(r)};
        auto [ec2, r2] = co_await conn.async_request(
            fcgi::prepared_request(fcgi::test::tagged_request("next")), as_tuple_awaitable);
        after = {ec2, std::move(r2)};
    });
    BOOST_TEST(empty.first == fcgi::error::invalid_request);
    BOOST_TEST(empty.second.diagnostics.find("prepared request is empty") != std::string::npos,
               empty.second.diagnostics);
    BOOST_TEST(!after.first, after.first.message());  // the connection goes on
    BOOST_TEST(after.second.body == fcgi::test::tagged_body("next"));
    BOOST_TEST(fake.snapshot().requests.size() == 1u);
}

// A streamed response whose sink has taken everything before END_REQUEST arrives completes
// inside the END_REQUEST handling; the request queued behind it takes the freed slot there and
// must not be released with it (its handler was dropped unrun and its answer was read as a
// record for a request not in flight).
BOOST_AUTO_TEST_CASE(request_queued_behind_a_drained_stream_completes) {
    fake_responder fake({.script_for = special_for(
                             "streamed", {act::stdout_(std::string(fcgi::test::echo_head) + "abc"),
                                          act::delay(100ms), act::end()})});
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected, first, second;
    std::string sunk, second_body;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    auto streamed = fcgi::test::tagged_request("streamed");
    streamed.stdout_sink =
        fcgi::body_sink::consumer([&](std::string_view chunk, fcgi::sink_write_handler done) {
            sunk.append(chunk);
            done({});
        });
    conn.async_request(std::move(streamed),
                       [&](std::error_code ec, fcgi::response) { first = ec; });
    conn.async_request(fcgi::test::tagged_request("second"),
                       [&](std::error_code ec, fcgi::response r) {
                           second = ec;
                           second_body = r.body;
                       });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return first && second; }, 5s));
    BOOST_TEST(!*first, first->message());
    BOOST_TEST(sunk == "abc");
    BOOST_TEST(!*second, second->message());
    BOOST_TEST(second_body == fcgi::test::tagged_body("second"));
    BOOST_TEST(conn.is_open());
    BOOST_TEST(conn.outstanding() == 0u);
}

// Asio lets a handler's exception out of run() and run() be called again. A completion that
// throws must leave the connection's own bookkeeping intact: later completions run once each
// (a consumed handler was kept and dispatched again, a null dereference).
BOOST_AUTO_TEST_CASE(a_completion_handler_that_throws_leaves_the_connection_usable) {
    fake_responder fake;
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connected;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    conn.async_request(fcgi::test::tagged_request("throws"), [](std::error_code, fcgi::response) {
        throw std::runtime_error("handler failed");
    });
    BOOST_CHECK_THROW(run_until(
                          ctx, [] { return false; }, 5s),
                      std::runtime_error);
    for (int i = 0; i < 3; ++i) {
        std::string id = "after-" + std::to_string(i);
        int calls = 0;
        std::string body;
        conn.async_request(fcgi::test::tagged_request(id),
                           [&](std::error_code ec, fcgi::response r) {
                               ++calls;
                               body = ec ? ec.message() : r.body;
                           });
        BOOST_REQUIRE(run_until(
            ctx, [&] { return calls > 0; }, 5s));
        BOOST_TEST(calls == 1);
        BOOST_TEST(body == fcgi::test::tagged_body(id));
    }
    BOOST_TEST(conn.is_open());
}

// CANT_MPX_CONN for a request whose body is still being produced: a server that refuses by ID
// tells records apart by ID, so the rest of that body cannot be mistaken for the live request's.
// The live request must get its answer, not connection_lost ("server closed the connection").
BOOST_AUTO_TEST_CASE(cant_mpx_conn_while_a_body_is_unsent_keeps_the_live_request) {
    fake_responder fake(fcgi::test::one_live_request_options());
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    fcgi::connection conn(ctx.get_executor(), copts);
    std::optional<std::error_code> connected, live, refused;
    std::string live_body;
    conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
    conn.async_request(fcgi::test::tagged_request("live"),
                       [&](std::error_code ec, fcgi::response r) {
                           live = ec;
                           live_body = ec ? r.diagnostics : r.body;
                       });
    // The second request's source holds its first chunk: its body is unsent when refused.
    std::vector<fcgi::source_read_handler> held;
    auto streamed = fcgi::test::tagged_request("refused");
    streamed.stdin_source =
        fcgi::body_source::producer(10, [&](asio::mutable_buffer, fcgi::source_read_handler done) {
            held.push_back(std::move(done));
        });
    conn.async_request(std::move(streamed),
                       [&](std::error_code ec, fcgi::response) { refused = ec; });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return live && refused; }, 5s));
    BOOST_TEST(*refused == fcgi::server_error::cant_mpx_conn, refused->message());
    BOOST_TEST(!*live, live->message() << ": " << live_body);
    BOOST_TEST(live_body == fcgi::test::tagged_body("live"));
    for (auto& h : held)
        h(std::make_error_code(std::errc::operation_canceled), 0);
    held.clear();
    BOOST_TEST(conn.is_open());
    BOOST_TEST(fake.snapshot().violations.empty());
}

// After CANT_MPX_CONN the connection takes one request at a time, but the server still has the
// requests it took, told apart by ID. A timeout or a partial cancellation of one of them sends
// ABORT_REQUEST; it closed the connection, failing the other with connection_lost.
BOOST_AUTO_TEST_CASE(ending_one_request_after_cant_mpx_conn_keeps_the_others) {
    std::atomic<bool> release{false};
    fake_responder fake({.script_for = [&](const seen_request& r) -> fcgi::test::script {
                             auto id = r.param("X_ID").value_or("");
                             if (id == "slow") {
                                 auto s = fcgi::test::echo_script(r);
                                 s.insert(s.begin(),
                                          act::wait_until([&] { return release.load(); }));
                                 return s;
                             }
                             if (id == "stuck")
                                 return {};  // answers only ABORT_REQUEST
                             return fcgi::test::echo_script(r);
                         },
                         .max_live_per_connection = 2});
    for (bool by_timeout : {true, false}) {
        BOOST_TEST_CONTEXT((by_timeout ? "timeout" : "partial cancellation")) {
            release = false;
            asio::io_context ctx;
            fcgi::connection_options copts;
            copts.max_in_flight = 4;
            fcgi::connection conn(ctx.get_executor(), copts);
            connect_or_fail(ctx, conn, fake.unix_endpoint());

            std::optional<std::error_code> slow, stuck;
            std::string slow_body;
            conn.async_request(fcgi::test::tagged_request("slow"),
                               [&](std::error_code ec, fcgi::response r) {
                                   slow = ec;
                                   slow_body = ec ? r.diagnostics : r.body;
                               });
            auto stuck_req = fcgi::test::tagged_request("stuck");
            if (by_timeout)
                stuck_req.timeout = 300ms;
            asio::cancellation_signal cancel;
            auto on_stuck = [&](std::error_code ec, fcgi::response) {
                stuck = ec;
                release = true;
            };
            conn.async_request(std::move(stuck_req),
                               asio::bind_cancellation_slot(cancel.slot(), on_stuck));
            // Two more: the server refuses them, and the connection stops multiplexing.
            std::size_t refused = 0;
            for (const char* id : {"r1", "r2"})
                conn.async_request(
                    fcgi::test::tagged_request(id), [&](std::error_code ec, fcgi::response) {
                        BOOST_TEST(ec == fcgi::server_error::cant_mpx_conn, ec.message());
                        ++refused;
                    });
            BOOST_REQUIRE(run_until(ctx, [&] { return refused == 2u; }));
            if (!by_timeout)
                cancel.emit(asio::cancellation_type::partial);
            BOOST_REQUIRE(run_until(
                ctx, [&] { return slow && stuck; }, 5s));
            BOOST_TEST(*stuck == (by_timeout ? std::error_code(fcgi::error::request_timeout)
                                             : std::error_code(asio::error::operation_aborted)),
                       stuck->message());
            BOOST_TEST(!*slow, slow->message() << ": " << slow_body);
            BOOST_TEST(slow_body == fcgi::test::tagged_body("slow"));
            BOOST_TEST(conn.is_open());
            // And the connection goes on, one request at a time.
            auto [ec, resp] = request_on(ctx, conn, fcgi::test::tagged_request("after"));
            BOOST_TEST(!ec, ec.message());
            BOOST_TEST(resp.body == fcgi::test::tagged_body("after"));
        }
    }
    auto seen = fake.snapshot();
    BOOST_TEST(seen.aborts.size() == 2u);
    BOOST_TEST(seen.violations.empty());
}

// A request cancelled after END_REQUEST while its sink still holds a chunk frees its slot only
// when the sink lets go. The pool learns of free slots through the event callback alone, so it
// must be told then too (it was not: a pool's waiters sat until something else happened).
BOOST_AUTO_TEST_CASE(slot_freed_by_a_late_sink_is_announced) {
    fake_responder fake(
        {.script_for = special_for(
             "streamed", {act::stdout_(std::string(fcgi::test::echo_head) + "abc"), act::end()})});
    asio::io_context ctx;
    auto conn = connected_impl(ctx, fake.tcp_endpoint());
    bool announced_free = false;
    conn->set_event_callback([&] { announced_free = announced_free || conn->has_free_slot(); });
    std::optional<std::error_code> result;
    std::vector<fcgi::sink_write_handler> held;
    auto req = fcgi::test::tagged_request("streamed");
    req.stdout_sink = fcgi::body_sink::consumer(
        [&](std::string_view, fcgi::sink_write_handler done) { held.push_back(std::move(done)); });
    auto serial = start_op(ctx, *conn, std::move(req), &result);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return held.size() == 1u && conn->stats().requests_completed == 1u; }, 5s));
    conn->cancel(serial);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return result.has_value(); }, 5s));
    BOOST_TEST(*result == asio::error::operation_aborted, result->message());
    BOOST_TEST(conn->is_idle());
    BOOST_TEST(!conn->has_free_slot());  // the sink still views the op's buffer
    announced_free = false;
    held.front()({});
    held.clear();
    BOOST_REQUIRE(run_until(
        ctx, [&] { return conn->has_free_slot(); }, 5s));
    BOOST_TEST(announced_free);
    conn->close(asio::error::operation_aborted);
}

// The same for a multiplexed request aborted while its source is reading: the server's
// END_REQUEST frees its ID, the source's return frees its buffer, and only then the slot.
BOOST_AUTO_TEST_CASE(slot_freed_by_a_late_source_is_announced) {
    fake_responder fake({.script_for = special_for("never", {})});
    asio::io_context ctx;
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    auto conn = connected_impl(ctx, fake.tcp_endpoint(), copts);
    bool announced_free = false;
    conn->set_event_callback([&] { announced_free = announced_free || conn->has_free_slot(); });
    std::optional<std::error_code> result;
    start_op(ctx, *conn, fcgi::test::tagged_request("never"), nullptr);  // keeps the other ID taken
    std::vector<fcgi::source_read_handler> held;
    auto req = fcgi::test::tagged_request("upload");
    req.stdin_source =
        fcgi::body_source::producer(10, [&](asio::mutable_buffer, fcgi::source_read_handler done) {
            held.push_back(std::move(done));
        });
    auto serial = start_op(ctx, *conn, std::move(req), &result);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return held.size() == 1u; }, 5s));
    conn->cancel(serial);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return result.has_value(); }, 5s));
    BOOST_TEST(*result == asio::error::operation_aborted, result->message());
    // The server ends the aborted request: its ID is free, its buffer still lent out.
    BOOST_REQUIRE(run_until(
        ctx, [&] { return conn->stats().requests_completed == 1u; }, 5s));
    BOOST_TEST(!conn->has_free_slot());
    announced_free = false;
    held.front()({}, 0);
    held.clear();
    BOOST_REQUIRE(run_until(
        ctx, [&] { return conn->has_free_slot(); }, 5s));
    BOOST_TEST(announced_free);
    conn->close(asio::error::operation_aborted);
}

// A sink's on_head runs while the connection is reading; closing the connection from it (the
// head says the body is not wanted) must not leave the read loop using the freed request. The
// head comes with STDOUT, or with END_REQUEST when the output has no blank line; on_head reports
// success or an error after closing.
BOOST_AUTO_TEST_CASE(closing_the_connection_from_a_sinks_on_head) {
    fake_responder fake({.script_for = [](const seen_request& r) {
        std::string out = r.param("X_ID") == "with-body"
                              ? std::string(fcgi::test::echo_head) + "abc"
                              : "Content-Type: text/plain\r\n";
        return fcgi::test::script{act::stdout_(out), act::end()};
    }});
    for (auto [id, fail] : {std::pair<std::string, bool>{"with-body", false},
                            {"with-body", true},
                            {"head-only", false},
                            {"head-only", true}}) {
        asio::io_context ctx;
        fcgi::connection conn(ctx.get_executor());
        std::optional<std::error_code> connected, result;
        conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
        BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
        auto req = fcgi::test::tagged_request(id);
        std::string sunk;
        int heads = 0;
        req.stdout_sink = fcgi::body_sink::consumer(
            [&](std::string_view chunk, fcgi::sink_write_handler done) {
                sunk.append(chunk);
                done({});
            },
            [&](const fcgi::response&) {
                ++heads;
                conn.close();
                return fail ? std::make_error_code(std::errc::invalid_argument) : std::error_code();
            });
        conn.async_request(std::move(req),
                           [&](std::error_code ec, fcgi::response) { result = ec; });
        BOOST_REQUIRE(run_until(
            ctx, [&] { return result.has_value(); }, 5s));
        BOOST_TEST(heads == 1, id);
        BOOST_TEST(*result == asio::error::operation_aborted, id << ": " << result->message());
        BOOST_TEST(sunk.empty(), id);
        BOOST_TEST(!conn.is_open(), id);
    }
}

// The same from a sink's finish(), which runs once the sink has the whole body: either when
// END_REQUEST arrives after the last chunk was taken, or when the last chunk is taken after
// END_REQUEST (the sink was still busy). The request is completed by the close, once, and
// nothing freed is touched (run under ASan).
BOOST_AUTO_TEST_CASE(closing_the_connection_from_a_sinks_finish) {
    struct closing_sink : fcgi::body_sink::implementation {
        fcgi::connection* conn = nullptr;
        bool post_done = false;
        int finishes = 0;
        std::string sunk;
        std::error_code start(std::string&) override { return {}; }
        void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                         fcgi::sink_write_handler done) override {
            sunk.append(chunk);
            if (post_done)
                asio::post(ex, [done = std::move(done)]() mutable { done({}); });
            else
                done({});
        }
        std::error_code finish(std::string&) override {
            ++finishes;
            conn->close();
            return {};
        }
    };
    // "late-end": END_REQUEST in a read of its own, after the sink took the body.
    fake_responder fake({.script_for = [](const seen_request& r) {
        std::string out = std::string(fcgi::test::echo_head) + "abc";
        if (r.param("X_ID") == "late-end")
            return fcgi::test::script{act::stdout_(out), act::delay(50ms), act::end()};
        return fcgi::test::script{act::stdout_(out), act::end()};
    }});
    for (auto [id, post_done] :
         {std::pair<std::string, bool>{"late-end", false}, {"busy-sink", true}}) {
        asio::io_context ctx;
        fcgi::connection conn(ctx.get_executor());
        std::optional<std::error_code> connected, result;
        conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) { connected = ec; });
        BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
        auto sink = std::make_shared<closing_sink>();
        sink->conn = &conn;
        sink->post_done = post_done;
        auto req = fcgi::test::tagged_request(id);
        req.stdout_sink = fcgi::body_sink(sink);
        conn.async_request(std::move(req),
                           [&](std::error_code ec, fcgi::response) { result = ec; });
        BOOST_REQUIRE(run_until(
            ctx, [&] { return result.has_value(); }, 5s));
        ctx.restart();
        ctx.poll();  // whatever the close left queued runs too (under ASan)
        BOOST_TEST(sink->finishes == 1, id);
        BOOST_TEST(sink->sunk == "abc", id);
        BOOST_TEST(*result == asio::error::operation_aborted, id << ": " << result->message());
        BOOST_TEST(!conn.is_open(), id);
        BOOST_TEST(conn.outstanding() == 0u, id);
    }
}

// sink_buffer_size 0 ("buffer nothing for a busy sink") must not stop reading for good: with it
// every streamed request counted as a full buffer, even an empty one, and never completed.
BOOST_AUTO_TEST_CASE(zero_sink_buffer_size_still_streams) {
    // END_REQUEST in a read of its own, after the sink took the body.
    fake_responder fake({.script_for = special_for(
                             "zero", {act::stdout_(std::string(fcgi::test::echo_head) + "abc"),
                                      act::delay(50ms), act::end()})});
    fcgi::connection_options copts;
    copts.sink_buffer_size = 0;
    copts.request_timeout = 5s;
    auto req = fcgi::test::tagged_request("zero");
    std::string sunk;
    req.stdout_sink =
        fcgi::body_sink::consumer([&](std::string_view chunk, fcgi::sink_write_handler done) {
            sunk.append(chunk);
            done({});
        });
    bool open = false;
    auto [ec, resp] = one_request(fake.tcp_endpoint(), std::move(req), copts, &open);
    BOOST_TEST(!ec, ec.message() << ": " << resp.diagnostics);
    BOOST_TEST(sunk == "abc");
    BOOST_TEST(open);
}

// On a multiplexed connection, an upload aborted while its next STDIN chunk waits behind another
// request's write must not send that chunk after ABORT_REQUEST: the server has forgotten the
// request by then. A raw server that reads only when the test lets it keeps the write pending.
BOOST_AUTO_TEST_CASE(aborted_upload_sends_no_stdin_after_abort_request) {
    namespace local = asio::local;
    namespace proto = fcgi::protocol;
    fcgi::test::temp_socket_path socket_path;
    const std::string path = socket_path.path;
    asio::io_context ctx;
    local::stream_protocol::acceptor acceptor(ctx, local::stream_protocol::endpoint(path));
    local::stream_protocol::socket server(ctx);
    acceptor.async_accept(server, [](std::error_code ec) { BOOST_TEST(!ec, ec.message()); });
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    auto conn = connected_impl(ctx, fcgi::endpoint::unix_socket(path), copts);
    auto settle = [&] {  // runs what is ready, nothing more
        ctx.restart();
        ctx.poll();
    };

    // "up": a streamed body whose chunks come when the test says.
    fcgi::source_read_handler give_chunk;
    asio::mutable_buffer chunk{};
    auto up = fcgi::test::tagged_request("up");
    up.stdin_source = fcgi::body_source::producer(
        1000, [&](asio::mutable_buffer buf, fcgi::source_read_handler done) {
            chunk = buf;
            give_chunk = std::move(done);
        });
    auto up_serial = start_op(ctx, *conn, std::move(up), nullptr);
    BOOST_REQUIRE(run_until(ctx, [&] { return bool(give_chunk); }));  // its head is out
    // "big": far more than the socket buffers hold, so its write stays pending.
    start_op(ctx, *conn, fcgi::test::tagged_request("big", std::string(8u << 20, 'x')), nullptr);
    settle();
    // The next chunk of "up" arrives behind it, then "up" is cancelled.
    BOOST_REQUIRE(chunk.size() >= 100u);
    std::memset(chunk.data(), 'y', 100);
    std::exchange(give_chunk, nullptr)(std::error_code(), 100);
    settle();
    conn->cancel(up_serial);
    settle();

    // Now the server reads everything, records by type and request ID in order.
    std::vector<std::pair<proto::record_type, std::uint16_t>> records;
    proto::record_decoder decoder;
    std::array<char, 65536> buf;
    bool eof = false;
    std::function<void()> read_more = [&] {
        server.async_read_some(asio::buffer(buf), [&](std::error_code ec, std::size_t n) {
            std::string_view in(buf.data(), n);
            while (!in.empty()) {
                auto r = decoder.feed(in);
                BOOST_REQUIRE(!r.ec);
                in.remove_prefix(r.consumed);
                if (r.has_piece && r.piece.end_of_record)
                    records.emplace_back(r.piece.header.type, r.piece.header.request_id);
            }
            if (ec)
                eof = true;
            else
                read_more();
        });
    };
    read_more();
    auto aborted = [&] {
        return std::find_if(records.begin(), records.end(), [](const auto& r) {
            return r.first == proto::record_type::abort_request;
        });
    };
    BOOST_REQUIRE(run_until(ctx, [&] { return aborted() != records.end(); }));
    // What the client wrote with the abort is in the socket before it closes.
    conn->close(asio::error::operation_aborted);
    BOOST_REQUIRE(run_until(ctx, [&] { return eof; }));
    auto abort_at = aborted();
    const std::uint16_t up_id = abort_at->second;
    BOOST_TEST(up_id == 1u);  // "up" went first
    for (auto it = abort_at; it != records.end(); ++it)
        BOOST_TEST(!(it->second == up_id && it->first == proto::record_type::stdin_),
                   "STDIN of request " << up_id << " after its ABORT_REQUEST");
}

// A connection retired because an aborted request was never ended (abort_timeout) starts no
// request that was waiting for a slot: when one of its live requests ends, the freed slot is not
// handed on. The waiting request fails with not_connected when the last live one has ended and
// the connection closes (never written, so a client may send it elsewhere).
BOOST_AUTO_TEST_CASE(retiring_connection_starts_no_waiting_request) {
    asio::io_context ctx;
    fake_responder fake({.script_for =
                             [&ctx](const seen_request& r) {
                                 asio::post(ctx, [] {});  // wakes run_until
                                 auto id = r.param("X_ID").value_or("");
                                 if (id == "stuck")
                                     return fcgi::test::script{};  // ended by nothing
                                 auto s = fcgi::test::echo_script(r);
                                 s.insert(s.begin(), act::delay(id == "live1" ? 500ms : 1000ms));
                                 return s;
                             },
                         .answer_abort = false});
    fcgi::connection_options copts;
    copts.max_in_flight = 3;
    copts.abort_timeout = 50ms;
    auto conn = connected_impl(ctx, fake.unix_endpoint(), copts);
    std::map<std::string, std::optional<std::error_code>> out;
    auto stuck = start_op(ctx, *conn, fcgi::test::tagged_request("stuck"), &out["stuck"]);
    for (const char* id : {"live1", "live2", "waiting"})
        start_op(ctx, *conn, fcgi::test::tagged_request(id), &out[id]);
    BOOST_REQUIRE(run_until(ctx, [&] { return fake.snapshot().requests.size() == 3; }));
    conn->cancel(stuck);
    BOOST_REQUIRE(run_until(ctx, [&] {
        return std::all_of(out.begin(), out.end(), [](const auto& o) { return o.second; });
    }));
    BOOST_TEST(*out["stuck"] == asio::error::operation_aborted, out["stuck"]->message());
    BOOST_TEST(!*out["live1"], out["live1"]->message());
    BOOST_TEST(!*out["live2"], out["live2"]->message());
    BOOST_TEST(*out["waiting"] == fcgi::error::not_connected, out["waiting"]->message());
    auto snap = fake.snapshot();
    for (const auto& r : snap.requests)
        BOOST_TEST(r.param("X_ID").value_or("") != "waiting", "sent on the retiring connection");
    BOOST_TEST((conn->state() == fcgi::detail::connection_state::closed));
}

// A request that got a slot but waits behind another request's long write has sent nothing:
// when the connection closes (by the client or the server), it fails with not_connected and is
// handed back, so a pool sends it elsewhere even when it is a POST; the written one gets the
// close's error. It once got the close's error too, and was lost.
BOOST_AUTO_TEST_CASE(close_fails_a_request_queued_behind_a_write_as_not_sent) {
    for (bool server_closes : {false, true}) {
        BOOST_TEST_CONTEXT("server closes: " << server_closes) {
            small_behind_big t;
            if (server_closes)
                t.server.socket.close();  // unread bytes: a reset
            else
                t.conn->close(asio::error::operation_aborted);
            BOOST_REQUIRE(run_until(t.ctx, [&] { return t.both_done(); }));
            auto expected = server_closes ? std::error_code(fcgi::error::connection_lost)
                                          : std::error_code(asio::error::operation_aborted);
            BOOST_TEST(*t.big.ec == expected, t.big.ec->message());
            BOOST_TEST(*t.small.ec == fcgi::error::not_connected, t.small.ec->message());
            BOOST_TEST(t.small.diagnostics.find("before the request was sent") != std::string::npos,
                       t.small.diagnostics);
            BOOST_REQUIRE(t.back.has_value());
            BOOST_TEST(t.back->body == "a POST body");
        }
    }
}

// A record for a request that got a slot but was not sent yet (queued behind another request's
// write) answers something else: a stale or duplicate record. It closes the connection with
// unexpected_record; it once completed the unsent request as a success with an empty body.
BOOST_AUTO_TEST_CASE(record_for_a_request_not_yet_sent_is_unexpected) {
    namespace proto = fcgi::protocol;
    small_behind_big t;
    // END_REQUEST for ID 2 ("small"), request_complete.
    asio::write(t.server.socket, asio::buffer(fcgi::test::make_record(
                                     proto::record_type::end_request, 2, std::string(8, '\0'))));
    BOOST_REQUIRE(run_until(t.ctx, [&] { return t.both_done(); }));
    BOOST_TEST(*t.big.ec == fcgi::error::unexpected_record, t.big.ec->message());
    BOOST_TEST(t.big.diagnostics.find("which was not sent yet") != std::string::npos,
               t.big.diagnostics);
    BOOST_TEST(*t.small.ec == fcgi::error::not_connected, t.small.ec->message());
}

// END_REQUEST twice in one read, on a multiplexed connection with a request waiting for a slot:
// the first frees the ID, the second must not reach the waiting request (it once completed it
// as a success with an empty body, its real response never read). The duplicate closes the
// connection; the waiting request was never sent and fails with not_connected.
BOOST_AUTO_TEST_CASE(duplicate_end_request_does_not_reach_the_next_request) {
    namespace proto = fcgi::protocol;
    asio::io_context ctx;
    fake_responder fake({.script_for = [](const seen_request& r) {
        auto id = r.param("X_ID").value_or("");
        if (id == "slow")
            return fcgi::test::script{};  // never answered
        if (id != "dup")
            return fcgi::test::echo_script(r);
        std::string end =
            fcgi::test::make_record(proto::record_type::end_request, r.id, std::string(8, '\0'));
        // One write: both END_REQUESTs reach the client in the same read.
        return fcgi::test::script{
            act::raw(fcgi::test::make_record(proto::record_type::stdout_, r.id,
                                             std::string(fcgi::test::echo_head) + "dup") +
                     end + end)};
    }});
    fcgi::connection_options copts;
    copts.max_in_flight = 2;
    auto conn = connected_impl(ctx, fake.unix_endpoint(), copts);
    op_result slow, dup, waiting;
    start_op_back(ctx, *conn, fcgi::test::tagged_request("slow"), slow);
    start_op_back(ctx, *conn, fcgi::test::tagged_request("dup"), dup);
    start_op_back(ctx, *conn, fcgi::test::tagged_request("waiting"), waiting);
    BOOST_REQUIRE(run_until(ctx, [&] { return slow.ec && dup.ec && waiting.ec; }));
    BOOST_TEST(!*dup.ec, dup.ec->message());
    BOOST_TEST(*waiting.ec == fcgi::error::not_connected, waiting.ec->message()
                                                              << ": " << waiting.diagnostics);
    BOOST_TEST(*slow.ec == fcgi::error::unexpected_record, slow.ec->message());
    for (const auto& r : fake.snapshot().requests)
        BOOST_TEST(r.param("X_ID").value_or("") != "waiting");
}

// A source or sink of the caller's that throws fails its request with source_failed or
// sink_failed and the exception's message; the exception does not unwind through the
// connection (out of a read half way through a buffer, it once left every later completion
// stuck). Every call into them is covered.
BOOST_AUTO_TEST_CASE(a_throwing_source_or_sink_fails_its_request) {
    enum class at { sink_start, on_head, write, finish, source_start, read };
    struct throwing_sink : fcgi::body_sink::implementation {
        at where;
        explicit throwing_sink(at w) : where(w) {}
        std::error_code start(std::string&) override {
            if (where == at::sink_start)
                throw std::runtime_error("boom");
            return {};
        }
        std::error_code on_head(const fcgi::response&, std::string&) override {
            if (where == at::on_head)
                throw std::runtime_error("boom");
            return {};
        }
        void async_write(std::string_view, const asio::any_io_executor&,
                         fcgi::sink_write_handler done) override {
            if (where == at::write)
                throw std::runtime_error("boom");
            done({});
        }
        std::error_code finish(std::string&) override {
            if (where == at::finish)
                throw 42;  // not even a std::exception
            return {};
        }
    };
    struct throwing_source : fcgi::body_source::implementation {
        at where;
        explicit throwing_source(at w) : where(w) {}
        std::optional<std::uint64_t> size() const override { return 3; }
        std::error_code start(std::string&) override {
            if (where == at::source_start)
                throw std::runtime_error("boom");
            return {};
        }
        void async_read_some(asio::mutable_buffer buf, const asio::any_io_executor&,
                             fcgi::source_read_handler done) override {
            if (where == at::read)
                throw std::runtime_error("boom");
            std::memcpy(buf.data(), "abc", 3);
            done({}, 3);
        }
    };
    fake_responder fake;
    for (auto where :
         {at::sink_start, at::on_head, at::write, at::finish, at::source_start, at::read}) {
        BOOST_TEST_CONTEXT("throws in call " << static_cast<int>(where)) {
            auto req = fcgi::test::tagged_request("t");
            bool source = where == at::source_start || where == at::read;
            if (source)
                req.stdin_source = fcgi::body_source(std::make_shared<throwing_source>(where));
            else
                req.stdout_sink = fcgi::body_sink(std::make_shared<throwing_sink>(where));
            fcgi::connection_options copts;
            copts.request_timeout = 5s;
            auto [ec, resp] = one_request(fake.unix_endpoint(), std::move(req), copts);
            BOOST_TEST(ec == (source ? std::error_code(fcgi::error::source_failed)
                                     : std::error_code(fcgi::error::sink_failed)),
                       ec.message());
            auto expected = where == at::finish ? "threw an exception" : "threw: boom";
            BOOST_TEST(resp.diagnostics.find(expected) != std::string::npos, resp.diagnostics);
        }
    }
    // Coroutines that throw: the message reaches the diagnostics through failure_text() (it
    // was dropped, leaving a bare sink_failed or source_failed).
    for (bool source : {false, true}) {
        BOOST_TEST_CONTEXT((source ? "coroutine source" : "coroutine sink")) {
            auto req = fcgi::test::tagged_request("t");
            if (source)
                req.stdin_source = fcgi::body_source::coroutine(
                    3, [](asio::mutable_buffer) -> asio::awaitable<std::size_t> {
                        throw std::runtime_error("disk gone");
                        co_return 0;
                    });
            else
                req.stdout_sink =
                    fcgi::body_sink::coroutine([](std::string_view) -> asio::awaitable<void> {
                        throw std::runtime_error("disk gone");
                        co_return;
                    });
            auto [ec, resp] = one_request(fake.unix_endpoint(), std::move(req), {});
            BOOST_TEST(ec == (source ? std::error_code(fcgi::error::source_failed)
                                     : std::error_code(fcgi::error::sink_failed)),
                       ec.message());
            BOOST_TEST(resp.diagnostics.find("threw: disk gone") != std::string::npos,
                       resp.diagnostics);
        }
    }
}

// A sink that only its request owns, closing the connection from start() or finish(): the close
// completes the request and drops it, which must not destroy the sink while its call runs (it
// once did, from finish()). The sink checks through a flag that outlives it.
BOOST_AUTO_TEST_CASE(sink_owned_by_its_request_survives_closing_the_connection) {
    struct closing_sink : fcgi::body_sink::implementation {
        fcgi::connection* conn;
        bool in_start;
        std::shared_ptr<bool> destroyed;
        std::shared_ptr<bool> destroyed_inside;
        closing_sink(fcgi::connection* c, bool s, std::shared_ptr<bool> d, std::shared_ptr<bool> i)
            : conn(c), in_start(s), destroyed(std::move(d)), destroyed_inside(std::move(i)) {}
        ~closing_sink() override { *destroyed = true; }
        std::error_code close_here() {
            auto gone = destroyed;  // `this` may be gone after the close; these stay
            auto inside = destroyed_inside;
            conn->close();
            *inside = *gone;
            return {};
        }
        std::error_code start(std::string&) override {
            return in_start ? close_here() : std::error_code();
        }
        void async_write(std::string_view, const asio::any_io_executor&,
                         fcgi::sink_write_handler done) override {
            done({});
        }
        std::error_code finish(std::string&) override {
            return in_start ? std::error_code() : close_here();
        }
    };
    fake_responder fake;
    for (bool in_start : {true, false}) {
        BOOST_TEST_CONTEXT("closes from " << (in_start ? "start()" : "finish()")) {
            asio::io_context ctx;
            fcgi::connection conn(ctx.get_executor());
            std::optional<std::error_code> connected, result;
            conn.async_connect(fake.unix_endpoint(), [&](std::error_code ec) { connected = ec; });
            BOOST_REQUIRE(run_until(ctx, [&] { return connected.has_value(); }));
            auto destroyed = std::make_shared<bool>(false);
            auto destroyed_inside = std::make_shared<bool>(false);
            auto req = fcgi::test::tagged_request("close");
            req.stdout_sink = fcgi::body_sink(
                std::make_shared<closing_sink>(&conn, in_start, destroyed, destroyed_inside));
            conn.async_request(std::move(req),
                               [&](std::error_code ec, fcgi::response) { result = ec; });
            BOOST_REQUIRE(run_until(
                ctx, [&] { return result.has_value(); }, 5s));
            ctx.restart();
            ctx.poll();
            BOOST_TEST(!*destroyed_inside, "the sink was destroyed inside its own call");
            BOOST_TEST(*destroyed);  // and not leaked
            auto expected = in_start ? std::error_code(fcgi::error::not_connected)
                                     : std::error_code(asio::error::operation_aborted);
            BOOST_TEST(*result == expected, result->message());
            BOOST_TEST(!conn.is_open());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
