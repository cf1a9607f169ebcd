// One conformance suite run against every peer of peers.hpp: php-fpm, a libfcgi responder, a
// Go net/http/fcgi responder and our fake responder. Where the servers differ, the expectation
// comes from the peer table (peers.cpp), never from an `if` on a peer's name in a test.
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "peers.hpp"
#include "support/fake_responder.hpp"
#include "support/run_until.hpp"
#include "support/spawn.hpp"
#include "support/temp_file.hpp"

namespace conf = fcgi::conformance;
namespace bdata = boost::unit_test::data;
namespace proto = fcgi::protocol;
using fcgi::test::run_until;
using namespace std::chrono_literals;

// Named, not anonymous: the data test cases' lambdas capture these types (-Wsubobject-linkage).
namespace conformance_helpers {

const auto every_peer = bdata::make(conf::peer_names());

// The completion of one client request.
struct outcome {
    bool done = false;
    std::error_code ec;
    fcgi::response resp;
};

fcgi::client_options options_for(const conf::running_peer& peer, std::size_t connections = 1,
                                 fcgi::multiplexing mode = fcgi::multiplexing::off) {
    fcgi::client_options o;
    o.endpoints = {peer.endpoint()};
    o.max_connections_per_endpoint = connections;
    o.mode = mode;
    o.connection.request_timeout = 60s;  // generous: the ASan pass and a busy machine
    return o;
}

// Starts `req`; `out` must stay put until it is done.
void start(fcgi::client& c, fcgi::request req, outcome& out) {
    c.async_request(std::move(req), [&out](std::error_code ec, fcgi::response r) {
        out.done = true;
        out.ec = ec;
        out.resp = std::move(r);
    });
}

outcome run_one(asio::io_context& ctx, fcgi::client& c, fcgi::request req,
                std::chrono::milliseconds limit = 90s) {
    outcome out;
    start(c, std::move(req), out);
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return out.done; }, limit),
                          "no completion within " << limit.count() << " ms");
    return out;
}

// Requires a response, naming the error and the peer's log otherwise.
void require_ok(const outcome& out, const conf::running_peer& peer) {
    BOOST_REQUIRE_MESSAGE(!out.ec, out.ec.message()
                                       << ": " << out.resp.diagnostics << "\npeer log:\n"
                                       << peer.log());
}

std::string joined(const std::vector<std::pair<std::string, std::string>>& pairs) {
    std::string s;
    for (const auto& [n, v] : pairs)
        s += n + "=" + v + ";";
    return s;
}

// `n` bytes of every value, in a pattern that does not repeat every 256 bytes.
std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + i / 251 + seed) & 0xff);
    return s;
}

fcgi::request tagged(const std::string& tag) {
    auto req = conf::contract_request();
    req.params.emplace_back("CONF_VALUE", tag);
    return req;
}

std::string tagged_body(const std::string& tag) {
    return conf::echo_text("GET", "", tag, "", "0:0:0", "");
}

// Runs `count` echo requests one after another, tagged `prefix`<n>, each answered correctly.
void run_tagged_in_turn(asio::io_context& ctx, fcgi::client& c, const conf::running_peer& peer,
                        const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
        auto tag = prefix + std::to_string(i);
        auto out = run_one(ctx, c, tagged(tag));
        require_ok(out, peer);
        BOOST_TEST(out.resp.body == tagged_body(tag));
    }
}

}  // namespace conformance_helpers

using namespace conformance_helpers;

BOOST_AUTO_TEST_SUITE(conformance)

BOOST_DATA_TEST_CASE(get_values_reply, every_peer, name) {
    const auto& t = conf::traits(name);
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    std::optional<std::pair<std::error_code, proto::get_values_result>> got;
    fcgi::async_get_values(
        ctx.get_executor(), peer->endpoint(), {.timeout = 1500ms},
        [&](std::error_code ec, proto::get_values_result r) { got.emplace(ec, std::move(r)); });
    BOOST_REQUIRE(run_until(
        ctx, [&] { return got.has_value(); }, 10s));
    if (t.get_values) {
        BOOST_REQUIRE_MESSAGE(!got->first, got->first.message());
        BOOST_TEST(joined(got->second.all) == joined(*t.get_values));
        BOOST_TEST(got->second.mpxs_conns.value_or(false) == t.multiplexes);
    } else {
        // The server never answers a lone GET_VALUES: the probe ends at its deadline.
        BOOST_TEST(got->first == fcgi::error::request_timeout, got->first.message());
    }
}

