// The fault matrix: one table of server faults, each run against a single fcgi::connection, a
// client pool (one request per connection, as with php-fpm) and a multiplexed connection of a
// client. For each: the error expected, the time it took against the deadline, what happens to
// the connection, whether the other requests in flight are unharmed, and that the client serves
// afterwards. Several rows also exist as separate tests (test_connection_faults.cpp,
// test_client_faults.cpp, test_hostile.cpp); this is the single table of them.
#include <asio/io_context.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "support/fake_responder.hpp"
#include "support/run_until.hpp"

namespace act = fcgi::test::act;
namespace proto = fcgi::protocol;
using fcgi::test::fake_responder;
using fcgi::test::seen_request;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

namespace {

// Slack allowed past a deadline for the timer and the completion to run (sanitizer builds on a
// loaded 2-core machine included). Not a performance assertion: it bounds a hang.
constexpr ms timer_slack{1000};
// The deadline of every request in the matrix that is not expected to run into it.
constexpr ms deadline{3000};
// The deadline of a faulty request that stalls: its timeout is the expected outcome.
constexpr ms stall_deadline{400};

// Limits small enough that floods hit them quickly.
fcgi::connection_options limits() {
    fcgi::connection_options o;
    o.max_stdout_size = 256u << 10;
    o.max_stderr_size = 64u << 10;
    o.on_stderr_overflow = fcgi::stderr_overflow::fail;  // a flood is a failure in the matrix
    o.max_head_size = 16u << 10;
    o.connect_timeout = 3s;
    return o;
}

// A record whose header claims `claimed` content bytes while `content` follows, unpadded.
std::string lying_record(std::uint16_t id, std::string_view content, std::uint16_t claimed) {
    std::string out(proto::header_size, '\0');
    proto::encode_header(
        proto::record_header{proto::version_1, proto::record_type::stdout_, id, claimed, 0},
        std::span<char, proto::header_size>(out.data(), proto::header_size));
    out.append(content);
    return out;
}

// A GET_VALUES_RESULT whose first pair claims a 2^31-1 byte name and value (4-byte lengths
// with the high bit set), followed by a few bytes only.
std::string huge_name_value_claim() {
    std::string content("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    content += "FCGI_MPXS_CONNS1";
    return fcgi::test::make_record(proto::record_type::get_values_result, 0, content);
}

constexpr std::string_view head = "Content-Type: text/plain\r\n\r\n";

// What a fault leaves of the connection it hit (single-connection mode).
enum class conn_after { open, closed, either };

// One row of the matrix.
struct fault {
    std::string name;
    std::function<fcgi::test::script(const seen_request&)> script;
    std::error_code expected;  // empty: a complete response arrives
    bool stalls = false;       // the faulty request runs into its deadline
    // Whether only the faulty request is affected on a multiplexed connection; a fault of the
    // byte stream (or a close) necessarily ends every request on that connection.
    bool request_scoped = false;
    conn_after after = conn_after::closed;
    std::string body;           // expected body of the faulty request when it succeeds
    bool ignore_abort = false;  // the responder never answers ABORT_REQUEST
};

std::vector<fault> matrix() {
    using ps = proto::protocol_status;
    using fcgi::error;
    using fcgi::server_error;
    return {
        {"close before responding", [](auto&) { return fcgi::test::script{act::close()}; },
         error::connection_lost},
        {"close while responding",
         [](auto&) {
             return fcgi::test::script{act::stdout_(std::string(head) + "partial"), act::close()};
         },
         error::connection_lost},
        {"close after the response",
         [](const seen_request& r) {
             auto s = fcgi::test::echo_script(r);
             s.push_back(act::close());
             return s;
         },
         {},
         false,
         false,
         conn_after::either,
         fcgi::test::tagged_body("fault")},
        {"reset before responding", [](auto&) { return fcgi::test::script{act::reset()}; },
         error::connection_lost},
        {"reset while responding",
         [](auto&) {
             return fcgi::test::script{act::stdout_(std::string(head) + "partial"), act::reset()};
         },
         error::connection_lost},
        {"stall forever", [](auto&) { return fcgi::test::script{}; }, error::request_timeout, true,
         true},
        {"stall forever, ABORT_REQUEST ignored",
         [](auto&) { return fcgi::test::script{}; },
         error::request_timeout,
         true,
         true,
         conn_after::closed,
         {},
         true},
        {"record with version 2",
         [](const seen_request& r) {
             return fcgi::test::script{act::raw(fcgi::test::make_record(
                 proto::record_type::stdout_, r.id, std::string(head) + "hi", 2))};
         },
         error::bad_version},
        {"content length longer than sent, then silence",
         [](const seen_request& r) {
             return fcgi::test::script{
                 act::raw(lying_record(r.id, std::string(head) + "short", 65535))};
         },
         error::request_timeout,
         true,
         false,
         conn_after::closed,
         {},
         false},
        {"content length shorter than sent",
         [](const seen_request& r) {
             return fcgi::test::script{act::raw(lying_record(r.id, std::string(head) + "long", 5)),
                                       act::end()};
         },
         error::bad_version},
        {"request ID never issued",
         [](auto&) {
             return fcgi::test::script{act::stdout_(std::string(head) + "stray").for_id(77),
                                       act::end()};
         },
         error::unexpected_record},
        {"END_REQUEST twice",
         [](const seen_request& r) {
             auto s = fcgi::test::echo_script(r);
             s.push_back(act::end());
             return s;
         },
         {},
         false,
         false,
         conn_after::closed,
         fcgi::test::tagged_body("fault")},
        {"END_REQUEST CANT_MPX_CONN",
         [](auto&) { return fcgi::test::script{act::end(ps::cant_mpx_conn)}; },
         server_error::cant_mpx_conn, false, true, conn_after::open},
        {"END_REQUEST OVERLOADED",
         [](auto&) { return fcgi::test::script{act::end(ps::overloaded)}; },
         server_error::overloaded, false, true, conn_after::open},
        {"END_REQUEST UNKNOWN_ROLE",
         [](auto&) { return fcgi::test::script{act::end(ps::unknown_role)}; },
         server_error::unknown_role, false, true, conn_after::open},
        {"2^31-byte name-value length claim",
         // Unsolicited GET_VALUES_RESULT records are dropped undecoded on a request connection;
         // the claim must not be believed (no allocation, no wait for 2 GiB).
         [](const seen_request& r) {
             auto s = fcgi::test::echo_script(r);
             s.insert(s.begin(), act::raw(huge_name_value_claim()));
             return s;
         },
         {},
         false,
         true,
         conn_after::open,
         fcgi::test::tagged_body("fault")},
        {"endless STDOUT",
         [](auto&) {
             return fcgi::test::script{act::stdout_(std::string(head)),
                                       act::endless_stdout(64u << 20)};
         },
         error::response_too_large, false, true},
        {"STDERR flood", [](auto&) { return fcgi::test::script{act::endless_stderr(64u << 20)}; },
         error::response_too_large, false, true},
        {"response head that never ends",
         [](auto&) {
             return fcgi::test::script{act::stdout_("Content-Type: text/plain\r\nX-Long: "),
                                       act::endless_stdout(64u << 20, 4096, 'a')};
         },
         error::response_head_too_large, false, true},
        {"bytes after END_REQUEST",
         [](const seen_request& r) {
             auto s = fcgi::test::echo_script(r);
             s.push_back(act::raw("junk after the end"));
             return s;
         },
         {},
         false,
         false,
         conn_after::closed,
         fcgi::test::tagged_body("fault")},
    };
}

// A responder that answers X_ID "fault" with the row's script and everything else with the
// echo.
fcgi::test::fake_responder_options responder_for(const fault& f) {
    fcgi::test::fake_responder_options o;
    o.answer_abort = !f.ignore_abort;
    o.script_for = [s = f.script](const seen_request& r) {
        return r.param("X_ID") == "fault" ? s(r) : fcgi::test::echo_script(r);
    };
    return o;
}

// The completion of one request.
struct outcome {
    bool done = false;
    std::error_code ec;
    fcgi::response resp;
    long long elapsed_ms = 0;
};

template <class Target>
void start(Target& t, fcgi::request req, outcome& out) {
    auto t0 = steady::now();
    t.async_request(std::move(req), [&out, t0](std::error_code ec, fcgi::response r) {
        out.done = true;
        out.ec = ec;
        out.resp = std::move(r);
        out.elapsed_ms = std::chrono::duration_cast<ms>(steady::now() - t0).count();
    });
}

// CANT_MPX_CONN and OVERLOADED refuse the request: a pool sends it once more whatever its
// method, since it did not run (here the responder refuses that one too).
bool refusal(const fault& f) {
    return f.expected == fcgi::server_error::cant_mpx_conn ||
           f.expected == fcgi::server_error::overloaded;
}

fcgi::request fault_request(const fault& f) {
    auto r = fcgi::test::tagged_request("fault");
    r.idempotent = false;  // sent exactly once: the outcome is the fault's, not a retry's
    r.timeout = f.stalls ? stall_deadline : deadline;
    return r;
}

fcgi::request good_request(const std::string& id) {
    auto r = fcgi::test::tagged_request(id);
    r.timeout = deadline;
    return r;
}

bool all_done(const std::map<std::string, outcome>& m) {
    for (const auto& [id, o] : m)
        if (!o.done)
            return false;
    return true;
}

// Checks the faulty request's outcome: the error, and the time against its deadline.
void check_fault(const fault& f, const outcome& o) {
    BOOST_TEST(o.ec == f.expected, "got '" << o.ec.message() << "' (" << o.resp.diagnostics
                                           << "), expected '" << f.expected.message() << "'");
    if (f.expected)
        BOOST_TEST(!o.resp.diagnostics.empty());
    else
        BOOST_TEST(o.resp.body == f.body);
    auto limit = f.stalls ? stall_deadline : deadline;
    if (f.stalls) {
        // Steady timers never fire early, but the pool hands a connection the time left as
        // whole milliseconds, truncated (client_impl::dispatch): up to 1 ms early.
        BOOST_TEST(o.elapsed_ms >= limit.count() - 1);
        BOOST_TEST(o.elapsed_ms <= (limit + timer_slack).count());
    } else {
        BOOST_TEST(o.elapsed_ms < limit.count());
    }
}

// Requests other than the faulty one must get their own echo.
void check_good(const std::map<std::string, outcome>& m) {
    for (const auto& [id, o] : m) {
        if (id == "fault")
            continue;
        BOOST_TEST_CONTEXT("request " << id) {
            BOOST_TEST(!o.ec, o.ec.message() << " " << o.resp.diagnostics);
            BOOST_TEST(o.resp.body == fcgi::test::tagged_body(id));
        }
    }
}

std::size_t times_seen(const fake_responder& fake, const std::string& id) {
    std::size_t n = 0;
    for (const auto& r : fake.snapshot().requests)
        n += r.param("X_ID") == id;
    return n;
}

// One line of the printed matrix.
std::string row(const std::string& mode, const fault& f, const outcome& o,
                const std::string& others) {
    std::ostringstream s;
    s << std::left << std::setw(8) << mode << std::setw(48) << f.name << std::setw(28)
      << (o.ec ? o.ec.message().substr(0, 26) : "response") << std::right << std::setw(6)
      << o.elapsed_ms << " ms  " << others;
    return s.str();
}

void shutdown(asio::io_context& ctx, fcgi::client& c) {
    std::optional<std::error_code> result;
    c.async_shutdown([&](std::error_code ec) { result = ec; });
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return result.has_value(); }, 10s));
    BOOST_TEST(!*result);
}

