// Hostile peers and hostile caller input: the client pointed at servers that are not FastCGI
// (an HTTP server, an echo server, a silent port, a stream of zeros) must fail clearly within
// its deadline; malformed requests must be refused before a byte is sent; and a burst of
// connects to a unix socket with a tiny backlog (EAGAIN) must still end every request.
#include <unistd.h>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "support/fake_responder.hpp"
#include "support/run_until.hpp"
#include "support/temp_file.hpp"

using asio::awaitable;
using asio::use_awaitable;
using fcgi::test::fake_responder;
using fcgi::test::run_until;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

long long ms_since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

// What a hostile TCP server does with each accepted connection.
enum class hostile_mode {
    http,    // answers any bytes with an HTTP 400, then closes
    echo,    // echoes every byte back
    silent,  // accepts and never answers
    zeros,   // writes zero bytes without end
};

// A TCP server on 127.0.0.1 running `mode` on its own thread.
class hostile_server {
  public:
    explicit hostile_server(hostile_mode mode)
        : mode_(mode), acceptor_(ctx_, {asio::ip::make_address("127.0.0.1"), 0}) {
        asio::co_spawn(ctx_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { ctx_.run(); });
    }
    ~hostile_server() {
        ctx_.stop();
        thread_.join();
    }

    fcgi::endpoint where() const {
        return fcgi::endpoint::tcp("127.0.0.1", acceptor_.local_endpoint().port());
    }

  private:
    awaitable<void> accept_loop() {
        for (;;) {
            std::error_code ec;
            auto s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(ctx_, serve(std::move(s)), asio::detached);
        }
    }

    awaitable<void> serve(asio::ip::tcp::socket s) {
        std::error_code ec;
        std::array<char, 4096> buf;
        auto token = asio::redirect_error(use_awaitable, ec);
        switch (mode_) {
            case hostile_mode::http: {
                co_await s.async_read_some(asio::buffer(buf), token);
                std::string_view reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
                co_await asio::async_write(s, asio::buffer(reply), token);
                // Half-close and drain, as HTTP servers linger: closing with unread bytes
                // would send a reset that could overtake the reply.
                s.shutdown(asio::socket_base::shutdown_send, ec);
                while (!ec)
                    co_await s.async_read_some(asio::buffer(buf), token);
                break;
            }
            case hostile_mode::echo:
                for (;;) {
                    std::size_t n = co_await s.async_read_some(asio::buffer(buf), token);
                    if (ec)
                        break;
                    co_await asio::async_write(s, asio::buffer(buf, n), token);
                    if (ec)
                        break;
                }
                break;
            case hostile_mode::silent:
                // Keep the socket open and read nothing until the client goes away.
                co_await asio::async_read(s, asio::buffer(buf), token);
                break;
            case hostile_mode::zeros: {
                // Answers the request, not the accept: zeros sent before the request would
                // close the connection first, and the request would fail with not_connected.
                co_await s.async_read_some(asio::buffer(buf), token);
                std::vector<char> zeros(64 * 1024, 0);
                while (!ec)
                    co_await asio::async_write(s, asio::buffer(zeros), token);
                break;
            }
        }
    }

    hostile_mode mode_;
    asio::io_context ctx_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread thread_;
};

fcgi::request make_request(std::string id) {
    fcgi::request r;
    r.script = "/srv/www/fake.php";
    r.params = {{"X_ID", std::move(id)}};
    return r;
}

struct result {
    bool done = false;
    std::error_code ec;
    fcgi::response resp;
};

// One request on a fresh fcgi::connection; the connect error, if any, ends it.
result via_connection(const fcgi::endpoint& ep, fcgi::request req,
                      fcgi::connection_options copts = {}) {
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor(), copts);
    result out;
    conn.async_connect(ep, [&](std::error_code ec) {
        if (ec) {
            out = {true, ec, {}};
            return;
        }
        conn.async_request(std::move(req), [&](std::error_code e, fcgi::response r) {
            out = {true, e, std::move(r)};
        });
    });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return out.done; }, 10s),
                          "connection request never completed");
    return out;
}

