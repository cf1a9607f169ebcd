// libFuzzer target: name-value pairs (PARAMS, GET_VALUES_RESULT content) from any bytes.
//
// Invariants: the reader never views bytes outside its content and never moves past a pair it
// could not read; the pairs read from any prefix of the content are a prefix of those read from
// the whole; parse_get_values_result agrees with the reader; and the pairs, encoded by the
// request encoder, decode back to themselves through the record decoder.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/request_encoder.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace fcgi::protocol;

void check(bool ok, const char* what) {
    fcgi::fuzz::check(ok, "name_value", what);
}

using fcgi::fuzz::within;

struct pairs {
    std::vector<name_value> items;
    std::error_code ec;
};

pairs read_all(std::string_view content) {
    pairs out;
    name_value_reader reader(content);
    const char* last_end = content.data();
    for (name_value nv; reader.next(nv);) {
        check(within(nv.name, content) && within(nv.value, content), "pair within its content");
        // Pairs come in order and do not overlap.
        if (!nv.name.empty())
            check(std::less_equal<const char*>()(last_end, nv.name.data()), "pairs in order");
        if (!nv.value.empty())
            last_end = nv.value.data() + nv.value.size();
        out.items.push_back(nv);
    }
    out.ec = reader.error();
    return out;
}

// Encodes `items` as PARAMS with the request encoder and decodes them back.
void round_trip(const std::vector<name_value>& items) {
    request_encoder enc;
    if (enc.begin(1, role::responder, begin_flags::keep_conn, items))
        return;  // a pair too large for one record: rejected before anything is appended
    std::string wire;
    for (auto b : enc.buffers())
        wire.append(b);
    check(wire.size() == enc.size(), "size() matches the buffers");

    record_decoder dec;
    std::string params;
    bool ended = false;
    std::string_view rest = wire;
    while (!rest.empty()) {
        decode_result r = dec.feed(rest);
        check(!r.ec, "our own records decode");
        rest.remove_prefix(r.consumed);
        if (!r.has_piece)
            continue;
        if (r.piece.header.type == record_type::params) {
            check((r.piece.header.content_length + r.piece.header.padding_length) % 8 == 0,
                  "PARAMS padded to 8");
            check(r.piece.header.content_length <= max_params_content, "PARAMS within 65528");
            if (r.piece.header.content_length == 0)
                ended = true;
            params.append(r.piece.content);
            // Each record holds whole pairs (php-fpm resets the connection otherwise).
            if (r.piece.end_of_record && r.piece.header.content_length != 0)
                check(!read_all(params.substr(params.size() - r.piece.header.content_length)).ec,
                      "whole pairs per PARAMS record");
        }
    }
    check(ended, "empty PARAMS record ends the stream");
    pairs back = read_all(params);
    check(!back.ec && back.items.size() == items.size() &&
              std::equal(items.begin(), items.end(), back.items.begin()),
          "pairs survive encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A copy of exactly `size` bytes, so a read past the content is a heap overflow.
    std::string content(reinterpret_cast<const char*>(data), size);
    pairs whole = read_all(content);

    // decode_name_value leaves its input unchanged on error.
    std::string_view in = content;
    name_value nv;
    while (!in.empty()) {
        std::string_view before = in;
        if (decode_name_value(in, nv)) {
            check(in.data() == before.data() && in.size() == before.size(),
                  "a failed decode does not advance");
            break;
        }
        // Two length bytes at least, so every pair read moves on.
        check(in.size() + 2 <= before.size(), "a decoded pair advances");
    }

    // Any prefix: its pairs are a prefix of the whole's pairs.
    std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    std::string prefix = content.substr(0, cut);
    pairs part = read_all(prefix);
    check(part.items.size() <= whole.items.size(), "a prefix reads no more pairs");
    for (std::size_t i = 0; i < part.items.size(); ++i)
        check(part.items[i].name == whole.items[i].name &&
                  part.items[i].value == whole.items[i].value,
              "a prefix reads the same pairs");
    if (!whole.ec && cut == size)
        check(!part.ec, "the whole content as its own prefix");

    get_values_result gv;
    std::error_code ec = parse_get_values_result(content, gv);
    check(ec == whole.ec && gv.all.size() == whole.items.size(), "get_values agrees");

    round_trip(whole.items);
    return 0;
}
