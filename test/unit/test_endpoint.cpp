// Endpoint parsing: every accepted form, and malformed ones quoted in the error.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"

using fcgi::endpoint;

BOOST_AUTO_TEST_SUITE(endpoint_parsing)

BOOST_AUTO_TEST_CASE(unix_forms) {
    auto e = endpoint::parse("unix:/run/php/php8.2-fpm.sock");
    BOOST_TEST((e.type == endpoint::kind::unix_socket));
    BOOST_TEST(e.path == "/run/php/php8.2-fpm.sock");
    BOOST_TEST(e.to_string() == "unix:/run/php/php8.2-fpm.sock");
    auto bare = endpoint::parse("/tmp/x.sock");
    BOOST_TEST((bare.type == endpoint::kind::unix_socket));
    BOOST_TEST(bare.path == "/tmp/x.sock");
    BOOST_TEST((bare == endpoint::unix_socket("/tmp/x.sock")));
    // Relative paths: with unix:, or bare when they start with ./ or ../ (no host:port does).
    BOOST_TEST(endpoint::parse("./fpm.sock").path == "./fpm.sock");
    BOOST_TEST(endpoint::parse("../run/fpm.sock").path == "../run/fpm.sock");
    BOOST_TEST(endpoint::parse("unix:fpm.sock").path == "fpm.sock");
    BOOST_TEST((endpoint::parse("./fpm.sock").type == endpoint::kind::unix_socket));
}

// sockaddr_un holds 107 bytes of path: a longer one is refused when parsed, not thrown from
// inside Asio at the first connect.
BOOST_AUTO_TEST_CASE(unix_path_length_limit) {
    const std::string longest = "/tmp/" + std::string(endpoint::max_unix_path - 5, 'x');
    BOOST_TEST(endpoint::parse(longest).path == longest);
    BOOST_TEST(endpoint::parse("unix:" + longest).path == longest);
    endpoint e;
    BOOST_TEST(fcgi::parse_endpoint(longest + "y", e) == fcgi::error::invalid_endpoint);
    BOOST_TEST(fcgi::parse_endpoint("unix:" + longest + "y", e) == fcgi::error::invalid_endpoint);
}

BOOST_AUTO_TEST_CASE(tcp_forms) {
    auto a = endpoint::parse("127.0.0.1:9000");
    BOOST_TEST((a.type == endpoint::kind::tcp));
    BOOST_TEST(a.host == "127.0.0.1");
    BOOST_TEST(a.port == 9000);
    auto b = endpoint::parse("tcp:localhost:9001");
    BOOST_TEST(b.host == "localhost");
    BOOST_TEST(b.port == 9001);
    auto c = endpoint::parse("[::1]:9002");
    BOOST_TEST(c.host == "::1");
    BOOST_TEST(c.port == 9002);
    BOOST_TEST(c.to_string() == "[::1]:9002");
    BOOST_TEST(a.to_string() == "127.0.0.1:9000");
    BOOST_TEST(endpoint::parse("tcp:[::1]:1").port == 1);
    BOOST_TEST(endpoint::parse("h:65535").port == 65535);
}

BOOST_AUTO_TEST_CASE(malformed_are_rejected_and_quoted) {
    for (const char* bad :
         {"", "unix:", "localhost", "fpm.sock", ".", "..", "host:", ":9000", "host:0", "host:65536",
          "host:12x", "::1:9000", "[::1]9000", "[::1]:", "tcp:", "a b:80", "host:-1"}) {
        endpoint out;
        BOOST_TEST(fcgi::parse_endpoint(bad, out) == fcgi::error::invalid_endpoint, bad);
        try {
            (void)endpoint::parse(bad);
            BOOST_ERROR("no exception for '" << bad << "'");
        } catch (const std::system_error& e) {
            BOOST_TEST(e.code() == fcgi::error::invalid_endpoint);
            BOOST_TEST(std::string(e.what()).find("'" + std::string(bad) + "'") !=
                       std::string::npos);
        }
    }
}