// Runs `batch` on `t` until done; fails the test when it takes longer than `limit`.
template <class Target>
void run_batch(asio::io_context& ctx, Target& t, std::map<std::string, outcome>& out,
               const std::vector<std::pair<std::string, fcgi::request>>& batch,
               ms limit = deadline + timer_slack + 2s) {
    for (const auto& [id, req] : batch)
        start(t, req, out[id]);
    BOOST_REQUIRE_MESSAGE(fcgi::test::run_until(
                              ctx, [&] { return all_done(out); }, limit),
                          "a batch did not complete within " << limit.count() << " ms");
}

std::vector<std::pair<std::string, fcgi::request>> good_batch(const std::string& prefix, int n) {
    std::vector<std::pair<std::string, fcgi::request>> b;
    for (int i = 0; i < n; ++i) {
        auto id = prefix + std::to_string(i);
        b.emplace_back(id, good_request(id));
    }
    return b;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fault_matrix)

// Single connection: a request before the fault succeeds; the fault ends its request with the
// expected error; the connection is left as expected; it (when open) and a new connection serve.
BOOST_AUTO_TEST_CASE(single_connection) {
    for (const auto& f : matrix()) {
        BOOST_TEST_CONTEXT("fault: " << f.name) {
            fake_responder fake(responder_for(f));
            auto ep = fake.tcp_endpoint();
            asio::io_context ctx;
            fcgi::connection conn(ctx.get_executor(), limits());
            std::optional<std::error_code> connected;
            conn.async_connect(ep, [&](std::error_code ec) { connected = ec; });
            BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return connected.has_value(); }));
            BOOST_REQUIRE(!*connected);

            std::map<std::string, outcome> before;
            run_batch(ctx, conn, before, good_batch("before-", 1));
            check_good(before);

            std::map<std::string, outcome> out;
            run_batch(ctx, conn, out, {{"fault", fault_request(f)}});
            check_fault(f, out["fault"]);
            if (f.after == conn_after::open)
                BOOST_TEST(conn.is_open());
            if (f.after == conn_after::closed)
                BOOST_TEST(!conn.is_open());
            std::string others = "-";
            if (f.after == conn_after::open) {
                std::map<std::string, outcome> again;
                run_batch(ctx, conn, again, good_batch("same-conn-", 1));
                check_good(again);
                others = "connection reused";
            }
            fcgi::connection fresh(ctx.get_executor(), limits());
            connected.reset();
            fresh.async_connect(ep, [&](std::error_code ec) { connected = ec; });
            BOOST_REQUIRE(fcgi::test::run_until(ctx, [&] { return connected.has_value(); }));
            std::map<std::string, outcome> after;
            run_batch(ctx, fresh, after, good_batch("fresh-", 1));
            check_good(after);
            BOOST_TEST(times_seen(fake, "fault") == 1u);
            BOOST_TEST_MESSAGE(row("single", f, out["fault"], others));
        }
    }
}

