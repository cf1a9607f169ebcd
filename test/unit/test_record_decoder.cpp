// record_decoder: byte vectors, every split of every input, errors, boundaries, maximum lengths.
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"
#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"

namespace fcgi::protocol {
// Lets Boost.Test print protocol enums in failure messages (static: one copy per test file).
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, record_type t) {
    return os << to_string(t) << '(' << static_cast<int>(t) << ')';
}
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, protocol_status s) {
    return os << to_string(s) << '(' << static_cast<int>(s) << ')';
}
}  // namespace fcgi::protocol

namespace {

using namespace std::string_literals;
using fcgi::make_error_code;
namespace p = fcgi::protocol;
using p::record_type;

const std::error_code bad_version = make_error_code(fcgi::error::bad_version);
const std::error_code bad_record_length = make_error_code(fcgi::error::bad_record_length);

// ---------------------------------------------------------------------------------------------
// Building wire bytes

std::string header(std::uint8_t type, std::uint16_t id, std::uint16_t length, std::uint8_t pad,
                   std::uint8_t version = 1) {
    std::string h(8, '\0');
    p::encode_header(p::record_header{version, static_cast<record_type>(type), id, length, pad},
                     std::span<char, 8>(h.data(), 8));
    return h;
}

// A whole record with explicit padding (filled with 0xEE, so padding never leaks into content).
std::string record(std::uint8_t type, std::uint16_t id, std::string_view content,
                   std::uint8_t pad) {
    return header(type, id, static_cast<std::uint16_t>(content.size()), pad) +
           std::string(content) + std::string(pad, '\xEE');
}

std::string record(record_type type, std::uint16_t id, std::string_view content) {
    return record(static_cast<std::uint8_t>(type), id, content, p::padding_for(content.size()));
}

std::string pattern(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 7;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Running the decoder over a split input and collecting what comes out

struct decoded_record {
    p::record_header header;
    std::string content;
    std::size_t pieces = 0;
};

struct outcome {
    std::vector<decoded_record> records;
    // Content reassembled per (type, request id), across records.
    std::map<std::pair<int, int>, std::string> streams;
    std::error_code ec;
    std::size_t consumed = 0;  // bytes consumed before the end or the error
    bool at_boundary = false;
};

std::string describe(const p::record_header& h) {
    std::ostringstream os;
    os << "{v" << int(h.version) << " type " << int(h.type) << " id " << h.request_id << " len "
       << h.content_length << " pad " << int(h.padding_length) << "}";
    return os.str();
}

// Feeds `chunks` in order, each until it is used up, and checks the decoder's invariants on
// the way: pieces of one record share its header, non-stream records come whole, the content
// adds up to contentLength, progress is made on every call, errors are sticky.
outcome run(const std::vector<std::string_view>& chunks) {
    p::record_decoder dec;
    outcome out;
    decoded_record current;
    bool in_record = false;
    for (std::string_view chunk : chunks) {
        for (;;) {
            auto r = dec.feed(chunk);
            if (r.consumed > chunk.size())
                BOOST_FAIL("consumed " << r.consumed << " of " << chunk.size());
            if (r.ec) {
                out.ec = r.ec;
                out.consumed += r.consumed;
                if (r.has_piece)
                    BOOST_ERROR("a piece together with an error");
                if (dec.error() != r.ec)
                    BOOST_ERROR("error() differs from the returned error");
                if (dec.at_record_boundary())
                    BOOST_ERROR("at a record boundary after an error");
                // Sticky: whatever comes next gets the same error and is not consumed.
                for (std::string_view more :
                     {chunk.substr(r.consumed), std::string_view("\x01"), std::string_view()}) {
                    auto again = dec.feed(more);
                    if (again.ec != r.ec || again.consumed != 0 || again.has_piece)
                        BOOST_ERROR("error is not sticky");
                }
                return out;
            }
            chunk.remove_prefix(r.consumed);
            out.consumed += r.consumed;
            if (!r.has_piece) {
                if (!chunk.empty())
                    BOOST_FAIL("no progress with " << chunk.size() << " bytes left");
                break;
            }
            const auto& piece = r.piece;
            if (!in_record) {
                current = decoded_record{piece.header, {}, 0};
                in_record = true;
            } else if (!(piece.header == current.header)) {
                BOOST_ERROR("header changed within a record: " << describe(piece.header) << " vs "
                                                               << describe(current.header));
            }
            ++current.pieces;
            if (!p::is_stream(piece.header.type) && !piece.end_of_record)
                BOOST_ERROR("non-stream record in pieces: " << describe(piece.header));
            if (piece.content.empty() && !piece.end_of_record)
                BOOST_ERROR("empty piece in the middle of " << describe(piece.header));
            current.content.append(piece.content);
            out.streams[{int(piece.header.type), piece.header.request_id}].append(piece.content);
            if (piece.end_of_record) {
                if (current.content.size() != piece.header.content_length)
                    BOOST_ERROR("content of " << current.content.size() << " bytes for "
                                              << describe(piece.header));
                out.records.push_back(std::move(current));
                current = decoded_record{};
                in_record = false;
            }
        }
    }
    out.at_boundary = dec.at_record_boundary();
    if (out.at_boundary && in_record)
        BOOST_ERROR("at a record boundary in the middle of a record");
    // An empty feed never produces anything.
    auto r = dec.feed({});
    if (r.consumed != 0 || r.has_piece || r.ec)
        BOOST_ERROR("empty feed did something");
    return out;
}

// True when two runs saw the same records, streams, error and end state; logs the difference.
bool same(const outcome& a, const outcome& b, const std::string& what) {
    bool ok = a.ec == b.ec && a.consumed == b.consumed && a.at_boundary == b.at_boundary &&
              a.records.size() == b.records.size() && a.streams == b.streams;
    for (std::size_t i = 0; ok && i < a.records.size(); ++i)
        ok = a.records[i].header == b.records[i].header &&
             a.records[i].content == b.records[i].content;
    if (!ok)
        BOOST_ERROR(what << ": outcome differs (records " << a.records.size() << " vs "
                         << b.records.size() << ", ec '" << a.ec.message() << "' vs '"
                         << b.ec.message() << "', consumed " << a.consumed << " vs " << b.consumed
                         << ")");
    return ok;
}

// Decodes `wire` whole, then split in two at every position (or every `stride`-th position
// plus the first and last 64), then one byte at a time; every run must agree. Returns the
// whole-input outcome.
outcome decode_every_split(std::string_view wire, std::size_t stride = 1) {
    outcome whole = run({wire});
    bool ok = true;
    for (std::size_t k = 0; k <= wire.size() && ok; ++k) {
        if (stride > 1 && k % stride != 0 && k > 64 && k + 64 < wire.size())
            continue;
        ok = same(run({wire.substr(0, k), wire.substr(k)}), whole, "split at " + std::to_string(k));
    }
    // Three pieces: a header split and a content split in the same run.
    for (std::size_t k = 1; k + 3 <= wire.size() && k < 64 && ok; ++k)
        ok = same(run({wire.substr(0, k), wire.substr(k, 3), wire.substr(k + 3)}), whole,
                  "split at " + std::to_string(k) + " and " + std::to_string(k + 3));
    std::vector<std::string_view> bytes;
    bytes.reserve(wire.size());
    for (std::size_t i = 0; i < wire.size(); ++i)
        bytes.push_back(wire.substr(i, 1));
    same(run(bytes), whole, "one byte at a time");
    return whole;
}

// Feeds `wire` one byte at a time; returns at_record_boundary() after each byte.
std::vector<bool> boundaries(std::string_view wire) {
    p::record_decoder dec;
    std::vector<bool> out;
    for (std::size_t i = 0; i < wire.size(); ++i) {
        std::string_view b = wire.substr(i, 1);
        while (!b.empty()) {
            auto r = dec.feed(b);
            if (r.ec)
                BOOST_FAIL("unexpected error " << r.ec.message());
            b.remove_prefix(r.consumed);
        }
        out.push_back(dec.at_record_boundary());
    }
    return out;
}

const std::string go_66000_stdin =
    header(5, 300, 65535, 1) + std::string(65535, '\0') + std::string(1, '\0') +
    header(5, 300, 465, 7) + std::string(465, '\0') + std::string(7, '\0') + header(5, 300, 0, 0);

const std::string php73_reply_bytes =
    "\x01\x06\x00\x01\x00\x38\x00\x00"s +
    "Status: 404 Not Found\r\nX-Powered-By: PHP/7.3.16\r\n\r\ntest!" +
    "\x01\x03\x00\x01\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"s;

}  // namespace

BOOST_AUTO_TEST_SUITE(record_decoder)

// --- Byte vectors from Go's net/http/fcgi and a real PHP (PROTOCOL.md) -------------------------

BOOST_AUTO_TEST_CASE(go_empty_stdout) {
    auto out = decode_every_split("\x01\x06\x00\x01\x00\x00\x00\x00"s);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == 1u);
    BOOST_TEST(out.records[0].header.type == record_type::stdout_);
    BOOST_TEST(out.records[0].header.request_id == 1);
    BOOST_TEST(out.records[0].content.empty());
    BOOST_TEST(out.records[0].pieces == 1u);
}

