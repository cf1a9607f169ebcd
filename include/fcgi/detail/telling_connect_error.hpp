// Which failure a connect to several addresses reports when every one of them failed: the one
// that says most about the server, not whichever happened to fail last.
#pragma once

#include <system_error>

namespace fcgi::detail {

/// The more telling of two failed connects to addresses of one host: a refusal (the host
/// answers; nothing listens on the port) over a timeout, over any other error, over an address
/// this machine cannot use at all (no route to it, its family not supported, an address it
/// cannot bind: ::1 with IPv6 switched off, say), over no error. On a tie, `later`.
std::error_code more_telling_connect_error(std::error_code earlier, std::error_code later);

}  // namespace fcgi::detail
