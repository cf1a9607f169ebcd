// CGI params derived from a request: defaults, headers, overrides and validation.
#include <boost/test/unit_test.hpp>
#include <map>
#include <string>

#include "fcgi/body_source.hpp"
#include "fcgi/detail/cgi_params.hpp"
#include "fcgi/error.hpp"
#include "fcgi/request.hpp"

namespace {

std::map<std::string, std::string> build(const fcgi::request& req,
                                         std::error_code* ec_out = nullptr,
                                         std::string* why_out = nullptr) {
    fcgi::detail::cgi_params p;
    std::string why;
    std::error_code ec = fcgi::validate(req, why);
    if (!ec)
        p.build(req);
    if (ec_out)
        *ec_out = ec;
    if (why_out)
        *why_out = why;
    std::map<std::string, std::string> out;
    if (!ec)
        for (const auto& nv : p.params())
            BOOST_TEST(out.emplace(nv.name, nv.value).second, "duplicate " << nv.name);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cgi_params)

BOOST_AUTO_TEST_CASE(defaults_for_a_get) {
    fcgi::request req;
    req.script = "/var/www/app/index.php";
    req.query = "a=1&b=2";
    auto p = build(req);
    BOOST_TEST(p["REQUEST_METHOD"] == "GET");
    BOOST_TEST(p["SCRIPT_FILENAME"] == "/var/www/app/index.php");
    BOOST_TEST(p["DOCUMENT_ROOT"] == "/var/www/app");
    BOOST_TEST(p["SCRIPT_NAME"] == "/index.php");
    BOOST_TEST(p["REQUEST_URI"] == "/index.php?a=1&b=2");
    BOOST_TEST(p["QUERY_STRING"] == "a=1&b=2");
    BOOST_TEST(p["CONTENT_LENGTH"] == "0");
    BOOST_TEST(p["GATEWAY_INTERFACE"] == "CGI/1.1");
    BOOST_TEST(p["SERVER_PROTOCOL"] == "HTTP/1.1");
    BOOST_TEST(p.count("SERVER_SOFTWARE") == 1u);
    BOOST_TEST(p.count("REMOTE_ADDR") == 1u);
    BOOST_TEST(p.count("SERVER_NAME") == 1u);
    BOOST_TEST(p.count("SERVER_PORT") == 1u);
}

BOOST_AUTO_TEST_CASE(post_body_headers_and_root) {
    fcgi::request req;
    req.script = "/srv/site/api/v1/run.php";
    req.document_root = "/srv/site/";
    req.body = "x=1";
    req.headers = {
        {"Content-Type", "application/json"}, {"X-Request-Id", "42"}, {"accept-encoding", "gzip"}};
    auto p = build(req);
    BOOST_TEST(p["REQUEST_METHOD"] == "POST");
    BOOST_TEST(p["CONTENT_LENGTH"] == "3");
    BOOST_TEST(p["CONTENT_TYPE"] == "application/json");
    BOOST_TEST(p["HTTP_X_REQUEST_ID"] == "42");
    BOOST_TEST(p["HTTP_ACCEPT_ENCODING"] == "gzip");
    BOOST_TEST(p.count("HTTP_CONTENT_TYPE") == 0u);
    BOOST_TEST(p["DOCUMENT_ROOT"] == "/srv/site");
    BOOST_TEST(p["SCRIPT_NAME"] == "/api/v1/run.php");

    req.headers.clear();
    p = build(req);
    BOOST_TEST(p["CONTENT_TYPE"] == "application/x-www-form-urlencoded");
}

BOOST_AUTO_TEST_CASE(raw_params_override_and_append) {
    fcgi::request req;
    req.script = "/a/b.php";
    req.params = {{"SERVER_NAME", "example.org"}, {"APP_ENV", "test"}, {"CONTENT_LENGTH", "0"}};
    auto p = build(req);
    BOOST_TEST(p["SERVER_NAME"] == "example.org");
    BOOST_TEST(p["APP_ENV"] == "test");
}

BOOST_AUTO_TEST_CASE(filter_role_adds_data_params) {
    fcgi::request req;
    req.script = "/a/filter.php";
    req.role = fcgi::protocol::role::filter;
    req.data = "12345";
    req.data_last_modified = 1700000000;
    auto p = build(req);
    BOOST_TEST(p["FCGI_DATA_LENGTH"] == "5");
    BOOST_TEST(p["FCGI_DATA_LAST_MOD"] == "1700000000");
}

BOOST_AUTO_TEST_CASE(invalid_requests_are_rejected_with_reasons) {
    auto reject = [](fcgi::request req, std::string_view needle) {
        std::error_code ec;
        std::string why;
        build(req, &ec, &why);
        BOOST_TEST(ec == fcgi::error::invalid_request);
        BOOST_TEST(why.find(needle) != std::string::npos, why);
    };
    fcgi::request base;
    base.script = "/a/b.php";
    auto r = base;
    r.script = "relative.php";
    reject(r, "absolute");
    r = base;
    r.script = "";
    reject(r, "absolute");
    r = base;
    r.headers = {{"Bad Name", "v"}};
    reject(r, "token");
    r = base;
    r.headers = {{"X-Ok", "a\r\nInjected: 1"}};
    reject(r, "CR, LF or NUL");
    for (char c : {'\r', '\n', '\0'}) {  // each alone, first and last
        r = base;
        r.headers = {{"X-Ok", std::string("value") + c}};
        reject(r, "CR, LF or NUL");
        r.headers = {{"X-Ok", "fine"}, {"X-Ok", c + std::string("value")}};
        reject(r, "CR, LF or NUL");
    }
    for (const char* root : {"/a/b", "/x", "/a/bb", "relative"}) {  // /a/b.php is not below
        r = base;
        r.document_root = root;
        reject(r, "not below document_root");
    }
    r = base;
    r.document_root = "/x";
    r.params = {{"SCRIPT_NAME", "/b.php"}};  // the caller's own SCRIPT_NAME: sent as given
    std::error_code own_ec;
    std::string own_why;
    auto own = build(r, &own_ec, &own_why);
    BOOST_TEST(!own_ec, own_why);
    BOOST_TEST(own["SCRIPT_NAME"] == "/b.php");
    // Roots that name /a, or /, however written: SCRIPT_NAME is the script below them.
    for (const char* root : {"/", "//", "/a", "/a/", "/a//", "/a/.", "//a", "/a/x/..", "/a/./"}) {
        r = base;
        r.document_root = root;
        std::error_code ec;
        std::string why;
        auto p = build(r, &ec, &why);
        BOOST_TEST(!ec, root << ": " << why);
        BOOST_TEST(p["SCRIPT_NAME"] ==
                       (root == std::string_view("/") || root == std::string_view("//") ? "/a/b.php"
                                                                                        : "/b.php"),
                   root);
    }
    r = base;  // a script that climbs out of the root is not below it
    r.script = "/a/../b.php";
    r.document_root = "/a";
    reject(r, "not below document_root");
    r.document_root = "/";
    BOOST_TEST(build(r)["SCRIPT_NAME"] == "/b.php");
    r = base;
    r.params = {{"A=B", "v"}};
    reject(r, "'='");
    r = base;
    r.params = {{std::string("A\0B", 3), "v"}};
    reject(r, "NUL");
    r.params = {{"AB=", "v"}};
    reject(r, "'='");
    r = base;
    r.body = "abc";
    r.params = {{"CONTENT_LENGTH", "10"}};
    reject(r, "CONTENT_LENGTH");
    r = base;
    r.body = "abc";
    r.headers = {{"Content-Length", "4"}};
    reject(r, "Content-Length");
    // validate() alone finds a contradicting length (a client checks a request when it is
    // queued), whichever header case; the body's own length passes.
    r = base;
    r.body = "abc";
    for (auto name : {"Content-Length", "content-length"}) {
        r.headers = {{name, "4"}};
        std::string why;
        BOOST_TEST(fcgi::validate(r, why) == fcgi::error::invalid_request, name);
        BOOST_TEST(why == "Content-Length header 4 differs from the body's 3 bytes", why);
        r.headers = {{name, "3"}};
        BOOST_TEST(!fcgi::validate(r, why), why);
    }
    r.headers.clear();
    r.params = {{"CONTENT_LENGTH", "0"}};
    std::string length_why;
    BOOST_TEST(fcgi::validate(r, length_why) == fcgi::error::invalid_request);
    BOOST_TEST(length_why == "param CONTENT_LENGTH=0 differs from the body's 3 bytes", length_why);
    // A source of unknown length is that, whatever length a header claims for it.
    r = base;
    r.stdin_source = fcgi::body_source::producer(
        std::nullopt, [](asio::mutable_buffer, fcgi::source_read_handler done) { done({}, 0); });
    r.headers = {{"Content-Length", "100"}};
    BOOST_TEST(fcgi::validate(r, length_why) == fcgi::error::body_length_unknown, length_why);
    r = base;
    r.data = "x";
    reject(r, "FILTER");
    r = base;
    r.method = "GE T";
    reject(r, "method");
}

// PHP keeps the last of params with one name, so repeated headers are joined into one value as
// a web server does: Cookie with "; ", the others with ", ". Names that map to the same param
// (case, '-' or '_') are repeats too. A param override still replaces the joined value.
BOOST_AUTO_TEST_CASE(repeated_headers_are_joined) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.headers = {{"Cookie", "a=1"},        {"Accept", "x"}, {"cookie", "b=2"},
                   {"X-Real-IP", "1.2.3.4"}, {"Accept", "y"}, {"X_Real_Ip", "5.6.7.8"},
                   {"Accept", "z"}};
    auto p = build(req);  // also checks that no name is sent twice
    BOOST_TEST(p["HTTP_COOKIE"] == "a=1; b=2");
    BOOST_TEST(p["HTTP_ACCEPT"] == "x, y, z");
    BOOST_TEST(p["HTTP_X_REAL_IP"] == "1.2.3.4, 5.6.7.8");
    req.headers = {{"Host", "a"}, {"Host", "b"}};
    req.params = {{"HTTP_HOST", "c"}};
    p = build(req);
    BOOST_TEST(p["HTTP_HOST"] == "c");
}

