#include "fcgi/protocol/record_bodies.hpp"

#include <charconv>
#include <cstring>

#include "fcgi/error.hpp"

namespace fcgi::protocol {
namespace {

std::uint8_t byte_at(std::string_view s, std::size_t i) noexcept {
    return static_cast<std::uint8_t>(s[i]);
}

std::string encode_pairs_record(record_type type, std::span<const name_value> pairs) {
    std::size_t content = 0;
    for (const auto& p : pairs) {
        if (!fits_one_record(p.name, p.value))
            return {};
        content += encoded_size(p.name, p.value);
        if (content > max_params_content)  // checked each time: no wrap with many pairs
            return {};
    }
    std::string out(header_size + content + padding_for(content), '\0');
    encode_header(type, management_id, static_cast<std::uint16_t>(content),
                  std::span<char, header_size>(out.data(), header_size));
    char* p = out.data() + header_size;
    for (const auto& nv : pairs)
        p = encode_name_value(p, nv.name, nv.value);
    return out;
}

std::optional<std::uint32_t> to_u32(std::string_view s) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
        return std::nullopt;
    return v;
}

}  // namespace

begin_request_record encode_begin_request(std::uint16_t request_id, role r,
                                          begin_flags flags) noexcept {
    begin_request_record out{};
    encode_header(record_type::begin_request, request_id, 8,
                  std::span<char, header_size>(out.data(), header_size));
    auto rv = static_cast<std::uint16_t>(r);
    out[8] = static_cast<char>(rv >> 8);
    out[9] = static_cast<char>(rv & 0xff);
    out[10] = static_cast<char>(flags);
    return out;
}

abort_request_record encode_abort_request(std::uint16_t request_id) noexcept {
    abort_request_record out{};
    encode_header(record_type::abort_request, request_id, 0, out);
    return out;
}

std::error_code parse_begin_request(std::string_view content, begin_request_body& out) noexcept {
    if (content.size() != 8)
        return error::bad_record_length;
    out.r = static_cast<role>(byte_at(content, 0) << 8 | byte_at(content, 1));
    out.flags = static_cast<begin_flags>(byte_at(content, 2));
    return {};
}

std::error_code parse_end_request(std::string_view content, end_request_body& out) noexcept {
    if (content.size() != 8)
        return error::bad_record_length;
    out.app_status = std::uint32_t{byte_at(content, 0)} << 24 |
                     std::uint32_t{byte_at(content, 1)} << 16 |
                     std::uint32_t{byte_at(content, 2)} << 8 | byte_at(content, 3);
    out.status = static_cast<protocol_status>(byte_at(content, 4));
    return {};
}

std::array<char, header_size + 8> encode_end_request(std::uint16_t request_id,
                                                     end_request_body body) noexcept {
    std::array<char, header_size + 8> out{};
    encode_header(record_type::end_request, request_id, 8,
                  std::span<char, header_size>(out.data(), header_size));
    out[8] = static_cast<char>(body.app_status >> 24);
    out[9] = static_cast<char>((body.app_status >> 16) & 0xff);
    out[10] = static_cast<char>((body.app_status >> 8) & 0xff);
    out[11] = static_cast<char>(body.app_status & 0xff);
    out[12] = static_cast<char>(body.status);
    return out;
}

std::error_code parse_unknown_type(std::string_view content, std::uint8_t& type) noexcept {
    if (content.size() != 8)
        return error::bad_record_length;
    type = byte_at(content, 0);
    return {};
}

std::array<char, header_size + 8> encode_unknown_type(std::uint8_t type) noexcept {
    std::array<char, header_size + 8> out{};
    encode_header(record_type::unknown_type, management_id, 8,
                  std::span<char, header_size>(out.data(), header_size));
    out[8] = static_cast<char>(type);
    return out;
}

std::string encode_get_values(std::span<const std::string_view> names) {
    std::vector<name_value> pairs;
    pairs.reserve(names.size());
    for (auto n : names)
        pairs.push_back({n, {}});
    return encode_pairs_record(record_type::get_values, pairs);
}

std::string encode_get_values_result(std::span<const name_value> values) {
    return encode_pairs_record(record_type::get_values_result, values);
}

std::error_code parse_get_values_result(std::string_view content, get_values_result& out) {
    name_value_reader reader(content);
    for (name_value nv; reader.next(nv);) {
        out.all.emplace_back(nv.name, nv.value);
        // An unparsable number is ignored: it must not erase a value from an earlier record.
        if (nv.name == max_conns_name) {
            if (auto v = to_u32(nv.value))
                out.max_conns = v;
        } else if (nv.name == max_reqs_name) {
            if (auto v = to_u32(nv.value))
                out.max_reqs = v;
        } else if (nv.name == mpxs_conns_name) {
            if (auto v = to_u32(nv.value))
                out.mpxs_conns = *v != 0;
        }
    }
    return reader.error();
}

}  // namespace fcgi::protocol
