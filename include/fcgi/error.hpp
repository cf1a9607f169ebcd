// Error codes of asio-fcgi: one category for the client, one for the server's protocolStatus.
#pragma once

#include <iosfwd>
#include <string>
#include <system_error>

namespace fcgi {

/// Errors raised by the library itself. Messages say what happened and what to do.
enum class error {
    // -- the server sent something that is not valid FastCGI (the connection is closed) --
    bad_version = 1,    ///< a record header whose version byte is not 1
    bad_record_length,  ///< a fixed-size record (END_REQUEST, UNKNOWN_TYPE, ...) of the wrong size
    unknown_record_type,  ///< a record type the client does not know, for a request
    unexpected_record,    ///< a record for a request ID not in flight, or of a type a client never
                          ///< gets
    bad_name_value,       ///< a name-value pair whose lengths run past its record
    bad_response_head,    ///< the CGI head on STDOUT is malformed (no colon, bad Status line)
    response_head_too_large,  ///< the CGI head did not end within the configured limit
    unknown_type_reply,       ///< the server answered a record with UNKNOWN_TYPE
    // -- limits --
    response_too_large,  ///< STDOUT or STDERR exceeded the configured limit
    // -- caller input, reported before anything is sent --
    param_too_large,   ///< one name-value pair cannot fit in a PARAMS record (65528 bytes)
    invalid_request,   ///< the request is malformed (relative script path, bad header name, ...)
    invalid_endpoint,  ///< an endpoint that cannot be connected to (see validate(endpoint))
    // -- connection lifecycle --
    connection_lost,  ///< the server closed or reset the connection before END_REQUEST
    connect_timeout,  ///< the connection was not established within connect_timeout
    request_timeout,  ///< the request did not complete within its deadline
    not_connected,    ///< the connection is closed, or was never opened
    pool_exhausted,   ///< the client's wait queue is full (max_pending)
    client_stopped,   ///< the client was cancelled or shut down
    no_endpoint,      ///< every endpoint is down (its last connect failed, none open)
    // -- streamed bodies --
    body_length_unknown,  ///< a request body source without a known length; nothing was sent
    source_ended_early,   ///< the body source ended before its announced length
    source_failed,        ///< the body source reported an error while the body was being sent
    sink_failed,          ///< the response sink reported an error
};

/// The server's END_REQUEST protocolStatus when it is not REQUEST_COMPLETE.
enum class server_error {
    cant_mpx_conn = 1,  ///< the server refused a second concurrent request on this connection
    overloaded = 2,     ///< the server is out of a resource (workers, memory)
    unknown_role = 3,   ///< the server does not implement the requested role
};

/// Conditions grouping the codes above, for `ec == fcgi::condition::protocol_error`.
///
/// - protocol_error: bad_version, bad_record_length, unknown_record_type, unexpected_record,
///   bad_name_value, bad_response_head, response_head_too_large, unknown_type_reply.
/// - caller_error: param_too_large, invalid_request, invalid_endpoint, body_length_unknown.
/// - transport_error: connection_lost, connect_timeout, not_connected, no_endpoint, and the
///   system errors ECONNREFUSED, ECONNRESET, EPIPE, ENOENT, ETIMEDOUT, EHOSTUNREACH,
///   ENETUNREACH, ECONNABORTED, EAGAIN and ENOBUFS (a unix socket's full listen backlog, as Asio
///   1.22 reports it). ENOENT also matches a file body source or sink that
///   cannot be opened, which says nothing about the connection.
///
/// The other fcgi::error values (request_timeout, response_too_large, pool_exhausted,
/// client_stopped, source_ended_early, source_failed, sink_failed) and every server_error
/// belong to none: compare them by name.
enum class condition {
    protocol_error = 1,  ///< the server violated the protocol; the connection was closed
    caller_error,        ///< the request or configuration was rejected before sending
    transport_error,     ///< the connection failed (lost, refused, connect timed out)
};

/// The category of fcgi::error.
const std::error_category& client_category() noexcept;
/// The category of fcgi::server_error.
const std::error_category& server_category() noexcept;
/// The category of fcgi::condition.
const std::error_category& condition_category() noexcept;

/// Makes an error_code from fcgi::error.
inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), client_category()};
}
/// Makes an error_code from fcgi::server_error.
inline std::error_code make_error_code(server_error e) noexcept {
    return {static_cast<int>(e), server_category()};
}
/// Makes an error_condition from fcgi::condition.
inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// True when a request that failed with `ec` may be sent again: the server did not process it,
/// or the failure is transient (connection lost, overloaded, refused). The client itself retries
/// once: a request never written, or refused with CANT_MPX_CONN or OVERLOADED before any
/// response byte, whatever its method (when its source can restart), and an idempotent one lost
/// on a reused connection before any response byte (see docs/errors.md and
/// docs/reliability.md). ENOENT counts, as
/// for a missing unix socket; but an ENOENT from opening a body source's or sink's file is
/// about that file, and sending again will not help.
bool is_retryable(std::error_code ec) noexcept;

/// Prints the code's message (for logs and test frameworks).
std::ostream& operator<<(std::ostream& os, error e);
/// Prints the code's message.
std::ostream& operator<<(std::ostream& os, server_error e);
/// Prints the condition's message.
std::ostream& operator<<(std::ostream& os, condition c);

}  // namespace fcgi

namespace std {
template <>
struct is_error_code_enum<fcgi::error> : true_type {};
template <>
struct is_error_code_enum<fcgi::server_error> : true_type {};
template <>
struct is_error_condition_enum<fcgi::condition> : true_type {};
}  // namespace std