BOOST_AUTO_TEST_CASE(go_66000_bytes_of_stdin) {
    BOOST_REQUIRE(go_66000_stdin.size() == 8u + 65536 + 8 + 472 + 8);
    BOOST_TEST(go_66000_stdin.substr(0, 8) == "\x01\x05\x01\x2C\xFF\xFF\x01\x00"s);
    BOOST_TEST(go_66000_stdin.substr(8 + 65536, 8) == "\x01\x05\x01\x2C\x01\xD1\x07\x00"s);
    BOOST_TEST(go_66000_stdin.substr(go_66000_stdin.size() - 8) ==
               "\x01\x05\x01\x2C\x00\x00\x00\x00"s);
    auto out = decode_every_split(go_66000_stdin);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_TEST(out.consumed == go_66000_stdin.size());
    BOOST_REQUIRE(out.records.size() == 3u);
    BOOST_TEST(out.records[0].header.content_length == 65535);
    BOOST_TEST(out.records[1].header.content_length == 465);
    BOOST_TEST(out.records[2].header.content_length == 0);
    BOOST_TEST(out.streams.size() == 1u);
    const std::string& content = out.streams[{5, 300}];
    BOOST_TEST(content.size() == 66000u);
    BOOST_TEST((content == std::string(66000, '\0')));
}