// One request through an fcgi::client.
result via_client(const fcgi::endpoint& ep, fcgi::request req, fcgi::client_options opts = {}) {
    asio::io_context ctx;
    opts.endpoints = {ep};
    fcgi::client c(ctx.get_executor(), opts);
    result out;
    c.async_request(std::move(req), [&](std::error_code e, fcgi::response r) {
        out = {true, e, std::move(r)};
    });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return out.done; }, 10s),
                          "client request never completed");
    return out;
}

// A minimal FastCGI responder on a unix socket whose listen backlog we choose: the fake
// responder listens with the system default, which hides EAGAIN on connect.
class backlog_responder {
  public:
    explicit backlog_responder(int backlog) : acceptor_(ctx_) {
        path_ = (dir_.path / "fcgi.sock").string();
        asio::local::stream_protocol::endpoint ep(path_);
        acceptor_.open(ep.protocol());
        acceptor_.bind(ep);
        acceptor_.listen(backlog);
        asio::co_spawn(ctx_, accept_loop(), asio::detached);
        thread_ = std::thread([this] { ctx_.run(); });
    }
    ~backlog_responder() {
        ctx_.stop();
        thread_.join();
    }

    fcgi::endpoint where() const { return fcgi::endpoint::unix_socket(path_); }
    std::size_t accepted() const { return accepted_.load(); }

  private:
    awaitable<void> accept_loop() {
        for (;;) {
            std::error_code ec;
            auto s = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
            if (ec)
                co_return;
            ++accepted_;
            asio::co_spawn(ctx_, serve(std::move(s)), asio::detached);
        }
    }

    // Answers every request once its STDIN ended: STDOUT with a head and body, END_REQUEST.
    static awaitable<void> serve(asio::local::stream_protocol::socket s) {
        using namespace fcgi::protocol;
        record_decoder dec;
        std::array<char, 16384> buf;
        std::error_code ec;
        auto token = asio::redirect_error(use_awaitable, ec);
        for (;;) {
            std::size_t n = co_await s.async_read_some(asio::buffer(buf), token);
            if (ec)
                co_return;
            std::string out;
            std::string_view in(buf.data(), n);
            while (!in.empty()) {
                auto r = dec.feed(in);
                if (r.ec)
                    co_return;
                in.remove_prefix(r.consumed);
                if (r.has_piece && r.piece.header.type == record_type::stdin_ &&
                    r.piece.header.content_length == 0 && r.piece.end_of_record) {
                    std::uint16_t id = r.piece.header.request_id;
                    std::string_view body = "Content-Type: text/plain\r\n\r\nok";
                    std::array<char, header_size> h;
                    encode_header(record_type::stdout_, id, static_cast<std::uint16_t>(body.size()),
                                  h);
                    out.append(h.data(), h.size());
                    out.append(body);
                    out.append(padding_for(body.size()), '\0');
                    auto end = encode_end_request(id, {});
                    out.append(end.data(), end.size());
                }
            }
            if (!out.empty())
                co_await asio::async_write(s, asio::buffer(out), token);
            if (ec)
                co_return;
        }
    }

    asio::io_context ctx_;
    asio::local::stream_protocol::acceptor acceptor_;
    fcgi::test::temp_dir dir_;
    std::string path_;
    std::atomic<std::size_t> accepted_{0};
    std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile)

