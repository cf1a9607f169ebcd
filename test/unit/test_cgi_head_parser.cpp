// cgi_head_parser: CGI response heads (RFC 3875 section 6) arriving in arbitrary pieces.
#include <string>
#include <string_view>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"
#include "fcgi/protocol/cgi_head_parser.hpp"

namespace {

using namespace std::string_literals;
using fcgi::make_error_code;
using fcgi::protocol::cgi_head_parser;
using fcgi::protocol::header_field;
using fcgi::protocol::standard_reason;

const std::error_code bad_head = make_error_code(fcgi::error::bad_response_head);
const std::error_code too_large = make_error_code(fcgi::error::response_head_too_large);

struct parsed {
    std::error_code ec;
    bool done = false;
    int status = 0;
    std::string reason;
    std::vector<header_field> headers;
    std::string body;  // every byte after the head, as the caller would pass it on

    bool operator==(const parsed&) const = default;
};

// Feeds `pieces` as STDOUT arrives: to the parser until the head is done, then to the body.
parsed feed_pieces(const std::vector<std::string_view>& pieces,
                   std::size_t max_size = cgi_head_parser::default_max_size) {
    cgi_head_parser parser(max_size);
    parsed out;
    for (std::string_view piece : pieces) {
        if (!parser.done()) {
            auto r = parser.feed(piece);
            if (r.consumed > piece.size())
                BOOST_FAIL("consumed more than the piece");
            if (r.ec) {
                out.ec = r.ec;
                return out;
            }
            if (r.done != parser.done())
                BOOST_ERROR("result.done and done() disagree");
            if (!r.done && r.consumed != piece.size())
                BOOST_ERROR("head not done but only " << r.consumed << " of " << piece.size()
                                                      << " bytes consumed");
            piece.remove_prefix(r.consumed);
        }
        if (parser.done())
            out.body.append(piece);
    }
    out.done = parser.done();
    out.status = parser.status();
    out.reason = parser.reason();
    out.headers = parser.headers();
    return out;
}

parsed feed_whole(std::string_view s, std::size_t max_size = cgi_head_parser::default_max_size) {
    return feed_pieces({s}, max_size);
}

std::string describe(const parsed& p) {
    std::string s = "ec='" + p.ec.message() + "' done=" + std::to_string(p.done) +
                    " status=" + std::to_string(p.status) + " reason='" + p.reason + "' [";
    for (const auto& h : p.headers)
        s += h.name + ": " + h.value + " | ";
    return s + "] body=" + std::to_string(p.body.size()) + " bytes";
}

// Parses `s` whole, split in two at every position, split in three at every pair of
// positions (for short inputs), and one byte at a time: all must agree. Returns the whole parse.
parsed parse_every_split(std::string_view s) {
    parsed whole = feed_whole(s);
    for (std::size_t k = 0; k <= s.size(); ++k) {
        parsed split = feed_pieces({s.substr(0, k), s.substr(k)});
        if (!(split == whole)) {
            BOOST_ERROR("split at " << k << ": " << describe(split) << " vs " << describe(whole));
            return whole;
        }
    }
    if (s.size() <= 200) {
        for (std::size_t i = 0; i <= s.size(); ++i)
            for (std::size_t j = i; j <= s.size(); ++j) {
                parsed split = feed_pieces({s.substr(0, i), s.substr(i, j - i), s.substr(j)});
                if (!(split == whole)) {
                    BOOST_ERROR("split at " << i << " and " << j << ": " << describe(split));
                    return whole;
                }
            }
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < s.size(); ++i)
        bytes.push_back(s.substr(i, 1));
    parsed one = feed_pieces(bytes);
    if (!(one == whole))
        BOOST_ERROR("one byte at a time: " << describe(one) << " vs " << describe(whole));
    return whole;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cgi_head_parser_tests)

BOOST_AUTO_TEST_CASE(crlf_head_and_body) {
    auto p = parse_every_split("Content-Type: text/html\r\nX-A: b\r\n\r\n<p>body</p>");
    BOOST_TEST(!p.ec);
    BOOST_TEST(p.done);
    BOOST_TEST(p.status == 200);
    BOOST_TEST(p.reason == "OK");
    BOOST_REQUIRE(p.headers.size() == 2u);
    BOOST_TEST(p.headers[0].name == "Content-Type");
    BOOST_TEST(p.headers[0].value == "text/html");
    BOOST_TEST(p.headers[1].name == "X-A");
    BOOST_TEST(p.headers[1].value == "b");
    BOOST_TEST(p.body == "<p>body</p>");
}

BOOST_AUTO_TEST_CASE(lf_head_and_body) {
    auto p = parse_every_split("Content-Type: text/plain\nX-B: c\n\nline1\nline2\n");
    BOOST_TEST(!p.ec);
    BOOST_TEST(p.done);
    BOOST_REQUIRE(p.headers.size() == 2u);
    BOOST_TEST(p.headers[1].value == "c");
    BOOST_TEST(p.body == "line1\nline2\n");
}

BOOST_AUTO_TEST_CASE(mixed_line_ends) {
    for (std::string s : {"A: 1\r\nB: 2\n\nbody"s, "A: 1\nB: 2\r\n\r\nbody"s,
                          "A: 1\r\nB: 2\n\r\nbody"s, "A: 1\nB: 2\r\n\nbody"s}) {
        auto p = parse_every_split(s);
        BOOST_TEST(!p.ec);
        BOOST_TEST(p.done);
        BOOST_REQUIRE(p.headers.size() == 2u);
        BOOST_TEST(p.headers[0].value == "1");
        BOOST_TEST(p.headers[1].value == "2");
        BOOST_TEST(p.body == "body");
    }
}

// A script writing "\r\n" in text mode on Windows ends its lines in CR CR LF: the extra CR is
// trimmed with the spaces, not a control byte that fails the response.
BOOST_AUTO_TEST_CASE(value_before_cr_cr_lf_is_trimmed) {
    auto p = parse_every_split("Status: 404 Not Found\r\r\nX-A: a\r\r\n\r\nbody");
    BOOST_TEST(!p.ec, p.ec.message());
    BOOST_TEST(p.done);
    BOOST_TEST(p.status == 404);
    BOOST_TEST(p.reason == "Not Found");
    BOOST_TEST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].value == "a");
    BOOST_TEST(p.body == "body");
}