BOOST_AUTO_TEST_CASE(go_66000_bytes_of_stdin_with_real_content) {
    // Same framing with distinct bytes, so a lost, repeated or padding byte would show.
    std::string body = pattern(66000);
    std::string wire = header(5, 300, 65535, 1) + body.substr(0, 65535) + "\xEE" +
                       header(5, 300, 465, 7) + body.substr(65535) + std::string(7, '\xEE') +
                       header(5, 300, 0, 0);
    auto out = decode_every_split(wire, 7);
    BOOST_TEST(!out.ec);
    BOOST_TEST((out.streams[{5, 300}] == body));
}

BOOST_AUTO_TEST_CASE(go_get_values_result_and_extra_empty_record) {
    std::string wire =
        "\x01\x0A\x00\x00\x00\x12\x06\x00"
        "\x0F\x01"
        "FCGI_MPXS_CONNS"
        "1"
        "\x00\x00\x00\x00\x00\x00"
        "\x01\x0A\x00\x00\x00\x00\x00\x00"s;
    auto out = decode_every_split(wire);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == 2u);
    p::get_values_result values;
    for (const auto& r : out.records) {
        BOOST_TEST(r.header.type == record_type::get_values_result);
        BOOST_TEST(r.header.request_id == 0);
        BOOST_TEST(r.pieces == 1u);
        BOOST_TEST(!p::parse_get_values_result(r.content, values));
    }
    BOOST_TEST(values.mpxs_conns.value_or(false) == true);
    BOOST_TEST(values.all.size() == 1u);
    BOOST_TEST(out.records[1].content.empty());
}

BOOST_AUTO_TEST_CASE(go_malformed_params_record) {
    std::string wire =
        "\x01\x04\x00\x01\x00\x0A\x00\x00"
        "\x32\x32\x03\x04\x05\x06\x07\x08\x09\x0A"s;
    // The framing is fine; the pairs inside are not.
    auto out = decode_every_split(wire);
    BOOST_TEST(!out.ec);
    BOOST_REQUIRE(out.records.size() == 1u);
    BOOST_TEST(out.records[0].header.type == record_type::params);
    BOOST_TEST(out.records[0].content.size() == 10u);
    p::name_value_reader reader(out.records[0].content);
    p::name_value nv;
    BOOST_TEST(!reader.next(nv));
    BOOST_TEST(reader.error() == make_error_code(fcgi::error::bad_name_value));
}

BOOST_AUTO_TEST_CASE(php73_reply) {
    auto out = decode_every_split(php73_reply_bytes);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == 2u);
    BOOST_TEST(out.records[0].header.type == record_type::stdout_);
    BOOST_TEST(out.records[0].header.content_length == 56);
    BOOST_TEST(out.records[1].header.type == record_type::end_request);
    BOOST_TEST(out.records[1].header.request_id == 1);
    p::end_request_body end;
    BOOST_TEST(!p::parse_end_request(out.records[1].content, end));
    BOOST_TEST(end.app_status == 0u);
    BOOST_TEST(end.status == p::protocol_status::request_complete);

    p::cgi_head_parser head;
    std::string_view stdout_bytes = out.records[0].content;
    auto r = head.feed(stdout_bytes);
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.done);
    BOOST_TEST(head.status() == 404);
    BOOST_TEST(head.reason() == "Not Found");
    BOOST_REQUIRE(head.headers().size() == 1u);
    BOOST_TEST(head.headers()[0].name == "X-Powered-By");
    BOOST_TEST(head.headers()[0].value == "PHP/7.3.16");
    BOOST_TEST(stdout_bytes.substr(r.consumed) == "test!");
}

