// libfcgi 2.4.2 (Debian 12) at the byte level: the facts behind its row of the peer table that
// asio-fcgi's client cannot produce by itself (it never interleaves the records of two
// requests), read from libfcgi/fcgiapp.c and pinned here.
#include <array>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "peers.hpp"
#include "support/fake_responder.hpp"
#include "support/run_until.hpp"

namespace conf = fcgi::conformance;
namespace proto = fcgi::protocol;
using fcgi::test::make_record;
using proto::record_type;
using namespace std::chrono_literals;

namespace libfcgi_helpers {

struct raw_record {
    record_type type;
    std::uint16_t id;
    std::string content;
};

// A hand-driven connection to a peer's unix socket: writes bytes as given, collects whole
// records as they arrive.
class raw_connection {
  public:
    raw_connection(asio::io_context& ctx, const fcgi::endpoint& ep) : sock_(ctx) {
        sock_.connect(asio::local::stream_protocol::endpoint(ep.path));
        arm();
    }

    void send(const std::string& bytes) { asio::write(sock_, asio::buffer(bytes)); }

    const std::vector<raw_record>& records() const { return records_; }

    const raw_record* find(record_type type, std::uint16_t id) const {
        for (const auto& r : records_)
            if (r.type == type && r.id == id)
                return &r;
        return nullptr;
    }

  private:
    void arm() {
        sock_.async_read_some(asio::buffer(buf_), [this](std::error_code ec, std::size_t n) {
            if (ec)
                return;
            std::string_view in(buf_.data(), n);
            while (!in.empty()) {
                auto r = decoder_.feed(in);
                in.remove_prefix(r.consumed);
                if (r.ec)
                    return;
                if (!r.has_piece)
                    continue;
                partial_.append(r.piece.content);
                if (r.piece.end_of_record) {
                    records_.push_back(
                        {r.piece.header.type, r.piece.header.request_id, std::move(partial_)});
                    partial_.clear();
                }
            }
            arm();
        });
    }

    asio::local::stream_protocol::socket sock_;
    std::array<char, 65536> buf_{};
    proto::record_decoder decoder_;
    std::string partial_;
    std::vector<raw_record> records_;
};

std::string pairs(const std::vector<std::pair<std::string, std::string>>& nv) {
    std::string out;
    for (const auto& [n, v] : nv) {
        std::string buf(proto::encoded_size(n, v), '\0');
        proto::encode_name_value(buf.data(), n, v);
        out += buf;
    }
    return out;
}

std::string begin(std::uint16_t id) {
    auto b = proto::encode_begin_request(id, proto::role::responder, proto::begin_flags::keep_conn);
    return std::string(b.data(), b.size());
}

std::string post_params(std::uint16_t id, std::size_t content_length) {
    return make_record(record_type::params, id,
                       pairs({{"REQUEST_METHOD", "POST"},
                              {"SERVER_PROTOCOL", "HTTP/1.1"},
                              {"REQUEST_URI", "/raw"},
                              {"CONTENT_LENGTH", std::to_string(content_length)}})) +
           make_record(record_type::params, id, "");
}

std::string get_values(const std::vector<std::string>& names) {
    std::vector<std::pair<std::string, std::string>> nv;
    for (const auto& n : names)
        nv.emplace_back(n, "");
    return make_record(record_type::get_values, 0, pairs(nv));
}

}  // namespace libfcgi_helpers

using namespace libfcgi_helpers;

BOOST_AUTO_TEST_SUITE(libfcgi_facts)