BOOST_AUTO_TEST_CASE(body_with_blank_lines_is_untouched) {
    std::string body = "\r\n\r\nStatus: 500\r\n\nX: y\r\n\r\n";
    auto p = parse_every_split("X-A: 1\r\n\r\n" + body);
    BOOST_TEST(p.status == 200);
    BOOST_TEST(p.headers.size() == 1u);
    BOOST_TEST(p.body == body);
}

BOOST_AUTO_TEST_CASE(empty_head) {
    for (std::string s : {"\r\nbody"s, "\nbody"s}) {
        auto p = parse_every_split(s);
        BOOST_TEST(!p.ec);
        BOOST_TEST(p.done);
        BOOST_TEST(p.status == 200);
        BOOST_TEST(p.reason == "OK");
        BOOST_TEST(p.headers.empty());
        BOOST_TEST(p.body == "body");
    }
}

BOOST_AUTO_TEST_CASE(typical_php_heads) {
    auto p = parse_every_split(
        "X-Powered-By: PHP/8.2.7\r\nContent-type: text/html; charset=UTF-8\r\n\r\nHello");
    BOOST_TEST(p.status == 200);
    BOOST_REQUIRE(p.headers.size() == 2u);
    BOOST_TEST(p.headers[1].name == "Content-type");
    BOOST_TEST(p.headers[1].value == "text/html; charset=UTF-8");
    BOOST_TEST(p.body == "Hello");
    // php-fpm's answer for a missing script (PROTOCOL.md item 10).
    p = parse_every_split(
        "Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not "
        "found.\n");
    BOOST_TEST(p.status == 404);
    BOOST_TEST(p.reason == "Not Found");
    BOOST_TEST(p.headers.size() == 1u);
    BOOST_TEST(p.body == "File not found.\n");
}

