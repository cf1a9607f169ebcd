// CGI params derived from a request: defaults, headers, overrides and validation.
#include <boost/test/unit_test.hpp>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// Past 16 raw params an index finds the param a raw one replaces (a scan each was n^2): the
// same result, derived ones replaced in place, a repeated raw name once with its last value,
// new names in first-appearance order after the derived ones.
BOOST_AUTO_TEST_CASE(many_raw_params_replace_as_a_few_do) {
    for (std::size_t n : {std::size_t(4), std::size_t(16), std::size_t(17), std::size_t(500)}) {
        BOOST_TEST_CONTEXT(n << " raw params") {
            fcgi::request req;
            req.script = "/a/b.php";
            req.headers = {{"X-H", "header"}};
            req.params = {{"SERVER_NAME", "example.org"}, {"HTTP_X_H", "raw"}};
            for (std::size_t i = 2; i < n; ++i)
                req.params.push_back({"APP_" + std::to_string(i % (n / 2 + 1)), std::to_string(i)});
            fcgi::detail::cgi_params p;
            p.build(req);
            std::map<std::string, std::string> got;
            std::vector<std::string> appended;
            bool derived_part = true;
            for (const auto& nv : p.params()) {
                BOOST_TEST(got.emplace(nv.name, nv.value).second, "duplicate " << nv.name);
                derived_part = derived_part && !nv.name.starts_with("APP_");
                if (!derived_part) {
                    BOOST_TEST(nv.name.starts_with("APP_"), nv.name);
                    appended.emplace_back(nv.name);
                }
            }
            BOOST_TEST(got["SERVER_NAME"] == "example.org");
            BOOST_TEST(got["HTTP_X_H"] == "raw");
            std::map<std::string, std::string> want;
            std::vector<std::string> order;
            for (std::size_t i = 2; i < n; ++i) {
                auto name = "APP_" + std::to_string(i % (n / 2 + 1));
                if (!want.count(name))
                    order.push_back(name);
                want[name] = std::to_string(i);
            }
            for (const auto& [name, value] : want)
                BOOST_TEST(got[name] == value, name);
            BOOST_TEST(appended == order, boost::test_tools::per_element());
        }
    }
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
    for (const char* root : {"/a/b", "/x", "/a/bb"}) {  // /a/b.php is not below
        r = base;
        r.document_root = root;
        reject(r, "not below document_root");
    }
    // Nothing is below a relative root: that is what the error says.
    for (const char* root : {"relative", "a", "./a", "a/"}) {
        r = base;
        r.document_root = root;
        reject(r, "is not an absolute path");
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
    // A ".." segment anywhere in the script, whatever the root: php-fpm answers it 404.
    for (const char* script : {"/a/../b.php", "/../b.php", "/a/..", "/..", "/a/b/../../b.php"}) {
        for (const char* root : {"", "/", "/a"}) {
            r = base;
            r.script = script;
            r.document_root = root;
            reject(r, "has a '..' segment, which php-fpm refuses");
        }
    }
    for (const char* script : {"/a/..b.php", "/a/b..php", "/a/.../b.php", "/a/./b.php"}) {
        r = base;
        r.script = script;
        std::error_code ec;
        std::string why;
        build(r, &ec, &why);
        BOOST_TEST(!ec, script << ": " << why);
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
    // validate() alone finds a contradicting length (a client checks a request when it is
    // queued), whichever header case; the body's own length passes.
    r = base;
    r.body = "abc";
    for (auto name : {"Content-Length", "content-length"}) {
        r.headers = {{name, "4"}};
        std::string why;
        BOOST_TEST(fcgi::validate(r, why) == fcgi::error::invalid_request, name);
        BOOST_TEST(why == "Content-Length header '4' differs from the body's 3 bytes", why);
        r.headers = {{name, "3"}};
        BOOST_TEST(!fcgi::validate(r, why), why);
    }
    // A length is compared as a number: leading zeros are the same length (RFC 9110 1*DIGIT),
    // a sign, a space, a fraction or a number past 64 bits is not a length at all.
    for (auto name : {"Content-Length", "CONTENT_LENGTH"}) {
        const bool header = std::string_view(name) == "Content-Length";
        for (auto same : {"3", "03", "0000000000000000000000003"}) {
            r.headers.clear();
            r.params.clear();
            (header ? r.headers : r.params) = {{name, same}};
            std::string why;
            BOOST_TEST(!fcgi::validate(r, why), name << ": " << same << ": " << why);
        }
        for (auto other :
             {"", "+3", "-3", " 3", "3 ", "3.0", "0x3", "3a", "18446744073709551619"}) {
            r.headers.clear();
            r.params.clear();
            (header ? r.headers : r.params) = {{name, other}};
            std::string why;
            BOOST_TEST(fcgi::validate(r, why) == fcgi::error::invalid_request,
                       name << ": '" << other << "'");
        }
    }
    r.headers.clear();
    r.params = {{"CONTENT_LENGTH", "0"}};
    std::string length_why;
    BOOST_TEST(fcgi::validate(r, length_why) == fcgi::error::invalid_request);
    BOOST_TEST(length_why == "param CONTENT_LENGTH='0' differs from the body's 3 bytes",
               length_why);
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
// a web server does: Cookie with "; ", the others with ", ". Names that differ in case only
// are repeats too. A param override still replaces the joined value.
BOOST_AUTO_TEST_CASE(repeated_headers_are_joined) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.headers = {{"Cookie", "a=1"},        {"Accept", "x"}, {"cookie", "b=2"},
                   {"X-Real-IP", "1.2.3.4"}, {"Accept", "y"}, {"x-real-ip", "5.6.7.8"},
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

namespace {

// The params of a valid request in the order they are sent.
std::vector<std::pair<std::string, std::string>> in_order(const fcgi::request& req) {
    std::string why;
    BOOST_TEST_REQUIRE(!fcgi::validate(req, why), why);
    fcgi::detail::cgi_params p;
    p.build(req);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& nv : p.params())
        out.emplace_back(nv.name, nv.value);
    return out;
}

std::string why_invalid(const fcgi::request& req) {
    std::string why;
    BOOST_TEST(fcgi::validate(req, why) == fcgi::error::invalid_request, why);
    return why;
}

}  // namespace

// A header name with '_' or '.' would reach PHP under another header's name ($_SERVER maps
// both to '_'), so it could pose as a header a service set or filtered: refused, naming what
// PHP would have made of it, as nginx and Apache drop such headers.
BOOST_AUTO_TEST_CASE(header_names_that_pose_as_others_are_refused) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    for (const char* name : {"X.Forwarded.For", "X_Forwarded_For", "Content_Length", "a.b_c"}) {
        req.headers = {{name, "6.6.6.6"}, {"X-Forwarded-For", "10.0.0.1"}};
        auto why = why_invalid(req);
        BOOST_TEST(why.find("letters, digits and '-'") != std::string::npos, why);
    }
    req.headers = {{"X.Forwarded.For", "6.6.6.6"}};
    BOOST_TEST(why_invalid(req).find("as 'HTTP_X_FORWARDED_FOR'") != std::string::npos);
    req.headers = {{"X-Forwarded-For", "10.0.0.1"}, {"x-FORWARDED-for", "1.1.1.1"}};
    auto p = in_order(req);
    BOOST_TEST(p.back().first == "HTTP_X_FORWARDED_FOR");
    BOOST_TEST(p.back().second == "10.0.0.1, 1.1.1.1");
}

// Repeats are joined at the place of the first of their name, the other headers keep their
// order, and thousands of headers cost n log n (a quadratic join had taken 20 s for 40,000).
BOOST_AUTO_TEST_CASE(joined_headers_keep_first_appearance_order_at_any_count) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.headers = {{"B", "1"}, {"A", "2"}, {"b", "3"}, {"C", "4"}, {"a", "5"}, {"B", "6"}};
    auto p = in_order(req);
    std::vector<std::pair<std::string, std::string>> http(p.end() - 3, p.end());
    BOOST_TEST((http[0] == std::pair<std::string, std::string>{"HTTP_B", "1, 3, 6"}));
    BOOST_TEST((http[1] == std::pair<std::string, std::string>{"HTTP_A", "2, 5"}));
    BOOST_TEST((http[2] == std::pair<std::string, std::string>{"HTTP_C", "4"}));

    req.headers.clear();
    constexpr int n = 40000;
    for (int i = 0; i < n; ++i)
        req.headers.push_back({"X-H" + std::to_string(i % (n / 2)), std::to_string(i)});
    p = in_order(req);
    BOOST_REQUIRE(p.size() >= n / 2u);
    auto first = p.end() - n / 2;
    for (int i = 0; i < n / 2; ++i, ++first) {
        BOOST_TEST_REQUIRE(first->first == "HTTP_X_H" + std::to_string(i));
        BOOST_TEST_REQUIRE(first->second == std::to_string(i) + ", " + std::to_string(i + n / 2));
    }
}

// QUERY_STRING and REQUEST_URI carry the query as given; bytes no URI holds are refused (PHP
// cuts a value at a NUL without a word), and other bytes pass untouched.
BOOST_AUTO_TEST_CASE(query_with_control_bytes_is_refused) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    for (std::string q : {std::string("a=1\0b=2", 7), std::string("a=1\r\nX: y"),
                          std::string("a=\t"), std::string("a=\x7f")}) {
        req.query = q;
        auto why = why_invalid(req);
        BOOST_TEST(why.find("control byte") != std::string::npos, why);
        BOOST_TEST(why.find('\0') == std::string::npos);  // escaped in the message
        BOOST_TEST(why.find('\n') == std::string::npos);
    }
    req.query = "a=b c#d&e=\xC3\xA4%";
    BOOST_TEST(in_order(req)[8].second == "a=b c#d&e=\xC3\xA4%");  // QUERY_STRING, as given
}

