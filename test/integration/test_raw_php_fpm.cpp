// Proof that the codec alone speaks real php-fpm: a hand-encoded request over a plain blocking
// socket, its reply decoded record by record.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "fcgi/error.hpp"
#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/request_encoder.hpp"
#include "support/php_fpm.hpp"

namespace proto = fcgi::protocol;

namespace {

int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    BOOST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    timeval tv{10, 0};  // a broken exchange fails the test instead of hanging it
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void write_all(int fd, std::span<const std::string_view> buffers) {
    for (auto b : buffers) {
        while (!b.empty()) {
            // MSG_NOSIGNAL: php-fpm closing the socket fails the test, not the whole run.
            ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
            BOOST_REQUIRE(n > 0);
            b.remove_prefix(static_cast<std::size_t>(n));
        }
    }
}

struct raw_reply {
    std::string stdout_bytes;
    std::string stderr_bytes;
    proto::end_request_body end;
    bool ended = false;
    bool clean_boundary = false;  // END_REQUEST ended exactly at the end of the bytes read
    std::vector<std::uint16_t> ids;
};

raw_reply read_reply(int fd) {
    raw_reply r;
    proto::record_decoder dec;
    char buf[4096];
    while (!r.ended) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        BOOST_REQUIRE_MESSAGE(n > 0, "php-fpm closed or timed out before END_REQUEST");
        std::string_view in(buf, static_cast<std::size_t>(n));
        while (!in.empty()) {
            auto res = dec.feed(in);
            BOOST_REQUIRE(!res.ec);
            in.remove_prefix(res.consumed);
            if (!res.has_piece)
                continue;
            const auto& p = res.piece;
            r.ids.push_back(p.header.request_id);
            if (p.header.type == proto::record_type::stdout_)
                r.stdout_bytes.append(p.content);
            else if (p.header.type == proto::record_type::stderr_)
                r.stderr_bytes.append(p.content);
            else if (p.header.type == proto::record_type::end_request) {
                BOOST_REQUIRE(!proto::parse_end_request(p.content, r.end));
                r.ended = true;
                r.clean_boundary = in.empty() && dec.at_record_boundary();
            }
        }
    }
    return r;
}

// The pairs view `script`, which must outlive them: temporaries are refused.
std::vector<proto::name_value> cgi_params(std::string&&, std::string_view, std::string_view,
                                          std::string_view) = delete;