BOOST_AUTO_TEST_CASE(php73_reply_content) {
    auto p = parse_every_split("Status: 404 Not Found\r\nX-Powered-By: PHP/7.3.16\r\n\r\ntest!");
    BOOST_TEST(!p.ec);
    BOOST_TEST(p.status == 404);
    BOOST_TEST(p.reason == "Not Found");
    BOOST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].name == "X-Powered-By");
    BOOST_TEST(p.headers[0].value == "PHP/7.3.16");
    BOOST_TEST(p.body == "test!");
}

BOOST_AUTO_TEST_CASE(status_with_reason) {
    auto p = parse_every_split("Status: 503 Try Later Please\r\n\r\n");
    BOOST_TEST(p.status == 503);
    BOOST_TEST(p.reason == "Try Later Please");
    BOOST_TEST(p.headers.empty());  // Status is not kept as a header
    p = feed_whole("Status:    201    Made It  \t\r\n\r\n");
    BOOST_TEST(p.status == 201);
    BOOST_TEST(p.reason == "Made It");
    p = feed_whole("Status:999 Custom\r\n\r\n");
    BOOST_TEST(p.status == 999);
    BOOST_TEST(p.reason == "Custom");
}

BOOST_AUTO_TEST_CASE(status_without_reason_gets_standard_one) {
    const std::pair<int, std::string> cases[] = {
        {200, "OK"},          {201, "Created"},
        {204, "No Content"},  {301, "Moved Permanently"},
        {302, "Found"},       {304, "Not Modified"},
        {400, "Bad Request"}, {403, "Forbidden"},
        {404, "Not Found"},   {500, "Internal Server Error"},
        {502, "Bad Gateway"}, {503, "Service Unavailable"},
    };
    for (const auto& [code, reason] : cases) {
        auto p = feed_whole("Status: " + std::to_string(code) + "\r\n\r\n");
        BOOST_TEST(!p.ec);
        BOOST_TEST(p.status == code);
        BOOST_TEST(p.reason == reason);
        // Trailing space after the code: still no reason of its own.
        p = feed_whole("Status: " + std::to_string(code) + "   \r\n\r\n");
        BOOST_TEST(p.reason == reason);
    }
    auto p = feed_whole("Status: 299\r\n\r\n");
    BOOST_TEST(p.status == 299);
    BOOST_TEST(p.reason == "");  // no standard phrase
}

BOOST_AUTO_TEST_CASE(absent_status_is_200) {
    auto p = parse_every_split("Content-Type: text/plain\r\n\r\n");
    BOOST_TEST(p.status == 200);
    BOOST_TEST(p.reason == "OK");
}

BOOST_AUTO_TEST_CASE(bare_location_is_302) {
    auto p = parse_every_split("Location: /elsewhere\r\n\r\n");
    BOOST_TEST(p.status == 302);
    BOOST_TEST(p.reason == "Found");
    BOOST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].name == "Location");
    BOOST_TEST(p.headers[0].value == "/elsewhere");
    // Status wins over Location, in either order.
    p = feed_whole("Location: /a\r\nStatus: 301 Moved Permanently\r\n\r\n");
    BOOST_TEST(p.status == 301);
    BOOST_TEST(p.reason == "Moved Permanently");
    p = feed_whole("Status: 201\r\nLocation: /new\r\n\r\n");
    BOOST_TEST(p.status == 201);
    BOOST_TEST(p.reason == "Created");
}

