// request_encoder: exact bytes, PARAMS packing, STDIN/DATA splitting, zero-copy bodies, reuse.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"
#include "fcgi/protocol/encoded_params.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "fcgi/protocol/request_encoder.hpp"

namespace fcgi::protocol {
// Lets Boost.Test print protocol enums in failure messages (static: one copy per test file).
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, record_type t) {
    return os << to_string(t) << '(' << static_cast<int>(t) << ')';
}
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, role r) {
    return os << to_string(r) << '(' << static_cast<int>(r) << ')';
}
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, begin_flags f) {
    return os << to_string(f) << '(' << static_cast<int>(f) << ')';
}
}  // namespace fcgi::protocol

namespace {

using namespace std::string_literals;
using fcgi::make_error_code;
namespace p = fcgi::protocol;
using p::record_type;

const std::error_code param_too_large = make_error_code(fcgi::error::param_too_large);

// The encoder's output as one contiguous string.
std::string wire_of(const p::request_encoder& enc) {
    std::string out;
    std::size_t total = 0;
    for (auto b : enc.buffers()) {
        out.append(b.data(), b.size());
        total += b.size();
    }
    BOOST_TEST(total == enc.size());
    return out;
}

// A record as found on the wire, read without the decoder so the two check each other.
struct raw_record {
    p::record_header header;
    std::string content;
    std::string padding;
};

std::vector<raw_record> walk(std::string_view wire) {
    std::vector<raw_record> out;
    while (!wire.empty()) {
        BOOST_REQUIRE(wire.size() >= p::header_size);
        auto h = p::decode_header(std::span<const char, 8>(wire.data(), 8));
        BOOST_REQUIRE(wire.size() >= 8u + h.content_length + h.padding_length);
        BOOST_TEST(h.version == 1);
        BOOST_TEST(wire[7] == '\0');  // reserved byte
        out.push_back({h, std::string(wire.substr(8, h.content_length)),
                       std::string(wire.substr(8 + h.content_length, h.padding_length))});
        wire.remove_prefix(8u + h.content_length + h.padding_length);
    }
    return out;
}

// Decodes `wire` with record_decoder in 64 KiB reads; returns whole records.
std::vector<raw_record> decode(std::string_view wire) {
    std::vector<raw_record> out;
    p::record_decoder dec;
    std::string content;
    while (!wire.empty()) {
        std::string_view chunk = wire.substr(0, 65536);
        wire.remove_prefix(chunk.size());
        while (!chunk.empty()) {
            auto r = dec.feed(chunk);
            BOOST_REQUIRE(!r.ec);
            BOOST_REQUIRE(r.consumed > 0 || r.has_piece);
            chunk.remove_prefix(r.consumed);
            if (r.has_piece) {
                content.append(r.piece.content);
                if (r.piece.end_of_record) {
                    out.push_back({r.piece.header, std::move(content), {}});
                    content.clear();
                }
            }
        }
    }
    BOOST_TEST(dec.at_record_boundary());
    return out;
}

// Checks the framing rules every record we send must follow.
void check_framing(const std::vector<raw_record>& records) {
    for (const auto& r : records) {
        BOOST_TEST(r.header.content_length <= p::max_content_length);
        BOOST_TEST((8u + r.header.content_length + r.header.padding_length) % 8 == 0u);
        BOOST_TEST(r.header.padding_length < 8);
        BOOST_TEST(r.padding == std::string(r.padding.size(), '\0'));
        if (r.header.type == record_type::params)
            BOOST_TEST(r.header.content_length <= p::max_params_content);
    }
}

// Content of every record of `type`, concatenated, and the number of such records.
std::string stream_of(const std::vector<raw_record>& records, record_type type,
                      std::size_t* count = nullptr) {
    std::string out;
    std::size_t n = 0;
    for (const auto& r : records)
        if (r.header.type == type) {
            out += r.content;
            ++n;
        }
    if (count)
        *count = n;
    return out;
}

std::string pattern(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

// Owns the strings behind a list of name_value views.
struct param_list {
    std::vector<std::pair<std::string, std::string>> owned;
    std::vector<p::name_value> views;

    void add(std::string name, std::string value) {
        owned.emplace_back(std::move(name), std::move(value));
    }
    std::span<const p::name_value> span() {
        views.clear();
        for (const auto& [n, v] : owned)
            views.push_back({n, v});
        return views;
    }
};

std::vector<std::pair<std::string, std::string>> read_pairs(std::string_view content,
                                                            std::error_code& ec) {
    std::vector<std::pair<std::string, std::string>> out;
    p::name_value_reader reader(content);
    for (p::name_value nv; reader.next(nv);)
        out.emplace_back(nv.name, nv.value);
    ec = reader.error();
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(request_encoder)

BOOST_AUTO_TEST_CASE(fresh_encoder_is_empty) {
    p::request_encoder enc;
    BOOST_TEST(enc.size() == 0u);
    BOOST_TEST(enc.buffers().empty());
}

BOOST_AUTO_TEST_CASE(begin_request_bytes_exact) {
    p::request_encoder enc;
    BOOST_TEST(!enc.begin(1, p::role::responder, p::begin_flags::keep_conn, {}));
    BOOST_TEST(wire_of(enc) ==
               "\x01\x01\x00\x01\x00\x08\x00\x00"
               "\x00\x01\x01\x00\x00\x00\x00\x00"
               "\x01\x04\x00\x01\x00\x00\x00\x00"s);
    enc.clear();
    BOOST_TEST(!enc.begin(0x0102, p::role::authorizer, p::begin_flags::none, {}));
    BOOST_TEST(wire_of(enc) ==
               "\x01\x01\x01\x02\x00\x08\x00\x00"
               "\x00\x02\x00\x00\x00\x00\x00\x00"
               "\x01\x04\x01\x02\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(small_request_bytes_exact) {
    p::request_encoder enc;
    const p::name_value params[] = {{"A", "1"}, {"REQUEST_METHOD", "GET"}};
    BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::none, params, ""));
    // PARAMS content: 01 01 'A' '1' (4) + 0E 03 "REQUEST_METHOD" "GET" (19) = 23, padding 1.
    BOOST_TEST(wire_of(enc) ==
               "\x01\x01\x00\x01\x00\x08\x00\x00"
               "\x00\x01\x00\x00\x00\x00\x00\x00"
               "\x01\x04\x00\x01\x00\x17\x01\x00"
               "\x01\x01"
               "A1"
               "\x0E\x03"
               "REQUEST_METHODGET"
               "\x00"
               "\x01\x04\x00\x01\x00\x00\x00\x00"
               "\x01\x05\x00\x01\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(request_with_body_bytes_exact) {
    p::request_encoder enc;
    const p::name_value params[] = {{"CONTENT_LENGTH", "5"}};
    std::string body = "hello";
    BOOST_TEST(!enc.encode_request(2, p::role::responder, p::begin_flags::keep_conn, params, body));
    BOOST_TEST(wire_of(enc) ==
               "\x01\x01\x00\x02\x00\x08\x00\x00"
               "\x00\x01\x01\x00\x00\x00\x00\x00"
               "\x01\x04\x00\x02\x00\x11\x07\x00"
               "\x0E\x01"
               "CONTENT_LENGTH5"
               "\x00\x00\x00\x00\x00\x00\x00"
               "\x01\x04\x00\x02\x00\x00\x00\x00"
               "\x01\x05\x00\x02\x00\x05\x03\x00"
               "hello"
               "\x00\x00\x00"
               "\x01\x05\x00\x02\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(request_id_on_every_record) {
    for (std::uint16_t id : {std::uint16_t{1}, std::uint16_t{300}, std::uint16_t{65535}}) {
        p::request_encoder enc;
        const p::name_value params[] = {{"X", "y"}};
        std::string body = pattern(70000);
        BOOST_TEST(
            !enc.encode_request(id, p::role::filter, p::begin_flags::none, params, body, body));
        for (const auto& r : walk(wire_of(enc)))
            BOOST_TEST(r.header.request_id == id);
    }
}

BOOST_AUTO_TEST_CASE(params_whole_pairs_per_record) {
    // Pairs of uneven sizes, so records close at many different offsets.
    param_list params;
    for (int i = 0; i < 400; ++i)
        params.add("P" + std::to_string(i), pattern(static_cast<std::size_t>(i * 97 % 3001), i));
    p::request_encoder enc;
    BOOST_TEST(!enc.begin(9, p::role::responder, p::begin_flags::none, params.span()));
    auto records = walk(wire_of(enc));
    check_framing(records);
    BOOST_REQUIRE(records.size() >= 4u);
    BOOST_TEST(records.front().header.type == record_type::begin_request);
    BOOST_TEST(records.back().header.type == record_type::params);
    BOOST_TEST(records.back().header.content_length == 0);
    std::size_t params_records = 0;
    std::size_t next = 0;
    for (std::size_t i = 1; i + 1 < records.size(); ++i) {
        const auto& r = records[i];
        BOOST_TEST(r.header.type == record_type::params);
        BOOST_TEST(r.header.content_length > 0);
        ++params_records;
        // Each record parses on its own: no pair spans two records (php-fpm resets otherwise).
        std::error_code ec;
        auto pairs = read_pairs(r.content, ec);
        BOOST_TEST(!ec);
        for (const auto& pr : pairs) {
            BOOST_REQUIRE(next < params.owned.size());
            BOOST_TEST(pr.first == params.owned[next].first);
            BOOST_TEST((pr.second == params.owned[next].second));
            ++next;
        }
        // The record was closed only because the next pair would not fit.
        if (i + 2 < records.size() && next < params.owned.size()) {
            const auto& nxt = params.owned[next];
            BOOST_TEST(r.header.content_length + p::encoded_size(nxt.first, nxt.second) >
                       p::max_params_content);
        }
    }
    BOOST_TEST(next == params.owned.size());
    BOOST_TEST(params_records >= 9u);  // ~600 KB of pairs
}

BOOST_AUTO_TEST_CASE(pair_exactly_filling_a_record) {
    // 4 + 4 + 200 + 65320 = 65528 bytes: fits alone, with no padding.
    std::string name(200, 'N');
    std::string value(65528 - 8 - 200, 'V');
    BOOST_REQUIRE(p::encoded_size(name, value) == p::max_params_content);
    const p::name_value params[] = {{name, value}, {"SMAL", "1"}, {name, value}};
    p::request_encoder enc;
    BOOST_TEST(!enc.begin(1, p::role::responder, p::begin_flags::none, params));
    auto records = walk(wire_of(enc));
    check_framing(records);
    BOOST_REQUIRE(records.size() == 5u);  // BEGIN, full, small, full, empty
    BOOST_TEST(records[1].header.content_length == 65528);
    BOOST_TEST(records[1].header.padding_length == 0);
    BOOST_TEST(records[2].header.content_length == 7);
    BOOST_TEST(records[2].header.padding_length == 1);
    BOOST_TEST(records[3].header.content_length == 65528);
    BOOST_TEST(records[4].header.content_length == 0);
    std::error_code ec;
    auto pairs = read_pairs(records[1].content, ec);
    BOOST_TEST(!ec);
    BOOST_REQUIRE(pairs.size() == 1u);
    BOOST_TEST((pairs[0].second == value));
}

BOOST_AUTO_TEST_CASE(pair_too_large_appends_nothing) {
    std::string name(200, 'N');
    std::string value(65529 - 8 - 200, 'V');
    BOOST_REQUIRE(p::encoded_size(name, value) == p::max_params_content + 1);
    {
        p::request_encoder enc;
        const p::name_value params[] = {{name, value}};
        BOOST_TEST(enc.begin(1, p::role::responder, p::begin_flags::none, params) ==
                   param_too_large);
        BOOST_TEST(enc.size() == 0u);
        BOOST_TEST(enc.buffers().empty());
    }
    {
        // A bad pair after good ones: the good ones are not appended either.
        p::request_encoder enc;
        const p::name_value params[] = {{"A", "1"}, {"B", "2"}, {name, value}};
        BOOST_TEST(enc.encode_request(1, p::role::responder, p::begin_flags::none, params,
                                      "body") == param_too_large);
        BOOST_TEST(enc.size() == 0u);
        BOOST_TEST(enc.buffers().empty());
    }
    {
        // A huge single value, and a huge name.
        p::request_encoder enc;
        std::string huge(1 << 20, 'h');
        const p::name_value a[] = {{"BIG", huge}};
        BOOST_TEST(enc.begin(1, p::role::responder, p::begin_flags::none, a) == param_too_large);
        const p::name_value b[] = {{huge, ""}};
        BOOST_TEST(enc.begin(1, p::role::responder, p::begin_flags::none, b) == param_too_large);
        BOOST_TEST(enc.size() == 0u);
    }
    {
        // On an encoder that already holds a request, the earlier bytes stay as they were.
        p::request_encoder enc;
        const p::name_value ok[] = {{"A", "1"}};
        BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::none, ok, "xyz"));
        std::string before = wire_of(enc);
        auto buffers_before = enc.buffers().size();
        const p::name_value bad[] = {{name, value}};
        BOOST_TEST(enc.begin(2, p::role::responder, p::begin_flags::none, bad) == param_too_large);
        BOOST_TEST(enc.size() == before.size());
        BOOST_TEST(enc.buffers().size() == buffers_before);
        BOOST_TEST(wire_of(enc) == before);
    }
}

BOOST_AUTO_TEST_CASE(large_params_round_trip_in_order) {
    // ~200 KB of environment over many pairs, through record_decoder and name_value_reader.
    param_list params;
    std::size_t total = 0;
    for (int i = 0; total < 200 * 1024; ++i) {
        std::string name = "HTTP_X_HEADER_" + std::to_string(i);
        std::string value = pattern(static_cast<std::size_t>((i * 131) % 700 + (i % 5 == 0) * 2000),
                                    static_cast<unsigned>(i));
        total += p::encoded_size(name, value);
        params.add(std::move(name), std::move(value));
    }
    params.add("", "");  // an empty pair survives too
    params.add("EMPTY_VALUE", "");
    p::request_encoder enc;
    BOOST_TEST(
        !enc.encode_request(77, p::role::responder, p::begin_flags::keep_conn, params.span(), ""));
    std::string wire = wire_of(enc);
    auto records = decode(wire);
    auto raw = walk(wire);
    BOOST_REQUIRE(records.size() == raw.size());
    check_framing(raw);
    std::vector<std::pair<std::string, std::string>> got;
    std::size_t params_records = 0;
    bool params_ended = false;
    for (std::size_t i = 0; i < records.size(); ++i) {
        const auto& r = records[i];
        BOOST_TEST((r.header == raw[i].header));
        BOOST_TEST((r.content == raw[i].content));
        if (r.header.type != record_type::params)
            continue;
        BOOST_TEST(!params_ended);
        if (r.header.content_length == 0) {
            params_ended = true;
            continue;
        }
        ++params_records;
        std::error_code ec;
        auto pairs = read_pairs(r.content, ec);
        BOOST_TEST(!ec);
        got.insert(got.end(), pairs.begin(), pairs.end());
    }
    BOOST_TEST(params_ended);
    BOOST_TEST(params_records >= 4u);
    BOOST_REQUIRE(got.size() == params.owned.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        BOOST_TEST(got[i].first == params.owned[i].first);
        BOOST_TEST((got[i].second == params.owned[i].second), "pair " << i);
    }
    // BEGIN_REQUEST first, PARAMS, then the empty STDIN last.
    BOOST_TEST(records.front().header.type == record_type::begin_request);
    BOOST_TEST(records.back().header.type == record_type::stdin_);
    BOOST_TEST(records.back().header.content_length == 0);
}

BOOST_AUTO_TEST_CASE(stdin_sizes_round_trip) {
    for (std::size_t n : {0, 1, 7, 8, 65527, 65528, 65529, 65535, 65536, 131056, 200000}) {
        BOOST_TEST_CONTEXT("stdin of " << n << " bytes") {
            std::string body = pattern(n, static_cast<unsigned>(n));
            std::string cl = std::to_string(n);
            const p::name_value params[] = {{"CONTENT_LENGTH", cl}};
            p::request_encoder enc;
            BOOST_TEST(!enc.encode_request(3, p::role::responder, p::begin_flags::keep_conn, params,
                                           body));
            std::string wire = wire_of(enc);
            BOOST_TEST(wire.size() % 8 == 0u);
            auto raw = walk(wire);
            auto records = decode(wire);
            check_framing(raw);
            BOOST_REQUIRE(records.size() == raw.size());
            std::size_t stdin_records = 0;
            BOOST_TEST((stream_of(records, record_type::stdin_, &stdin_records) == body));
            BOOST_TEST((stream_of(raw, record_type::stdin_) == body));
            // Non-empty records of at most 65528 bytes, then exactly one empty terminator.
            std::size_t expected = (n + p::max_stream_content - 1) / p::max_stream_content + 1;
            BOOST_TEST(stdin_records == expected);
            for (std::size_t i = 0; i < records.size(); ++i) {
                const auto& h = records[i].header;
                if (h.type != record_type::stdin_)
                    continue;
                bool last = i + 1 == records.size();
                BOOST_TEST((h.content_length == 0) == last);
                BOOST_TEST(h.content_length <= p::max_stream_content);
            }
            BOOST_TEST(records.back().header.type == record_type::stdin_);
            BOOST_TEST(records.back().header.content_length == 0);
            // No DATA for a responder.
            std::size_t data_records = 0;
            stream_of(records, record_type::data, &data_records);
            BOOST_TEST(data_records == 0u);
        }
    }
}

BOOST_AUTO_TEST_CASE(stdin_body_is_not_copied) {
    for (std::size_t n : {1, 65528, 65529, 200000}) {
        BOOST_TEST_CONTEXT("stdin of " << n << " bytes") {
            std::string body = pattern(n);
            p::request_encoder enc;
            BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::none, {}, body));
            const char* lo = body.data();
            const char* hi = body.data() + body.size();
            // The views into the body, in order, cover it exactly once.
            const char* expect = lo;
            std::size_t viewed = 0;
            for (auto b : enc.buffers()) {
                bool inside = b.data() >= lo && b.data() < hi;
                if (!inside)
                    continue;
                BOOST_TEST(static_cast<const void*>(b.data()) == static_cast<const void*>(expect));
                BOOST_TEST((b.data() + b.size() <= hi));  // pointers, not C strings
                expect = b.data() + b.size();
                viewed += b.size();
            }
            BOOST_TEST(viewed == n);
            // Changing the body after encoding changes what would be written: it is a view.
            body[n - 1] = static_cast<char>(body[n - 1] ^ 0x5A);
            auto records = walk(wire_of(enc));
            BOOST_TEST((stream_of(records, record_type::stdin_) == body));
        }
    }
}