std::vector<proto::name_value> cgi_params(const std::string& script, std::string_view method,
                                          std::string_view query, std::string_view length) {
    return {{"GATEWAY_INTERFACE", "CGI/1.1"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
            {"REQUEST_METHOD", method},       {"SCRIPT_FILENAME", script},
            {"SCRIPT_NAME", "/test.php"},     {"QUERY_STRING", query},
            {"CONTENT_LENGTH", length},       {"CONTENT_TYPE", "application/octet-stream"}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(raw_php_fpm)

BOOST_AUTO_TEST_CASE(hello_over_blocking_socket) {
    fcgi::test::php_fpm fpm({.children = 1, .tcp = false});
    int fd = connect_unix(fpm.unix_socket());
    std::string script = fcgi::test::php_fpm::script("hello.php");
    auto params = cgi_params(script, "GET", "", "0");
    proto::request_encoder enc;
    BOOST_REQUIRE(
        !enc.encode_request(1, proto::role::responder, proto::begin_flags::keep_conn, params, {}));
    write_all(fd, enc.buffers());
    raw_reply r = read_reply(fd);

    BOOST_TEST(r.end.app_status == 0u);
    BOOST_TEST(static_cast<int>(r.end.status) ==
               static_cast<int>(proto::protocol_status::request_complete));
    BOOST_TEST(r.clean_boundary);
    for (auto id : r.ids)
        BOOST_TEST(id == 1);  // php-fpm echoes the BEGIN_REQUEST id

    proto::cgi_head_parser head;
    auto hr = head.feed(r.stdout_bytes);
    BOOST_REQUIRE(hr.done);
    BOOST_TEST(head.status() == 200);
    BOOST_TEST(r.stdout_bytes.substr(hr.consumed) == "Hello, world!\n");
    BOOST_TEST(r.stderr_bytes.empty());

    // Keep-alive: a second request on the same socket, with a POST body and another id.
    std::string body(100000, 'x');
    std::string md5_script = fcgi::test::php_fpm::script("md5.php");
    std::string length = std::to_string(body.size());
    params = cgi_params(md5_script, "POST", "", length);
    enc.clear();
    BOOST_REQUIRE(!enc.encode_request(7, proto::role::responder, proto::begin_flags::keep_conn,
                                      params, body));
    write_all(fd, enc.buffers());
    r = read_reply(fd);
    head.reset();
    hr = head.feed(r.stdout_bytes);
    BOOST_REQUIRE(hr.done);
    // md5 of 100000 'x' characters, computed with php -r 'echo md5(str_repeat("x",100000));'
    BOOST_TEST(r.stdout_bytes.substr(hr.consumed) == "100000 d5816f35916d1d9482fb0f1ec201101d\n");
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(stderr_and_404_over_blocking_socket) {
    fcgi::test::php_fpm fpm({.children = 1, .tcp = false});
    int fd = connect_unix(fpm.unix_socket());
    proto::request_encoder enc;
    std::string script = fcgi::test::php_fpm::script("stderr.php");
    auto params = cgi_params(script, "GET", "", "0");
    BOOST_REQUIRE(
        !enc.encode_request(1, proto::role::responder, proto::begin_flags::keep_conn, params, {}));
    write_all(fd, enc.buffers());
    raw_reply r = read_reply(fd);
    BOOST_TEST(r.stderr_bytes.find("first message") != std::string::npos);
    BOOST_TEST(r.stderr_bytes.find("second message") != std::string::npos);
    BOOST_TEST(r.stdout_bytes.find("first message") == std::string::npos);

    enc.clear();
    std::string missing = "/nonexistent/missing.php";
    params = cgi_params(missing, "GET", "", "0");
    BOOST_REQUIRE(
        !enc.encode_request(1, proto::role::responder, proto::begin_flags::keep_conn, params, {}));
    write_all(fd, enc.buffers());
    r = read_reply(fd);
    proto::cgi_head_parser head;
    BOOST_REQUIRE(head.feed(r.stdout_bytes).done);
    BOOST_TEST(head.status() == 404);
    BOOST_TEST(r.stderr_bytes.find("Primary script unknown") != std::string::npos);
    ::close(fd);
}

// The fact behind validate() refusing a script path with a ".." segment: php-fpm answers such a
// SCRIPT_FILENAME 404 even when it names a script that is there.
BOOST_AUTO_TEST_CASE(dot_dot_in_script_filename_is_404) {
    fcgi::test::php_fpm fpm({.children = 1, .tcp = false});
    int fd = connect_unix(fpm.unix_socket());
    const std::filesystem::path hello = fcgi::test::php_fpm::script("hello.php");
    const std::filesystem::path dir = hello.parent_path();
    const std::string plain = hello.string();
    const std::string climbing =
        (dir / ".." / dir.filename() / hello.filename()).string();  // the same file
    BOOST_REQUIRE(std::filesystem::equivalent(plain, climbing));
    proto::request_encoder enc;
    std::vector<int> statuses;
    for (const std::string* script : {&plain, &climbing}) {
        auto params = cgi_params(*script, "GET", "", "0");
        enc.clear();
        BOOST_REQUIRE(!enc.encode_request(1, proto::role::responder, proto::begin_flags::keep_conn,
                                          params, {}));
        write_all(fd, enc.buffers());
        raw_reply r = read_reply(fd);
        proto::cgi_head_parser head;
        BOOST_REQUIRE(head.feed(r.stdout_bytes).done);
        statuses.push_back(head.status());
        if (script == &climbing)
            BOOST_TEST(r.stderr_bytes.find("Primary script unknown") != std::string::npos);
    }
    BOOST_TEST(statuses == (std::vector<int>{200, 404}), boost::test_tools::per_element());
    ::close(fd);
}

BOOST_AUTO_TEST_CASE(get_values_reports_no_multiplexing) {
    fcgi::test::php_fpm fpm({.children = 1, .tcp = true});
    int fd = connect_unix(fpm.unix_socket());
    std::string_view names[] = {proto::max_conns_name, proto::max_reqs_name,
                                proto::mpxs_conns_name};
    std::string rec = proto::encode_get_values(names);
    std::string_view bufs[] = {rec};
    write_all(fd, bufs);
    proto::record_decoder dec;
    proto::get_values_result result;
    char buf[4096];
    bool got = false;
    while (!got) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        BOOST_REQUIRE(n > 0);
        std::string_view in(buf, static_cast<std::size_t>(n));
        while (!in.empty()) {
            auto res = dec.feed(in);
            BOOST_REQUIRE(!res.ec);
            in.remove_prefix(res.consumed);
            if (res.has_piece && res.piece.header.type == proto::record_type::get_values_result) {
                BOOST_REQUIRE(!proto::parse_get_values_result(res.piece.content, result));
                got = true;
            }
        }
    }
    BOOST_REQUIRE(result.mpxs_conns.has_value());
    BOOST_TEST(*result.mpxs_conns == false);
    BOOST_TEST(!result.max_conns.has_value());  // compiled out of php-fpm
    BOOST_TEST(!result.max_reqs.has_value());
    // PROTOCOL.md item 1 said php-fpm closes the connection after GET_VALUES; 8.2 does not: the
    // same connection serves a request afterwards (and pins its worker meanwhile).
    std::string script = fcgi::test::php_fpm::script("hello.php");
    auto params = cgi_params(script, "GET", "", "0");
    proto::request_encoder enc;
    BOOST_REQUIRE(
        !enc.encode_request(1, proto::role::responder, proto::begin_flags::keep_conn, params, {}));
    write_all(fd, enc.buffers());
    raw_reply r = read_reply(fd);
    BOOST_TEST(r.stdout_bytes.find("Hello, world!") != std::string::npos);
    ::close(fd);
}

BOOST_AUTO_TEST_SUITE_END()
