// connect_error_text(): the hint follows what is really at the socket path.
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/error.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "fcgi/endpoint.hpp"
#include "support/temp_file.hpp"

namespace fs = std::filesystem;
using fcgi::endpoint;
using fcgi::test::temp_dir;

namespace {

std::error_code sys(int e) {
    return {e, std::system_category()};
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(connect_error_text)

BOOST_AUTO_TEST_CASE(refused_unix_path_names_what_is_there) {
    temp_dir dir;
    const auto refused = sys(ECONNREFUSED);
    const std::string message = refused.message();

    auto d = fcgi::connect_error_text(endpoint::unix_socket(dir.path.string()), refused);
    BOOST_TEST(d.starts_with(message), d);
    BOOST_TEST(has(d, dir.path.string() + " is a directory, not a socket"), d);

    const auto file = (dir.path / "plain").string();
    std::ofstream(file) << "x";
    auto f = fcgi::connect_error_text(endpoint::unix_socket(file), refused);
    BOOST_TEST(has(f, file + " is not a socket"), f);

    // A socket file nobody listens on: what a killed php-fpm leaves behind.
    const auto sock = (dir.path / "stale.sock").string();
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    auto s = fcgi::connect_error_text(endpoint::unix_socket(sock), refused);
    BOOST_TEST(has(s, "nothing listens on " + sock), s);

    // Gone between the failure and the look: the message alone, no guess.
    auto gone = fcgi::connect_error_text(endpoint::unix_socket(file + ".gone"), refused);
    BOOST_TEST(gone == message);
}

BOOST_AUTO_TEST_CASE(missing_socket_and_permissions) {
    auto missing = fcgi::connect_error_text(endpoint::unix_socket("/run/x.sock"), sys(ENOENT));
    BOOST_TEST(missing.starts_with(sys(ENOENT).message()), missing);
    BOOST_TEST(has(missing, "is php-fpm running, and does its listen = /run/x.sock?"), missing);

    auto denied = fcgi::connect_error_text(endpoint::unix_socket("/run/x.sock"), sys(EACCES));
    BOOST_TEST(has(denied, "listen.mode"), denied);
}

// A full listen backlog: Linux refuses a unix connect at once, and ENOBUFS alone read like a
// memory problem.
BOOST_AUTO_TEST_CASE(full_listen_backlog) {
    for (int e : {EAGAIN, ENOBUFS}) {
        auto full = fcgi::connect_error_text(endpoint::unix_socket("/run/x.sock"), sys(e));
        BOOST_TEST(full.starts_with(sys(e).message()), full);
        BOOST_TEST(has(full, "the listen backlog of /run/x.sock is full"), full);
        // Not on TCP, where the kernel drops the SYN instead.
        auto tcp = fcgi::connect_error_text(endpoint::tcp("127.0.0.1", 9000), sys(e));
        BOOST_TEST(tcp == sys(e).message());
    }
}

BOOST_AUTO_TEST_CASE(tcp_and_other_errors) {
    auto tcp = fcgi::connect_error_text(endpoint::tcp("127.0.0.1", 9000), sys(ECONNREFUSED));
    BOOST_TEST(has(tcp, "nothing listens on port 9000 of 127.0.0.1"), tcp);
    // The same errno from the generic category (std::errc) reads the same.
    auto generic = fcgi::connect_error_text(endpoint::tcp("::1", 9000),
                                            std::make_error_code(std::errc::connection_refused));
    BOOST_TEST(has(generic, "nothing listens on port 9000 of ::1"), generic);
    // An empty host is the loopback addresses: said so, not "of " and nothing.
    auto unnamed = fcgi::connect_error_text(endpoint::tcp("", 9000), sys(ECONNREFUSED));
    BOOST_TEST(has(unnamed, "nothing listens on port 9000 of this machine's loopback addresses"),
               unnamed);
    // No hint for what has no common cause to name.
    // And from Asio's own system category, as a socket reports it.
    auto from_asio = fcgi::connect_error_text(
        endpoint::tcp("h", 1), std::error_code(ECONNREFUSED, asio::error::get_system_category()));
    BOOST_TEST(has(from_asio, "nothing listens on port 1 of h"), from_asio);
    auto other = fcgi::connect_error_text(endpoint::tcp("h", 1), sys(EHOSTUNREACH));
    BOOST_TEST(other == sys(EHOSTUNREACH).message());
    auto none = fcgi::connect_error_text(endpoint::unix_socket("/x"), sys(ETIMEDOUT));
    BOOST_TEST(none == sys(ETIMEDOUT).message());
}

BOOST_AUTO_TEST_SUITE_END()
