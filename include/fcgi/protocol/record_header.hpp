// The 8-byte FastCGI record header (spec 3.3).
#pragma once

#include <cstdint>
#include <span>

#include "fcgi/protocol/types.hpp"

namespace fcgi::protocol {

/// A decoded record header. `type` may hold values outside record_type's enumerators.
struct record_header {
    std::uint8_t version = version_1;              ///< protocol version (1)
    record_type type = record_type::unknown_type;  ///< record type, possibly unknown
    std::uint16_t request_id = 0;                  ///< 0 for management records
    std::uint16_t content_length = 0;              ///< content bytes that follow the header
    std::uint8_t padding_length = 0;               ///< padding bytes after the content

    /// Field-wise equality.
    friend bool operator==(const record_header&, const record_header&) = default;
};

/// Writes `h` into exactly 8 bytes at `out`.
inline void encode_header(const record_header& h, std::span<char, header_size> out) noexcept {
    out[0] = static_cast<char>(h.version);
    out[1] = static_cast<char>(h.type);
    out[2] = static_cast<char>(h.request_id >> 8);
    out[3] = static_cast<char>(h.request_id & 0xff);
    out[4] = static_cast<char>(h.content_length >> 8);
    out[5] = static_cast<char>(h.content_length & 0xff);
    out[6] = static_cast<char>(h.padding_length);
    out[7] = 0;
}

/// Writes a header for a record of `type` with `content_length` and padding to 8.
inline void encode_header(record_type type, std::uint16_t request_id, std::uint16_t content_length,
                          std::span<char, header_size> out) noexcept {
    encode_header(
        record_header{version_1, type, request_id, content_length, padding_for(content_length)},
        out);
}

/// Reads a header from exactly 8 bytes. Never fails: validation is the decoder's job.
inline record_header decode_header(std::span<const char, header_size> in) noexcept {
    auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(in[i]); };
    return record_header{b(0), static_cast<record_type>(b(1)),
                         static_cast<std::uint16_t>(b(2) << 8 | b(3)),
                         static_cast<std::uint16_t>(b(4) << 8 | b(5)), b(6)};
}

}  // namespace fcgi::protocol
