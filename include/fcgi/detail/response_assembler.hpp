// Builds one response from the STDOUT, STDERR and END_REQUEST records routed to it (sans-io).
#pragma once

#include <cstddef>
#include <string_view>
#include <system_error>

#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/response.hpp"

namespace fcgi::detail {

/// Size limits of one response.
struct response_limits {
    std::size_t max_stdout = 64u << 20;
    std::size_t max_stderr = 1u << 20;
    std::size_t max_head = protocol::cgi_head_parser::default_max_size;
    bool truncate_stderr = true;  ///< past max_stderr: drop and count (else response_too_large)
};

/// Feeds STDOUT through the CGI head parser into a response, keeps STDERR apart, enforces the
/// limits. Reusable: reset() keeps capacity where it can.
class response_assembler {
  public:
    /// Starts a new response.
    void reset(const response_limits& limits);

    /// A piece of STDOUT. Errors: bad_response_head, response_head_too_large, response_too_large.
    std::error_code on_stdout(std::string_view bytes);
    /// What on_stdout_streamed() made of a piece.
    struct streamed_piece {
        std::error_code ec;          ///< bad_response_head or response_head_too_large
        std::string_view body;       ///< the part of the piece after the head (views the piece)
        bool head_complete = false;  ///< the head ended within this piece
    };
    /// A piece of STDOUT for a streamed response: the body is handed back, not stored, and only
    /// the head counts against a limit.
    streamed_piece on_stdout_streamed(std::string_view bytes);
    /// The head parsed so far as a response (status, reason, headers; empty body). Valid once
    /// the head is complete and until on_end().
    response head() const;
    /// A piece of STDERR. Past the limit it is cut and counted in response::stderr_dropped, or,
    /// without truncate_stderr, an error: response_too_large.
    std::error_code on_stderr(std::string_view bytes);
    /// END_REQUEST: stores appStatus and protocolStatus and finishes the head (a stream may end
    /// before its blank line), unless the server refused the request before a whole head:
    /// then the response has no status.
    std::error_code on_end(const protocol::end_request_body& end);

    /// Bytes of STDOUT and STDERR received so far (for diagnostics and retry decisions).
    std::size_t stdout_bytes() const noexcept { return stdout_bytes_; }
    std::size_t stderr_bytes() const noexcept { return stderr_bytes_; }
    /// STDERR bytes dropped past the limit so far.
    std::size_t stderr_dropped() const noexcept { return response_.stderr_dropped; }

    /// The head line that made it malformed (bad_response_head), else empty.
    const std::string& bad_head_line() const noexcept { return head_.bad_line(); }

    /// The response; valid after on_end().
    response take() noexcept { return std::move(response_); }
    /// What arrived on STDERR so far, taken out (a failed request's response carries it).
    std::string take_stderr() noexcept { return std::move(response_.stderr_text); }

  private:
    response_limits limits_;
    protocol::cgi_head_parser head_;
    response response_;
    std::size_t stdout_bytes_ = 0;
    std::size_t stderr_bytes_ = 0;  // kept, dropped, or refused with response_too_large
};

}  // namespace fcgi::detail