BOOST_AUTO_TEST_CASE(names_are_case_insensitive) {
    auto p = feed_whole("STATUS: 404\r\n\r\n");
    BOOST_TEST(p.status == 404);
    p = feed_whole("status: 500 x\r\n\r\n");
    BOOST_TEST(p.status == 500);
    BOOST_TEST(p.reason == "x");
    p = feed_whole("sTaTuS: 410\r\n\r\n");
    BOOST_TEST(p.status == 410);
    BOOST_TEST(p.headers.empty());
    p = feed_whole("location: http://x/\r\n\r\n");
    BOOST_TEST(p.status == 302);
    BOOST_TEST(p.headers[0].name == "location");  // the name is kept as sent
    p = feed_whole("LOCATION: /y\r\n\r\n");
    BOOST_TEST(p.status == 302);
    // Names that only start like Status or Location are ordinary headers.
    p = feed_whole("Status-X: 404\r\nLocations: /z\r\n\r\n");
    BOOST_TEST(p.status == 200);
    BOOST_TEST(p.headers.size() == 2u);
}

BOOST_AUTO_TEST_CASE(repeated_headers_kept_in_order) {
    auto p = parse_every_split(
        "Set-Cookie: a=1\r\nX-Other: o\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n");
    BOOST_REQUIRE(p.headers.size() == 4u);
    BOOST_TEST(p.headers[0].value == "a=1");
    BOOST_TEST(p.headers[1].name == "X-Other");
    BOOST_TEST(p.headers[2].value == "b=2");
    BOOST_TEST(p.headers[3].name == "set-cookie");
    BOOST_TEST(p.headers[3].value == "c=3");
}

BOOST_AUTO_TEST_CASE(value_trimming) {
    auto p = feed_whole(
        "A:   spaced   \r\nB:\tTabbed\t\r\nC:\r\nD:nospace\r\nE:  inner  spaces kept \r\n\r\n");
    BOOST_REQUIRE(p.headers.size() == 5u);
    BOOST_TEST(p.headers[0].value == "spaced");
    BOOST_TEST(p.headers[1].value == "Tabbed");
    BOOST_TEST(p.headers[2].value == "");
    BOOST_TEST(p.headers[3].value == "nospace");
    BOOST_TEST(p.headers[4].value == "inner  spaces kept");
    // A colon inside the value belongs to the value.
    p = feed_whole("Link: <http://a:80/b>; rel=x\r\n\r\n");
    BOOST_TEST(p.headers[0].value == "<http://a:80/b>; rel=x");
}

BOOST_AUTO_TEST_CASE(malformed_lines) {
    for (std::string head : {
             "NoColonHere\r\n\r\n"s,
             ": empty name\r\n\r\n"s,
             "Bad Name: v\r\n\r\n"s,
             " Leading: space\r\n\r\n"s,
             "A: 1\r\n continued folding\r\n\r\n"s,
             "Na(me: v\r\n\r\n"s,
             "A: 1\r\nno colon at the end\r\n\r\n"s,
             "N\xC3\xA4me: v\r\n\r\n"s,
             // Control bytes in a value: a bare CR would split an HTTP response it is copied to.
             "X-A: a\rSet-Cookie: evil=1\r\n\r\n"s,
             "X-A: a\0b\r\n\r\n"s,
             "X-A: a\x01b\r\n\r\n"s,
             "X-A: a\x7F\r\n\r\n"s,
             // An HTTP status line that is not one.
             "HTTP/1.1\r\n\r\n"s,
             "HTTP/1.1 4x4 Nope\r\n\r\n"s,
             // Control bytes in a status line's reason, as in a value (they once passed).
             "HTTP/1.1 200 OK\rSet-Cookie: evil=1\r\n\r\n"s,
             "HTTP/1.1 404 Not\x1b[31mFound\r\n\r\n"s,
             "HTTP/1.1 200 O\0K\r\n\r\n"s,
         }) {
        BOOST_TEST_CONTEXT(head) {
            auto p = feed_whole(head + "body");
            BOOST_TEST(p.ec == bad_head);
            BOOST_TEST(!p.done);
            // The same error whatever the split.
            for (std::size_t k = 0; k <= head.size(); ++k)
                BOOST_TEST(feed_pieces({std::string_view(head).substr(0, k),
                                        std::string_view(head).substr(k)})
                                   .ec == bad_head,
                           "split at " << k);
        }
    }
}

