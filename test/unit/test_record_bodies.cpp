// Fixed-size and management record bodies, record headers and the protocol constants.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "fcgi/protocol/types.hpp"

namespace fcgi::protocol {
// Lets Boost.Test print protocol enums in failure messages (static: one copy per test file).
[[maybe_unused]] static std::ostream& boost_test_print_type(std::ostream& os, protocol_status s) {
    return os << to_string(s) << '(' << static_cast<int>(s) << ')';
}
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
using namespace std::string_view_literals;
using fcgi::make_error_code;
namespace p = fcgi::protocol;

const std::error_code bad_record_length = make_error_code(fcgi::error::bad_record_length);
const std::error_code bad_name_value = make_error_code(fcgi::error::bad_name_value);

template <std::size_t N>
std::string str(const std::array<char, N>& a) {
    return std::string(a.data(), a.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(record_bodies)

BOOST_AUTO_TEST_CASE(constants) {
    BOOST_TEST(p::version_1 == 1);
    BOOST_TEST(p::header_size == 8u);
    BOOST_TEST(p::max_content_length == 65535u);
    BOOST_TEST(p::max_params_content == 65528u);
    BOOST_TEST(p::max_params_content % 8 == 0u);
    BOOST_TEST(p::max_stream_content % 8 == 0u);
    BOOST_TEST(p::max_stream_content <= p::max_content_length);
    BOOST_TEST(p::management_id == 0);
    BOOST_TEST(static_cast<int>(p::record_type::begin_request) == 1);
    BOOST_TEST(static_cast<int>(p::record_type::unknown_type) == 11);
    BOOST_TEST(static_cast<int>(p::role::filter) == 3);
    BOOST_TEST(static_cast<int>(p::begin_flags::keep_conn) == 1);
}

BOOST_AUTO_TEST_CASE(padding_for_rounds_up_to_eight) {
    for (std::size_t n = 0; n <= 70000; ++n) {
        auto pad = p::padding_for(n);
        if (pad >= 8 || (n + pad) % 8 != 0)
            BOOST_FAIL("padding_for(" << n << ") = " << int(pad));
    }
    BOOST_TEST(p::padding_for(0) == 0);
    BOOST_TEST(p::padding_for(1) == 7);
    BOOST_TEST(p::padding_for(465) == 7);
    BOOST_TEST(p::padding_for(65528) == 0);
    BOOST_TEST(p::padding_for(65535) == 1);
}

BOOST_AUTO_TEST_CASE(type_classification) {
    for (int t = 0; t < 256; ++t) {
        auto rt = static_cast<p::record_type>(t);
        BOOST_TEST(p::is_known(rt) == (t >= 1 && t <= 11), t);
        BOOST_TEST(p::is_stream(rt) == (t == 4 || t == 5 || t == 6 || t == 7 || t == 8), t);
    }
}

BOOST_AUTO_TEST_CASE(to_string_names) {
    BOOST_TEST(p::to_string(p::record_type::begin_request) == "BEGIN_REQUEST");
    BOOST_TEST(p::to_string(p::record_type::abort_request) == "ABORT_REQUEST");
    BOOST_TEST(p::to_string(p::record_type::end_request) == "END_REQUEST");
    BOOST_TEST(p::to_string(p::record_type::params) == "PARAMS");
    BOOST_TEST(p::to_string(p::record_type::stdin_) == "STDIN");
    BOOST_TEST(p::to_string(p::record_type::stdout_) == "STDOUT");
    BOOST_TEST(p::to_string(p::record_type::stderr_) == "STDERR");
    BOOST_TEST(p::to_string(p::record_type::data) == "DATA");
    BOOST_TEST(p::to_string(p::record_type::get_values) == "GET_VALUES");
    BOOST_TEST(p::to_string(p::record_type::get_values_result) == "GET_VALUES_RESULT");
    BOOST_TEST(p::to_string(p::record_type::unknown_type) == "UNKNOWN_TYPE");
    BOOST_TEST(!p::to_string(static_cast<p::record_type>(200)).empty());
    BOOST_TEST(p::to_string(p::role::responder) == "RESPONDER");
    BOOST_TEST(p::to_string(p::role::authorizer) == "AUTHORIZER");
    BOOST_TEST(p::to_string(p::role::filter) == "FILTER");
    BOOST_TEST(!p::to_string(static_cast<p::role>(9)).empty());
    BOOST_TEST(p::to_string(p::protocol_status::request_complete) == "REQUEST_COMPLETE");
    BOOST_TEST(p::to_string(p::protocol_status::cant_mpx_conn) == "CANT_MPX_CONN");
    BOOST_TEST(p::to_string(p::protocol_status::overloaded) == "OVERLOADED");
    BOOST_TEST(p::to_string(p::protocol_status::unknown_role) == "UNKNOWN_ROLE");
    BOOST_TEST(!p::to_string(static_cast<p::protocol_status>(4)).empty());
    BOOST_TEST(p::to_string(p::begin_flags::none) == "0");
    BOOST_TEST(p::to_string(p::begin_flags::keep_conn) == "KEEP_CONN");
}

BOOST_AUTO_TEST_CASE(header_encode_exact) {
    std::array<char, p::header_size> out{};
    p::encode_header(p::record_header{1, p::record_type::stdin_, 300, 465, 7}, out);
    BOOST_TEST(str(out) == "\x01\x05\x01\x2C\x01\xD1\x07\x00"s);
    p::encode_header(p::record_type::stdout_, 1, 0, out);
    BOOST_TEST(str(out) == "\x01\x06\x00\x01\x00\x00\x00\x00"s);  // Go: empty STDOUT, id 1
    p::encode_header(p::record_type::stdin_, 300, 65535, out);
    BOOST_TEST(str(out) == "\x01\x05\x01\x2C\xFF\xFF\x01\x00"s);  // padding chosen for us
    p::encode_header(p::record_type::params, 0xFFFF, 65528, out);
    BOOST_TEST(str(out) == "\x01\x04\xFF\xFF\xFF\xF8\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(header_decode_every_field) {
    std::string bytes = "\x02\xC8\xAB\xCD\xFE\xDC\xFF\x99"s;
    auto h = p::decode_header(std::span<const char, 8>(bytes.data(), 8));
    BOOST_TEST(h.version == 2);
    BOOST_TEST(static_cast<int>(h.type) == 200);
    BOOST_TEST(h.request_id == 0xABCD);
    BOOST_TEST(h.content_length == 0xFEDC);
    BOOST_TEST(h.padding_length == 0xFF);
    // Round trip (the reserved byte is always written as 0).
    std::array<char, 8> out{};
    p::encode_header(h, out);
    BOOST_TEST(str(out) == "\x02\xC8\xAB\xCD\xFE\xDC\xFF\x00"s);
    BOOST_TEST((p::decode_header(out) == h));
}

BOOST_AUTO_TEST_CASE(begin_request_exact_bytes) {
    auto rec = p::encode_begin_request(1, p::role::responder, p::begin_flags::keep_conn);
    BOOST_TEST(str(rec) ==
               "\x01\x01\x00\x01\x00\x08\x00\x00"
               "\x00\x01\x01\x00\x00\x00\x00\x00"s);
    rec = p::encode_begin_request(0x1234, p::role::filter, p::begin_flags::none);
    BOOST_TEST(str(rec) ==
               "\x01\x01\x12\x34\x00\x08\x00\x00"
               "\x00\x03\x00\x00\x00\x00\x00\x00"s);
    rec = p::encode_begin_request(65535, p::role::authorizer, p::begin_flags::none);
    BOOST_TEST(str(rec) ==
               "\x01\x01\xFF\xFF\x00\x08\x00\x00"
               "\x00\x02\x00\x00\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(begin_request_parse) {
    auto rec = p::encode_begin_request(7, p::role::filter, p::begin_flags::keep_conn);
    p::begin_request_body body;
    BOOST_TEST(!p::parse_begin_request(std::string_view(rec.data() + 8, 8), body));
    BOOST_TEST(body.r == p::role::filter);
    BOOST_TEST(body.flags == p::begin_flags::keep_conn);
    BOOST_TEST((body == p::begin_request_body{p::role::filter, p::begin_flags::keep_conn}));
    // A role the spec does not know is passed through for the server to reject.
    std::string odd = "\x01\x02\x00\x00\x00\x00\x00\x00"s;
    BOOST_TEST(!p::parse_begin_request(odd, body));
    BOOST_TEST(static_cast<int>(body.r) == 0x0102);
    for (std::size_t n : {0, 7, 9, 16})
        BOOST_TEST(p::parse_begin_request(std::string(n, '\0'), body) == bad_record_length, n);
}

BOOST_AUTO_TEST_CASE(abort_request_exact_bytes) {
    BOOST_TEST(str(p::encode_abort_request(5)) == "\x01\x02\x00\x05\x00\x00\x00\x00"s);
    BOOST_TEST(str(p::encode_abort_request(0x0102)) == "\x01\x02\x01\x02\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(end_request_parse_app_status_big_endian) {
    p::end_request_body body;
    BOOST_TEST(!p::parse_end_request("\x12\x34\x56\x78\x00\x00\x00\x00"s, body));
    BOOST_TEST(body.app_status == 0x12345678u);
    BOOST_TEST(body.status == p::protocol_status::request_complete);
    BOOST_TEST(!p::parse_end_request("\xFF\xFF\xFF\xFE\x00\xAA\xBB\xCC"s, body));
    BOOST_TEST(body.app_status == 0xFFFFFFFEu);  // reserved bytes ignored
    BOOST_TEST(!p::parse_end_request("\x00\x00\x00\x03\x00\x00\x00\x00"s, body));
    BOOST_TEST(body.app_status == 3u);
    BOOST_TEST(!p::parse_end_request("\x80\x00\x00\x00\x00\x00\x00\x00"s, body));
    BOOST_TEST(body.app_status == 0x80000000u);
}

BOOST_AUTO_TEST_CASE(end_request_parse_each_protocol_status) {
    const p::protocol_status statuses[] = {
        p::protocol_status::request_complete, p::protocol_status::cant_mpx_conn,
        p::protocol_status::overloaded, p::protocol_status::unknown_role};
    for (int s = 0; s < 4; ++s) {
        std::string content = "\x00\x00\x00\x00"s + static_cast<char>(s) + "\x00\x00\x00"s;
        p::end_request_body body;
        BOOST_TEST(!p::parse_end_request(content, body));
        BOOST_TEST(body.status == statuses[s]);
        BOOST_TEST(body.app_status == 0u);
    }
    // An out-of-range status is passed on as a value; the caller decides.
    p::end_request_body body;
    BOOST_TEST(!p::parse_end_request("\x00\x00\x00\x00\x07\x00\x00\x00"s, body));
    BOOST_TEST(static_cast<int>(body.status) == 7);
}

BOOST_AUTO_TEST_CASE(end_request_wrong_length) {
    p::end_request_body body{42, p::protocol_status::overloaded};
    for (std::size_t n : {0, 1, 7, 9, 65535}) {
        BOOST_TEST(p::parse_end_request(std::string(n, '\x01'), body) == bad_record_length, n);
        BOOST_TEST(body.app_status == 42u);  // untouched on error
    }
}

BOOST_AUTO_TEST_CASE(end_request_encode_round_trip) {
    auto rec = p::encode_end_request(1, {0, p::protocol_status::request_complete});
    // The real PHP 7.3 END_REQUEST (PROTOCOL.md).
    BOOST_TEST(str(rec) ==
               "\x01\x03\x00\x01\x00\x08\x00\x00"
               "\x00\x00\x00\x00\x00\x00\x00\x00"s);
    rec = p::encode_end_request(0x0203, {0xDEADBEEF, p::protocol_status::unknown_role});
    BOOST_TEST(str(rec) ==
               "\x01\x03\x02\x03\x00\x08\x00\x00"
               "\xDE\xAD\xBE\xEF\x03\x00\x00\x00"s);
    p::end_request_body body;
    BOOST_TEST(!p::parse_end_request(std::string_view(rec.data() + 8, 8), body));
    BOOST_TEST((body == p::end_request_body{0xDEADBEEF, p::protocol_status::unknown_role}));
}

BOOST_AUTO_TEST_CASE(unknown_type_parse_and_encode) {
    std::uint8_t type = 0;
    BOOST_TEST(!p::parse_unknown_type("\x0C\x00\x00\x00\x00\x00\x00\x00"s, type));
    BOOST_TEST(type == 12);
    BOOST_TEST(!p::parse_unknown_type("\xC8\x01\x02\x03\x04\x05\x06\x07"s, type));
    BOOST_TEST(type == 200);
    for (std::size_t n : {0, 1, 7, 9})
        BOOST_TEST(p::parse_unknown_type(std::string(n, '\0'), type) == bad_record_length, n);
    BOOST_TEST(str(p::encode_unknown_type(12)) ==
               "\x01\x0B\x00\x00\x00\x08\x00\x00"
               "\x0C\x00\x00\x00\x00\x00\x00\x00"s);
    BOOST_TEST(str(p::encode_unknown_type(255)) ==
               "\x01\x0B\x00\x00\x00\x08\x00\x00"
               "\xFF\x00\x00\x00\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(get_values_encode_three_names) {
    const std::string_view names[] = {p::max_conns_name, p::max_reqs_name, p::mpxs_conns_name};
    std::string rec = p::encode_get_values(names);
    // 16 + 15 + 17 = 48 content bytes, already a multiple of 8.
    BOOST_TEST(rec ==
               "\x01\x09\x00\x00\x00\x30\x00\x00"
               "\x0E\x00"
               "FCGI_MAX_CONNS"
               "\x0D\x00"
               "FCGI_MAX_REQS"
               "\x0F\x00"
               "FCGI_MPXS_CONNS"s);
}

BOOST_AUTO_TEST_CASE(get_values_encode_padded) {
    const std::string_view one[] = {p::mpxs_conns_name};
    std::string rec = p::encode_get_values(one);
    BOOST_TEST(rec ==
               "\x01\x09\x00\x00\x00\x11\x07\x00"
               "\x0F\x00"
               "FCGI_MPXS_CONNS"
               "\x00\x00\x00\x00\x00\x00\x00"s);
    BOOST_TEST(rec.size() % 8 == 0u);
    // No names: an empty record.
    BOOST_TEST(p::encode_get_values({}) == "\x01\x09\x00\x00\x00\x00\x00\x00"s);
    // A long name uses the 4-byte length and is still padded.
    std::string long_name(200, 'Q');
    const std::string_view names[] = {long_name};
    rec = p::encode_get_values(names);
    BOOST_TEST(rec.size() == 8u + 205 + 3);
    BOOST_TEST(rec.substr(8, 5) == "\x80\x00\x00\xC8\x00"s);
}

BOOST_AUTO_TEST_CASE(get_values_too_large_gives_empty) {
    std::string big(65528 - 5, 'N');  // 4-byte name length + 1-byte value length + name
    const std::string_view fits[] = {big};
    std::string rec = p::encode_get_values(fits);
    BOOST_TEST(rec.size() == 8u + 65528);
    std::string bigger(65528 - 4, 'N');
    const std::string_view too_big[] = {bigger};
    BOOST_TEST(p::encode_get_values(too_big).empty());
    // Many pairs that each fit but not together: refused, not wrapped or truncated.
    const std::string_view many[] = {big, "X", big};
    BOOST_TEST(p::encode_get_values(many).empty());
}

BOOST_AUTO_TEST_CASE(go_get_values_result_bytes) {
    const p::name_value values[] = {{"FCGI_MPXS_CONNS", "1"}};
    std::string rec = p::encode_get_values_result(values);
    BOOST_TEST(rec ==
               "\x01\x0A\x00\x00\x00\x12\x06\x00"
               "\x0F\x01"
               "FCGI_MPXS_CONNS"
               "1"
               "\x00\x00\x00\x00\x00\x00"s);
    BOOST_TEST(p::encode_get_values_result({}) == "\x01\x0A\x00\x00\x00\x00\x00\x00"s);
}

BOOST_AUTO_TEST_CASE(parse_go_get_values_result_with_extra_empty_record) {
    std::string content = "\x0F\x01"s + "FCGI_MPXS_CONNS" + "1";
    p::get_values_result result;
    BOOST_TEST(!p::parse_get_values_result(content, result));
    BOOST_TEST(!p::parse_get_values_result({}, result));  // Go's extra empty record
    BOOST_TEST(result.mpxs_conns.has_value());
    BOOST_TEST(*result.mpxs_conns == true);
    BOOST_TEST(!result.max_conns.has_value());
    BOOST_TEST(!result.max_reqs.has_value());
    BOOST_TEST(result.all.size() == 1u);
    BOOST_TEST(result.all[0].first == "FCGI_MPXS_CONNS");
    BOOST_TEST(result.all[0].second == "1");
}

// "A number; not 0 means true": a server may answer 2 or 255, and must not be taken as one that
// does not multiplex.
BOOST_AUTO_TEST_CASE(mpxs_conns_any_nonzero_number_is_true) {
    for (std::string v : {"0"s, "1"s, "2"s, "255"s}) {
        std::string content = "\x0F"s + static_cast<char>(v.size()) + "FCGI_MPXS_CONNS" + v;
        p::get_values_result r;
        BOOST_TEST(!p::parse_get_values_result(content, r));
        BOOST_TEST_REQUIRE(r.mpxs_conns.has_value());
        BOOST_TEST(*r.mpxs_conns == (v != "0"), "value " << v);
    }
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_all_fields) {
    const p::name_value values[] = {
        {"FCGI_MAX_CONNS", "10"}, {"FCGI_MAX_REQS", "50"}, {"FCGI_MPXS_CONNS", "0"}};
    std::string rec = p::encode_get_values_result(values);
    auto h = p::decode_header(std::span<const char, 8>(rec.data(), 8));
    p::get_values_result result;
    BOOST_TEST(
        !p::parse_get_values_result(std::string_view(rec).substr(8, h.content_length), result));
    BOOST_TEST(result.max_conns.value_or(0) == 10u);
    BOOST_TEST(result.max_reqs.value_or(0) == 50u);
    BOOST_TEST(result.mpxs_conns.has_value());
    BOOST_TEST(*result.mpxs_conns == false);
    BOOST_TEST(result.all.size() == 3u);
    BOOST_TEST(result.all[1].first == "FCGI_MAX_REQS");
    BOOST_TEST(result.all[1].second == "50");
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_merges_records) {
    p::get_values_result result;
    BOOST_TEST(!p::parse_get_values_result("\x0E\x02"s + "FCGI_MAX_CONNS" + "16", result));
    BOOST_TEST(!p::parse_get_values_result("\x0D\x04"s + "FCGI_MAX_REQS" + "4096", result));
    BOOST_TEST(result.max_conns.value_or(0) == 16u);
    BOOST_TEST(result.max_reqs.value_or(0) == 4096u);
    BOOST_TEST(!result.mpxs_conns.has_value());
    BOOST_TEST(result.all.size() == 2u);
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_keeps_unknown_names) {
    const p::name_value values[] = {{"X_VENDOR", "abc"}, {"FCGI_MPXS_CONNS", "1"}, {"EMPTY", ""}};
    std::string rec = p::encode_get_values_result(values);
    auto h = p::decode_header(std::span<const char, 8>(rec.data(), 8));
    p::get_values_result result;
    BOOST_TEST(
        !p::parse_get_values_result(std::string_view(rec).substr(8, h.content_length), result));
    BOOST_TEST(result.all.size() == 3u);
    BOOST_TEST(result.all[0].first == "X_VENDOR");
    BOOST_TEST(result.all[0].second == "abc");
    BOOST_TEST(result.all[2].first == "EMPTY");
    BOOST_TEST(result.all[2].second == "");
    BOOST_TEST(result.mpxs_conns.value_or(false) == true);
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_ignores_non_numeric) {
    for (std::string bad : {"", "abc", "-1", "+5", " 5", "5 ", "1x", "4294967296", "0x10"}) {
        p::get_values_result result;
        std::string content;
        for (auto name : {p::max_conns_name, p::max_reqs_name, p::mpxs_conns_name}) {
            content += static_cast<char>(name.size());
            content += static_cast<char>(bad.size());
            content += std::string(name) + bad;
        }
        BOOST_TEST(!p::parse_get_values_result(content, result), bad);
        BOOST_TEST(!result.max_conns.has_value(), bad);
        BOOST_TEST(!result.max_reqs.has_value(), bad);
        BOOST_TEST(!result.mpxs_conns.has_value(), bad);
        // Still reported as sent.
        BOOST_TEST(result.all.size() == 3u);
        if (result.all.size() == 3u)
            BOOST_TEST(result.all[0].second == bad);
    }
    // The largest u32 parses.
    p::get_values_result result;
    BOOST_TEST(!p::parse_get_values_result("\x0E\x0A"s + "FCGI_MAX_CONNS" + "4294967295", result));
    BOOST_TEST(result.max_conns.value_or(0) == 4294967295u);
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_non_numeric_keeps_earlier_value) {
    // A later unparsable value is ignored, not a reason to forget a good one.
    p::get_values_result result;
    BOOST_TEST(!p::parse_get_values_result("\x0E\x02"s + "FCGI_MAX_CONNS" + "10", result));
    BOOST_TEST(!p::parse_get_values_result("\x0E\x03"s + "FCGI_MAX_CONNS" + "abc", result));
    BOOST_TEST(!p::parse_get_values_result("\x0D\x01"s + "FCGI_MAX_REQS" + "7", result));
    BOOST_TEST(!p::parse_get_values_result("\x0D\x01"s + "FCGI_MAX_REQS" + "?", result));
    BOOST_TEST(result.max_conns.value_or(0) == 10u);
    BOOST_TEST(result.max_reqs.value_or(0) == 7u);
    BOOST_TEST(result.all.size() == 4u);
}

BOOST_AUTO_TEST_CASE(parse_get_values_result_malformed) {
    p::get_values_result result;
    // Go's malformed pair: 50 + 50 bytes claimed in 10.
    BOOST_TEST(p::parse_get_values_result("\x32\x32\x03\x04\x05\x06\x07\x08\x09\x0A"s, result) ==
               bad_name_value);
    BOOST_TEST(result.all.empty());
    // Pairs before the bad one are kept.
    std::string content = "\x0F\x01"s + "FCGI_MPXS_CONNS" + "1" + "\x05";
    BOOST_TEST(p::parse_get_values_result(content, result) == bad_name_value);
    BOOST_TEST(result.all.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
