// detail::response_assembler: STDOUT through the CGI head parser into a response, STDERR kept
// apart, and the size limits of connection_options (truncated or failing STDERR included).
#include <boost/test/unit_test.hpp>
#include <string>

#include "fcgi/detail/response_assembler.hpp"
#include "fcgi/error.hpp"

using fcgi::detail::response_assembler;
using fcgi::detail::response_limits;
namespace proto = fcgi::protocol;

namespace {

response_limits small(std::size_t max_stderr, bool truncate) {
    response_limits l;
    l.max_stdout = 64;
    l.max_stderr = max_stderr;
    l.max_head = 32;
    l.truncate_stderr = truncate;
    return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(response_assembler_tests)

BOOST_AUTO_TEST_CASE(head_and_body_across_pieces) {
    response_assembler a;
    a.reset({});
    BOOST_TEST(!a.on_stdout("Status: 404 Not Found\r\nX-A: 1\r"));
    BOOST_TEST(!a.on_stdout("\n\r\nbo"));
    BOOST_TEST(!a.on_stdout("dy"));
    BOOST_TEST(!a.on_stderr("PHP message: x"));
    BOOST_TEST(!a.on_end({7, proto::protocol_status::request_complete}));
    auto r = a.take();
    BOOST_TEST(r.status == 404);
    BOOST_TEST(r.reason == "Not Found");
    BOOST_TEST(r.header("x-a").value_or("") == "1");
    BOOST_TEST(r.body == "body");
    BOOST_TEST(r.stderr_text == "PHP message: x");
    BOOST_TEST(r.stderr_dropped == 0u);
    BOOST_TEST(r.app_status == 7u);
}

// A request the server refused (OVERLOADED and the like) gets no status: the 200 of a head-less
// success read as one, by a caller who looked at the status before the error.
BOOST_AUTO_TEST_CASE(a_refusal_before_a_head_has_no_status) {
    for (auto refusal : {proto::protocol_status::overloaded, proto::protocol_status::cant_mpx_conn,
                         proto::protocol_status::unknown_role}) {
        response_assembler a;
        a.reset({});
        BOOST_TEST(!a.on_stdout("Status: 503\r\nX-A"));  // a head cut short
        BOOST_TEST(!a.on_end({0, refusal}));
        auto r = a.take();
        BOOST_TEST(r.status == 0);
        BOOST_TEST(r.reason.empty());
        BOOST_TEST(r.headers.empty());
        BOOST_TEST((r.protocol_status == refusal));
        // No STDOUT at all, as php-fpm and the fake refuse: no status either.
        response_assembler bare;
        bare.reset({});
        BOOST_TEST(!bare.on_end({0, refusal}));
        BOOST_TEST(bare.take().status == 0);
    }
    // Nothing at all and complete: CGI's default, 200.
    response_assembler ok;
    ok.reset({});
    BOOST_TEST(!ok.on_end({}));
    BOOST_TEST(ok.take().status == 200);
    // A whole head before the refusal is what the server said: kept.
    response_assembler headed;
    headed.reset({});
    BOOST_TEST(!headed.on_stdout("Status: 503 Busy\r\n\r\n"));
    BOOST_TEST(!headed.on_end({0, proto::protocol_status::overloaded}));
    BOOST_TEST(headed.take().status == 503);
}

BOOST_AUTO_TEST_CASE(stdout_past_its_limit_fails) {
    response_assembler a;
    a.reset(small(16, true));
    BOOST_TEST(!a.on_stdout("\r\n" + std::string(62, 'x')));  // exactly the limit
    BOOST_TEST(a.on_stdout("y") == fcgi::error::response_too_large);
}

BOOST_AUTO_TEST_CASE(stderr_up_to_the_limit_is_kept_whole) {
    for (bool truncate : {true, false}) {
        response_assembler a;
        a.reset(small(10, truncate));
        BOOST_TEST(!a.on_stderr("12345"));
        BOOST_TEST(!a.on_stderr("67890"));
        BOOST_TEST(!a.on_stderr(""));
        BOOST_TEST(a.stderr_bytes() == 10u);
        BOOST_TEST(!a.on_stdout("\r\n"));
        BOOST_TEST(!a.on_end({}));
        auto r = a.take();
        BOOST_TEST(r.stderr_text == "1234567890");
        BOOST_TEST(r.stderr_dropped == 0u);
    }
}

BOOST_AUTO_TEST_CASE(stderr_past_the_limit_is_cut_and_counted) {
    response_assembler a;
    a.reset(small(10, true));
    BOOST_TEST(!a.on_stderr("1234567"));
    BOOST_TEST(!a.on_stderr("89abc"));  // cut inside this piece
    BOOST_TEST(!a.on_stderr("defg"));   // dropped whole
    BOOST_TEST(a.stderr_dropped() == 6u);
    BOOST_TEST(a.stderr_bytes() == 16u);  // what arrived, kept or not
    BOOST_TEST(!a.on_stdout("\r\nok"));
    BOOST_TEST(!a.on_end({}));
    auto r = a.take();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "ok");
    BOOST_TEST(r.stderr_text == "123456789a");
    BOOST_TEST(r.stderr_dropped == 6u);
}

BOOST_AUTO_TEST_CASE(stderr_limit_zero_keeps_nothing) {
    response_assembler a;
    a.reset(small(0, true));
    BOOST_TEST(!a.on_stderr("abc"));
    BOOST_TEST(a.take_stderr().empty());
    BOOST_TEST(a.stderr_dropped() == 3u);
}

BOOST_AUTO_TEST_CASE(stderr_past_the_limit_fails_without_truncation) {
    response_assembler a;
    a.reset(small(10, false));
    BOOST_TEST(!a.on_stderr("1234567"));
    BOOST_TEST(a.on_stderr("89abc") == fcgi::error::response_too_large);
    BOOST_TEST(a.stderr_bytes() == 12u);       // the refused piece arrived too: the script ran
    BOOST_TEST(a.take_stderr() == "1234567");  // what a failed response carries
    BOOST_TEST(a.stderr_dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(reset_starts_a_clean_response) {
    response_assembler a;
    a.reset(small(2, true));
    BOOST_TEST(!a.on_stderr("abcdef"));
    BOOST_TEST(!a.on_stdout("Status: 500\r\n\r\nx"));
    a.reset(small(2, true));
    BOOST_TEST(a.stderr_bytes() == 0u);
    BOOST_TEST(a.stdout_bytes() == 0u);
    BOOST_TEST(!a.on_stdout("\r\n"));
    BOOST_TEST(!a.on_end({}));
    auto r = a.take();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.stderr_dropped == 0u);
    BOOST_TEST(r.stderr_text.empty());
}

BOOST_AUTO_TEST_CASE(head_past_its_limit_and_a_stream_without_a_head) {
    response_assembler a;
    a.reset(small(10, true));
    BOOST_TEST(a.on_stdout("X-Long: " + std::string(40, 'a')) ==
               fcgi::error::response_head_too_large);

    // A stream that ends inside its head: on_end finishes it (the head parser's rules apply).
    a.reset({});
    BOOST_TEST(!a.on_stdout("Content-Type: text/plain\r\n"));
    BOOST_TEST(!a.on_end({}));
    BOOST_TEST(a.take().header("content-type").value_or("") == "text/plain");
}

BOOST_AUTO_TEST_CASE(streamed_pieces_hand_the_body_back) {
    response_assembler a;
    a.reset({});
    auto p1 = a.on_stdout_streamed("Status: 201\r\n\r");
    BOOST_TEST(!p1.ec);
    BOOST_TEST(!p1.head_complete);
    BOOST_TEST(p1.body.empty());
    auto p2 = a.on_stdout_streamed("\nbody");
    BOOST_TEST(!p2.ec);
    BOOST_TEST(p2.head_complete);
    BOOST_TEST(p2.body == "body");
    BOOST_TEST(a.head().status == 201);
    auto p3 = a.on_stdout_streamed("more");
    BOOST_TEST(!p3.head_complete);
    BOOST_TEST(p3.body == "more");
    BOOST_TEST(a.stdout_bytes() == 23u);
}

BOOST_AUTO_TEST_SUITE_END()