// A param with a NUL in its value, and a document_root with a NUL, are refused for what they
// are; repeated params are sent once, with the last value, where the first was.
BOOST_AUTO_TEST_CASE(nul_in_param_values_and_document_root) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.params = {{"APP", std::string("ab\0cd", 5)}};
    BOOST_TEST(why_invalid(req).find("NUL byte in its value") != std::string::npos);
    req.params.clear();
    req.document_root = std::string("/srv/www\0/x", 11);
    auto why = why_invalid(req);
    BOOST_TEST(why == "document_root '/srv/www\\x00/x' contains a NUL byte", why);
    req.document_root.clear();
    req.params = {{"APP", "1"}, {"OTHER", "x"}, {"APP", "2"}};
    auto p = in_order(req);
    BOOST_TEST(p[p.size() - 2].first == "APP");
    BOOST_TEST(p[p.size() - 2].second == "2");
    BOOST_TEST(p.back().first == "OTHER");
}

// A SCRIPT_NAME param (a script outside document_root, a front controller's public name) is
// what REQUEST_URI names too: the file system path is not a URI. A REQUEST_URI param wins.
BOOST_AUTO_TEST_CASE(script_name_param_makes_request_uri) {
    fcgi::request req;
    req.script = "/srv/private/app/index.php";
    req.document_root = "/srv/public";
    req.query = "page=2";
    req.params = {{"SCRIPT_NAME", "/index php.php"}};
    auto p = build(req);
    BOOST_TEST(p["SCRIPT_NAME"] == "/index php.php");
    BOOST_TEST(p["REQUEST_URI"] == "/index%20php.php?page=2");
    BOOST_TEST(p["SCRIPT_FILENAME"] == "/srv/private/app/index.php");
    req.params.push_back({"REQUEST_URI", "/pretty/2"});
    BOOST_TEST(build(req)["REQUEST_URI"] == "/pretty/2");
    // A long SCRIPT_NAME, all of it encoded, fits the arena (views into it stay valid).
    req.params = {{"SCRIPT_NAME", "/" + std::string(5000, ' ')}};
    BOOST_TEST(build(req)["REQUEST_URI"].size() == 1 + 3 * 5000 + 7);
}