// A responder for row `f` and a client on it, warmed up with `warm` requests (which opens the
// connections); then the faulty request and five others at once, the fault's outcome checked.
struct client_run {
    fake_responder fake;
    asio::io_context ctx;
    std::optional<fcgi::client> client;
    std::map<std::string, outcome> out;  // the batch with the fault

    client_run(const fault& f, fcgi::client_options opts, bool tcp, int warm)
        : fake(responder_for(f)) {
        opts.endpoints = {tcp ? fake.tcp_endpoint() : fake.unix_endpoint()};
        opts.connection = limits();
        client.emplace(ctx.get_executor(), opts);
        std::map<std::string, outcome> warmed;
        run_batch(ctx, *client, warmed, good_batch("warm-", warm));
        check_good(warmed);
        auto batch = good_batch("other-", 5);
        batch.insert(batch.begin(), {"fault", fault_request(f)});
        run_batch(ctx, *client, out, batch);
        check_fault(f, out["fault"]);
        // Never retried, unless refused.
        BOOST_TEST(times_seen(fake, "fault") == (refusal(f) ? 2u : 1u));
    }

    // Six new requests all succeed.
    void check_serves_afterwards() {
        std::map<std::string, outcome> after;
        run_batch(ctx, *client, after, good_batch("after-", 6));
        check_good(after);
        BOOST_TEST(fake.snapshot().violations.empty());
    }
};