// A tab inside a value is whitespace, not a control byte to reject.
BOOST_AUTO_TEST_CASE(tab_in_a_value_is_kept) {
    auto p = parse_every_split("X-A: a\tb\r\n\r\n");
    BOOST_TEST(!p.ec, describe(p));
    BOOST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].value == "a\tb");
}

// php-fpm with cgi.rfc2616_headers=1 sends the script's own status line first, instead of a
// Status header: its code is the status. A Status header after it still wins.
BOOST_AUTO_TEST_CASE(http_status_line_from_rfc2616_headers) {
    auto p = parse_every_split("HTTP/1.1 404 Not Found\r\nContent-type: text/html\r\n\r\nx");
    BOOST_TEST(!p.ec, describe(p));
    BOOST_TEST(p.status == 404);
    BOOST_TEST(p.reason == "Not Found");
    BOOST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].name == "Content-type");
    p = feed_whole("HTTP/1.0 503\r\n\r\n");
    BOOST_TEST(p.status == 503);
    BOOST_TEST(p.reason == "Service Unavailable");
    p = feed_whole("HTTP/1.1 404 Not Found\r\nStatus: 410 Gone\r\n\r\n");
    BOOST_TEST(p.status == 410);
    // Only as the first line: later, it is a line without a colon.
    BOOST_TEST(feed_whole("A: b\r\nHTTP/1.1 404 Not Found\r\n\r\n").ec == bad_head);
}

// PHP keeps a 201 or 3xx code when a script sets Location, so php-fpm (cgi.rfc2616_headers=1)
// sends the script's status line together with Location: the line's code stands. It once became
// 302 with the line's reason ("302 Created").
BOOST_AUTO_TEST_CASE(http_status_line_with_location_keeps_its_code) {
    auto p = parse_every_split("HTTP/1.1 201 Created\r\nLocation: /items/7\r\n\r\n");
    BOOST_TEST(!p.ec, describe(p));
    BOOST_TEST(p.status == 201);
    BOOST_TEST(p.reason == "Created");
    p = feed_whole("HTTP/1.1 301 Moved Permanently\r\nLocation: /new\r\n\r\n");
    BOOST_TEST(p.status == 301);
    BOOST_TEST(p.reason == "Moved Permanently");
    // A Status header still wins over the line, with or without Location.
    p = feed_whole("HTTP/1.1 301 Moved Permanently\r\nLocation: /a\r\nStatus: 308\r\n\r\n");
    BOOST_TEST(p.status == 308);
    BOOST_TEST(p.reason == "Permanent Redirect");
    // Without either, Location alone is still a 302.
    p = feed_whole("Location: /b\r\n\r\n");
    BOOST_TEST(p.status == 302);
}

BOOST_AUTO_TEST_CASE(bad_status_lines) {
    for (std::string value : {"abc", "20", "2000", "", "2", "20a", "2 00", "099", "000", "-20",
                              "200OK", "200\tOK", "1e2", "+20"}) {
        BOOST_TEST_CONTEXT("Status: '" << value << "'") {
            auto p = feed_whole("Status: " + value + "\r\n\r\n");
            BOOST_TEST(p.ec == bad_head);
        }
    }
    // Two Status lines are ambiguous, and the error's message says that is one of the causes:
    // the second line, quoted alone in the diagnostics, looks well formed.
    auto two = feed_whole("Status: 200\r\nStatus: 404\r\n\r\n");
    BOOST_TEST(two.ec == bad_head);
    BOOST_TEST(two.ec.message().find("second Status line") != std::string::npos, two.ec.message());
}

