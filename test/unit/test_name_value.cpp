// Name-value pairs (spec 3.4): length encodings, boundaries and malformed input.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"
#include "fcgi/protocol/name_value.hpp"

namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;
using fcgi::make_error_code;
using fcgi::protocol::decode_name_value;
using fcgi::protocol::encode_length;
using fcgi::protocol::encode_name_value;
using fcgi::protocol::encoded_size;
using fcgi::protocol::fits_one_record;
using fcgi::protocol::length_size;
using fcgi::protocol::max_name_value_length;
using fcgi::protocol::name_value;
using fcgi::protocol::name_value_reader;

const std::error_code bad_name_value = make_error_code(fcgi::error::bad_name_value);

std::string length_bytes(std::uint32_t n) {
    char buf[4];
    char* end = encode_length(buf, n);
    return std::string(buf, end);
}

std::string pair_bytes(std::string_view name, std::string_view value) {
    std::string out(encoded_size(name, value), '\xAA');
    char* end = encode_name_value(out.data(), name, value);
    BOOST_TEST(static_cast<std::size_t>(end - out.data()) == out.size());
    return out;
}

// Decodes every pair of `content`; `ec` gets the reader's error.
std::vector<std::pair<std::string, std::string>> read_all(std::string_view content,
                                                          std::error_code& ec) {
    std::vector<std::pair<std::string, std::string>> out;
    name_value_reader r(content);
    for (name_value nv; r.next(nv);)
        out.emplace_back(nv.name, nv.value);
    ec = r.error();
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(name_value_pairs)

// Vectors from Go's net/http/fcgi tests (PROTOCOL.md).
BOOST_AUTO_TEST_CASE(go_length_vectors) {
    BOOST_TEST(length_bytes(0) == "\x00"s);
    BOOST_TEST(length_bytes(127) == "\x7F"s);
    BOOST_TEST(length_bytes(128) == "\x80\x00\x00\x80"s);
    BOOST_TEST(length_bytes(1000) == "\x80\x00\x03\xE8"s);
    BOOST_TEST(length_bytes(33554431) == "\x81\xFF\xFF\xFF"s);
}

BOOST_AUTO_TEST_CASE(length_size_boundary) {
    BOOST_TEST(length_size(0) == 1u);
    BOOST_TEST(length_size(127) == 1u);
    BOOST_TEST(length_size(128) == 4u);
    BOOST_TEST(length_size(max_name_value_length) == 4u);
    static_assert(length_size(127) == 1 && length_size(128) == 4);
    static_assert(encoded_size("", "") == 2);
    BOOST_TEST(encoded_size(std::string(127, 'n'), std::string(128, 'v')) == 1u + 4 + 127 + 128);
}

BOOST_AUTO_TEST_CASE(fits_one_record_boundary) {
    // 65528 bytes of content: two 4-byte lengths leave 65520 for name and value, a 1-byte
    // value length 65523.
    const std::string name(65000, 'n');
    BOOST_TEST(fits_one_record(name, std::string(520, 'v')));
    BOOST_TEST(!fits_one_record(name, std::string(521, 'v')));
    BOOST_TEST(fits_one_record(std::string(65523, 'n'), ""));
    BOOST_TEST(!fits_one_record(std::string(65524, 'n'), ""));
    BOOST_TEST(fits_one_record("", std::string(65528 - 5, 'v')));
    BOOST_TEST(!fits_one_record("", std::string(65528 - 4, 'v')));
    BOOST_TEST(fits_one_record("", ""));
    // One side alone over a record is refused whatever the other (the check that keeps the
    // sum from wrapping a 32-bit size_t).
    const std::string over(65529, 'x');
    BOOST_TEST(!fits_one_record(over, ""));
    BOOST_TEST(!fits_one_record("", over));
}

BOOST_AUTO_TEST_CASE(max_31_bit_length) {
    BOOST_TEST(max_name_value_length == 0x7fffffffu);
    BOOST_TEST(length_bytes(0x7fffffff) == "\xFF\xFF\xFF\xFF"s);
    BOOST_TEST(length_bytes(0x01000000) == "\x81\x00\x00\x00"s);
    BOOST_TEST(length_bytes(0x00ABCDEF) == "\x80\xAB\xCD\xEF"s);
}

BOOST_AUTO_TEST_CASE(encode_small_pair) {
    BOOST_TEST(pair_bytes("SCRIPT_FILENAME", "/srv/a.php") ==
               "\x0F\x0A"s + "SCRIPT_FILENAME" + "/srv/a.php");
    BOOST_TEST(pair_bytes("", "") == "\x00\x00"s);
    BOOST_TEST(pair_bytes("A", "") == "\x01\x00"s + "A");
    BOOST_TEST(pair_bytes("", "B") == "\x00\x01"s + "B");
}

BOOST_AUTO_TEST_CASE(encode_long_pair) {
    std::string name(128, 'N');
    std::string value(1000, 'V');
    std::string bytes = pair_bytes(name, value);
    BOOST_TEST(bytes.size() == 4u + 4 + 128 + 1000);
    BOOST_TEST(bytes.substr(0, 8) == "\x80\x00\x00\x80\x80\x00\x03\xE8"s);
    BOOST_TEST(bytes.substr(8, 128) == name);
    BOOST_TEST(bytes.substr(136) == value);
}

BOOST_AUTO_TEST_CASE(round_trip_at_length_boundaries) {
    for (std::size_t n : {0, 1, 126, 127, 128, 129, 255, 256, 1000, 65535, 65536, 100000}) {
        for (std::size_t v : {0, 127, 128, 5000}) {
            std::string name(n, 'x');
            std::string value(v, 'y');
            std::string bytes = pair_bytes(name, value);
            BOOST_TEST(bytes.size() == length_size(n) + length_size(v) + n + v);
            std::string_view in = bytes;
            name_value nv;
            BOOST_TEST(!decode_name_value(in, nv));
            BOOST_TEST(in.empty());
            BOOST_TEST(nv.name == name);
            BOOST_TEST(nv.value == value);
            // The views point into the input, not into a copy.
            BOOST_TEST(nv.name.data() == bytes.data() + length_size(n) + length_size(v));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_short_size_copies_exactly) {
    // Short names and values take a different copy path for each size class: check every size
    // up to past the largest class, with distinct bytes so a misplaced byte shows.
    for (std::size_t n = 0; n <= 70; ++n) {
        for (std::size_t v = 0; v <= 70; ++v) {
            std::string name(n, '\0');
            std::string value(v, '\0');
            for (std::size_t i = 0; i < n; ++i)
                name[i] = static_cast<char>('A' + i % 26);
            for (std::size_t i = 0; i < v; ++i)
                value[i] = static_cast<char>(200 - i);
            std::string bytes = pair_bytes(name, value);
            std::string_view in = bytes;
            name_value nv;
            if (decode_name_value(in, nv) || nv.name != name || nv.value != value || !in.empty())
                BOOST_FAIL("round trip of name " << n << " and value " << v << " bytes");
        }
    }
}

BOOST_AUTO_TEST_CASE(decode_advances_past_one_pair) {
    std::string bytes = pair_bytes("A", "1") + pair_bytes("BB", "22");
    std::string_view in = bytes;
    name_value nv;
    BOOST_TEST(!decode_name_value(in, nv));
    BOOST_TEST(nv.name == "A");
    BOOST_TEST(nv.value == "1");
    BOOST_TEST(in.size() == 6u);
    BOOST_TEST(!decode_name_value(in, nv));
    BOOST_TEST(nv.name == "BB");
    BOOST_TEST(nv.value == "22");
    BOOST_TEST(in.empty());
}

BOOST_AUTO_TEST_CASE(non_canonical_four_byte_length_is_accepted) {
    // A 4-byte length for a small value is legal on the wire (the high bit selects the form).
    std::string bytes = "\x80\x00\x00\x01\x80\x00\x00\x02"s + "N" + "VV";
    std::string_view in = bytes;
    name_value nv;
    BOOST_TEST(!decode_name_value(in, nv));
    BOOST_TEST(nv.name == "N");
    BOOST_TEST(nv.value == "VV");
    BOOST_TEST(in.empty());
}

BOOST_AUTO_TEST_CASE(reader_walks_pairs_in_order) {
    std::string content;
    std::vector<std::pair<std::string, std::string>> want;
    for (int i = 0; i < 50; ++i) {
        std::string n = "NAME_" + std::to_string(i);
        std::string v(static_cast<std::size_t>(i * 7), static_cast<char>('a' + i % 26));
        content += pair_bytes(n, v);
        want.emplace_back(n, v);
    }
    std::error_code ec;
    auto got = read_all(content, ec);
    BOOST_TEST(!ec);
    BOOST_TEST(got.size() == want.size());
    for (std::size_t i = 0; i < want.size() && i < got.size(); ++i) {
        BOOST_TEST(got[i].first == want[i].first);
        BOOST_TEST(got[i].second == want[i].second);
    }
}

BOOST_AUTO_TEST_CASE(reader_on_empty_content) {
    std::error_code ec;
    BOOST_TEST(read_all({}, ec).empty());
    BOOST_TEST(!ec);
    name_value_reader r{std::string_view{}};
    name_value nv;
    BOOST_TEST(!r.next(nv));
    BOOST_TEST(!r.error());
}

// Go's malformed PARAMS record: 10 bytes of content claiming a 50-byte name and a 50-byte value.
BOOST_AUTO_TEST_CASE(go_malformed_params_content) {
    std::string content = "\x32\x32\x03\x04\x05\x06\x07\x08\x09\x0A"s;
    std::error_code ec;
    auto got = read_all(content, ec);
    BOOST_TEST(got.empty());
    BOOST_TEST(ec == bad_name_value);
}

BOOST_AUTO_TEST_CASE(reader_stops_at_first_error_and_stays_stopped) {
    std::string content = pair_bytes("OK", "yes") + "\x05\x01" + "abc";
    name_value_reader r(content);
    name_value nv;
    BOOST_TEST(r.next(nv));
    BOOST_TEST(nv.name == "OK");
    BOOST_TEST(!r.next(nv));
    BOOST_TEST(r.error() == bad_name_value);
    BOOST_TEST(!r.next(nv));
    BOOST_TEST(r.error() == bad_name_value);
}

BOOST_AUTO_TEST_CASE(truncated_length_bytes) {
    // Every strict prefix of a pair with two 4-byte lengths is malformed, and must leave the
    // input untouched.
    std::string bytes = pair_bytes(std::string(200, 'n'), std::string(300, 'v'));
    for (std::size_t k = 1; k < bytes.size(); ++k) {
        std::string_view in(bytes.data(), k);
        name_value nv;
        BOOST_TEST(decode_name_value(in, nv) == bad_name_value, k);
        BOOST_TEST(in.size() == k);
    }
    // Lengths cut inside the 4-byte form specifically.
    for (std::string s : {"\x80"s, "\x80\x00"s, "\x80\x00\x00"s, "\x01\x80"s, "\x01\x80\x00\x00"s,
                          "\x80\x00\x00\x01"s, "\x80\x00\x00\x01\x80\x00"s}) {
        std::string_view in = s;
        name_value nv;
        BOOST_TEST(decode_name_value(in, nv) == bad_name_value);
        BOOST_TEST(in.size() == s.size());
    }
}

BOOST_AUTO_TEST_CASE(value_running_past_end) {
    // Name fits, value one byte short.
    std::string s = "\x02\x03"s + "ab" + "xy";
    std::string_view in = s;
    name_value nv;
    BOOST_TEST(decode_name_value(in, nv) == bad_name_value);
    // Name alone runs past the end.
    s = "\x05\x00"s + "abcd";
    in = s;
    BOOST_TEST(decode_name_value(in, nv) == bad_name_value);
    // Exactly enough: accepted.
    s = "\x02\x03"s + "ab" + "xyz";
    in = s;
    BOOST_TEST(!decode_name_value(in, nv));
    BOOST_TEST(nv.value == "xyz");
}

BOOST_AUTO_TEST_CASE(huge_length_claims_do_not_overflow) {
    // Lengths near 2^31 whose sum would wrap a 32-bit size, and ones that wrap when added to
    // a pointer: all must be rejected without reading past the input.
    const std::string claims[] = {
        "\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"s + "abcdefgh",   // 2^31-1 + 2^31-1
        "\xFF\xFF\xFF\xFF\x01"s + "ab",                     // huge name, small value
        "\x01\xFF\xFF\xFF\xFF"s + "ab",                     // small name, huge value
        "\x80\x00\x00\x01\xFF\xFF\xFF\xFF"s + "x",          // value of 2^31-1 after a name
        "\xC0\x00\x00\x00\xC0\x00\x00\x00"s + "abc",        // 2^30 + 2^30 = 2^31
        "\x80\x00\x00\x00\xFF\xFF\xFF\xFE"s + "\x00\x00"s,  // 0 + 2^31-2
    };
    for (const auto& s : claims) {
        std::string_view in = s;
        name_value nv;
        BOOST_TEST(decode_name_value(in, nv) == bad_name_value);
        BOOST_TEST(in.size() == s.size());
        std::error_code ec;
        BOOST_TEST(read_all(s, ec).empty());
        BOOST_TEST(ec == bad_name_value);
    }
}

BOOST_AUTO_TEST_CASE(binary_bytes_in_names_and_values) {
    std::string name("\x00\xFF\x80\n", 4);
    std::string value("caf\xC3\xA9 \xE2\x82\xAC\x00", 10);
    std::string bytes = pair_bytes(name, value);
    std::string_view in = bytes;
    name_value nv;
    BOOST_TEST(!decode_name_value(in, nv));
    BOOST_TEST(nv.name == name);
    BOOST_TEST(nv.value == value);
}

BOOST_AUTO_TEST_CASE(name_value_equality) {
    name_value a{"A", "1"};
    name_value b{"A", "1"};
    name_value c{"A", "2"};
    BOOST_TEST((a == b));
    BOOST_TEST(!(a == c));
}

BOOST_AUTO_TEST_SUITE_END()
