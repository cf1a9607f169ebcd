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
};

/// Declares the flags of `fcgi bench` on `cmd`, storing into `flags`.
void add_bench_flags(CLI::App& cmd, bench_flags& flags);

/// Runs the benchmark and prints the report (human or JSON) on stdout. Returns 0 only when
/// every counted request got a response (any status); 6 (request_failure) when any failed
/// (a timeout or protocol error included) or was never answered, when none was counted, or
/// when the report could not be written; 2 on a usage error (nothing sent); 3 when no
/// connection could be made. Never 4 or 5.
int run_bench(const bench_flags& flags);

}  // namespace fcgi_cli