BOOST_AUTO_TEST_CASE(owned_bytes_are_few_buffers) {
    // Headers and padding between body views are gathered, not one buffer per header.
    std::string body = pattern(200000);
    p::request_encoder enc;
    const p::name_value params[] = {{"A", "1"}};
    BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::none, params, body));
    // BEGIN+PARAMS+STDIN header | body | pad+header | body | ... | body | pad+empty STDIN.
    BOOST_TEST(enc.buffers().size() == 2 * 4 + 1u);
}

BOOST_AUTO_TEST_CASE(filter_role_adds_data_stream) {
    std::string body = pattern(70000, 1);
    std::string data = pattern(65540, 2);
    std::string data_length = std::to_string(data.size());
    const p::name_value params[] = {{"FCGI_DATA_LENGTH", data_length}};
    p::request_encoder enc;
    BOOST_TEST(!enc.encode_request(4, p::role::filter, p::begin_flags::none, params, body, data));
    auto records = decode(wire_of(enc));
    check_framing(walk(wire_of(enc)));
    BOOST_TEST((stream_of(records, record_type::stdin_) == body));
    BOOST_TEST((stream_of(records, record_type::data) == data));
    p::begin_request_body begin;
    BOOST_TEST(!p::parse_begin_request(records.front().content, begin));
    BOOST_TEST(begin.r == p::role::filter);
    // Order: ... STDIN records, empty STDIN, DATA records, empty DATA last.
    BOOST_REQUIRE(records.size() >= 4u);
    auto n = records.size();
    BOOST_TEST(records[n - 1].header.type == record_type::data);
    BOOST_TEST(records[n - 1].header.content_length == 0);
    std::size_t first_data = n;
    std::size_t empty_stdin = n;
    for (std::size_t i = 0; i < n; ++i) {
        if (records[i].header.type == record_type::data && first_data == n)
            first_data = i;
        if (records[i].header.type == record_type::stdin_ && records[i].content.empty())
            empty_stdin = i;
    }
    BOOST_TEST(empty_stdin + 1 == first_data);
    // DATA is viewed, not copied.
    std::size_t viewed = 0;
    for (auto b : enc.buffers())
        if (b.data() >= data.data() && b.data() < data.data() + data.size())
            viewed += b.size();
    BOOST_TEST(viewed == data.size());
}

