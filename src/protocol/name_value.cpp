#include "fcgi/protocol/name_value.hpp"

#include <cassert>
#include <cstring>

#include "fcgi/error.hpp"

namespace fcgi::protocol {
namespace {

// Reads one length; false when `in` is too short.
bool read_length(std::string_view& in, std::size_t& n) noexcept {
    if (in.empty())
        return false;
    auto b0 = static_cast<std::uint8_t>(in[0]);
    if ((b0 & 0x80u) == 0) {
        n = b0;
        in.remove_prefix(1);
        return true;
    }
    if (in.size() < 4)
        return false;
    n = (std::size_t{b0 & 0x7fu} << 24) | (std::size_t{static_cast<std::uint8_t>(in[1])} << 16) |
        (std::size_t{static_cast<std::uint8_t>(in[2])} << 8) | static_cast<std::uint8_t>(in[3]);
    in.remove_prefix(4);
    return true;
}

}  // namespace

namespace {

// Copies `s` to `out` and returns the end. Most CGI names and values are under 32 bytes, where a
// libc call per string cost more than the copy: those use two overlapping fixed-size moves,
// which stay inside both buffers.
inline char* copy_bytes(char* out, std::string_view s) noexcept {
    const char* in = s.data();
    std::size_t n = s.size();
    if (n >= 16 && n <= 32) {
        std::memcpy(out, in, 16);
        std::memcpy(out + n - 16, in + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        std::memcpy(out, in, 8);
        std::memcpy(out + n - 8, in + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        std::memcpy(out, in, 4);
        std::memcpy(out + n - 4, in + n - 4, 4);
    } else if (n > 32) {
        std::memcpy(out, in, n);
    } else {
        for (std::size_t i = 0; i < n; ++i)
            out[i] = in[i];
    }
    return out + n;
}

}  // namespace

char* encode_name_value(char* out, std::string_view name, std::string_view value) noexcept {
    assert(name.size() <= max_name_value_length && value.size() <= max_name_value_length);
    out = encode_length(out, static_cast<std::uint32_t>(name.size()));
    out = encode_length(out, static_cast<std::uint32_t>(value.size()));
    out = copy_bytes(out, name);
    return copy_bytes(out, value);
}

std::error_code decode_name_value(std::string_view& in, name_value& out) noexcept {
    std::string_view rest = in;
    std::size_t name_len = 0, value_len = 0;
    if (!read_length(rest, name_len) || !read_length(rest, value_len))
        return error::bad_name_value;
    // Compare without adding, so lengths near 2^31 cannot overflow on 32-bit size_t.
    if (name_len > rest.size() || value_len > rest.size() - name_len)
        return error::bad_name_value;
    out.name = rest.substr(0, name_len);
    out.value = rest.substr(name_len, value_len);
    rest.remove_prefix(name_len + value_len);
    in = rest;
    return {};
}

}  // namespace fcgi::protocol
