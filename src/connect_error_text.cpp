// Turns a failure to connect into what a user checks next: the socket path is a directory, no
// one listens on it, php-fpm's listen.mode keeps us out. The errno alone reads the same for all.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "fcgi/endpoint.hpp"
#include "last_error.hpp"

namespace fcgi {
namespace {

// std::errc values (generic) count too: a caller may pass one.
bool is_errno(std::error_code ec, int value) {
    return ec.value() == value &&
           (detail::is_system(ec) || ec.category() == std::generic_category());
}

std::string unix_hint(const std::string& path, std::error_code ec) {
    if (is_errno(ec, ENOENT))
        return "is php-fpm running, and does its listen = " + path + "?";
    if (is_errno(ec, EACCES))
        return "php-fpm's listen.owner, listen.group and listen.mode decide who may connect to " +
               path;
    // Linux refuses a unix stream connect at once when the listener's backlog is full; Asio
    // reports it as one of these.
    if (is_errno(ec, EAGAIN) || is_errno(ec, EWOULDBLOCK) || is_errno(ec, ENOBUFS))
        return "the listen backlog of " + path +
               " is full: every php-fpm worker is busy and listen.backlog connections wait "
               "already";
    if (!is_errno(ec, ECONNREFUSED))
        return {};
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return {};
    if (S_ISDIR(st.st_mode))
        return path + " is a directory, not a socket";
    if (!S_ISSOCK(st.st_mode))
        return path + " is not a socket";
    // php-fpm removes its socket when it stops cleanly; a killed one leaves the file behind.
    return "nothing listens on " + path + ": php-fpm stopped, or was killed and left the file";
}

}  // namespace

std::string connect_error_text(const endpoint& where, std::error_code ec) {
    std::string text = ec.message();
    std::string hint;
    if (where.type == endpoint::kind::unix_socket)
        hint = unix_hint(where.path, ec);
    else if (is_errno(ec, ECONNREFUSED))
        hint = "nothing listens on port " + std::to_string(where.port) + " of " +
               (where.host.empty() ? "this machine's loopback addresses" : where.host);
    if (!hint.empty())
        text += " (" + hint + ")";
    return text;
}

}  // namespace fcgi