BOOST_AUTO_TEST_CASE(filter_role_with_empty_streams) {
    p::request_encoder enc;
    BOOST_TEST(!enc.encode_request(1, p::role::filter, p::begin_flags::none, {}, "", ""));
    BOOST_TEST(wire_of(enc) ==
               "\x01\x01\x00\x01\x00\x08\x00\x00"
               "\x00\x03\x00\x00\x00\x00\x00\x00"
               "\x01\x04\x00\x01\x00\x00\x00\x00"
               "\x01\x05\x00\x01\x00\x00\x00\x00"
               "\x01\x08\x00\x01\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(responder_ignores_data_bytes) {
    p::request_encoder a;
    p::request_encoder b;
    BOOST_TEST(!a.encode_request(1, p::role::responder, p::begin_flags::none, {}, "in", "data"));
    BOOST_TEST(!b.encode_request(1, p::role::responder, p::begin_flags::none, {}, "in"));
    BOOST_TEST(wire_of(a) == wire_of(b));
}

BOOST_AUTO_TEST_CASE(stream_pieces_by_hand) {
    p::request_encoder enc;
    enc.add_stream(record_type::stdin_, 5, "");
    BOOST_TEST(enc.size() == 0u);  // empty bytes: nothing, the terminator is explicit
    enc.add_stream(record_type::stdin_, 5, "ab");
    enc.add_stream(record_type::stdin_, 5, "cdefghij");
    enc.end_stream(record_type::stdin_, 5);
    BOOST_TEST(wire_of(enc) ==
               "\x01\x05\x00\x05\x00\x02\x06\x00"
               "ab"
               "\x00\x00\x00\x00\x00\x00"
               "\x01\x05\x00\x05\x00\x08\x00\x00"
               "cdefghij"
               "\x01\x05\x00\x05\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(clear_then_reuse_gives_identical_bytes) {
    param_list params;
    for (int i = 0; i < 20; ++i)
        params.add("NAME" + std::to_string(i), pattern(static_cast<std::size_t>(i * 50), i));
    std::string body = pattern(150000);
    p::request_encoder enc;
    BOOST_TEST(
        !enc.encode_request(6, p::role::responder, p::begin_flags::keep_conn, params.span(), body));
    std::string first = wire_of(enc);
    std::size_t first_size = enc.size();
    auto first_buffers = enc.buffers().size();
    for (int round = 0; round < 3; ++round) {
        enc.clear();
        BOOST_TEST(enc.size() == 0u);
        BOOST_TEST(enc.buffers().empty());
        BOOST_TEST(!enc.encode_request(6, p::role::responder, p::begin_flags::keep_conn,
                                       params.span(), body));
        BOOST_TEST(enc.size() == first_size);
        BOOST_TEST(enc.buffers().size() == first_buffers);
        BOOST_TEST((wire_of(enc) == first));
    }
    // A different request after clear() is encoded as on a fresh encoder.
    enc.clear();
    BOOST_TEST(!enc.encode_request(2, p::role::responder, p::begin_flags::none, {}, "x"));
    p::request_encoder fresh;
    BOOST_TEST(!fresh.encode_request(2, p::role::responder, p::begin_flags::none, {}, "x"));
    BOOST_TEST(wire_of(enc) == wire_of(fresh));
}

BOOST_AUTO_TEST_CASE(two_requests_in_one_encoder) {
    // Appending without clear() queues a second request after the first.
    p::request_encoder enc;
    BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::keep_conn, {}, "a"));
    std::string first = wire_of(enc);
    BOOST_TEST(!enc.encode_request(2, p::role::responder, p::begin_flags::keep_conn, {}, "b"));
    p::request_encoder second;
    BOOST_TEST(!second.encode_request(2, p::role::responder, p::begin_flags::keep_conn, {}, "b"));
    BOOST_TEST(wire_of(enc) == first + wire_of(second));
}

