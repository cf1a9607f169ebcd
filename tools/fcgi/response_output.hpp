// Where `fcgi request` puts a response as it arrives: the head (with --include) and the body go
// to stdout or --output FILE, chunk by chunk, so a large output never sits in memory.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "fcgi/body_sink.hpp"

namespace fcgi_cli {

/// What the sink saw, read after the request completed.
struct response_output_state {
    bool refused_status = false;  ///< --fail and a status >= 400: the body was discarded
    int status = 0;               ///< the status, once the head arrived
    bool write_failed = false;    ///< writing stdout or the file failed
    /// How long writes of the body waited for stdout or the file to take them: the connection
    /// stops reading while the output is behind, so a server's close is seen that much later.
    std::chrono::steady_clock::duration write_wait{};
};

/// A sink for `fcgi request`: `include` prints the CGI head first; `fail` discards the head and
/// body of a status >= 400 (the response is still read to its end, so its stderr arrives) and
/// sets `state->refused_status`. `path` empty means stdout; a file is created or truncated only
/// when a head it will hold arrives, so a failure before that leaves an existing file as it was.
fcgi::body_sink make_response_output(const std::string& path, bool include, bool fail,
                                     std::shared_ptr<response_output_state> state);

/// Whether `path` can take the response: an existing file we may write, or a new one in a
/// directory we may write. Checked before connecting, so a typo fails at once as a usage error;
/// `why` names the path and the reason.
bool output_path_usable(const std::string& path, std::string& why);

/// "Status: 404 Not Found" and the headers, CRLF-terminated like the CGI head they came from.
std::string head_text(const fcgi::response& r);

}  // namespace fcgi_cli
