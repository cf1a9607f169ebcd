// Exit codes of the fcgi tool: one place, shown in `fcgi --help` too.
#pragma once

#include <string_view>
#include <system_error>

namespace fcgi_cli {

/// What the process returns. Scripts branch on these, so they never change meaning.
enum exit_code : int {
    ok = 0,                ///< a response arrived (whatever its status, unless --fail)
    usage_error = 2,       ///< bad flags or input; nothing was sent
    connect_failure = 3,   ///< refused, no such socket, host not resolved
    timed_out = 4,         ///< connecting or the response took longer than allowed
    protocol_failure = 5,  ///< the server broke the FastCGI protocol
    request_failure = 6,   ///< any other failure: connection lost, response too large, ...
    http_failure = 22,     ///< --fail and the status was 400 or more (as curl -f)
};

/// The exit code list for the help epilog.
inline constexpr std::string_view exit_codes_help =
    "Exit codes:\n"
    "  0   a response arrived (any status unless --fail)\n"
    "  2   usage error: bad flags or input, nothing was sent\n"
    "  3   could not connect (refused, no such socket, unknown host)\n"
    "  4   timed out (connecting, or waiting for the response)\n"
    "  5   FastCGI protocol error from the server\n"
    "  6   other failure (connection lost, response too large, ...)\n"
    "  22  --fail was given and the status was 400 or more\n";

/// The exit code for a failure `ec` once connected (timeouts, protocol errors, the rest).
exit_code exit_code_after_connect(std::error_code ec);

/// The exit code for a failure `ec` of connecting (timeouts are 4, everything else 3).
exit_code exit_code_of_connect(std::error_code ec);

}  // namespace fcgi_cli