// FillBuffProc refills its buffer before it checks for the end of the record, so a GET_VALUES
// record that is the last thing sent waits until more bytes arrive; then it is answered with
// MAX_CONNS=1, MAX_REQS=1, MPXS_CONNS=0. A client probing with GET_VALUES alone times out.
BOOST_AUTO_TEST_CASE(get_values_is_answered_only_when_more_bytes_follow) {
    auto peer = conf::start_peer("libfcgi");
    asio::io_context ctx;
    raw_connection c(ctx, peer->endpoint());
    c.send(get_values({"FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"}));
    // An absence can only be observed for a while: 300 ms is ample on loopback.
    BOOST_TEST(!fcgi::test::run_until(
        ctx, [&] { return !c.records().empty(); }, 300ms));
    c.send(get_values({"FCGI_MPXS_CONNS"}));
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return !c.records().empty(); }, 10s));
    const auto& r = c.records().front();
    BOOST_TEST(static_cast<int>(r.type) == static_cast<int>(record_type::get_values_result));
    proto::get_values_result result;
    BOOST_REQUIRE(!proto::parse_get_values_result(r.content, result));
    std::string all;
    for (const auto& [n, v] : result.all)
        all += n + "=" + v + ";";
    BOOST_TEST(all == "FCGI_MAX_CONNS=1;FCGI_MAX_REQS=1;FCGI_MPXS_CONNS=0;");
}

// ProcessBeginRecord answers a BEGIN_REQUEST that arrives while another request's PARAMS or
// STDIN is still being read with END_REQUEST(CANT_MPX_CONN) and skips that request's records.
// Found on the way: skipping an empty record leaves libfcgi's skip flag set, so the next record
// of the live request is dropped too (here STDIN "b").
BOOST_AUTO_TEST_CASE(interleaved_begin_request_gets_cant_mpx_conn) {
    auto peer = conf::start_peer("libfcgi");
    asio::io_context ctx;
    raw_connection c(ctx, peer->endpoint());
    c.send(begin(1) + post_params(1, 2) + make_record(record_type::stdin_, 1, "a") + begin(2) +
           post_params(2, 2) + make_record(record_type::stdin_, 2, "xy") +
           make_record(record_type::stdin_, 2, "") + make_record(record_type::stdin_, 1, "b") +
           make_record(record_type::stdin_, 1, ""));
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return c.find(record_type::end_request, 1) != nullptr; }, 10s));
    auto* refused = c.find(record_type::end_request, 2);
    BOOST_REQUIRE(refused);
    proto::end_request_body end;
    BOOST_REQUIRE(!proto::parse_end_request(refused->content, end));
    BOOST_TEST(static_cast<int>(end.status) ==
               static_cast<int>(proto::protocol_status::cant_mpx_conn));
    BOOST_REQUIRE(!proto::parse_end_request(c.find(record_type::end_request, 1)->content, end));
    BOOST_TEST(static_cast<int>(end.status) ==
               static_cast<int>(proto::protocol_status::request_complete));
    std::string out;
    for (const auto& r : c.records())
        if (r.type == record_type::stdout_ && r.id == 1)
            out += r.content;
    BOOST_TEST(out.ends_with("\nbody=a"),
               "libfcgi's skip flag no longer eats the record after "
               "a skipped empty one? body: "
                   << out);
    BOOST_TEST(!c.find(record_type::stdout_, 2));
}

// Two whole requests in one write, as a client multiplexing without asking sends them: libfcgi
// reads both into the first request's 8 KiB input buffer, which FCGX_Finish_r frees with the
// second request in it. The second is never answered and nothing says so.
BOOST_AUTO_TEST_CASE(second_request_in_the_same_read_is_lost) {
    auto peer = conf::start_peer("libfcgi");
    asio::io_context ctx;
    raw_connection c(ctx, peer->endpoint());
    auto whole = [](std::uint16_t id) {
        return begin(id) + post_params(id, 2) + make_record(record_type::stdin_, id, "ab") +
               make_record(record_type::stdin_, id, "");
    };
    c.send(whole(1) + whole(2));
    BOOST_REQUIRE(fcgi::test::run_until(
        ctx, [&] { return c.find(record_type::end_request, 1) != nullptr; }, 10s));
    // An absence can only be observed for a while: 500 ms is ample on loopback.
    BOOST_TEST(!fcgi::test::run_until(
        ctx, [&] { return c.find(record_type::end_request, 2) != nullptr; }, 500ms));
    BOOST_TEST(!c.find(record_type::stdout_, 2));
    // The connection itself still serves a request written after that.
    c.send(whole(3));
    BOOST_TEST(fcgi::test::run_until(
        ctx, [&] { return c.find(record_type::end_request, 3) != nullptr; }, 10s));
}

BOOST_AUTO_TEST_SUITE_END()