// --- peers that are not FastCGI --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(not_fastcgi_peers_fail_clearly_and_fast) {
    struct peer {
        hostile_mode mode;
        const char* name;
        bool protocol_error;  // else request_timeout
    };
    const peer peers[] = {
        {hostile_mode::http, "http", true},
        {hostile_mode::echo, "echo", true},
        {hostile_mode::silent, "silent", false},
        {hostile_mode::zeros, "zeros", true},
    };
    for (const auto& p : peers) {
        hostile_server server(p.mode);
        for (bool pooled : {false, true}) {
            BOOST_TEST_CONTEXT("peer " << p.name << (pooled ? " via client" : " via connection")) {
                fcgi::request req = make_request("x");
                req.timeout = 300ms;
                auto start = steady::now();
                result r;
                if (pooled) {
                    fcgi::client_options opts;
                    opts.connection.connect_timeout = 1s;
                    r = via_client(server.where(), std::move(req), opts);
                } else {
                    fcgi::connection_options copts;
                    copts.connect_timeout = 1s;
                    r = via_connection(server.where(), std::move(req), copts);
                }
                auto elapsed = ms_since(start);
                BOOST_TEST_MESSAGE(p.name << (pooled ? " client: " : " connection: ")
                                          << r.ec.message() << " after " << elapsed << " ms; "
                                          << r.resp.diagnostics);
                BOOST_TEST(elapsed < 3000);
                BOOST_TEST(r.ec.operator bool());
                if (p.protocol_error)
                    BOOST_TEST((r.ec == fcgi::condition::protocol_error), r.ec.message());
                else
                    BOOST_TEST((r.ec == fcgi::error::request_timeout), r.ec.message());
                BOOST_TEST(!r.resp.diagnostics.empty());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(echo_server_is_an_unexpected_record) {
    // Our own BEGIN_REQUEST coming back is a record type a client never receives.
    hostile_server server(hostile_mode::echo);
    fcgi::request req = make_request("x");
    req.timeout = 2s;
    auto r = via_connection(server.where(), std::move(req));
    BOOST_TEST((r.ec == fcgi::error::unexpected_record), r.ec.message());
}

BOOST_AUTO_TEST_CASE(http_server_is_a_bad_version) {
    // 'H' (0x48) where the version byte 1 belongs.
    hostile_server server(hostile_mode::http);
    fcgi::request req = make_request("x");
    req.timeout = 2s;
    auto r = via_connection(server.where(), std::move(req));
    BOOST_TEST((r.ec == fcgi::error::bad_version), r.ec.message());
    // The diagnostics show what came instead of a record: an HTTP server.
    BOOST_TEST(r.resp.diagnostics.find("(\"HTTP/1.") != std::string::npos, r.resp.diagnostics);
}

// --- caller input refused before anything is sent ---------------------------------------------

BOOST_AUTO_TEST_CASE(malformed_requests_are_refused_before_sending) {
    struct bad {
        const char* what;
        fcgi::request req;
        fcgi::error expected;
    };
    std::vector<bad> cases;
    auto add = [&](const char* what, fcgi::error e, auto change) {
        fcgi::request r = make_request(what);
        change(r);
        cases.push_back({what, std::move(r), e});
    };
    using E = fcgi::error;
    add("empty script", E::invalid_request, [](fcgi::request& r) { r.script.clear(); });
    add("relative script", E::invalid_request, [](fcgi::request& r) { r.script = "www/x.php"; });
    add("CRLF in header value", E::invalid_request, [](fcgi::request& r) {
        r.headers = {{"X-Evil", "a\r\nX-Injected: 1"}};
    });
    add("LF in header value", E::invalid_request, [](fcgi::request& r) {
        r.headers = {{"X-Evil", "a\nb"}};
    });
    add("'=' in param name", E::invalid_request, [](fcgi::request& r) {
        r.params.push_back({"A=B", "v"});
    });
    add("NUL in param name", E::invalid_request, [](fcgi::request& r) {
        r.params.push_back({std::string("A\0B", 3), "v"});
    });
    add("70 KB param", E::param_too_large, [](fcgi::request& r) {
        r.params.push_back({"BIG", std::string(70 * 1024, 'v')});
    });
    add("Content-Length contradicts the body", E::invalid_request, [](fcgi::request& r) {
        r.body = "hello world";
        r.headers = {{"Content-Length", "5"}};
    });
    add("CONTENT_LENGTH param contradicts the body", E::invalid_request, [](fcgi::request& r) {
        r.body = "hello";
        r.params.push_back({"CONTENT_LENGTH", "50"});
    });

    fake_responder fake;
    for (bool pooled : {false, true}) {
        asio::io_context ctx;
        fcgi::connection conn(ctx.get_executor());
        fcgi::client_options opts;
        opts.endpoints = {fake.tcp_endpoint()};
        fcgi::client client(ctx.get_executor(), opts);
        if (!pooled) {
            bool connected = false;
            conn.async_connect(fake.tcp_endpoint(), [&](std::error_code ec) {
                BOOST_TEST(!ec);
                connected = true;
            });
            BOOST_REQUIRE(run_until(
                ctx, [&] { return connected; }, 5s));
        }
        for (auto& c : cases) {
            BOOST_TEST_CONTEXT(c.what << (pooled ? " via client" : " via connection")) {
                result r;
                // A fresh handler per call: an lvalue handler does not compile here.
                auto done = [&] {
                    return [&](std::error_code ec, fcgi::response resp) {
                        r = {true, ec, std::move(resp)};
                    };
                };
                if (pooled)
                    client.async_request(c.req, done());
                else
                    conn.async_request(c.req, done());
                BOOST_REQUIRE(run_until(
                    ctx, [&] { return r.done; }, 5s));
                BOOST_TEST((r.ec == c.expected), r.ec.message());
                BOOST_TEST((r.ec == fcgi::condition::caller_error), r.ec.message());
                BOOST_TEST(!r.resp.diagnostics.empty());
                BOOST_TEST_MESSAGE(c.what << ": " << r.resp.diagnostics);
            }
        }
        if (!pooled)
            BOOST_TEST(conn.is_open());  // a refused request does not cost the connection
        // A valid request afterwards: once the responder saw it, it is known to have seen
        // everything sent before it, which must be nothing.
        result ok;
        auto done = [&] {
            return [&](std::error_code ec, fcgi::response resp) {
                ok = {true, ec, std::move(resp)};
            };
        };
        std::string id = pooled ? "ok-client" : "ok-connection";
        if (pooled)
            client.async_request(make_request(id), done());
        else
            conn.async_request(make_request(id), done());
        BOOST_REQUIRE(run_until(
            ctx, [&] { return ok.done; }, 5s));
        BOOST_TEST(!ok.ec, ok.ec.message());
    }
    auto snap = fake.snapshot();
    BOOST_TEST_REQUIRE(snap.requests.size() == 2u);
    BOOST_TEST(snap.requests[0].param("X_ID").value_or("") == "ok-connection");
    BOOST_TEST(snap.requests[1].param("X_ID").value_or("") == "ok-client");
    BOOST_TEST(snap.violations.empty());
}

// --- a connect burst against a tiny unix backlog ------------------------------------------------

BOOST_AUTO_TEST_CASE(connect_burst_against_small_unix_backlog) {
    // 500 requests, up to 200 connections at once, a backlog of 4: Linux answers a unix connect
    // beyond the backlog with EAGAIN, which is transient (the server just has not accepted yet).
    backlog_responder server(4);
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {server.where()};
    opts.max_connections_per_endpoint = 200;
    opts.connection.connect_timeout = 5s;
    fcgi::client client(ctx.get_executor(), opts);

    constexpr int total = 500;
    int completed = 0, succeeded = 0;
    std::map<std::string, int> failures;  // message -> count
    for (int i = 0; i < total; ++i) {
        fcgi::request req = make_request(std::to_string(i));
        req.timeout = 20s;
        client.async_request(std::move(req), [&](std::error_code ec, fcgi::response resp) {
            ++completed;
            if (!ec && resp.body == "ok")
                ++succeeded;
            else
                ++failures[ec.message() + " (" + ec.category().name() + ":" +
                           std::to_string(ec.value()) + ")"];
        });
    }
    auto start = steady::now();
    bool all_ended = run_until(
        ctx, [&] { return completed == total; }, 40s);
    auto stats = client.stats();
    BOOST_TEST_MESSAGE("burst: " << completed << " ended, " << succeeded << " succeeded in "
                                 << ms_since(start) << " ms; " << server.accepted()
                                 << " connections accepted; retries " << stats.retries);
    for (const auto& [what, n] : failures)
        BOOST_TEST_MESSAGE("burst: " << n << " x " << what);
    if (!stats.endpoints.empty()) {
        const auto& ep = stats.endpoints.front();
        BOOST_TEST_MESSAGE("burst: connects " << ep.connects << ", connect failures "
                                              << ep.connect_failures);
        for (const auto& [ec, n] : ep.failed_by_reason)
            BOOST_TEST_MESSAGE("burst: failed_by_reason " << ec.message() << ": " << n);
    }
    BOOST_TEST(all_ended, "every request ends: " << completed << " of " << total);
    // Required: EAGAIN is transient, so every request succeeds.
    BOOST_TEST(succeeded == total, succeeded << " of " << total << " succeeded");
}

// A unix socket whose backlog is full and stays full (nobody accepts): every connect is refused
// at once. A request that waits out its deadline says so; it said only "waiting for a
// connection". And fcgi::connection's own connect error explains the errno.
BOOST_AUTO_TEST_CASE(full_unix_backlog_is_named) {
    asio::io_context ctx;
    fcgi::test::temp_dir dir;
    const std::string path = (dir.path / "full.sock").string();
    asio::local::stream_protocol::acceptor never(ctx);
    never.open(asio::local::stream_protocol());
    never.bind(asio::local::stream_protocol::endpoint(path));
    never.listen(0);
    // Fill it: connects succeed until the backlog is full, then Linux refuses them.
    std::vector<asio::local::stream_protocol::socket> fillers;
    for (int i = 0; i < 16; ++i) {
        fillers.emplace_back(ctx);
        fillers.back().open();
        fillers.back().non_blocking(true);
        std::error_code ec;
        fillers.back().connect(asio::local::stream_protocol::endpoint(path), ec);
        if (ec)
            break;
    }
    const auto where = fcgi::endpoint::unix_socket(path);

    fcgi::connection conn(ctx.get_executor());
    std::optional<std::error_code> connect_ec;
    conn.async_connect(where, [&](std::error_code ec) { connect_ec = ec; });
    BOOST_REQUIRE(run_until(ctx, [&] { return connect_ec.has_value(); }));
    BOOST_TEST(
        fcgi::connect_error_text(where, *connect_ec).find("listen backlog") != std::string::npos,
        connect_ec->message());
    // Transient: ENOBUFS (Asio 1.22's EAGAIN here) was neither retryable nor a transport error.
    BOOST_TEST(fcgi::is_retryable(*connect_ec), connect_ec->message());
    BOOST_TEST((*connect_ec == fcgi::condition::transport_error), connect_ec->message());

    // The pool's own connects, and auto_detect's GET_VALUES question, refused alike.
    for (auto mode : {fcgi::multiplexing::off, fcgi::multiplexing::auto_detect}) {
        BOOST_TEST_CONTEXT("auto_detect: " << (mode == fcgi::multiplexing::auto_detect)) {
            fcgi::client_options opts;
            opts.endpoints = {where};
            opts.mode = mode;
            fcgi::client client(ctx.get_executor(), opts);
            auto req = make_request("full");
            req.timeout = 300ms;
            std::optional<std::pair<std::error_code, std::string>> out;
            client.async_request(std::move(req), [&](std::error_code ec, fcgi::response r) {
                out.emplace(ec, r.diagnostics);
            });
            BOOST_REQUIRE(run_until(ctx, [&] { return out.has_value(); }));
            BOOST_TEST(out->first == fcgi::error::request_timeout, out->first.message());
            BOOST_TEST(out->second.find(" connects for a full listen backlog, the last ") !=
                           std::string::npos,
                       out->second);
            client.stop();
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
