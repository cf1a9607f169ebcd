// `fcgi request`: run one script and print its response.
#pragma once

#include "request_options.hpp"

namespace fcgi_cli {

/// Runs the request `flags` describe; returns the process exit code (exit_codes.hpp).
int run_request(const request_flags& flags);

}  // namespace fcgi_cli
