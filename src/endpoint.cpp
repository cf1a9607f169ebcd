#include "fcgi/endpoint.hpp"

#include <sys/un.h>

#include <algorithm>
#include <charconv>

#include "fcgi/detail/ascii.hpp"
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
    out = endpoint::tcp(std::string(host), p);
    return true;
}

// Why `e` cannot be connected to as it is, or nullptr.
const char* problem(const endpoint& e) {
    if (e.type == endpoint::kind::unix_socket) {
        if (e.path.empty())
            return "the unix socket path is empty";
        // Asio's endpoint would throw; the kernel would refuse it anyway.
        if (e.path.size() > endpoint::max_unix_path)
            return "the unix socket path is longer than 107 bytes, the most Linux accepts";
        // A leading NUL is Linux's abstract namespace (unix_socket() only): any bytes may follow.
        if (e.path.front() == '\0')
            return nullptr;
        // A control byte or a space at either end is a line end or a blank copied with the
        // text (a CRLF .env file), never meant: it would fail later as "no such file", naming
        // a path that looks right.
        if (std::any_of(e.path.begin(), e.path.end(), detail::is_control))
            return "the unix socket path has a control byte (a line end or a NUL copied with it?)";
        if (e.path.front() == ' ' || e.path.back() == ' ')
            return "the unix socket path starts or ends with a space";
        return nullptr;
    }
    if (std::any_of(e.host.begin(), e.host.end(),
                    [](char c) { return detail::is_control(c) || c == ' ' || c == '/'; }))
        return "the host has a space, a control byte or a '/'";
    if (e.port == 0)
        return "the TCP port is 0";
    return nullptr;
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
        e = endpoint::unix_socket(std::string(bare_path ? text : text.substr(5)));
        // An abstract name (a leading NUL) is unix_socket()'s alone: in text, a NUL is a
        // control byte like any other.
        if (!e.path.empty() && e.path.front() == '\0')
            return error::invalid_endpoint;
    } else {
        if (text.starts_with("tcp:"))
            text.remove_prefix(4);
        if (!parse_host_port(text, e))
            return error::invalid_endpoint;
    }
    // What cannot be connected to at all is refused now, not at the first request.
    if (problem(e))
        return error::invalid_endpoint;
    out = std::move(e);
    return {};
}

std::error_code validate(const endpoint& e, std::string& why) {
    const char* p = problem(e);
    if (!p)
        return {};
    // Escaped: the endpoint may hold the very bytes that make it invalid (a NUL, a line end).
    // Cut: every request the client fails carries this text, and a path may be any length.
    constexpr std::size_t shown = 200;
    const std::string text = e.to_string();
    why = std::string(p) + " (";
    detail::append_escaped(why, std::string_view(text).substr(0, shown), '\0');
    why += text.size() > shown ? "...)" : ")";
    return error::invalid_endpoint;
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