BOOST_AUTO_TEST_CASE(php73_reply_pieces_through_head_parser) {
    // The same reply fed one byte at a time: STDOUT pieces go to the head parser as they come,
    // as a client would do, and the body is what is left.
    p::record_decoder dec;
    p::cgi_head_parser head;
    std::string body;
    bool ended = false;
    for (char c : php73_reply_bytes) {
        std::string_view in(&c, 1);
        while (!in.empty()) {
            auto r = dec.feed(in);
            BOOST_REQUIRE(!r.ec);
            in.remove_prefix(r.consumed);
            if (!r.has_piece)
                continue;
            if (r.piece.header.type == record_type::stdout_) {
                std::string_view piece = r.piece.content;
                if (!head.done()) {
                    auto h = head.feed(piece);
                    BOOST_REQUIRE(!h.ec);
                    piece.remove_prefix(h.consumed);
                }
                body.append(piece);
            } else if (r.piece.header.type == record_type::end_request) {
                ended = true;
            }
        }
    }
    BOOST_TEST(ended);
    BOOST_TEST(dec.at_record_boundary());
    BOOST_TEST(head.done());
    BOOST_TEST(head.status() == 404);
    BOOST_TEST(body == "test!");
}

// --- A realistic response stream ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(interleaved_streams_of_several_requests) {
    std::string out1 = pattern(70000, 1);
    std::string err1 = "PHP message: one; PHP message: two";
    std::string out2 = pattern(3000, 2);
    std::string wire;
    wire += record(record_type::stderr_, 1, err1);
    wire += record(record_type::stdout_, 1, std::string_view(out1).substr(0, 32768));
    wire += record(record_type::stdout_, 2, out2);
    wire += record(6, 1, std::string_view(out1).substr(32768, 32767), 255);  // odd padding
    wire += record(record_type::stdout_, 1, std::string_view(out1).substr(65535));
    wire += record(record_type::stdout_, 2, "");
    wire += record(static_cast<std::uint8_t>(record_type::end_request), 2,
                   "\x00\x00\x00\x05\x00\x00\x00\x00"s, 0);
    wire += record(record_type::stderr_, 1, "late");
    wire += record(static_cast<std::uint8_t>(record_type::end_request), 1,
                   "\x00\x00\x00\x00\x00\x00\x00\x00"s, 8);  // padding on a fixed-size record
    auto out = decode_every_split(wire, 13);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_TEST(out.records.size() == 9u);
    BOOST_TEST((out.streams[{6, 1}] == out1));
    BOOST_TEST((out.streams[{7, 1}] == err1 + "late"));
    BOOST_TEST((out.streams[{6, 2}] == out2));
    p::end_request_body end;
    BOOST_TEST(!p::parse_end_request(out.records[6].content, end));
    BOOST_TEST(end.app_status == 5u);
    BOOST_TEST(!p::parse_end_request(out.records[8].content, end));
    BOOST_TEST(end.app_status == 0u);
}

BOOST_AUTO_TEST_CASE(every_type_and_padding_length) {
    // One record of each type 1..11 with valid lengths, with padding from 0 to 7 and 255.
    std::string wire;
    std::size_t expected = 0;
    for (std::uint8_t pad : {0, 1, 7, 255}) {
        wire += record(1, 1, "\x00\x01\x01\x00\x00\x00\x00\x00"s, pad);
        wire += record(2, 1, "", pad);
        wire += record(3, 1, "\x00\x00\x00\x00\x00\x00\x00\x00"s, pad);
        for (std::uint8_t t = 4; t <= 10; ++t)
            wire += record(t, t, pattern(t * 3u, t), pad);
        wire += record(11, 0, "\x0C\x00\x00\x00\x00\x00\x00\x00"s, pad);
        expected += 11;
    }
    auto out = decode_every_split(wire, 3);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == expected);
    for (std::size_t i = 0; i < out.records.size(); ++i) {
        const auto& r = out.records[i];
        auto t = static_cast<std::uint8_t>(r.header.type);
        BOOST_TEST(t == i % 11 + 1);
        if (t >= 4 && t <= 10)
            BOOST_TEST((r.content == pattern(t * 3u, t)));
    }
}

BOOST_AUTO_TEST_CASE(empty_stream_records_with_padding) {
    // An empty record ends a stream even when padded; its end piece comes after the padding.
    std::string wire = record(6, 1, "", 255) + record(7, 1, "", 3) + record(5, 2, "", 0);
    auto out = decode_every_split(wire);
    BOOST_TEST(!out.ec);
    BOOST_REQUIRE(out.records.size() == 3u);
    for (const auto& r : out.records) {
        BOOST_TEST(r.content.empty());
        BOOST_TEST(r.pieces == 1u);
    }
    BOOST_TEST(out.records[0].header.padding_length == 255);
}