BOOST_AUTO_TEST_CASE(buffers_are_stable_between_calls) {
    p::request_encoder enc;
    std::string body = pattern(100);
    BOOST_TEST(!enc.encode_request(1, p::role::responder, p::begin_flags::none, {}, body));
    auto a = enc.buffers();
    auto b = enc.buffers();
    BOOST_TEST(a.data() == b.data());
    BOOST_TEST(a.size() == b.size());
    // After more appends, buffers() reflects them.
    enc.add_stream(record_type::data, 1, "zz");
    std::string w = wire_of(enc);
    BOOST_TEST(w.size() == enc.size());
    BOOST_TEST(w.substr(w.size() - 16, 8) == "\x01\x08\x00\x01\x00\x02\x06\x00"s);
}

namespace {

// The PARAMS framing spelled out the slow way, independent of the encoder: BEGIN_REQUEST
// (RESPONDER, KEEP_CONN), then whole pairs packed greedily into records of at most
// max_params_content bytes, each padded to 8, then the empty PARAMS record.
std::string reference_begin(std::uint16_t id, const std::vector<p::name_value>& params) {
    auto header = [&](std::uint8_t type, std::size_t len) {
        std::size_t pad = (8 - len % 8) % 8;
        return std::string{
            1,         char(type), char(id >> 8), char(id & 0xff), char(len >> 8), char(len & 0xff),
            char(pad), 0};
    };
    auto length = [](std::size_t n) {
        if (n < 128)
            return std::string(1, char(n));
        return std::string{char((n >> 24) | 0x80), char(n >> 16), char(n >> 8), char(n)};
    };
    std::string out = header(1, 8) + std::string{0, 1, 1, 0, 0, 0, 0, 0};  // RESPONDER, KEEP_CONN
    std::string content;
    auto flush = [&] {
        out +=
            header(4, content.size()) + content + std::string((8 - content.size() % 8) % 8, '\0');
        content.clear();
    };
    for (const auto& nv : params) {
        std::string pair = length(nv.name.size()) + length(nv.value.size()) + std::string(nv.name) +
                           std::string(nv.value);
        if (content.size() + pair.size() > p::max_params_content)
            flush();
        content += pair;
    }
    if (!content.empty())
        flush();
    return out + header(4, 0);
}

}  // namespace

