#include "fcgi/endpoint.hpp"

#include <sys/un.h>

#include <algorithm>
#include <charconv>

#include "fcgi/error.hpp"

static_assert(fcgi::endpoint::max_unix_path == sizeof(sockaddr_un::sun_path) - 1);

namespace fcgi {
namespace {

bool parse_port(std::string_view s, std::uint16_t& port) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535)
        return false;
    port = static_cast<std::uint16_t>(v);
    return true;
}

bool parse_host_port(std::string_view s, endpoint& out) {
    std::string_view host;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos)
            return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return false;  // an IPv6 literal needs brackets
    }
    std::uint16_t p = 0;
    if (host.empty() || !parse_port(port, p))
        return false;
    for (char c : host)
        if (static_cast<unsigned char>(c) <= ' ' || c == '/')
            return false;
    out = endpoint::tcp(std::string(host), p);
    return true;
}

}  // namespace

endpoint endpoint::unix_socket(std::string path) {
    endpoint e;
    e.type = kind::unix_socket;
    e.path = std::move(path);
    return e;
}

endpoint endpoint::tcp(std::string host, std::uint16_t port) {
    endpoint e;
    e.type = kind::tcp;
    e.host = std::move(host);
    e.port = port;
    return e;
}

std::error_code parse_endpoint(std::string_view text, endpoint& out) {
    endpoint e;
    // "./" and "../" too: a socket in or near the current directory, never a host:port.
    const bool bare_path =
        text.starts_with("/") || text.starts_with("./") || text.starts_with("../");
    if (bare_path || text.starts_with("unix:")) {
        std::string_view path = bare_path ? text : text.substr(5);
        // A longer path cannot be connected to at all: say so now, not at the first request.
        if (path.empty() || path.size() > endpoint::max_unix_path)
            return error::invalid_endpoint;
        // A control byte or a space at either end is a line end or a blank copied with the
        // text (a CRLF .env file), never meant: it would fail later as "no such file", naming
        // a path that looks right.
        auto control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
        if (std::any_of(path.begin(), path.end(), control) || path.front() == ' ' ||
            path.back() == ' ')
            return error::invalid_endpoint;
        out = endpoint::unix_socket(std::string(path));
        return {};
    }
    if (text.starts_with("tcp:"))
        text.remove_prefix(4);
    if (!parse_host_port(text, e))
        return error::invalid_endpoint;
    out = std::move(e);
    return {};
}

endpoint endpoint::parse(std::string_view text) {
    endpoint e;
    if (auto ec = parse_endpoint(text, e))
        throw std::system_error(ec, "'" + std::string(text) + "'");
    return e;
}

std::string endpoint::to_string() const {
    if (type == kind::unix_socket)
        return "unix:" + path;
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    // A host named like a prefix would read back as one ("unix:9000" is a socket path).
    const bool ambiguous = host == "unix" || host == "tcp";
    return (ambiguous ? "tcp:" : "") + host + ":" + std::to_string(port);
}

}  // namespace fcgi