BOOST_AUTO_TEST_CASE(head_too_large) {
    std::string line = "X-Filler: " + std::string(50, 'f') + "\r\n";  // 62 bytes
    // Whole input past the limit, no blank line within it.
    auto p = feed_whole(line + line + "\r\nbody", 100);
    BOOST_TEST(p.ec == too_large);
    // The limit counts the blank line: 62 + 2 = 64 fits in 64, not in 63.
    p = feed_whole(line + "\r\nbody", 64);
    BOOST_TEST(!p.ec);
    BOOST_TEST(p.body == "body");
    p = feed_whole(line + "\r\nbody", 63);
    BOOST_TEST(p.ec == too_large);
    // The same, split at every position.
    std::string s = line + "\r\nbody";
    for (std::size_t k = 0; k <= s.size(); ++k) {
        auto ok =
            feed_pieces({std::string_view(s).substr(0, k), std::string_view(s).substr(k)}, 64);
        BOOST_TEST(!ok.ec, "split at " << k);
        BOOST_TEST(ok.body == "body", "split at " << k);
        auto bad =
            feed_pieces({std::string_view(s).substr(0, k), std::string_view(s).substr(k)}, 63);
        BOOST_TEST(bad.ec == too_large, "split at " << k);
    }
    // A never-ending head in many small pieces hits the default limit.
    cgi_head_parser parser;
    std::error_code ec;
    std::size_t fed = 0;
    while (!ec && fed < 1'000'000) {
        auto r = parser.feed(line);
        fed += r.consumed;
        ec = r.ec;
    }
    BOOST_TEST(ec == too_large);
    BOOST_TEST(fed <= cgi_head_parser::default_max_size);
}

BOOST_AUTO_TEST_CASE(too_large_consumes_at_most_the_limit_and_sticks) {
    cgi_head_parser parser(10);
    auto r = parser.feed("0123456789abcdef");
    BOOST_TEST(r.ec == too_large);
    BOOST_TEST(r.consumed == 10u);
    BOOST_TEST(!r.done);
    r = parser.feed("\r\n\r\n");
    BOOST_TEST(r.ec == too_large);
    BOOST_TEST(r.consumed == 0u);
    BOOST_TEST(!parser.done());
}

// A head with no blank line that fills the limit exactly is still a head when the stream ends
// there; one byte more is too large, in whatever piece it comes.
BOOST_AUTO_TEST_CASE(unfinished_head_of_exactly_the_limit) {
    const std::string head = "A: 12345";  // 8 bytes
    for (std::size_t k = 0; k <= head.size(); ++k) {
        cgi_head_parser parser(8);
        BOOST_TEST(!parser.feed(head.substr(0, k)).ec, "split at " << k);
        BOOST_TEST(!parser.feed(head.substr(k)).ec, "split at " << k);
        auto r = parser.finish();
        BOOST_TEST(!r.ec, "split at " << k);
        BOOST_REQUIRE(parser.headers().size() == 1u);
        BOOST_TEST(parser.headers()[0].value == "12345");

        cgi_head_parser over(8);
        std::string more = head + "6";
        auto first = over.feed(more.substr(0, k));
        auto second = over.feed(more.substr(k));
        BOOST_TEST((first.ec == too_large || second.ec == too_large), "split at " << k);
        BOOST_TEST(over.finish().ec == too_large, "split at " << k);
    }
}

BOOST_AUTO_TEST_CASE(finish_after_too_large_keeps_the_error) {
    // The truncated head must not turn into a successful parse at the end of the stream.
    cgi_head_parser parser(10);
    BOOST_TEST(parser.feed("A: 1234567890123").ec == too_large);
    auto r = parser.finish();
    BOOST_TEST(r.ec == too_large);
    BOOST_TEST(!r.done);
    BOOST_TEST(!parser.done());
}