BOOST_AUTO_TEST_CASE(request_ids_are_reported) {
    std::string wire = record(record_type::stdout_, 0, "m") + record(record_type::stdout_, 1, "a") +
                       record(record_type::stdout_, 256, "b") +
                       record(record_type::stdout_, 65535, "c");
    auto out = decode_every_split(wire);
    BOOST_REQUIRE(out.records.size() == 4u);
    BOOST_TEST(out.records[0].header.request_id == 0);
    BOOST_TEST(out.records[1].header.request_id == 1);
    BOOST_TEST(out.records[2].header.request_id == 256);
    BOOST_TEST(out.records[3].header.request_id == 65535);
}

// --- Unknown types --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(unknown_types_are_delivered_whole) {
    for (std::uint8_t type : {0, 12, 200, 255}) {
        BOOST_TEST_CONTEXT("type " << int(type)) {
            std::string content = pattern(13, type);
            std::string wire = record(type, 1, content, 3) + record(record_type::stdout_, 1, "x");
            auto out = decode_every_split(wire);
            BOOST_TEST(!out.ec);
            BOOST_REQUIRE(out.records.size() == 2u);
            BOOST_TEST(static_cast<int>(out.records[0].header.type) == int(type));
            BOOST_TEST(out.records[0].pieces == 1u);
            BOOST_TEST((out.records[0].content == content));
            BOOST_TEST(out.records[1].content == "x");
        }
    }
}

BOOST_AUTO_TEST_CASE(unknown_type_of_any_length) {
    // No length rule for types the decoder does not know, including zero and the maximum.
    std::string big = pattern(65535, 9);
    std::string wire = record(12, 0, "", 0) + record(12, 0, "", 6) + record(200, 7, big, 255);
    auto out = decode_every_split(wire, 101);
    BOOST_TEST(!out.ec);
    BOOST_REQUIRE(out.records.size() == 3u);
    BOOST_TEST(out.records[0].content.empty());
    BOOST_TEST(out.records[1].content.empty());
    BOOST_TEST((out.records[2].content == big));
    BOOST_TEST(out.records[2].pieces == 1u);
}

// --- Errors -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(bad_version_first_record) {
    for (std::uint8_t version : {0, 2, 255}) {
        BOOST_TEST_CONTEXT("version " << int(version)) {
            std::string wire = header(6, 1, 5, 3, version) + "hello" + std::string(3, '\0');
            auto out = decode_every_split(wire);
            BOOST_TEST(out.ec == bad_version);
            BOOST_TEST(out.records.empty());
            BOOST_TEST(out.consumed == 8u);
        }
    }
}

BOOST_AUTO_TEST_CASE(bad_version_after_good_records) {
    std::string good = record(record_type::stdout_, 1, "abc") + record(record_type::stderr_, 1, "");
    for (std::uint8_t version : {0, 2}) {
        std::string wire = good + header(3, 1, 8, 0, version) + std::string(8, '\0');
        auto out = decode_every_split(wire);
        BOOST_TEST(out.ec == bad_version);
        BOOST_TEST(out.records.size() == 2u);
        BOOST_TEST(out.consumed == good.size() + 8);
    }
}

BOOST_AUTO_TEST_CASE(http_response_is_bad_version) {
    // Pointing the client at an HTTP server: the first byte is 'H'.
    auto out = decode_every_split("HTTP/1.1 400 Bad Request\r\n\r\n"s);
    BOOST_TEST(out.ec == bad_version);
    BOOST_TEST(out.records.empty());
}

BOOST_AUTO_TEST_CASE(fixed_size_records_with_wrong_length) {
    struct bad_case {
        std::uint8_t type;
        std::uint16_t length;
    };
    const bad_case cases[] = {
        {3, 0},  {3, 7},  {3, 9},     {3, 16}, {3, 65535},  // END_REQUEST
        {1, 0},  {1, 7},  {1, 9},                           // BEGIN_REQUEST
        {11, 0}, {11, 1}, {11, 9},                          // UNKNOWN_TYPE
        {2, 1},  {2, 8},  {2, 65535},                       // ABORT_REQUEST
    };
    for (auto c : cases) {
        BOOST_TEST_CONTEXT("type " << int(c.type) << " length " << c.length) {
            std::string prefix = record(record_type::stdout_, 1, "ok");
            std::string wire = prefix + record(c.type, 1, pattern(c.length), 0);
            auto out = decode_every_split(wire, c.length > 100 ? 97 : 1);
            BOOST_TEST(out.ec == bad_record_length);
            BOOST_TEST(out.records.size() == 1u);
            BOOST_TEST(out.consumed == prefix.size() + 8);
        }
    }
}

