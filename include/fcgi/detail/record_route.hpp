// Where one record read from the server goes, decided from its header and the state of the
// request its ID names: the connection's inbound checks, sans-io, so that every record type is
// tested against every request state with no socket.
#pragma once

#include <string>
#include <system_error>

#include "fcgi/endpoint.hpp"
#include "fcgi/protocol/record_decoder.hpp"

namespace fcgi::detail {

/// What the connection does with a record read from the server.
enum class record_route {
    drop,         ///< read and forgotten: an unasked GET_VALUES_RESULT, an aborted request's
                  ///< late record
    stdout_,      ///< to the request's response head and body (or its sink)
    stderr_,      ///< to the request's STDERR
    end_request,  ///< ends the request (its content is not parsed yet)
    fail,         ///< the stream is out of step or the server is broken: close the connection
};

/// What routing needs to know of the request a record's ID names (not read for ID 0).
struct routed_request {
    bool in_flight = false;    ///< the ID is taken by a request now
    bool quarantined = false;  ///< an aborted request's ID (request_ids::quarantined)
    bool sent = false;         ///< its records are on the wire, or being written
    bool ended = false;        ///< its END_REQUEST came already (a sink still drains)
};

/// The route, and with record_route::fail the error to close with and why, for the user.
struct route_verdict {
    record_route route = record_route::fail;
    std::error_code ec;  ///< unexpected_record, unknown_record_type, or an UNKNOWN_TYPE's reading
    std::string why;     ///< names the record, the request and the server (`peer`)
};

/// Routes `piece` (whole for any record but STDOUT and STDERR) from `peer`. For request ID 0 only
/// an unasked GET_VALUES_RESULT is dropped; an UNKNOWN_TYPE is read against the record types a
/// connection sends (read_unknown_type).
route_verdict route_record(const protocol::record_piece& piece, const routed_request& to,
                           const endpoint& peer);

}  // namespace fcgi::detail