BOOST_AUTO_TEST_CASE(bad_head_error_sticks) {
    cgi_head_parser parser;
    BOOST_TEST(parser.feed("A: 1\r\nBad\r\n\r\n").ec == bad_head);
    for (std::string_view more : {"more", "\r\n\r\n", ""}) {
        auto r = parser.feed(more);
        BOOST_TEST(r.ec == bad_head);
        BOOST_TEST(r.consumed == 0u);
        BOOST_TEST(!r.done);
    }
    BOOST_TEST(parser.finish().ec == bad_head);
    BOOST_TEST(!parser.done());
    BOOST_TEST(parser.bad_line() == "Bad");  // named in the diagnostics
    // reset() forgets the error.
    parser.reset();
    BOOST_TEST(parser.bad_line().empty());
    auto r = parser.feed("A: 1\r\n\r\n");
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.done);
    BOOST_TEST(parser.headers().size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_line_is_the_offending_line) {
    const std::string long_name(300, 'n');
    struct example {
        std::string head, line;
    };
    for (const auto& [head, line] : std::vector<example>{
             {"A: 1\r\nX-V: a\x01b\r\nC: 3\r\n\r\n", "X-V: a\x01b"},
             {"Status: abc\r\n\r\n", "Status: abc"},
             {"X Bad: 1\n\n", "X Bad: 1"},
             {"HTTP/1.1 x\r\n\r\n", "HTTP/1.1 x"},
             {long_name + "\r\n\r\n", long_name.substr(0, cgi_head_parser::max_bad_line)},
         }) {
        cgi_head_parser parser;
        BOOST_TEST(parser.feed(head).ec == bad_head, head);
        BOOST_TEST(parser.bad_line() == line, head);
    }
}

BOOST_AUTO_TEST_CASE(consumed_leaves_the_body) {
    cgi_head_parser parser;
    std::string s = "A: 1\r\n\r\nBODY";
    auto r = parser.feed(s);
    BOOST_TEST(r.done);
    BOOST_TEST(r.consumed == 8u);
    BOOST_TEST(std::string_view(s).substr(r.consumed) == "BODY");
    // Once done, later pieces are all body.
    r = parser.feed("A: 2\r\n\r\n");
    BOOST_TEST(r.done);
    BOOST_TEST(r.consumed == 0u);
    BOOST_TEST(parser.headers().size() == 1u);
    // Split so the blank line ends inside the second piece.
    cgi_head_parser split;
    r = split.feed("A: 1\r\n\r");
    BOOST_TEST(!r.done);
    BOOST_TEST(r.consumed == 7u);
    r = split.feed("\nBODY");
    BOOST_TEST(r.done);
    BOOST_TEST(r.consumed == 1u);
}

BOOST_AUTO_TEST_CASE(finish_on_partial_head) {
    cgi_head_parser parser;
    auto r = parser.feed("Content-Type: text/plain\r\nX-A: 1");
    BOOST_TEST(!r.done);
    r = parser.finish();
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.done);
    BOOST_TEST(parser.done());
    BOOST_TEST(parser.status() == 200);
    BOOST_REQUIRE(parser.headers().size() == 2u);
    BOOST_TEST(parser.headers()[1].value == "1");
    // Ending after one line end.
    cgi_head_parser one;
    one.feed("Status: 500\r\n");
    r = one.finish();
    BOOST_TEST(r.done);
    BOOST_TEST(one.status() == 500);
    BOOST_TEST(one.reason() == "Internal Server Error");
    // Ending with a CR of a line end that never completed.
    cgi_head_parser cr;
    cr.feed("Location: /x\r");
    r = cr.finish();
    BOOST_TEST(r.done);
    BOOST_TEST(cr.status() == 302);
    BOOST_TEST(cr.headers()[0].value == "/x");
    // Nothing at all: an empty head.
    cgi_head_parser empty;
    r = empty.finish();
    BOOST_TEST(r.done);
    BOOST_TEST(empty.status() == 200);
    BOOST_TEST(empty.headers().empty());
    // A partial head that is malformed.
    cgi_head_parser bad;
    bad.feed("garbage without colon");
    r = bad.finish();
    BOOST_TEST(r.ec == bad_head);
    BOOST_TEST(!r.done);
    // finish() after done changes nothing.
    cgi_head_parser done;
    done.feed("A: 1\r\n\r\n");
    r = done.finish();
    BOOST_TEST(r.done);
    BOOST_TEST(!r.ec);
    BOOST_TEST(done.headers().size() == 1u);
}