#ifdef FCGI_CLI_PATH
// What `fcgi probe` prints for each peer (docs/conformance.md quotes it).
BOOST_DATA_TEST_CASE(fcgi_probe_output, every_peer, name) {
    const auto& t = conf::traits(name);
    auto peer = conf::start_peer(name);
    auto r =
        fcgi::test::run_child({.program = FCGI_CLI_PATH,
                               .args = {"probe", "-c", peer->endpoint().to_string(), "-t", "1.5"}});
    BOOST_TEST_MESSAGE(name << ": exit " << r.exit_code << "\n" << r.out << r.err);
    if (t.get_values) {
        std::string expected;
        for (const auto& [n, v] : *t.get_values)
            expected += n + "=" + v + "\n";
        expected += t.multiplexes ? "multiplexing: yes\n" : "multiplexing: no\n";
        BOOST_TEST(r.exit_code == 0);
        BOOST_TEST(r.out == expected);
    } else {
        BOOST_TEST(r.exit_code == 4);  // timed out
        BOOST_TEST(r.out.empty());
        BOOST_TEST(r.err.find("GET_VALUES failed") != std::string::npos, r.err);
    }
}
#endif

BOOST_DATA_TEST_CASE(echo_of_method_query_params_body, every_peer, name) {
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));

    auto get = conf::contract_request();
    get.query = "a=1&b=%20x";
    get.headers.emplace_back("X-Conf", "header value");
    get.params.emplace_back("CONF_VALUE", "param value");
    auto out = run_one(ctx, c, get);
    require_ok(out, *peer);
    BOOST_TEST(out.resp.status == 200);
    BOOST_TEST(out.resp.header("X-Conf-Peer").value_or("") == name);
    BOOST_TEST(out.resp.header("Content-Type").value_or("").starts_with("text/plain"));
    BOOST_TEST(out.resp.body ==
               conf::echo_text("GET", "a=1&b=%20x", "param value", "header value", "0:0:0", ""));

    auto post = conf::contract_request();
    post.body = fcgi::test::binary_data();  // every byte value, NUL and CR LF included
    post.params.emplace_back("CONF_VALUE", "post");
    out = run_one(ctx, c, post);
    require_ok(out, *peer);
    auto expected = conf::echo_text("POST", "", "post", "", "0:0:0", post.body);
    BOOST_TEST(out.resp.body.size() == expected.size());
    BOOST_TEST((out.resp.body == expected));

    auto put = conf::contract_request();
    put.method = "PUT";
    put.body = "x";
    out = run_one(ctx, c, put);
    require_ok(out, *peer);
    BOOST_TEST(out.resp.body == conf::echo_text("PUT", "", "", "", "0:0:0", "x"));
}

// Params far beyond one record: each pair must arrive whole (php-fpm resets the connection on a
// pair split across PARAMS records), the largest one as big as a record allows.
BOOST_DATA_TEST_CASE(large_params_arrive_whole, every_peer, name) {
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    auto req = conf::contract_request();
    req.params.emplace_back("CONF_BIG_0", std::string(65000, 'q'));  // near the 65528 maximum
    for (unsigned i = 1; i <= 8; ++i) {
        std::string v = pattern(7000 * i, i);
        for (auto& ch : v)
            ch = static_cast<char>('A' + static_cast<unsigned char>(ch) % 58);  // printable
        req.params.emplace_back("CONF_BIG_" + std::to_string(i), std::move(v));
    }
    auto big = conf::big_summary(req.params);
    auto out = run_one(ctx, c, req);
    require_ok(out, *peer);
    BOOST_TEST(out.resp.body == conf::echo_text("GET", "", "", "", big, ""));
}

BOOST_DATA_TEST_CASE(ten_megabytes_each_way, every_peer, name) {
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    auto req = conf::contract_request();
    req.body = pattern(10u << 20);
    auto expected = conf::echo_text("POST", "", "", "", "0:0:0", req.body);
    auto out = run_one(ctx, c, std::move(req), 120s);
    require_ok(out, *peer);
    BOOST_TEST(out.resp.body.size() == expected.size());
    BOOST_TEST((out.resp.body == expected));
}

BOOST_DATA_TEST_CASE(stderr_kept_apart_from_the_body, every_peer, name) {
    const auto& t = conf::traits(name);
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    auto out = run_one(ctx, c, conf::contract_request("stderr"));
    require_ok(out, *peer);
    BOOST_TEST(out.resp.body == "stderr");
    BOOST_TEST(out.resp.stderr_text == t.stderr_text);
}

BOOST_DATA_TEST_CASE(status_and_repeated_headers, every_peer, name) {
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    auto req = conf::contract_request("status");
    req.params.emplace_back("CONF_STATUS", "418");
    auto out = run_one(ctx, c, req);
    require_ok(out, *peer);
    BOOST_TEST(out.resp.status == 418);
    auto multi = out.resp.headers_named("X-Conf-Multi");
    BOOST_TEST(multi.size() == 2u);
    if (multi.size() == 2) {
        BOOST_TEST(multi[0] == "a");
        BOOST_TEST(multi[1] == "b");
    }
    BOOST_TEST(!out.resp.header("Status").has_value());  // consumed into status/reason
    BOOST_TEST(out.resp.body == "status");
}

