// CGI params derived from a request: defaults, headers, overrides and validation.
#include <boost/test/unit_test.hpp>
#include <map>
#include <string>

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
        ec = p.build(req, why);
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
    r = base;
    r.data = "x";
    reject(r, "FILTER");
    r = base;
    r.method = "GE T";
    reject(r, "method");
}

BOOST_AUTO_TEST_SUITE_END()