BOOST_AUTO_TEST_CASE(params_bytes_match_a_reference_at_every_padding_and_record_limit) {
    // Totals of 3..140 bytes cover every padding length; the ones around max_params_content the
    // switch from one PARAMS record to two (the encoder has a one-pass path for a single record).
    std::vector<std::size_t> totals;
    for (std::size_t t = 3; t <= 140; ++t)
        totals.push_back(t);
    for (std::size_t t = p::max_params_content - 9; t <= p::max_params_content + 9; ++t)
        totals.push_back(t);
    for (std::size_t total : totals) {
        // Pairs of at most 30,000 bytes adding up to exactly `total`, each of exactly `size`
        // bytes: names of 1..4 bytes, values around 127 / 128 switching length forms.
        std::vector<std::string> strings;
        strings.reserve(16);
        std::vector<p::name_value> params;
        auto add_pair = [&](std::size_t size) {
            std::size_t n = 1, v = 0;
            if (size <= 130) {
                v = size - 3;
            } else if (size <= 133) {
                n = size - 129;
                v = 127;
            } else {
                v = size - 6;
            }
            strings.emplace_back(n, 'B');
            std::string_view name = strings.back();
            strings.emplace_back(v, 'v');
            params.push_back({name, strings.back()});
        };
        for (std::size_t left = total; left > 0;) {
            std::size_t chunk = left <= 30000 ? left : (left - 30000 < 3 ? 29990 : 30000);
            add_pair(chunk);
            left -= chunk;
        }
        std::size_t encoded = 0;
        for (const auto& nv : params)
            encoded += p::encoded_size(nv.name, nv.value);
        BOOST_REQUIRE(encoded == total);
        p::request_encoder enc;
        BOOST_TEST_CONTEXT("content " << total) {
            BOOST_TEST(!enc.begin(7, p::role::responder, p::begin_flags::keep_conn, params));
            BOOST_TEST(wire_of(enc) == reference_begin(7, params));
            // Appended after another request, as on a multiplexed connection.
            p::request_encoder two;
            BOOST_TEST(!two.encode_request(1, p::role::responder, p::begin_flags::none, {}, "x"));
            std::string first = wire_of(two);
            BOOST_TEST(!two.begin(7, p::role::responder, p::begin_flags::keep_conn, params));
            BOOST_TEST(wire_of(two) == first + reference_begin(7, params));
            // Encoded beforehand: the same bytes, whatever the ID they are sent with.
            p::encoded_params pre;
            BOOST_TEST(!pre.assign(params));
            BOOST_TEST(pre.record_count() == (total <= p::max_params_content ? 1u : 2u));
            BOOST_TEST(pre.size() == total);
            p::request_encoder three;
            three.begin_encoded(7, p::role::responder, p::begin_flags::keep_conn, pre);
            BOOST_TEST(wire_of(three) == reference_begin(7, params));
            three.begin_encoded(9, p::role::responder, p::begin_flags::keep_conn, pre);
            BOOST_TEST(wire_of(three) == reference_begin(7, params) + reference_begin(9, params));
        }
    }
}