BOOST_DATA_TEST_CASE(keep_alive_reuses_one_connection, every_peer, name) {
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    run_tagged_in_turn(ctx, c, *peer, "k", 20);
    auto st = c.stats();
    BOOST_REQUIRE(st.endpoints.size() == 1u);
    BOOST_TEST(st.endpoints[0].connects == 1u);
    BOOST_TEST(st.endpoints[0].reconnects == 0u);
    BOOST_TEST(st.completed == 20u);
    if (auto* fake = peer->fake())
        BOOST_TEST(fake->snapshot().connections_accepted == 1u);
}

// `auto` asks GET_VALUES once and multiplexes only where the server offers it; 1,000 requests
// over 2 connections either way, each answer routed to its own request.
BOOST_DATA_TEST_CASE(auto_multiplexing_1000_requests_over_2_connections, every_peer, name) {
    const auto& t = conf::traits(name);
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    auto opts = options_for(*peer, 2, fcgi::multiplexing::auto_detect);
    opts.max_requests_per_connection = 32;
    fcgi::client c(ctx.get_executor(), opts);
    constexpr int n = 1000;
    std::map<int, outcome> outs;
    for (int i = 0; i < n; ++i)
        start(c, tagged("m" + std::to_string(i)), outs[i]);
    std::size_t max_in_flight = 0;
    bool all = run_until(
        ctx,
        [&] {
            auto st = c.stats();
            if (!st.endpoints.empty())
                max_in_flight = std::max(max_in_flight, st.endpoints[0].in_flight);
            for (const auto& [i, o] : outs)
                if (!o.done)
                    return false;
            return true;
        },
        180s);
    BOOST_REQUIRE_MESSAGE(all, "not every request completed\npeer log:\n" << peer->log());
    int ok = 0;
    for (const auto& [i, o] : outs)
        ok += !o.ec && o.resp.body == tagged_body("m" + std::to_string(i));
    BOOST_TEST(ok == n);
    auto st = c.stats();
    BOOST_TEST(st.endpoints[0].connects == 2u);
    BOOST_TEST(st.endpoints[0].max_in_flight_per_connection ==
               (t.multiplexes ? opts.max_requests_per_connection : 1u));
    if (t.multiplexes)
        BOOST_TEST(max_in_flight > 2u);
    else
        BOOST_TEST(max_in_flight <= 2u);
    if (auto* fake = peer->fake()) {
        auto snap = fake->snapshot();
        BOOST_TEST(snap.get_values == 1u);
        BOOST_TEST(snap.connections_accepted == 3u);  // the probe's, then the pool's two
        BOOST_TEST(snap.max_live > 1u);
        BOOST_TEST(snap.violations.empty());
    }
}

// Mode `on` without asking: 8 requests written at once on one connection. A server that cannot
// multiplex should refuse the extra ones with CANT_MPX_CONN, and the client should then drop
// that connection to one request at a time and retry them.
BOOST_DATA_TEST_CASE(forced_multiplexing_on_one_connection, every_peer, name) {
    const auto& t = conf::traits(name);
    // The fake refuses a second live request as libfcgi's source intends to.
    auto peer = conf::start_peer(name, {.fake_max_live_per_connection = 1});
    asio::io_context ctx;
    auto opts = options_for(*peer, 1, fcgi::multiplexing::on);
    opts.max_requests_per_connection = 8;
    opts.connection.request_timeout = t.survives_forced_multiplexing ? 60s : 3s;
    fcgi::client c(ctx.get_executor(), opts);
    constexpr int n = 8;
    std::map<int, outcome> outs;
    for (int i = 0; i < n; ++i)
        start(c, tagged("f" + std::to_string(i)), outs[i]);
    BOOST_REQUIRE(run_until(
        ctx,
        [&] {
            for (const auto& [i, o] : outs)
                if (!o.done)
                    return false;
            return true;
        },
        120s));
    int ok = 0, timed_out = 0;
    std::string errors;
    for (const auto& [i, o] : outs) {
        ok += !o.ec && o.resp.body == tagged_body("f" + std::to_string(i));
        timed_out += o.ec == fcgi::error::request_timeout;
        if (o.ec)
            errors += o.ec.message() + "; ";
        BOOST_TEST(o.ec != fcgi::server_error::cant_mpx_conn);  // retried, never surfaced
    }
    auto st = c.stats();
    BOOST_TEST_MESSAGE(name << ": " << ok << " answered, " << timed_out << " timed out, "
                            << st.retries << " retried");
    if (t.survives_forced_multiplexing) {
        BOOST_TEST(ok == n, errors);
    } else {
        // An extra request is served in turn when it reaches the server in a read of its own,
        // and lost without an answer when it shared a read with the one before (which one
        // depends on timing); only the deadline ends a lost one. No CANT_MPX_CONN ever comes.
        // test_libfcgi_facts.cpp pins the loss with one write.
        BOOST_TEST(ok >= 1);
        BOOST_TEST(ok + timed_out == n, errors);
        BOOST_TEST(st.retries == 0u);
    }
    if (auto* fake = peer->fake()) {
        std::size_t refused = 0;
        for (const auto& r : fake->snapshot().requests)
            refused += r.refused;
        BOOST_TEST(refused >= 1u);
        BOOST_TEST(st.retries >= refused);
    }
    // The client still works afterwards.
    auto after = run_one(ctx, c, tagged("after"));
    require_ok(after, *peer);
    BOOST_TEST(after.resp.body == tagged_body("after"));
    st = c.stats();
    BOOST_TEST_MESSAGE(name << ": afterwards " << st.endpoints[0].connects << " connects, "
                            << st.retries << " retries");
}

