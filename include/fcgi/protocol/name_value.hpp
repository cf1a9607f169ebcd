// FastCGI name-value pairs (spec 3.4): each length is 1 byte when < 128, else 4 bytes with the
// high bit set (31 bits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "fcgi/protocol/types.hpp"

namespace fcgi::protocol {

/// A name-value pair viewing bytes owned elsewhere.
struct name_value {
    std::string_view name;   ///< the name bytes
    std::string_view value;  ///< the value bytes

    /// Byte-wise equality of name and value.
    friend bool operator==(const name_value&, const name_value&) = default;
};

/// Bytes a length takes on the wire.
constexpr std::size_t length_size(std::size_t n) noexcept {
    return n < 128 ? 1 : 4;
}

/// Bytes a pair takes on the wire. Lengths above max_name_value_length cannot be encoded.
constexpr std::size_t encoded_size(std::string_view name, std::string_view value) noexcept {
    return length_size(name.size()) + length_size(value.size()) + name.size() + value.size();
}

/// True when a pair fits in one PARAMS or GET_VALUES record (max_params_content bytes encoded).
/// Checks each length first, so no sum can wrap even where size_t is 32 bits.
constexpr bool fits_one_record(std::string_view name, std::string_view value) noexcept {
    return name.size() <= max_params_content && value.size() <= max_params_content &&
           encoded_size(name, value) <= max_params_content;
}

/// Writes one length at `out`; returns the position after it. Requires n <= max_name_value_length.
inline char* encode_length(char* out, std::uint32_t n) noexcept {
    if (n < 128) {
        *out++ = static_cast<char>(n);
        return out;
    }
    *out++ = static_cast<char>((n >> 24) | 0x80u);
    *out++ = static_cast<char>((n >> 16) & 0xffu);
    *out++ = static_cast<char>((n >> 8) & 0xffu);
    *out++ = static_cast<char>(n & 0xffu);
    return out;
}

/// Writes a pair at `out`, which must have encoded_size(name, value) bytes; returns the end.
/// Requires both sizes <= max_name_value_length: the wire has 31 bits for a length, and a longer
/// one would be written wrong (fits_one_record() checks a pair for one record, which is less).
char* encode_name_value(char* out, std::string_view name, std::string_view value) noexcept;

/// Reads one pair from the front of `in` and advances `in` past it. A truncated length or a
/// length running past the end of `in` gives error::bad_name_value and leaves `in` unchanged.
std::error_code decode_name_value(std::string_view& in, name_value& out) noexcept;

/// Walks the pairs of a complete PARAMS, GET_VALUES or GET_VALUES_RESULT content.
///
///     name_value_reader r(content);
///     for (name_value nv; r.next(nv);) use(nv);
///     if (r.error()) ...
class name_value_reader {
  public:
    /// A reader over `content`, which must outlive it.
    explicit name_value_reader(std::string_view content) noexcept : rest_(content) {}

    /// Reads the next pair; false at the end of the content or on error (see error()).
    bool next(name_value& out) noexcept {
        if (rest_.empty() || ec_)
            return false;
        ec_ = decode_name_value(rest_, out);
        return !ec_;
    }

    /// The error that stopped next(), if any.
    std::error_code error() const noexcept { return ec_; }

  private:
    std::string_view rest_;
    std::error_code ec_;
};

}  // namespace fcgi::protocol
