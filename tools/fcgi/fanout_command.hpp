// `fcgi fanout`: run many jobs (JSON lines) through one pooled client, print results as JSON lines.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "fcgi/connection_options.hpp"

namespace CLI {
class App;
}

namespace fcgi_cli {

/// `fcgi fanout` flags.
struct fanout_flags {
    std::vector<std::string> connect;  ///< --connect, repeatable, or FCGI_CONNECT
    std::size_t concurrency = 16;      ///< --concurrency: requests handed to the client at once
    std::size_t connections = 4;       ///< --connections: max_connections_per_endpoint
    std::string multiplex = "off";     ///< --multiplex auto|on|off
    double timeout = 0;                ///< --timeout SECONDS per request; 0 = none
    std::string root;                  ///< --root DIR for relative scripts
    std::string input;                 ///< FILE; empty or "-" = stdin
    bool wait_when_down = false;       ///< --wait-when-down: client_options::wait_when_down
    /// --max-output / --max-stderr BYTES: the response limits of connection_options.
    std::size_t max_output = fcgi::connection_options{}.max_stdout_size;
    std::size_t max_stderr = fcgi::connection_options{}.max_stderr_size;
    /// --recycle-after N: client_options::max_requests_per_connection_lifetime (0: never).
    std::uint64_t recycle_after = 0;
};

/// Declares the flags of `fcgi fanout` on `cmd`, storing into `flags`.
void add_fanout_flags(CLI::App& cmd, fanout_flags& flags);

/// Reads every job, runs them, writes one result line per job to stdout as each completes and
/// a summary to stderr. Returns 0 when every job got a response (any status), 6
/// (request_failure) when any failed or was invalid, 2 on a usage error (nothing sent).
int run_fanout(const fanout_flags& flags);

}  // namespace fcgi_cli