// httpoxy: a Proxy header is not sent as HTTP_PROXY, which HTTP libraries take as the proxy to
// use; a caller who means it sets the param.
BOOST_AUTO_TEST_CASE(proxy_header_is_not_forwarded) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.headers = {{"Proxy", "http://evil:8080"}, {"Accept", "x"}};
    auto p = build(req);
    BOOST_TEST(p.count("HTTP_PROXY") == 0u);
    BOOST_TEST(p["HTTP_ACCEPT"] == "x");
    req.params = {{"HTTP_PROXY", "http://proxy:3128"}};
    BOOST_TEST(build(req)["HTTP_PROXY"] == "http://proxy:3128");
}

// REQUEST_URI is a URI: a '?', '%', '#', space or non-ASCII byte in the script's path is
// percent-encoded, so a router splitting at '?' finds the real query. SCRIPT_NAME stays as is.
BOOST_AUTO_TEST_CASE(request_uri_encodes_the_path) {
    fcgi::request req;
    req.script = "/srv/www/a?b c%#\xC3\xA4.php";
    req.document_root = "/srv/www";
    req.query = "x=1";
    auto p = build(req);
    BOOST_TEST(p["SCRIPT_NAME"] == "/a?b c%#\xC3\xA4.php");
    BOOST_TEST(p["REQUEST_URI"] == "/a%3Fb%20c%25%23%C3%A4.php?x=1");
    req.script = "/srv/www/sub-dir/v1.2/~user/a,b;c=d@e:f.php";
    req.query.clear();
    BOOST_TEST(build(req)["REQUEST_URI"] == "/sub-dir/v1.2/~user/a,b;c=d@e:f.php");
}

BOOST_AUTO_TEST_SUITE_END()
