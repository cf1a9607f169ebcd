// The connection's inbound checks: which records a server may send it, and for whom.
#include "fcgi/detail/record_route.hpp"

#include "fcgi/detail/unknown_type_reply.hpp"
#include "fcgi/error.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

namespace {

// The record types a connection sends: an UNKNOWN_TYPE naming one of them says the server
// lacks it.
constexpr proto::record_type sent_types[] = {
    proto::record_type::begin_request, proto::record_type::abort_request,
    proto::record_type::params, proto::record_type::stdin_, proto::record_type::data};

// The record type's name for a message: "STDOUT", or "type 42" for one FastCGI 1.0 lacks.
std::string type_name(proto::record_type type) {
    return proto::is_known(type) ? std::string(proto::to_string(type))
                                 : "type " + std::to_string(static_cast<int>(type));
}

// A type FastCGI 1.0 has, sent where it does not belong, or one it lacks.
std::error_code misplaced(proto::record_type type) {
    return proto::is_known(type) ? std::error_code(error::unexpected_record)
                                 : std::error_code(error::unknown_record_type);
}

route_verdict fail(std::error_code ec, std::string why) {
    return {record_route::fail, ec, std::move(why)};
}

}  // namespace

route_verdict route_record(const proto::record_piece& piece, const routed_request& to,
                           const endpoint& peer) {
    const auto& h = piece.header;
    // The texts are built on the failing paths only: every record of every response comes here.
    auto record = [&] {
        return "record of " + type_name(h.type) + " for request " + std::to_string(h.request_id);
    };
    if (h.request_id == proto::management_id) {
        if (h.type == proto::record_type::get_values_result)
            return {record_route::drop, {}, {}};  // an answer nobody asked for: harmless
        if (h.type == proto::record_type::unknown_type) {
            auto reading = read_unknown_type(piece.content, sent_types, peer.to_string());
            return fail(reading.ec, std::move(reading.message));
        }
        return fail(misplaced(h.type), record() + " from " + peer.to_string());
    }
    if (!to.in_flight) {
        // An aborted request's late records (see request_ids): the server may answer the abort
        // and still send what the request had produced.
        if (to.quarantined)
            return {record_route::drop, {}, {}};
        return fail(error::unexpected_record,
                    record() +
                        ", which is not in flight (a late record of an earlier request?), from " +
                        peer.to_string());
    }
    if (!to.sent)
        // Queued behind another request's write: whatever this answers, it is not that request.
        return fail(error::unexpected_record,
                    record() + ", which was not sent yet, from " + peer.to_string());
    if (to.ended)
        return fail(error::unexpected_record,
                    record() + " after its END_REQUEST from " + peer.to_string());
    switch (h.type) {
        case proto::record_type::stdout_:
            return {record_route::stdout_, {}, {}};
        case proto::record_type::stderr_:
            return {record_route::stderr_, {}, {}};
        case proto::record_type::end_request:
            return {record_route::end_request, {}, {}};
        default:
            return fail(misplaced(h.type), "record of " + type_name(h.type) + " from server at " +
                                               peer.to_string() + " for request " +
                                               std::to_string(h.request_id));
    }
}

}  // namespace fcgi::detail
