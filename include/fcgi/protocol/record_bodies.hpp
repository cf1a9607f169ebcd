// Bodies of the fixed-size and management records: BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE,
// ABORT_REQUEST, GET_VALUES and GET_VALUES_RESULT (spec 4 and 5).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_header.hpp"

namespace fcgi::protocol {

/// A whole BEGIN_REQUEST record: header and 8-byte body.
using begin_request_record = std::array<char, header_size + 8>;
/// A whole ABORT_REQUEST record (no body).
using abort_request_record = std::array<char, header_size>;

/// Encodes a BEGIN_REQUEST record for `request_id`.
begin_request_record encode_begin_request(std::uint16_t request_id, role r,
                                          begin_flags flags) noexcept;

/// Encodes an ABORT_REQUEST record for `request_id`.
abort_request_record encode_abort_request(std::uint16_t request_id) noexcept;

/// The body of BEGIN_REQUEST as a server reads it.
struct begin_request_body {
    role r = role::responder;               ///< the role asked for
    begin_flags flags = begin_flags::none;  ///< FCGI_KEEP_CONN or none
    /// Field-wise equality.
    friend bool operator==(const begin_request_body&, const begin_request_body&) = default;
};

/// Parses a BEGIN_REQUEST body; bad_record_length unless it is 8 bytes.
std::error_code parse_begin_request(std::string_view content, begin_request_body& out) noexcept;

/// The body of END_REQUEST.
struct end_request_body {
    std::uint32_t app_status = 0;                                ///< the application's exit status
    protocol_status status = protocol_status::request_complete;  ///< the protocolStatus
    /// Field-wise equality.
    friend bool operator==(const end_request_body&, const end_request_body&) = default;
};

/// Parses an END_REQUEST body; bad_record_length unless it is 8 bytes.
std::error_code parse_end_request(std::string_view content, end_request_body& out) noexcept;

/// Encodes a whole END_REQUEST record (used by test responders).
std::array<char, header_size + 8> encode_end_request(std::uint16_t request_id,
                                                     end_request_body body) noexcept;

/// Parses an UNKNOWN_TYPE body: the type the peer did not understand.
std::error_code parse_unknown_type(std::string_view content, std::uint8_t& type) noexcept;

/// Encodes a whole UNKNOWN_TYPE record (request ID 0) for `type`.
std::array<char, header_size + 8> encode_unknown_type(std::uint8_t type) noexcept;

/// GET_VALUES name: the most concurrent connections the server accepts.
inline constexpr std::string_view max_conns_name = "FCGI_MAX_CONNS";
/// GET_VALUES name: the most concurrent requests the server accepts.
inline constexpr std::string_view max_reqs_name = "FCGI_MAX_REQS";
/// GET_VALUES name: "1" when the server multiplexes connections.
inline constexpr std::string_view mpxs_conns_name = "FCGI_MPXS_CONNS";

/// Encodes a whole GET_VALUES record asking for `names` (empty values), padded to 8.
/// Returns an empty string when the names do not fit in one record.
std::string encode_get_values(std::span<const std::string_view> names);

/// Encodes a whole GET_VALUES_RESULT record with `values`, padded to 8 (used by test responders).
/// Returns an empty string when the values do not fit in one record.
std::string encode_get_values_result(std::span<const name_value> values);

/// What a server reported in GET_VALUES_RESULT. Absent names stay empty.
struct get_values_result {
    std::optional<std::uint32_t> max_conns;  ///< FCGI_MAX_CONNS
    std::optional<std::uint32_t> max_reqs;   ///< FCGI_MAX_REQS
    std::optional<bool> mpxs_conns;          ///< FCGI_MPXS_CONNS (a number; not 0 means true)
    /// Every pair as sent, including names this client does not know.
    std::vector<std::pair<std::string, std::string>> all;
};

/// Adds the pairs of one GET_VALUES_RESULT content to `out`. Several records may be merged,
/// including an empty one (Go's net/http/fcgi sends an extra empty record). Numbers that do not
/// parse are kept only in `all`.
std::error_code parse_get_values_result(std::string_view content, get_values_result& out);

}  // namespace fcgi::protocol