BOOST_AUTO_TEST_CASE(encoded_params_without_pairs) {
    p::encoded_params pre;
    BOOST_TEST(!pre.assign({}));
    BOOST_TEST(pre.record_count() == 0u);
    BOOST_TEST(pre.size() == 0u);
    p::request_encoder enc;
    enc.begin_encoded(3, p::role::responder, p::begin_flags::keep_conn, pre);
    BOOST_TEST(wire_of(enc) == reference_begin(3, {}));
}

BOOST_AUTO_TEST_CASE(encoded_params_too_large_hold_nothing) {
    std::string big(p::max_params_content, 'v');
    const std::vector<p::name_value> ok = {{"A", "1"}};
    const std::vector<p::name_value> bad = {{"A", "1"}, {"BIG", big}};
    p::encoded_params pre;
    BOOST_TEST(!pre.assign(ok));
    BOOST_TEST(pre.record_count() == 1u);
    BOOST_TEST(pre.assign(bad) == param_too_large);
    BOOST_TEST(pre.record_count() == 0u);
    BOOST_TEST(pre.size() == 0u);
    // Reassigned: what was held before is gone, the new pairs are all there is.
    BOOST_TEST(!pre.assign(ok));
    BOOST_TEST(pre.record(0) ==
               "\x01\x01"
               "A1"s);
}

BOOST_AUTO_TEST_CASE(encoded_request_equals_the_encoded_one_with_streams) {
    // The whole request, FILTER role with STDIN and DATA: only the params were encoded early.
    const std::vector<p::name_value> params = {{"SCRIPT_FILENAME", "/srv/a.php"}, {"X", "y"}};
    std::string body(70000, 'b');
    std::string data = "file data";
    p::encoded_params pre;
    BOOST_TEST(!pre.assign(params));
    for (auto r : {p::role::responder, p::role::filter}) {
        p::request_encoder direct, early;
        BOOST_TEST(!direct.encode_request(5, r, p::begin_flags::keep_conn, params, body, data));
        early.encode_request_encoded(5, r, p::begin_flags::keep_conn, pre, body, data);
        BOOST_TEST(wire_of(early) == wire_of(direct));
        BOOST_TEST(early.buffers().size() == direct.buffers().size());
    }
}

BOOST_AUTO_TEST_SUITE_END()
