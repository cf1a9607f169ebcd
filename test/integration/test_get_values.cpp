// fcgi::async_get_values against a private php-fpm and against scripted servers on a unix socket.
#include <unistd.h>

#include <array>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "fcgi/connection.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "support/php_fpm.hpp"
#include "support/refusing_port.hpp"
#include "support/temp_file.hpp"
#include "support/unaccepted_listener.hpp"

using fcgi::test::php_fpm;
using namespace std::chrono_literals;
namespace proto = fcgi::protocol;

namespace {

struct outcome {
    std::error_code ec;
    proto::get_values_result result;
};

// Runs async_get_values to completion; checks it did not complete inside the initiating call.
outcome probe(asio::io_context& ctx, const fcgi::endpoint& ep, fcgi::get_values_options opts = {}) {
    std::optional<outcome> out;
    fcgi::async_get_values(ctx.get_executor(), ep, opts,
                           [&](std::error_code ec, proto::get_values_result r) {
                               out = outcome{ec, std::move(r)};
                           });
    BOOST_TEST(!out.has_value());  // never inline
    ctx.restart();
    ctx.run_for(20s);
    BOOST_REQUIRE_MESSAGE(out.has_value(), "async_get_values did not complete within 20 s");
    return *out;
}

// A one-shot server on a unix socket in a temp dir: reads the GET_VALUES record, checks its
// bytes, answers with `reply`, then closes or holds the connection until the client closes.
class scripted_server {
  public:
    explicit scripted_server(asio::io_context& ctx) : acceptor_(ctx) {
        path_ = (dir_.path / "s.sock").string();
        asio::local::stream_protocol::endpoint ep(path_);
        acceptor_.open(ep.protocol());
        acceptor_.bind(ep);
        acceptor_.listen();
    }
    ~scripted_server() {
        std::error_code ec;
        acceptor_.close(ec);
    }

    fcgi::endpoint endpoint() const { return fcgi::endpoint::unix_socket(path_); }

    /// Serves one connection. `reply_after_request`: read the request before answering.
    void serve(std::string reply, bool close_after, bool reply_after_request = true) {
        asio::co_spawn(acceptor_.get_executor(),
                       run(std::move(reply), close_after, reply_after_request), asio::detached);
    }

    /// The bytes the client sent, once read.
    const std::string& received() const { return received_; }
    /// True once the client closed its end.
    bool saw_client_close() const { return client_closed_; }

  private:
    asio::awaitable<void> run(std::string reply, bool close_after, bool read_first) {
        constexpr auto tuple = asio::experimental::as_tuple(asio::use_awaitable);
        auto [aec, sock] = co_await acceptor_.async_accept(tuple);
        if (aec)
            co_return;
        if (read_first) {
            std::array<char, 8> header;
            auto [hec, hn] = co_await asio::async_read(sock, asio::buffer(header), tuple);
            if (hec)
                co_return;
            std::size_t rest =
                (std::uint8_t(header[4]) << 8 | std::uint8_t(header[5])) + std::uint8_t(header[6]);
            std::string body(rest, '\0');
            auto [bec, bn] = co_await asio::async_read(sock, asio::buffer(body), tuple);
            if (bec)
                co_return;
            received_ = std::string(header.data(), header.size()) + body;
        }
        if (!reply.empty())
            co_await asio::async_write(sock, asio::buffer(reply), tuple);
        if (close_after)
            co_return;
        char c;
        auto [rec, n] = co_await sock.async_read_some(asio::buffer(&c, 1), tuple);
        client_closed_ = rec == asio::error::eof;
    }

