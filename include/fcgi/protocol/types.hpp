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
/// 65535 (seen with php-fpm 8.2), and 65528 is the largest multiple of 8 below it.
inline constexpr std::size_t max_params_content = 65528;
/// Largest STDIN/DATA content per record we send; a multiple of 8, so full records need no padding.
inline constexpr std::size_t max_stream_content = 65528;
/// Request ID reserved for management records (GET_VALUES and its result).
inline constexpr std::uint16_t management_id = 0;
/// The largest request ID (a 16-bit field).
inline constexpr std::uint16_t max_request_id = 65535;
/// Largest name or value length a name-value pair can encode (31 bits).
inline constexpr std::uint32_t max_name_value_length = 0x7fffffffu;

/// Record types (FCGI_BEGIN_REQUEST ... FCGI_UNKNOWN_TYPE).
enum class record_type : std::uint8_t {
    begin_request = 1,       ///< FCGI_BEGIN_REQUEST: starts a request (client to server)
    abort_request = 2,       ///< FCGI_ABORT_REQUEST: asks the server to stop a request
    end_request = 3,         ///< FCGI_END_REQUEST: the request is over (server to client)
    params = 4,              ///< FCGI_PARAMS: the CGI environment, as name-value pairs
    stdin_ = 5,              ///< FCGI_STDIN: the request body
    stdout_ = 6,             ///< FCGI_STDOUT: the response (CGI head and body)
    stderr_ = 7,             ///< FCGI_STDERR: the script's error output
    data = 8,                ///< FCGI_DATA: the file data of the FILTER role
    get_values = 9,          ///< FCGI_GET_VALUES: asks what the server supports
    get_values_result = 10,  ///< FCGI_GET_VALUES_RESULT: the answer to GET_VALUES
    unknown_type = 11,       ///< FCGI_UNKNOWN_TYPE: the server did not know a record's type
};

/// Roles of BEGIN_REQUEST.
enum class role : std::uint16_t {
    responder = 1,   ///< FCGI_RESPONDER: CGI semantics (what php-fpm serves)
    authorizer = 2,  ///< FCGI_AUTHORIZER: decides whether a request is allowed
    filter = 3,      ///< FCGI_FILTER: like a responder, with a file on the DATA stream
};

/// Flags of BEGIN_REQUEST.
enum class begin_flags : std::uint8_t {
    none = 0,       ///< the server closes the connection after END_REQUEST
    keep_conn = 1,  ///< FCGI_KEEP_CONN: the server keeps the connection open after END_REQUEST
};

/// protocolStatus of END_REQUEST.
enum class protocol_status : std::uint8_t {
    request_complete = 0,  ///< FCGI_REQUEST_COMPLETE: the request ran to its end
    cant_mpx_conn = 1,     ///< FCGI_CANT_MPX_CONN: refused a second request on a connection
    overloaded = 2,        ///< FCGI_OVERLOADED: out of a resource (workers, memory)
    unknown_role = 3,      ///< FCGI_UNKNOWN_ROLE: the role is not implemented
};

/// True for the types the spec knows (1..11).
constexpr bool is_known(record_type t) noexcept {
    auto v = static_cast<std::uint8_t>(t);
    return v >= 1 && v <= 11;
}

/// True for stream record types (PARAMS, STDIN, STDOUT, STDERR, DATA): content may arrive in
/// pieces.
constexpr bool is_stream(record_type t) noexcept {
    // Not a switch: any byte may arrive as a type, and -Wswitch-enum users include this.
    return t == record_type::params || t == record_type::stdin_ || t == record_type::stdout_ ||
           t == record_type::stderr_ || t == record_type::data;
}

/// Padding that brings `content_length` to a multiple of 8.
constexpr std::uint8_t padding_for(std::size_t content_length) noexcept {
    return static_cast<std::uint8_t>((8 - (content_length & 7u)) & 7u);
}

/// Printable name of a record type ("STDOUT"), or "UNKNOWN" for a type without a name.
std::string_view to_string(record_type t) noexcept;
/// Printable name of a role ("RESPONDER").
std::string_view to_string(role r) noexcept;
/// Printable name of a protocol status ("REQUEST_COMPLETE").
std::string_view to_string(protocol_status s) noexcept;
/// Printable name of BEGIN_REQUEST flags ("KEEP_CONN" or "0").
std::string_view to_string(begin_flags f) noexcept;

}  // namespace fcgi::protocol