// A pool of three connections, one request each (php-fpm's way): the fault and five other
// requests at once; only the faulty one fails, it is never retried, and the pool serves on.
BOOST_AUTO_TEST_CASE(client_pool) {
    for (const auto& f : matrix()) {
        BOOST_TEST_CONTEXT("fault: " << f.name) {
            fcgi::client_options opts;
            opts.max_connections_per_endpoint = 3;
            client_run run(f, opts, false, 3);
            check_good(run.out);
            run.check_serves_afterwards();
            auto s = run.client->stats();
            BOOST_TEST(s.endpoints.at(0).open <= 3u);
            BOOST_TEST(s.failed == (f.expected ? 1u : 0u));
            shutdown(run.ctx, *run.client);
            BOOST_TEST_MESSAGE(row("pool", f, run.out["fault"], "5 others unharmed"));
        }
    }
}

// One multiplexed connection carrying the fault and five other requests. A fault confined to
// its request (END_REQUEST statuses, a stall answered by ABORT_REQUEST) leaves the others
// unharmed; a fault of the byte stream ends the connection, and with it every request on it,
// each within its deadline. Either way the client serves afterwards on a new connection.
BOOST_AUTO_TEST_CASE(multiplexed_connection) {
    for (const auto& f : matrix()) {
        BOOST_TEST_CONTEXT("fault: " << f.name) {
            fcgi::client_options opts;
            opts.max_connections_per_endpoint = 1;
            opts.mode = fcgi::multiplexing::on;
            opts.max_requests_per_connection = 8;
            client_run run(f, opts, true, 1);
            int harmed = 0;
            std::string others;
            for (const auto& [id, o] : run.out) {
                if (id == "fault")
                    continue;
                BOOST_TEST(o.elapsed_ms <= (deadline + timer_slack).count(), id);
                harmed += o.ec ? 1 : 0;
                if (o.ec && others.empty())
                    others = " (" + o.ec.message().substr(0, 30) + ")";
            }
            others = std::to_string(harmed) + " of 5 others failed" + others;
            if (f.request_scoped) {
                check_good(run.out);
                // Served on the connection they were on, not resent after it was closed.
                BOOST_TEST(run.client->stats().retries == (refusal(f) ? 1u : 0u));
            }
            run.check_serves_afterwards();
            BOOST_TEST(run.client->stats().endpoints.at(0).open <= 1u);
            shutdown(run.ctx, *run.client);
            BOOST_TEST_MESSAGE(row("mpx", f, run.out["fault"], others));
        }
    }
}

