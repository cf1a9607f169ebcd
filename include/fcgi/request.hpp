// A FastCGI request as the caller describes it; CGI params are derived from it when sent.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "fcgi/body_sink.hpp"
#include "fcgi/body_source.hpp"
#include "fcgi/protocol/types.hpp"

namespace fcgi {

/// What to run and with which input.
///
/// Sent params: CGI defaults derived from the fields (GATEWAY_INTERFACE, SERVER_PROTOCOL,
/// REQUEST_METHOD, SCRIPT_FILENAME, SCRIPT_NAME, QUERY_STRING, REQUEST_URI, DOCUMENT_ROOT,
/// CONTENT_LENGTH, CONTENT_TYPE, SERVER_SOFTWARE, REMOTE_ADDR, REMOTE_PORT, SERVER_ADDR,
/// SERVER_NAME, SERVER_PORT), then each header as HTTP_<NAME>, then `params`, which replace a
/// default of the same name. CONTENT_LENGTH always equals the body sent (php-fpm hangs or
/// desynchronises otherwise), so a conflicting override is an error.
struct request {
    /// Absolute path of the script (SCRIPT_FILENAME), without a ".." segment (php-fpm refuses
    /// those). Required.
    std::string script;
    /// REQUEST_METHOD; empty means GET, or POST when there is a body.
    std::string method;
    /// QUERY_STRING, without '?', sent as given (percent-encode it yourself); a control byte
    /// (CR, LF, NUL, ...) is invalid_request.
    std::string query;
    /// DOCUMENT_ROOT; empty means the script's directory. SCRIPT_NAME is the script's path below
    /// it: a script not below it is invalid_request, unless `params` sets SCRIPT_NAME (which
    /// REQUEST_URI then follows).
    std::string document_root;
    /// HTTP request headers, sent as HTTP_* (Content-Type and Content-Length as CONTENT_*).
    /// Names hold letters, digits and '-' only ('_' and '.' would let one header pose as
    /// another in PHP); repeated names (any case) are joined into one param; a Proxy header is
    /// not sent (httpoxy).
    std::vector<std::pair<std::string, std::string>> headers;
    /// Raw params, after the derived ones; a name equal to a default replaces it, a repeated
    /// name is sent once with its last value. Never let an untrusted party choose a name:
    /// PHP_VALUE and PHP_ADMIN_VALUE change php.ini settings, and php-fpm keeps them in the
    /// worker for later requests.
    std::vector<std::pair<std::string, std::string>> params;
    /// Request body (STDIN).
    std::string body;
    /// A streamed request body read while it is sent, instead of `body` (which must then be
    /// empty). Its length must be known: it is sent as CONTENT_LENGTH first.
    body_source stdin_source;
    /// Where the response body goes as it arrives, instead of `response::body`.
    body_sink stdout_sink;
    /// FILTER role only: the file data (DATA stream); FCGI_DATA_LENGTH is set from it.
    std::string data;
    /// FILTER role only: FCGI_DATA_LAST_MOD (seconds since the epoch).
    std::optional<std::uint64_t> data_last_modified;
    /// The FastCGI role.
    protocol::role role = protocol::role::responder;
    /// Whether the request may be sent twice; default: true for GET, HEAD and OPTIONS.
    std::optional<bool> idempotent;
    /// Deadline for the whole request, from the call to completion; zero means the default of
    /// the connection or client (none when that is zero too). Negative means the deadline has
    /// passed (`deadline - now` for a late job): error::request_timeout at once, nothing sent.
    std::chrono::milliseconds timeout{0};

    /// The effective method (GET, or POST when a body is present and no method set).
    std::string_view effective_method() const noexcept {
        if (!method.empty())
            return method;
        return body.empty() && !stdin_source ? std::string_view("GET") : std::string_view("POST");
    }

    /// Whether the client may retry this request on a fresh connection: idempotent, and its body
    /// source (if any) can be read again.
    bool is_idempotent() const {
        if (!stdin_source.restartable())
            return false;
        if (idempotent)
            return *idempotent;
        auto m = effective_method();
        return m == "GET" || m == "HEAD" || m == "OPTIONS";
    }

    /// The length of the body sent: the source's when one is set (0 when it has none).
    std::uint64_t body_size() const {
        return stdin_source ? stdin_source.size().value_or(0) : body.size();
    }
};

/// Checks a request's fields before anything is sent: an absolute script path without NUL or
/// ".." segment, below `document_root` when one is given (compared in lexically normal form; a
/// SCRIPT_NAME param lifts this), a method and header names that are HTTP tokens, no CR, LF or NUL
/// in header values, param names neither empty nor holding '=' or NUL, a body source with a known
/// length and no `body` beside it, and DATA only with the FILTER role. On failure returns
/// error::invalid_request (or error::body_length_unknown) and sets `why` to a sentence naming the
/// offending field.
///
/// A Content-Length header or CONTENT_LENGTH param that is not the body's length in decimal
/// digits ("05" is 5; a sign or a space is not a length) is error::invalid_request. It does
/// not derive the params, so one error shows only when they are built, by prepare_request() or
/// at send time (still before anything goes out): a name-value pair too large for one record
/// (error::param_too_large).
std::error_code validate(const request& req, std::string& why);

}  // namespace fcgi
