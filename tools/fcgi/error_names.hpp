// Stable snake_case names for the errors a request can end with, for machine-readable output.
#pragma once

#include <string_view>
#include <system_error>

namespace fcgi_cli {

/// A name for `ec` that scripts can match on and that never changes meaning:
/// fcgi::error and fcgi::server_error by their enumerator ("request_timeout", "overloaded"),
/// common socket errors by their errc ("connection_refused"), asio's operation_aborted as
/// "cancelled", anything else as "system_error" (OS errors) or "unknown_error".
std::string_view error_name(std::error_code ec);

/// The name of jobs rejected before anything was sent (bad JSON, missing script, wrong types).
inline constexpr std::string_view invalid_job_name = "invalid_job";

}  // namespace fcgi_cli