// After timed-out requests whose END_REQUEST never comes (a server that ignores ABORT_REQUEST),
// every ID of the multiplexed connection is taken: after abort_timeout the connection is closed
// and replaced, so later requests are served (it once stayed stuck forever).
BOOST_AUTO_TEST_CASE(multiplexed_connection_after_abort_is_ignored) {
    fake_responder fake({.script_for =
                             [](const seen_request& r) {
                                 return r.param("X_ID").value_or("").starts_with("stall")
                                            ? fcgi::test::script{}
                                            : fcgi::test::echo_script(r);
                             },
                         .answer_abort = false});
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fake.tcp_endpoint()};
    opts.max_connections_per_endpoint = 1;
    opts.mode = fcgi::multiplexing::on;
    opts.max_requests_per_connection = 2;
    fcgi::client client(ctx.get_executor(), opts);
    std::map<std::string, outcome> stalls;
    std::vector<std::pair<std::string, fcgi::request>> batch;
    for (auto id : {"stall-1", "stall-2"}) {
        auto r = fcgi::test::tagged_request(id);
        r.timeout = stall_deadline;
        batch.emplace_back(id, r);
    }
    run_batch(ctx, client, stalls, batch);
    for (const auto& [id, o] : stalls)
        BOOST_TEST(o.ec == fcgi::error::request_timeout, id << ": " << o.ec.message());
    std::map<std::string, outcome> after;
    run_batch(ctx, client, after, good_batch("after-", 2));
    check_good(after);
    shutdown(ctx, client);
}

// Where the client does decode name-value pairs (async_get_values), a 2^31-byte length claim
// is a protocol error at once, not an allocation or a wait.
BOOST_AUTO_TEST_CASE(get_values_with_a_huge_length_claim) {
    fake_responder fake({.get_values_reply = huge_name_value_claim()});
    asio::io_context ctx;
    std::optional<std::error_code> result;
    auto t0 = steady::now();
    fcgi::async_get_values(ctx.get_executor(), fake.unix_endpoint(), {},
                           [&](std::error_code ec, proto::get_values_result) { result = ec; });
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return result.has_value(); }, 10s));
    BOOST_TEST(*result == fcgi::error::bad_name_value, result->message());
    BOOST_TEST(std::chrono::duration_cast<ms>(steady::now() - t0).count() < 5000);
}

BOOST_AUTO_TEST_SUITE_END()