    asio::local::stream_protocol::acceptor acceptor_;
    fcgi::test::temp_dir dir_;
    std::string path_;
    std::string received_;
    bool client_closed_ = false;
};

std::string expected_request() {
    std::array<std::string_view, 3> names{proto::max_conns_name, proto::max_reqs_name,
                                          proto::mpxs_conns_name};
    return proto::encode_get_values(names);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(get_values)

BOOST_AUTO_TEST_CASE(php_fpm_reports_no_multiplexing) {
    php_fpm fpm({.children = 1});
    asio::io_context ctx;
    for (const auto& ep : {fpm.unix_endpoint(), fpm.tcp_endpoint()}) {
        BOOST_TEST_CONTEXT(ep) {
            auto o = probe(ctx, fcgi::endpoint::parse(ep));
            BOOST_TEST(!o.ec, o.ec.message());
            BOOST_REQUIRE(o.result.mpxs_conns.has_value());
            BOOST_TEST(*o.result.mpxs_conns == false);
            BOOST_TEST(!o.result.max_conns.has_value());
            BOOST_TEST(!o.result.max_reqs.has_value());
            BOOST_REQUIRE(o.result.all.size() == 1u);
            BOOST_TEST(o.result.all[0].first == "FCGI_MPXS_CONNS");
            BOOST_TEST(o.result.all[0].second == "0");
        }
    }
    // php-fpm does not close the probe's connection itself; with one worker per listener, a
    // request after the probe is answered only if the probe closed its connection.
    fcgi::connection conn(ctx.get_executor());
    std::optional<fcgi::response> resp;
    std::error_code rec;
    conn.async_connect(fcgi::endpoint::parse(fpm.unix_endpoint()), [&](std::error_code ec) {
        BOOST_TEST(!ec);
        fcgi::request req;
        req.script = php_fpm::script("hello.php");
        req.timeout = 10s;
        conn.async_request(std::move(req), [&](std::error_code ec2, fcgi::response r) {
            rec = ec2;
            resp = std::move(r);
            conn.close();  // its always-armed reader would keep run_for busy until the limit
        });
    });
    ctx.restart();
    ctx.run_for(20s);
    BOOST_REQUIRE(resp.has_value());
    BOOST_TEST(!rec, rec.message() << ": " << resp->diagnostics);
    BOOST_TEST(resp->body == "Hello, world!\n");
}

BOOST_AUTO_TEST_CASE(missing_socket_is_an_error) {
    asio::io_context ctx;
    fcgi::test::temp_socket_path missing;  // nothing listens there
    auto o = probe(ctx, fcgi::endpoint::unix_socket(missing.path));
    // Asio 1.22 reports socket errors in its own "asio.system" category, which does not map
    // them to std::errc conditions: compare the values.
    BOOST_TEST((o.ec.category() == asio::error::get_system_category()));
    BOOST_TEST(o.ec.value() == ENOENT, o.ec.message());
    BOOST_TEST(o.result.all.empty());

    fcgi::test::refusing_port closed;
    auto t = probe(ctx, fcgi::endpoint::tcp("127.0.0.1", closed.port()));
    BOOST_TEST((t.ec == asio::error::connection_refused), t.ec.message());
}

BOOST_AUTO_TEST_CASE(go_style_reply_with_extra_empty_record) {
    asio::io_context ctx;
    scripted_server server(ctx);
    // Go's net/http/fcgi reply, byte for byte (PROTOCOL.md).
    std::string reply("\x01\x0a\x00\x00\x00\x12\x06\x00", 8);
    reply += std::string("\x0f\x01", 2) + "FCGI_MPXS_CONNS" + "1" + std::string(6, '\0');
    reply += std::string("\x01\x0a\x00\x00\x00\x00\x00\x00", 8);
    server.serve(reply, false);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(!o.ec, o.ec.message());
    BOOST_TEST(server.received() == expected_request());
    BOOST_REQUIRE(o.result.mpxs_conns.has_value());
    BOOST_TEST(*o.result.mpxs_conns);
    BOOST_TEST(o.result.all.size() == 1u);
    ctx.restart();
    ctx.run_for(5s);  // lets the server see the close
    BOOST_TEST(server.saw_client_close());
}

// What follows the answer, broken or not, changes nothing: in a later read it is never read, and
// in the answer's own read it must not be either.
BOOST_AUTO_TEST_CASE(answer_followed_by_broken_bytes_stands) {
    std::array<proto::name_value, 1> values{{{"FCGI_MPXS_CONNS", "1"}}};
    const std::string answer = proto::encode_get_values_result(values);
    // A GET_VALUES_RESULT whose one pair claims a 127-byte value that is not there.
    std::string broken_answer("\x01\x0a\x00\x00\x00\x11\x07\x00", 8);
    broken_answer += std::string("\x0f\x7f", 2) + "FCGI_MPXS_CONNS" + std::string(7, '\0');
    const std::pair<const char*, std::string> followers[] = {
        {"an HTTP status line", "HTTP/1.1 200 OK\r\n"},
        {"END_REQUEST of 3 bytes",
         std::string("\x01\x03\x00\x01\x00\x03\x05\x00", 8) + "abc" + std::string(5, '\0')},
        {"a broken second answer", broken_answer},
    };
    for (const auto& [what, follower] : followers) {
        BOOST_TEST_CONTEXT(what) {
            asio::io_context ctx;
            scripted_server server(ctx);
            server.serve(answer + follower, false);
            auto o = probe(ctx, server.endpoint());
            BOOST_TEST(!o.ec, o.ec.message());
            BOOST_TEST((o.result.mpxs_conns == std::optional<bool>(true)));
            BOOST_TEST(o.result.all.size() == 1u);  // nothing of the broken record merged
        }
    }
}

BOOST_AUTO_TEST_CASE(all_three_values) {
    asio::io_context ctx;
    scripted_server server(ctx);
    std::array<proto::name_value, 3> values{
        {{"FCGI_MAX_CONNS", "10"}, {"FCGI_MAX_REQS", "50"}, {"FCGI_MPXS_CONNS", "1"}}};
    server.serve(proto::encode_get_values_result(values), true);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(!o.ec, o.ec.message());
    BOOST_TEST((o.result.max_conns == std::optional<std::uint32_t>(10)));
    BOOST_TEST((o.result.max_reqs == std::optional<std::uint32_t>(50)));
    BOOST_TEST((o.result.mpxs_conns == std::optional<bool>(true)));
    BOOST_TEST(o.result.all.size() == 3u);
}

BOOST_AUTO_TEST_CASE(unknown_type_reply) {
    asio::io_context ctx;
    scripted_server server(ctx);
    auto rec =
        proto::encode_unknown_type(static_cast<std::uint8_t>(proto::record_type::get_values));
    server.serve(std::string(rec.data(), rec.size()), false);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(o.ec == fcgi::error::unknown_type_reply, o.ec.message());
    BOOST_TEST((o.ec == fcgi::condition::protocol_error));
}

// UNKNOWN_TYPE naming a type the probe never sent does not say GET_VALUES is unsupported.
BOOST_AUTO_TEST_CASE(unknown_type_for_another_type_is_unexpected) {
    asio::io_context ctx;
    scripted_server server(ctx);
    auto rec = proto::encode_unknown_type(static_cast<std::uint8_t>(proto::record_type::stdin_));
    server.serve(std::string(rec.data(), rec.size()), false);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(o.ec == fcgi::error::unexpected_record, o.ec.message());
}

BOOST_AUTO_TEST_CASE(other_record_is_unexpected) {
    asio::io_context ctx;
    scripted_server server(ctx);
    auto rec = proto::encode_end_request(1, {});
    server.serve(std::string(rec.data(), rec.size()), false);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(o.ec == fcgi::error::unexpected_record, o.ec.message());
}

// Management records carry request ID 0 (FastCGI 1.0, 3.3): a GET_VALUES_RESULT for request 1
// answers no GET_VALUES, and neither does an UNKNOWN_TYPE for it.
BOOST_AUTO_TEST_CASE(management_reply_with_a_request_id_is_unexpected) {
    std::string result("\x01\x0a\x00\x01\x00\x12\x06\x00", 8);
    result += std::string("\x0f\x01", 2) + "FCGI_MPXS_CONNS" + "1" + std::string(6, '\0');
    auto unknown =
        proto::encode_unknown_type(static_cast<std::uint8_t>(proto::record_type::get_values));
    std::string unknown_for_1(unknown.data(), unknown.size());
    unknown_for_1[3] = '\x01';
    const std::pair<const char*, std::string> replies[] = {{"GET_VALUES_RESULT", result},
                                                           {"UNKNOWN_TYPE", unknown_for_1}};
    for (const auto& [what, reply] : replies) {
        BOOST_TEST_CONTEXT(what) {
            asio::io_context ctx;
            scripted_server server(ctx);
            server.serve(reply, false);
            auto o = probe(ctx, server.endpoint());
            BOOST_TEST(o.ec == fcgi::error::unexpected_record, o.ec.message());
            BOOST_TEST(!o.result.mpxs_conns.has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_version_is_a_protocol_error) {
    asio::io_context ctx;
    scripted_server server(ctx);
    server.serve("HTTP/1.1 400 Bad Request\r\n\r\n", false);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(o.ec == fcgi::error::bad_version, o.ec.message());
}

BOOST_AUTO_TEST_CASE(close_before_reply_is_connection_lost) {
    asio::io_context ctx;
    scripted_server server(ctx);
    server.serve({}, true);
    auto o = probe(ctx, server.endpoint());
    BOOST_TEST(o.ec == fcgi::error::connection_lost, o.ec.message());
}

BOOST_AUTO_TEST_CASE(silent_server_times_out) {
    asio::io_context ctx;
    scripted_server server(ctx);
    server.serve({}, false);  // reads the request, never answers
    auto start = std::chrono::steady_clock::now();
    auto o = probe(ctx, server.endpoint(), {.connect_timeout = 5s, .timeout = 200ms});
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(o.ec == fcgi::error::request_timeout, o.ec.message());
    BOOST_TEST(took < 5s);
    ctx.restart();
    ctx.run_for(5s);
    BOOST_TEST(server.saw_client_close());
}

// A connect that never completes (its SYN dropped: here the accept queue of a listener that
// never accepts is full) is reported as connect_timeout when the overall deadline ends it, not
// as request_timeout, which says the server took the question and did not answer.
BOOST_AUTO_TEST_CASE(connect_pending_at_the_deadline_is_connect_timeout,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    asio::io_context ctx;
    fcgi::test::unaccepted_listener listener;
    auto o = probe(ctx, listener.endpoint(), {.connect_timeout = 5s, .timeout = 300ms});
    BOOST_TEST(o.ec == fcgi::error::connect_timeout, o.ec.message());
}

BOOST_AUTO_TEST_CASE(cancellation_through_the_slot) {
    asio::io_context ctx;
    scripted_server server(ctx);
    server.serve({}, false);
    asio::cancellation_signal signal;
    std::optional<std::error_code> result;
    fcgi::async_get_values(
        ctx.get_executor(), server.endpoint(), {},
        asio::bind_cancellation_slot(
            signal.slot(), [&](std::error_code ec, proto::get_values_result) { result = ec; }));
    // Cancel once the request has reached the server: the probe is then waiting for a reply.
    while (server.received().empty() && ctx.run_one_for(5s) > 0) {
    }
    BOOST_REQUIRE(!server.received().empty());
    signal.emit(asio::cancellation_type::partial);
    ctx.run_for(5s);
    BOOST_REQUIRE(result.has_value());
    BOOST_TEST(*result == asio::error::operation_aborted, result->message());
    BOOST_TEST(server.saw_client_close());
}

BOOST_AUTO_TEST_CASE(use_awaitable_token) {
    asio::io_context ctx;
    scripted_server server(ctx);
    std::array<proto::name_value, 1> values{{{"FCGI_MPXS_CONNS", "0"}}};
    server.serve(proto::encode_get_values_result(values), true);
    std::optional<bool> mpxs;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto r = co_await fcgi::async_get_values(co_await asio::this_coro::executor,
                                                     server.endpoint(), {}, asio::use_awaitable);
            mpxs = r.mpxs_conns;
        },
        asio::detached);
    ctx.run_for(10s);
    BOOST_TEST((mpxs == std::optional<bool>(false)));
}

// use_future's executor lacks outstanding_work: any_handler must not keep a reference to it.
BOOST_AUTO_TEST_CASE(use_future_token) {
    asio::io_context ctx;
    scripted_server server(ctx);
    std::array<proto::name_value, 1> values{{{"FCGI_MPXS_CONNS", "0"}}};
    server.serve(proto::encode_get_values_result(values), true);
    auto work = asio::make_work_guard(ctx);
    std::thread runner([&] { ctx.run_for(20s); });
    auto fut = fcgi::async_get_values(ctx.get_executor(), server.endpoint(), {}, asio::use_future);
    bool ready = fut.wait_for(10s) == std::future_status::ready;
    work.reset();
    ctx.stop();
    runner.join();
    BOOST_REQUIRE(ready);
    BOOST_TEST((fut.get().mpxs_conns == std::optional<bool>(false)));
}

BOOST_AUTO_TEST_SUITE_END()