// What stopped the decoder, in words a user can act on: the connection puts it in the error's
// diagnostics (once only "undecodable record header").
BOOST_AUTO_TEST_CASE(failure_names_the_offending_header) {
    p::record_decoder dec;
    BOOST_TEST(dec.failure().empty());
    BOOST_TEST(dec.feed(header(3, 1, 7, 0) + pattern(7)).ec == bad_record_length);
    BOOST_TEST(dec.failure() ==
               "END_REQUEST (type 3) for request 1 with content length 7, must be 8");
    dec.reset();
    BOOST_TEST(dec.failure().empty());
    BOOST_TEST(dec.feed(header(2, 513, 1, 0) + "x").ec == bad_record_length);
    BOOST_TEST(dec.failure() ==
               "ABORT_REQUEST (type 2) for request 513 with content length 1, must be 0");

    p::record_decoder http;
    BOOST_TEST(http.feed("HTTP/1.1 400 Bad Request\r\n\r\n"s).ec == bad_version);
    BOOST_TEST(http.failure() ==
               "the first bytes of a record were 48 54 54 50 2f 31 2e 31 (\"HTTP/1.1\"), "
               "version 72");
    p::record_decoder tls;  // a TLS alert: not printable
    BOOST_TEST(tls.feed("\x15\x03\x03\x00\x02\x02\x46\x00"s).ec == bad_version);
    BOOST_TEST(tls.failure() ==
               "the first bytes of a record were 15 03 03 00 02 02 46 00 (\"......F.\"), "
               "version 21");
}

BOOST_AUTO_TEST_CASE(fixed_size_records_with_right_length) {
    std::string wire = record(3, 1, pattern(8), 0) + record(1, 1, pattern(8), 0) +
                       record(11, 0, pattern(8), 0) + record(2, 1, "", 0) +
                       record(2, 1, "", 8);  // ABORT_REQUEST with padding is still valid
    auto out = decode_every_split(wire);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.records.size() == 5u);
    BOOST_TEST(out.at_boundary);
}

BOOST_AUTO_TEST_CASE(error_is_sticky_and_reported) {
    p::record_decoder dec;
    std::string wire = header(3, 1, 4, 4) + "abcd" + std::string(4, '\0');
    auto r = dec.feed(wire);
    BOOST_TEST(r.ec == bad_record_length);
    BOOST_TEST(r.consumed == 8u);
    BOOST_TEST(!r.has_piece);
    BOOST_TEST(dec.error() == bad_record_length);
    BOOST_TEST(!dec.at_record_boundary());
    for (int i = 0; i < 3; ++i) {
        auto again = dec.feed(record(record_type::stdout_, 1, "fine"));
        BOOST_TEST(again.ec == bad_record_length);
        BOOST_TEST(again.consumed == 0u);
        BOOST_TEST(!again.has_piece);
    }
    BOOST_TEST(dec.feed({}).ec == bad_record_length);
}

BOOST_AUTO_TEST_CASE(error_condition_is_protocol_error) {
    p::record_decoder dec;
    auto r = dec.feed("\x02\x06\x00\x01\x00\x00\x00\x00"s);
    BOOST_TEST((r.ec == fcgi::condition::protocol_error));
}

// --- Boundaries -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(at_record_boundary_only_between_records) {
    // Stream record with padding, fixed-size record, split non-stream record with padding,
    // empty padded stream record, stream record without padding.
    std::vector<std::string> records = {
        record(6, 1, "hello", 3),
        record(3, 1, std::string(8, '\0'), 0),
        record(10, 0,
               "\x01\x01"
               "ab",
               4),
        record(7, 1, "", 5),
        record(6, 1, "12345678", 0),
        record(2, 1, "", 0),
    };
    std::string wire;
    std::vector<bool> expected;
    for (const auto& rec : records) {
        wire += rec;
        for (std::size_t i = 1; i <= rec.size(); ++i)
            expected.push_back(i == rec.size());  // false mid-header, mid-content, mid-padding
    }
    p::record_decoder fresh;
    BOOST_TEST(fresh.at_record_boundary());
    auto got = boundaries(wire);
    BOOST_REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i)
        BOOST_TEST(got[i] == expected[i], "after byte " << i + 1);
}

