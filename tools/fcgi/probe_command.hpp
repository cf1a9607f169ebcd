// `fcgi probe`: ask a server what it supports (GET_VALUES).
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace fcgi_cli {

/// `fcgi probe` flags.
struct probe_flags {
    std::string connect;  ///< --connect, or FCGI_CONNECT
    double timeout = 5;   ///< --timeout SECONDS
};

/// Declares the flags of `fcgi probe` on `cmd`, storing into `flags`.
void add_probe_flags(CLI::App& cmd, probe_flags& flags);

/// Prints each pair GET_VALUES reports as NAME=VALUE, then "multiplexing: yes|no|unknown";
/// returns the process exit code (exit_codes.hpp).
int run_probe(const probe_flags& flags);

}  // namespace fcgi_cli
