// `fcgi bench`: a closed- or open-loop load generator for one FastCGI script.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "request_options.hpp"

namespace CLI {
class App;
}

namespace fcgi_cli {

/// The longest --duration and --warmup, in seconds; also a run of --requests' time limit.
inline constexpr double max_bench_seconds = 3600;

/// `fcgi bench` flags. The request shape reuses `fcgi request`'s flags (not --include/--fail).
struct bench_flags {
    request_flags request;           ///< --connect, --method, --data, --header, --param, --root,
                                     ///< --timeout, SCRIPT[?QUERY]
    std::size_t concurrency = 4;     ///< --concurrency: requests in flight (closed loop)
    std::uint64_t requests = 0;      ///< --requests: stop after this many (0: use --duration)
    double duration = 0;             ///< --duration SECONDS (0: 10 s unless --requests)
    std::size_t connections = 0;     ///< --connections (0: = concurrency, or 1 when multiplexing)
    std::string multiplex = "auto";  ///< --multiplex auto|on|off
    double warmup = 0;               ///< --warmup SECONDS, not counted
    double rate = 0;                 ///< --rate REQ/S: open loop when > 0
    bool json = false;               ///< --json
    std::string fpm_status;          ///< --fpm-status PATH
    /// --max-output BYTES: connection_options::max_stdout_size (--max-stderr is in `request`).
    std::size_t max_output = fcgi::connection_options{}.max_stdout_size;
    bool no_retry = false;  ///< --no-retry: request::idempotent = false
    /// --recycle-after N: client_options::max_requests_per_connection_lifetime (0: never).
    std::uint64_t recycle_after = 0;
};

/// Declares the flags of `fcgi bench` on `cmd`, storing into `flags`.
void add_bench_flags(CLI::App& cmd, bench_flags& flags);

/// Runs the benchmark and prints the report (human or JSON) on stdout. Returns 0 only when
/// every counted request got a response (any status, unless --fail); 6 (request_failure) when
/// any failed (a timeout included) or was never answered, when none was counted, or when the
/// report could not be written; 22 with --fail when any status was 400 or more; 2 on a usage
/// error (nothing sent); 3 when no connection could be made; 5 when the server broke the
/// protocol before any response; 128 + the signal when SIGINT or SIGTERM ended the run
/// early (the report still printed). Never 4.
int run_bench(const bench_flags& flags);

}  // namespace fcgi_cli
