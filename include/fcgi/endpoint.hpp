// Where a FastCGI server listens: a unix socket path or a TCP host and port.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace fcgi {

/// A FastCGI server address.
///
/// Parsed from `unix:/path/to.sock` (or `unix:` and any path), a bare path starting with `/`,
/// `./` or `../` (unix socket), `tcp:host:port`, `host:port` or `[v6addr]:port`. Host names are
/// resolved when connecting; relative socket paths against the current directory. A socket path
/// with a control byte, or a space at either end, is refused as malformed (a line end copied
/// with it, not a name anyone gives a socket).
struct endpoint {
    /// Transport of the endpoint.
    enum class kind {
        unix_socket,  ///< a unix domain socket at `path`
        tcp,          ///< TCP to `host`:`port`
    };

    /// The longest unix socket path Linux accepts (sockaddr_un::sun_path less its NUL).
    static constexpr std::size_t max_unix_path = 107;

    kind type = kind::unix_socket;  ///< which of the fields below apply
    std::string path;               ///< unix socket path (kind::unix_socket)
    std::string host;               ///< host name or address without brackets (kind::tcp)
    std::uint16_t port = 0;         ///< TCP port (kind::tcp)

    /// A unix socket endpoint; a path starting with a NUL names a socket in Linux's abstract
    /// namespace (no file; parse() has no text for it).
    static endpoint unix_socket(std::string path);
    /// A TCP endpoint. An empty host is this machine's loopback addresses, both families (a
    /// resolver given no name), tried as a name's addresses are; parse() has no text for it.
    static endpoint tcp(std::string host, std::uint16_t port);

    /// Parses `text`; throws std::system_error(error::invalid_endpoint) quoting it when malformed.
    static endpoint parse(std::string_view text);

    /// Canonical text: "unix:/path" or "host:port" ("[::1]:9000" for IPv6 literals,
    /// "tcp:unix:9000" for a host that would read back as something else).
    std::string to_string() const;

    /// Field-wise equality (no resolving).
    friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// Parses `text` into `out`; error::invalid_endpoint when malformed (out is then unchanged).
std::error_code parse_endpoint(std::string_view text, endpoint& out);

/// error::invalid_endpoint, with why in `why`, when `e` cannot be connected to as it is: an
/// empty socket path or one longer than endpoint::max_unix_path, a control byte in it or a space
/// at either end (an abstract name, after its leading NUL, may hold any byte), a host with a
/// control byte, a space or a '/', port 0. parse() refuses the same (and an empty host); the
/// clients, connection::async_connect and async_get_values check an endpoint built with
/// unix_socket() or tcp() before connecting.
std::error_code validate(const endpoint& e, std::string& why);

/// What failing to connect to `where` with `ec` means: `ec.message()`, then in parentheses what
/// to check when the cause is a common one ("Connection refused (/run/php is a directory, not a
/// socket)", "No such file or directory (is php-fpm running, and does its listen =
/// /run/x.sock?)"). Looks at the socket path on the file system for unix endpoints, so call it
/// right after the failure.
std::string connect_error_text(const endpoint& where, std::error_code ec);

}  // namespace fcgi
