// detail::read_unknown_type: an UNKNOWN_TYPE body, as bytes, read against the record types sent.
#include <boost/test/unit_test.hpp>
#include <span>
#include <string>
#include <string_view>

#include "fcgi/detail/unknown_type_reply.hpp"
#include "fcgi/error.hpp"

namespace {

using namespace std::string_view_literals;
using fcgi::detail::read_unknown_type;
using fcgi::protocol::record_type;

// What the connection sends, and what the GET_VALUES probe sends.
constexpr record_type connection_sends[] = {record_type::begin_request, record_type::abort_request,
                                            record_type::params, record_type::stdin_,
                                            record_type::data};
constexpr record_type probe_sends[] = {record_type::get_values};

}  // namespace

BOOST_AUTO_TEST_SUITE(unknown_type_reply)

BOOST_AUTO_TEST_CASE(named_type_against_types_sent) {
    using fcgi::error;
    struct reading_case {
        std::string_view content;
        std::span<const record_type> sent;
        error ec;
        std::string_view named;  // the type as the message names it
    };
    const reading_case cases[] = {
        // A type we send: the server lacks it.
        {"\x02\0\0\0\0\0\0\0"sv, connection_sends, error::unknown_type_reply,
         "ABORT_REQUEST (type 2)"},
        {"\x09\0\0\0\0\0\0\0"sv, probe_sends, error::unknown_type_reply, "GET_VALUES (type 9)"},
        // Only the first byte names the type; the reserved ones are not read.
        {"\x05\xff\xff\xff\xff\xff\xff\xff"sv, connection_sends, error::unknown_type_reply,
         "STDIN (type 5)"},
        // A known type not sent: a stray record.
        {"\x09\0\0\0\0\0\0\0"sv, connection_sends, error::unexpected_record, "GET_VALUES (type 9)"},
        {"\x05\0\0\0\0\0\0\0"sv, probe_sends, error::unexpected_record, "STDIN (type 5)"},
        {"\x01\0\0\0\0\0\0\0"sv, {}, error::unexpected_record, "BEGIN_REQUEST (type 1)"},
        // A type FastCGI 1.0 lacks is named by its number alone; 0 and 255 are the byte's ends.
        {"\x2a\0\0\0\0\0\0\0"sv, connection_sends, error::unexpected_record, "type 42"},
        {"\0\0\0\0\0\0\0\0"sv, probe_sends, error::unexpected_record, "type 0"},
        {"\xff\0\0\0\0\0\0\0"sv, probe_sends, error::unexpected_record, "type 255"},
    };
    for (const auto& c : cases) {
        const std::string named(c.named);
        BOOST_TEST_CONTEXT(named << " against " << c.sent.size() << " types sent") {
            auto r = read_unknown_type(c.content, c.sent, "tcp:h:1");
            BOOST_TEST(r.ec == c.ec, r.ec.message());
            BOOST_TEST(r.message == (c.ec == error::unknown_type_reply
                                         ? "server at tcp:h:1 answered UNKNOWN_TYPE for " + named +
                                               ": it does not implement that record"
                                         : "UNKNOWN_TYPE from tcp:h:1 names " + named +
                                               ", which this connection never sends"));
        }
    }
}

// The decoder rejects other lengths first; the reading still does not read past the content.
BOOST_AUTO_TEST_CASE(a_body_not_of_8_bytes) {
    for (std::string_view body : {""sv, "\x02"sv, "\x02\0\0\0\0\0\0"sv, "\x02\0\0\0\0\0\0\0\0"sv}) {
        BOOST_TEST_CONTEXT(body.size() << " bytes") {
            auto r = read_unknown_type(body, connection_sends, "tcp:h:1");
            BOOST_TEST(r.ec == fcgi::error::bad_record_length);
            BOOST_TEST(r.message == "UNKNOWN_TYPE of " + std::to_string(body.size()) +
                                        " bytes from tcp:h:1 (8 expected)");
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