// A socket path with a line end or a blank at either end (an FCGI_CONNECT read from a CRLF
// file) failed at connect as "no such file", naming a path that looked right.
BOOST_AUTO_TEST_CASE(unix_path_with_control_bytes_or_edge_blanks) {
    for (const char* bad : {"unix:/run/x.sock\r", "/run/x.sock\n", "unix:/run/x.sock ",
                            "unix: /run/x.sock", "/run/x\t.sock", "/run/x\x7f.sock"}) {
        endpoint out;
        BOOST_TEST(fcgi::parse_endpoint(bad, out) == fcgi::error::invalid_endpoint, bad);
    }
    BOOST_TEST(endpoint::parse("unix:/run/my php.sock").path == "/run/my php.sock");
    // A leading NUL too, though unix_socket() takes it as an abstract name.
    endpoint out;
    BOOST_TEST(fcgi::parse_endpoint(std::string_view("unix:\0abstract", 14), out) ==
               fcgi::error::invalid_endpoint);
}

// An endpoint built with unix_socket() or tcp() skips parse(): validate() refuses what parse()
// does, says why and names the endpoint with its bytes escaped.
BOOST_AUTO_TEST_CASE(validate_what_the_factories_build) {
    const std::string too_long = "/tmp/" + std::string(endpoint::max_unix_path - 4, 'x');
    struct bad_case {
        endpoint e;
        std::string reason;
    };
    const bad_case cases[] = {
        {endpoint::unix_socket(""), "the unix socket path is empty"},
        {endpoint::unix_socket(too_long), "longer than 107 bytes"},
        {endpoint::unix_socket(std::string("/tmp/a\0b", 8)), "control byte"},
        {endpoint::unix_socket("/tmp/a.sock\n"), "control byte"},
        {endpoint::unix_socket(" /tmp/a.sock"), "starts or ends with a space"},
        {endpoint::tcp("a b", 9000), "has a space"},
        {endpoint::tcp("h/x", 9000), "'/'"},
        {endpoint::tcp("h\x7f", 9000), "control byte"},
        {endpoint::tcp("localhost", 0), "port is 0"},
    };
    for (const auto& c : cases) {
        std::string why;
        BOOST_TEST(fcgi::validate(c.e, why) == fcgi::error::invalid_endpoint, c.reason);
        BOOST_TEST(why.find(c.reason) != std::string::npos, why);
        BOOST_TEST(std::none_of(why.begin(), why.end(),
                                [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }),
                   why);
    }
    std::string why;
    BOOST_TEST(fcgi::validate(endpoint::unix_socket(std::string("/tmp/a\0b", 8)), why) ==
               fcgi::error::invalid_endpoint);
    BOOST_TEST(why.find("(unix:/tmp/a\\x00b)") != std::string::npos, why);
    BOOST_TEST(fcgi::validate(endpoint::tcp("h/x", 9000), why) == fcgi::error::invalid_endpoint);
    BOOST_TEST(why.find("(h/x:9000)") != std::string::npos, why);
    // A path of any length is shown cut, so each failed request's diagnostics stay short.
    BOOST_TEST(fcgi::validate(endpoint::unix_socket("/" + std::string(5000, 'p')), why) ==
               fcgi::error::invalid_endpoint);
    BOOST_TEST(why.size() < 300u, why.size());
    BOOST_TEST(why.ends_with("...)"), why);
    for (const auto& good :
         {endpoint::unix_socket("/run/x.sock"), endpoint::unix_socket("fpm.sock"),
          endpoint::unix_socket("/tmp/" + std::string(endpoint::max_unix_path - 5, 'x')),
          endpoint::tcp("127.0.0.1", 9000), endpoint::tcp("::1", 1),
          endpoint::tcp("", 9000),  // the loopback addresses, as a resolver given no name
          endpoint::unix_socket(std::string("\0abstract\n", 10)),  // any bytes after the NUL
          endpoint::tcp("localhost", 65535)}) {
        std::string none;
        BOOST_TEST(!fcgi::validate(good, none), good.to_string());
        BOOST_TEST(none.empty());
    }
}

// to_string() reads back as the same endpoint, whatever the host is named.
BOOST_AUTO_TEST_CASE(to_string_round_trips) {
    for (const auto& e :
         {endpoint::tcp("unix", 9000), endpoint::tcp("tcp", 1), endpoint::tcp("localhost", 3),
          endpoint::tcp("::1", 4), endpoint::unix_socket("/run/x.sock")}) {
        BOOST_TEST((endpoint::parse(e.to_string()) == e), e.to_string());
    }
    BOOST_TEST(endpoint::tcp("unix", 9000).to_string() == "tcp:unix:9000");
}

BOOST_AUTO_TEST_SUITE_END()
