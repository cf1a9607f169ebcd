// What came back for a request: status, headers, body, stderr and the END_REQUEST fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/types.hpp"

namespace fcgi {

/// One response header (name as sent, value trimmed).
using header_field = protocol::header_field;

/// A completed response.
///
/// STDERR is kept apart from the body and is not an error by itself: PHP logs warnings there.
/// When a request fails, only `diagnostics`, `bytes_received`, `times_sent`, `stderr_text` and
/// `stderr_dropped` (what had arrived) are meaningful.
///
/// The status comes from the Status header, else from a first line `HTTP/1.x NNN reason`
/// (php-fpm with cgi.rfc2616_headers=1), which keeps its code next to a Location header. A head
/// with neither is 302 when it has a Location header, else 200.
struct response {
    int status = 0;      ///< from the Status header or an HTTP/1.x first line (see above)
    std::string reason;  ///< reason phrase
    std::vector<header_field> headers;  ///< in order, repeated names kept, Status excluded
    std::string body;                   ///< STDOUT after the CGI head
    std::string stderr_text;            ///< what the server sent on FCGI_STDERR (also on failure)
    /// FCGI_STDERR bytes dropped past connection_options::max_stderr_size (stderr_text holds
    /// the first max_stderr_size); 0 when nothing was dropped.
    std::size_t stderr_dropped = 0;
    std::uint32_t app_status = 0;  ///< END_REQUEST appStatus (always 0 with php-fpm)
    /// END_REQUEST protocolStatus; anything but request_complete fails the request.
    protocol::protocol_status protocol_status = protocol::protocol_status::request_complete;
    /// On failure, a sentence for humans naming the endpoint and what had arrived.
    std::string diagnostics;
    /// STDOUT and STDERR bytes that arrived for this request, also when it failed: a failed
    /// request with none may be retried safely if idempotent.
    std::size_t bytes_received = 0;
    /// How many times the request was written (wholly or in part) to a server: 1 as a rule;
    /// 2 when a client sent it again after its first connection failed (see
    /// client_options::stale_close_window), so that an idempotent script may have run twice,
    /// unless the server refused the first (OVERLOADED, CANT_MPX_CONN); 0 when it failed
    /// before a byte of it left (refused connect, queue timeout): it did not run.
    unsigned times_sent = 0;

    /// The first header named `name` (case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// Every header named `name` (case-insensitive), in order.
    std::vector<std::string_view> headers_named(std::string_view name) const;
};

}  // namespace fcgi