// Fed a byte at a time: the record under way is known from its header's last byte until its
// padding's last byte, and never within a header or between records.
BOOST_AUTO_TEST_CASE(record_under_way_from_header_to_padding) {
    const std::string records[] = {
        record(6, 513, "hello", 3),             // stream record with padding
        record(3, 2, std::string(8, '\0'), 0),  // fixed-size record, no padding
        record(10, 0,
               "\x01\x01"
               "ab",
               4),                // non-stream record, split, padded
        record(7, 65535, "", 5),  // empty stream record with padding
    };
    p::record_decoder dec;
    BOOST_TEST(!dec.record_under_way().has_value());
    for (const auto& rec : records) {
        const auto expected = p::decode_header(std::span<const char, 8>(rec.data(), 8));
        for (std::size_t i = 0; i < rec.size(); ++i) {
            std::string_view b(rec.data() + i, 1);
            while (!b.empty()) {
                auto r = dec.feed(b);
                BOOST_REQUIRE(!r.ec);
                b.remove_prefix(r.consumed);
            }
            auto under_way = dec.record_under_way();
            BOOST_TEST_CONTEXT("type " << int(rec[1]) << ", after byte " << i + 1) {
                BOOST_TEST(under_way.has_value() == (i >= 7 && i + 1 < rec.size()));
                if (under_way)
                    BOOST_TEST((*under_way == expected));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(boundary_after_whole_records_in_one_feed) {
    p::record_decoder dec;
    std::string wire = php73_reply_bytes;
    std::string_view in = wire;
    auto r = dec.feed(in);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(r.piece.end_of_record);
    BOOST_TEST(r.consumed == 8u + 56);  // one record per call
    BOOST_TEST(dec.at_record_boundary());
    in.remove_prefix(r.consumed);
    r = dec.feed(in);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(r.piece.header.type == record_type::end_request);
    BOOST_TEST(r.consumed == 16u);
    BOOST_TEST(dec.at_record_boundary());
    // END_REQUEST ended exactly at the end of the bytes read: the connection may be reused.
    BOOST_TEST(r.consumed == in.size());
}

// --- Zero copy ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(stream_content_views_the_input) {
    std::string wire = record(record_type::stdout_, 1, pattern(1000));
    p::record_decoder dec;
    // Split inside the content: both pieces point into the caller's bytes.
    std::string_view a = std::string_view(wire).substr(0, 508);
    std::string_view b = std::string_view(wire).substr(508);
    auto r = dec.feed(a);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(!r.piece.end_of_record);
    BOOST_TEST(static_cast<const void*>(r.piece.content.data()) ==
               static_cast<const void*>(a.data() + 8));
    BOOST_TEST(r.piece.content.size() == 500u);
    r = dec.feed(b);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(r.piece.end_of_record);
    BOOST_TEST(static_cast<const void*>(r.piece.content.data()) ==
               static_cast<const void*>(b.data()));
    BOOST_TEST(r.piece.content.size() == 500u);
}

BOOST_AUTO_TEST_CASE(whole_non_stream_record_views_the_input) {
    std::string wire = record(record_type::end_request, 1, std::string(8, '\x07'));
    p::record_decoder dec;
    auto r = dec.feed(wire);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(static_cast<const void*>(r.piece.content.data()) ==
               static_cast<const void*>(wire.data() + 8));
}

BOOST_AUTO_TEST_CASE(split_non_stream_record_is_buffered) {
    std::string content = pattern(1000);
    std::string wire = record(record_type::get_values_result, 0, content);
    p::record_decoder dec;
    auto r = dec.feed(std::string_view(wire).substr(0, 400));
    BOOST_TEST(!r.has_piece);
    BOOST_TEST(r.consumed == 400u);
    std::string rest = wire.substr(400);
    r = dec.feed(rest);
    BOOST_TEST(r.has_piece);
    BOOST_TEST((r.piece.content == content));
    // The first 392 content bytes are gone from the caller's buffers: the decoder kept them.
    BOOST_TEST(static_cast<const void*>(r.piece.content.data()) !=
               static_cast<const void*>(rest.data()));
}

// --- Maximum lengths ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(max_length_stream_record) {
    std::string content = pattern(65535, 3);
    std::string wire =
        record(6, 1, content, 255) + record(6, 1, "", 0) + record(3, 1, std::string(8, '\0'), 0);
    auto out = decode_every_split(wire, 61);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == 3u);
    BOOST_TEST(out.records[0].header.content_length == 65535);
    BOOST_TEST(out.records[0].header.padding_length == 255);
    BOOST_TEST((out.records[0].content == content));
}

BOOST_AUTO_TEST_CASE(max_length_non_stream_record) {
    std::string content = pattern(65535, 4);
    std::string wire = record(10, 0, content, 255) + record(10, 0, content, 255) +
                       record(record_type::stdout_, 1, "after");
    auto out = decode_every_split(wire, 67);
    BOOST_TEST(!out.ec);
    BOOST_TEST(out.at_boundary);
    BOOST_REQUIRE(out.records.size() == 3u);
    for (int i = 0; i < 2; ++i) {
        BOOST_TEST(out.records[i].pieces == 1u);
        BOOST_TEST((out.records[i].content == content));
    }
    BOOST_TEST(out.records[2].content == "after");
}

BOOST_AUTO_TEST_CASE(records_padded_at_exactly_65535) {
    // A 65535-byte record needs one padding byte; 65528 needs none (our own writer's size).
    std::string a = pattern(65535, 5);
    std::string b = pattern(65528, 6);
    std::string wire = record(record_type::stdout_, 1, a) + record(record_type::stdout_, 1, b) +
                       record(record_type::stdout_, 1, "");
    BOOST_TEST(wire.substr(0, 8) == "\x01\x06\x00\x01\xFF\xFF\x01\x00"s);
    auto out = decode_every_split(wire, 59);
    BOOST_TEST(!out.ec);
    BOOST_TEST((out.streams[{6, 1}] == a + b));
}

// --- reset() --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(reset_after_error) {
    p::record_decoder dec;
    BOOST_TEST(dec.feed("\x00\x06\x00\x01\x00\x00\x00\x00"s).ec == bad_version);
    dec.reset();
    BOOST_TEST(!dec.error());
    BOOST_TEST(dec.at_record_boundary());
    std::string wire = record(record_type::stdout_, 1, "fresh");
    auto r = dec.feed(wire);
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.has_piece);
    BOOST_TEST(r.piece.content == "fresh");
    BOOST_TEST(r.piece.end_of_record);
}