BOOST_DATA_TEST_CASE(authorizer_role, every_peer, name) {
    const auto& t = conf::traits(name);
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    fcgi::client c(ctx.get_executor(), options_for(*peer));
    auto req = conf::contract_request("role");
    req.role = proto::role::authorizer;
    auto out = run_one(ctx, c, req);
    if (t.authorizer == conf::role_answer::unknown_role) {
        BOOST_TEST(out.ec == fcgi::server_error::unknown_role, out.ec.message());
        BOOST_TEST(!fcgi::is_retryable(out.ec));
    } else {
        require_ok(out, *peer);
        BOOST_TEST(out.resp.body == "role=AUTHORIZER");
    }
    // The connection stays usable after either answer.
    auto next = run_one(ctx, c, tagged("r"));
    require_ok(next, *peer);
    BOOST_TEST(next.resp.body == tagged_body("r"));
    BOOST_TEST(c.stats().endpoints[0].connects == 1u);
}

// Cancelling a request that was written: with multiplexing the client sends ABORT_REQUEST and
// keeps the connection, waiting for the request's END_REQUEST before reusing its ID.
BOOST_DATA_TEST_CASE(abort_request_on_cancellation, every_peer, name) {
    const auto& t = conf::traits(name);
    if (t.abort == conf::abort_answer::not_applicable) {
        BOOST_TEST(!t.multiplexes);
        BOOST_TEST_MESSAGE(name << " does not multiplex: cancelling closes the connection "
                                   "(test/integration covers it)");
        return;
    }
    auto peer = conf::start_peer(name);
    asio::io_context ctx;
    // Declared before the client, so they outlive anything it still holds on a failure path.
    outcome held;
    asio::cancellation_signal sig;
    fcgi::client c(ctx.get_executor(), options_for(*peer, 1, fcgi::multiplexing::auto_detect));
    require_ok(run_one(ctx, c, tagged("warm")), *peer);
    BOOST_REQUIRE(c.stats().endpoints[0].max_in_flight_per_connection > 1u);

    auto hold = conf::contract_request("hold");
    hold.params.emplace_back("CONF_TOKEN", "t1");
    c.async_request(std::move(hold), asio::bind_cancellation_slot(
                                         sig.slot(), [&](std::error_code ec, fcgi::response r) {
                                             held.done = true;
                                             held.ec = ec;
                                             held.resp = std::move(r);
                                         }));
    // Written in order on the one connection: once a later request is answered, the held one
    // has reached the server.
    require_ok(run_one(ctx, c, tagged("behind")), *peer);
    BOOST_REQUIRE(!held.done);
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_until(
        ctx, [&] { return held.done; }, 10s));
    BOOST_TEST(held.ec == asio::error::operation_aborted, held.ec.message());

    if (t.abort == conf::abort_answer::end_request) {
        auto* fake = peer->fake();
        BOOST_REQUIRE(fake);
        bool aborted = fake->wait_for([](const auto& s) { return s.aborts.size() == 1; }, 10s);
        BOOST_TEST(aborted);
    } else {
        // Ignored: the server never saw it, and the held request's answer still comes once
        // released; the client must drain it rather than take it for a protocol error.
        auto count = run_one(ctx, c, conf::contract_request("aborts"));
        require_ok(count, *peer);
        BOOST_TEST(count.resp.body == "aborts=0");
        auto release = conf::contract_request("release");
        release.params.emplace_back("CONF_TOKEN", "t1");
        require_ok(run_one(ctx, c, release), *peer);
    }
    run_tagged_in_turn(ctx, c, *peer, "a", 20);
    auto st = c.stats();
    BOOST_TEST(st.endpoints[0].connects == 1u);  // the connection survived the abort
    BOOST_TEST(st.endpoints[0].reconnects == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