BOOST_AUTO_TEST_CASE(multibyte_utf8_untouched) {
    // UTF-8 in values and in the body, split inside multibyte sequences.
    std::string body =
        "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC\r\n\r\n";
    std::string s =
        "Content-Disposition: attachment; filename=\"r\xC3\xA9sum\xC3\xA9.pdf\"\r\n\r\n" + body;
    auto p = parse_every_split(s);
    BOOST_TEST(!p.ec);
    BOOST_REQUIRE(p.headers.size() == 1u);
    BOOST_TEST(p.headers[0].value == "attachment; filename=\"r\xC3\xA9sum\xC3\xA9.pdf\"");
    BOOST_TEST(p.body == body);
    // Binary body with NUL and high bytes.
    std::string binary("\x00\xFF\xFE\r\n\x80\x00", 7);
    p = parse_every_split("Content-Type: application/octet-stream\n\n" + binary);
    BOOST_TEST(p.body == binary);
}

BOOST_AUTO_TEST_CASE(reset_for_a_new_response) {
    cgi_head_parser parser(128);
    parser.feed("Status: 404\r\nX-A: 1\r\n\r\n");
    BOOST_TEST(parser.done());
    parser.reset();
    BOOST_TEST(!parser.done());
    BOOST_TEST(parser.status() == 200);
    BOOST_TEST(parser.headers().empty());
    auto r = parser.feed("X-B: 2\r\n\r\nbody");
    BOOST_TEST(r.done);
    BOOST_TEST(r.consumed == 10u);
    BOOST_TEST(parser.status() == 200);
    BOOST_TEST(parser.reason() == "OK");
    BOOST_REQUIRE(parser.headers().size() == 1u);
    BOOST_TEST(parser.headers()[0].name == "X-B");
    // The limit survives reset().
    parser.reset();
    r = parser.feed(std::string(200, 'x'));
    BOOST_TEST(r.ec == too_large);
    BOOST_TEST(r.consumed == 128u);
    parser.reset();
    r = parser.feed("A: 1\n\n");
    BOOST_TEST(r.done);
}

BOOST_AUTO_TEST_CASE(take_headers_moves_them_out) {
    cgi_head_parser parser;
    parser.feed("A: 1\r\nB: 2\r\n\r\n");
    auto headers = parser.take_headers();
    BOOST_REQUIRE(headers.size() == 2u);
    BOOST_TEST((headers[0] == header_field{"A", "1"}));
    BOOST_TEST((headers[1] == header_field{"B", "2"}));
}

BOOST_AUTO_TEST_CASE(standard_reasons) {
    BOOST_TEST(standard_reason(200) == "OK");
    BOOST_TEST(standard_reason(302) == "Found");
    BOOST_TEST(standard_reason(404) == "Not Found");
    BOOST_TEST(standard_reason(500) == "Internal Server Error");
    BOOST_TEST(standard_reason(504) == "Gateway Timeout");
    BOOST_TEST(standard_reason(0) == "");
    BOOST_TEST(standard_reason(-1) == "");
    BOOST_TEST(standard_reason(299) == "");
    BOOST_TEST(standard_reason(1000) == "");
}

BOOST_AUTO_TEST_CASE(long_head_at_every_split) {
    // A realistic head of ~1.5 KB with many lines.
    std::string head;
    for (int i = 0; i < 40; ++i)
        head += "X-Header-" + std::to_string(i) + ": value " + std::to_string(i * i) + "\r\n";
    head += "Status: 418 I'm a teapot\r\n\r\n";
    auto p = parse_every_split(head + "short and stout");
    BOOST_TEST(!p.ec);
    BOOST_TEST(p.status == 418);
    BOOST_TEST(p.reason == "I'm a teapot");
    BOOST_TEST(p.headers.size() == 40u);
    BOOST_TEST(p.headers[39].value == "value 1521");
    BOOST_TEST(p.body == "short and stout");
}

BOOST_AUTO_TEST_SUITE_END()