BOOST_AUTO_TEST_CASE(reset_mid_record) {
    std::string first = record(record_type::stdout_, 1, pattern(100));
    std::string second = record(record_type::get_values_result, 0, pattern(50));
    std::string next = record(record_type::stderr_, 2, "new connection");
    for (std::size_t cut : {std::size_t{3}, std::size_t{8}, std::size_t{50}, first.size() - 1}) {
        p::record_decoder dec;
        std::string_view in = std::string_view(first).substr(0, cut);
        while (!in.empty())
            in.remove_prefix(dec.feed(in).consumed);
        BOOST_TEST(!dec.at_record_boundary());
        dec.reset();
        BOOST_TEST(dec.at_record_boundary());
        auto r = dec.feed(next);
        BOOST_TEST(r.has_piece);
        BOOST_TEST(r.piece.header.request_id == 2);
        BOOST_TEST(r.piece.content == "new connection");
    }
    // Mid buffered non-stream record: the old bytes must not leak into the next one.
    p::record_decoder dec;
    dec.feed(std::string_view(second).substr(0, 30));
    dec.reset();
    std::string third = record(record_type::get_values_result, 0,
                               "\x01\x01"
                               "ab");
    auto whole = dec.feed(std::string_view(third).substr(0, 9));
    BOOST_TEST(!whole.has_piece);
    whole = dec.feed(std::string_view(third).substr(9));
    BOOST_TEST(whole.has_piece);
    BOOST_TEST(whole.piece.content ==
               "\x01\x01"
               "ab");
}

BOOST_AUTO_TEST_CASE(empty_feed_on_fresh_decoder) {
    p::record_decoder dec;
    auto r = dec.feed({});
    BOOST_TEST(r.consumed == 0u);
    BOOST_TEST(!r.has_piece);
    BOOST_TEST(!r.ec);
    BOOST_TEST(dec.at_record_boundary());
}

BOOST_AUTO_TEST_CASE(long_stream_in_small_reads) {
    // Many records fed in reads that never line up with them.
    std::string body = pattern(500000, 11);
    std::string wire;
    for (std::size_t off = 0, i = 0; off < body.size(); ++i) {
        std::size_t n = std::min<std::size_t>(body.size() - off, 1 + (i * 7919) % 40000);
        wire += record(6, 1, std::string_view(body).substr(off, n), static_cast<std::uint8_t>(i));
        off += n;
    }
    wire += record(3, 1, std::string(8, '\0'), 0);
    for (std::size_t read : {1, 7, 8, 9, 1000, 4096, 65536}) {
        std::vector<std::string_view> chunks;
        for (std::size_t off = 0; off < wire.size(); off += read)
            chunks.push_back(std::string_view(wire).substr(off, read));
        auto out = run(chunks);
        BOOST_TEST(!out.ec);
        BOOST_TEST(out.at_boundary);
        BOOST_TEST((out.streams[{6, 1}] == body), "reads of " << read);
    }
}

BOOST_AUTO_TEST_SUITE_END()