// One Content-Type per body: two are refused. One given empty is sent empty, not replaced by
// the form default (which would make PHP parse the body into $_POST).
BOOST_AUTO_TEST_CASE(content_type_once_and_empty_kept) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.body = "raw";
    req.headers = {{"Content-Type", "a/a"}, {"content-type", "b/b"}};
    BOOST_TEST(why_invalid(req).find("two Content-Type headers") != std::string::npos);
    req.headers = {{"Content-Type", ""}};
    auto p = build(req);
    BOOST_TEST(p.count("CONTENT_TYPE") == 1u);
    BOOST_TEST(p["CONTENT_TYPE"] == "");
    req.headers.clear();
    BOOST_TEST(build(req)["CONTENT_TYPE"] == "application/x-www-form-urlencoded");
}

// Messages quote caller bytes escaped and cut: no raw CR, LF, ESC or 70 KB name in a log line.
BOOST_AUTO_TEST_CASE(messages_escape_and_cap_caller_bytes) {
    fcgi::request req;
    req.script = "/srv/www/a.php";
    req.headers = {{std::string(70000, 'x') + " ", "v"}};
    auto why = why_invalid(req);
    BOOST_TEST(why.size() < 200u, why);
    BOOST_TEST(why.find("(70001 bytes)") != std::string::npos, why);
    req.headers.clear();
    req.method = "G\x1b[2JET";
    why = why_invalid(req);
    BOOST_TEST(why == "method 'G\\x1b[2JET' is not an HTTP token", why);
}

// One cgi_params reused, as the connection does: each build() starts afresh (nothing of the
// previous request's params or arena shows), and a large request after a small one still fits.
BOOST_AUTO_TEST_CASE(reused_builder_starts_afresh) {
    fcgi::request big;
    big.script = "/srv/www/./a b.php";
    big.document_root = "/srv/www/";
    big.query = "q=1";
    big.headers = {{"Cookie", "a=1"}, {"X-A", std::string(3000, 'v')}, {"cookie", "b=2"}};
    big.params = {{"APP_ENV", "test"}, {"SCRIPT_NAME", "/" + std::string(2000, ' ')}};
    big.role = fcgi::protocol::role::filter;
    big.data = "12345";
    fcgi::request small;
    small.script = "/a/b.php";
    std::string why;
    BOOST_TEST_REQUIRE(!fcgi::validate(big, why), why);
    BOOST_TEST_REQUIRE(!fcgi::validate(small, why), why);
    fcgi::detail::cgi_params reused;
    for (const fcgi::request* req : {&small, &big, &small, &big}) {
        reused.build(*req);
        std::vector<std::pair<std::string, std::string>> got;
        for (const auto& nv : reused.params())
            got.emplace_back(nv.name, nv.value);
        BOOST_TEST((got == in_order(*req)));
    }
}

BOOST_AUTO_TEST_SUITE_END()
