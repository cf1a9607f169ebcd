// detail::route_record: every record type a server can send, read from its bytes, against every
// state of the request its ID names.
#include <boost/test/unit_test.hpp>
#include <string>
#include <string_view>

#include "fcgi/detail/record_route.hpp"
#include "fcgi/error.hpp"

namespace {

using namespace std::string_view_literals;
using fcgi::detail::record_route;
using fcgi::detail::route_record;
using fcgi::detail::route_verdict;
using fcgi::detail::routed_request;
namespace proto = fcgi::protocol;

const fcgi::endpoint peer = fcgi::endpoint::parse("127.0.0.1:9000");

// A record of `type` for `id` with `content`, as bytes on the wire, decoded back into the
// piece the connection routes (one piece: the content is short).
struct wire_record {
    std::string bytes;
    proto::record_piece piece;

    wire_record(int type, std::uint16_t id, std::string_view content) {
        bytes = {1,
                 static_cast<char>(type),
                 static_cast<char>(id >> 8),
                 static_cast<char>(id & 0xff),
                 0,
                 static_cast<char>(content.size()),
                 0,
                 0};
        bytes += content;
        proto::record_decoder decoder;
        auto r = decoder.feed(bytes);
        BOOST_REQUIRE(!r.ec);
        BOOST_REQUIRE(r.has_piece);
        piece = r.piece;
    }
};

// Content the decoder takes for `type`: the fixed-size records must have their size.
std::string_view content_for(int type) {
    switch (type) {
        case 1:   // BEGIN_REQUEST
        case 3:   // END_REQUEST
        case 11:  // UNKNOWN_TYPE, naming STDIN: a type the connection sends
            return "\x05\0\0\0\0\0\0\0"sv;
        case 2:  // ABORT_REQUEST
            return {};
        default:
            return "abc"sv;
    }
}

// What a record of a type FastCGI 1.0 lacks, or one it has in the wrong place, fails with.
fcgi::error misplaced(int type) {
    return type >= 1 && type <= 11 ? fcgi::error::unexpected_record
                                   : fcgi::error::unknown_record_type;
}

route_verdict route(int type, std::uint16_t id, const routed_request& to) {
    wire_record rec(type, id, content_for(type));
    auto v = route_record(rec.piece, to, peer);
    // A verdict other than fail carries no error; a fail always says why.
    BOOST_TEST((v.route == record_route::fail) == bool(v.ec));
    BOOST_TEST((v.route == record_route::fail) == !v.why.empty());
    return v;
}

constexpr routed_request answering{true, false, true, false};

}  // namespace

BOOST_AUTO_TEST_SUITE(record_route_tests)

// Only the three records a responder sends for a request reach it.
BOOST_AUTO_TEST_CASE(request_in_flight_gets_stdout_stderr_end_request) {
    for (int type = 0; type < 256; ++type) {
        BOOST_TEST_CONTEXT("type " << type) {
            auto v = route(type, 1, answering);
            switch (type) {
                case 6:
                    BOOST_TEST((v.route == record_route::stdout_));
                    break;
                case 7:
                    BOOST_TEST((v.route == record_route::stderr_));
                    break;
                case 3:
                    BOOST_TEST((v.route == record_route::end_request));
                    break;
                default:
                    BOOST_TEST((v.route == record_route::fail));
                    BOOST_TEST(v.ec == misplaced(type));
                    BOOST_TEST(v.why.find(" from server at 127.0.0.1:9000 for request 1") !=
                                   std::string::npos,
                               v.why);
            }
        }
    }
    BOOST_TEST(route(2, 7, answering).why ==
               "record of ABORT_REQUEST from server at 127.0.0.1:9000 for request 7");
    BOOST_TEST(route(42, 7, answering).why ==
               "record of type 42 from server at 127.0.0.1:9000 for request 7");
}

// Management records: an unasked GET_VALUES_RESULT is harmless, UNKNOWN_TYPE is read, the rest
// break the stream. The request state is not read for ID 0.
BOOST_AUTO_TEST_CASE(request_zero) {
    for (const auto& to : {routed_request{}, answering}) {
        for (int type = 0; type < 256; ++type) {
            BOOST_TEST_CONTEXT("type " << type << ", in flight " << to.in_flight) {
                auto v = route(type, 0, to);
                if (type == 10) {
                    BOOST_TEST((v.route == record_route::drop));
                } else if (type == 11) {
                    BOOST_TEST((v.route == record_route::fail));
                    BOOST_TEST(v.ec == fcgi::error::unknown_type_reply);
                    BOOST_TEST(v.why ==
                               "server at 127.0.0.1:9000 answered UNKNOWN_TYPE for STDIN (type "
                               "5): it does not implement that record");
                } else {
                    BOOST_TEST((v.route == record_route::fail));
                    BOOST_TEST(v.ec == misplaced(type));
                }
            }
        }
    }
    BOOST_TEST(route(6, 0, {}).why == "record of STDOUT for request 0 from 127.0.0.1:9000");
    BOOST_TEST(route(200, 0, {}).why == "record of type 200 for request 0 from 127.0.0.1:9000");
    // An UNKNOWN_TYPE naming a type the connection never sends is a stray record.
    wire_record stray(11, 0, "\x06\0\0\0\0\0\0\0"sv);
    auto v = route_record(stray.piece, {}, peer);
    BOOST_TEST(v.ec == fcgi::error::unexpected_record);
    BOOST_TEST(v.why ==
               "UNKNOWN_TYPE from 127.0.0.1:9000 names STDOUT (type 6), which this connection "
               "never sends");
}

// Before the type is looked at: an ID nobody holds, a request still queued behind another's
// write, and one already ended break the stream whatever the record, unless the ID is an
// aborted request's, whose late records are dropped.
BOOST_AUTO_TEST_CASE(request_state_comes_first) {
    struct state_case {
        routed_request to;
        record_route route;
        std::string_view says;  // the end of the message, after the record's name
    };
    constexpr std::string_view not_in_flight =
        ", which is not in flight (a late record of an earlier request?), from 127.0.0.1:9000";
    const state_case cases[] = {
        {{false, false, false, false}, record_route::fail, not_in_flight},
        // Its slot is taken by the next request (sent or not): the ID is not.
        {{false, false, true, false}, record_route::fail, not_in_flight},
        {{false, true, false, false}, record_route::drop, ""},
        {{false, true, true, true}, record_route::drop, ""},
        {{true, false, false, false},
         record_route::fail,
         ", which was not sent yet, from 127.0.0.1:9000"},
        {{true, false, true, true},
         record_route::fail,
         " after its END_REQUEST from 127.0.0.1:9000"},
    };
    for (const auto& c : cases) {
        for (int type = 0; type < 256; ++type) {
            BOOST_TEST_CONTEXT("type " << type << ", in flight " << c.to.in_flight
                                       << ", quarantined " << c.to.quarantined << ", sent "
                                       << c.to.sent << ", ended " << c.to.ended) {
                auto v = route(type, 513, c.to);
                BOOST_TEST((v.route == c.route));
                if (c.route == record_route::fail) {
                    BOOST_TEST(v.ec == fcgi::error::unexpected_record);
                    const std::string name =
                        proto::is_known(static_cast<proto::record_type>(type))
                            ? std::string(proto::to_string(static_cast<proto::record_type>(type)))
                            : "type " + std::to_string(type);
                    BOOST_TEST(v.why ==
                               "record of " + name + " for request 513" + std::string(c.says));
                }
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
