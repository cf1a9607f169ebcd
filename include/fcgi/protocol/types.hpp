// FastCGI 1.0 constants: record types, roles, flags and protocol statuses (spec section 8).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fcgi::protocol {

/// The only protocol version (FCGI_VERSION_1).
inline constexpr std::uint8_t version_1 = 1;
/// Size of every record header.
inline constexpr std::size_t header_size = 8;
/// Largest contentLength a header can carry.
inline constexpr std::size_t max_content_length = 65535;
/// Largest PARAMS content we send: php-fpm resets the connection when content + padding exceeds
/// 65535 (PROTOCOL.md item 4), and 65528 is the largest multiple of 8 below it.
inline constexpr std::size_t max_params_content = 65528;
/// Largest STDIN/DATA content per record we send; a multiple of 8, so full records need no padding.
inline constexpr std::size_t max_stream_content = 65528;
/// Request ID reserved for management records (GET_VALUES and its result).
inline constexpr std::uint16_t management_id = 0;
/// Largest name or value length a name-value pair can encode (31 bits).
inline constexpr std::uint32_t max_name_value_length = 0x7fffffffu;

/// Record types (FCGI_BEGIN_REQUEST ... FCGI_UNKNOWN_TYPE).
enum class record_type : std::uint8_t {
    begin_request = 1,
    abort_request = 2,
    end_request = 3,
    params = 4,
    stdin_ = 5,
    stdout_ = 6,
    stderr_ = 7,
    data = 8,
    get_values = 9,
    get_values_result = 10,
    unknown_type = 11,
};

/// Roles of BEGIN_REQUEST.
enum class role : std::uint16_t {
    responder = 1,
    authorizer = 2,
    filter = 3,
};

/// Flags of BEGIN_REQUEST.
enum class begin_flags : std::uint8_t {
    none = 0,
    keep_conn = 1,  ///< FCGI_KEEP_CONN: the server keeps the connection open after END_REQUEST
};

/// protocolStatus of END_REQUEST.
enum class protocol_status : std::uint8_t {
    request_complete = 0,
    cant_mpx_conn = 1,
    overloaded = 2,
    unknown_role = 3,
};

/// True for the types the spec knows (1..11).
constexpr bool is_known(record_type t) noexcept {
    auto v = static_cast<std::uint8_t>(t);
    return v >= 1 && v <= 11;
}

/// True for stream record types (PARAMS, STDIN, STDOUT, STDERR, DATA): content may arrive in
/// pieces.
constexpr bool is_stream(record_type t) noexcept {
    switch (t) {
        case record_type::params:
        case record_type::stdin_:
        case record_type::stdout_:
        case record_type::stderr_:
        case record_type::data:
            return true;
        default:
            return false;
    }
}

/// Padding that brings `content_length` to a multiple of 8.
constexpr std::uint8_t padding_for(std::size_t content_length) noexcept {
    return static_cast<std::uint8_t>((8 - (content_length & 7u)) & 7u);
}

/// Printable name of a record type ("STDOUT"), or "type N" style "UNKNOWN" for others.
std::string_view to_string(record_type t) noexcept;
/// Printable name of a role ("RESPONDER").
std::string_view to_string(role r) noexcept;
/// Printable name of a protocol status ("REQUEST_COMPLETE").
std::string_view to_string(protocol_status s) noexcept;
/// Printable name of BEGIN_REQUEST flags ("KEEP_CONN" or "0").
std::string_view to_string(begin_flags f) noexcept;

}  // namespace fcgi::protocol
