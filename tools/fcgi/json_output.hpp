// The result lines of `fcgi fanout`: one JSON object per job, one line each.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fcgi/fanout.hpp"

namespace fcgi_cli {

/// JSON keeping the order of object members: headers, params and result fields as written.
using ordered_json = nlohmann::ordered_json;

/// The result line (no newline) for job `id`:
///   {"id":…, "status":200|null, "headers":{"Name":["v1","v2"]}, "body":"…"|"body_base64":"…",
///    "stderr":"…"|"stderr_base64":"…", "duration_ms":1.234, "error":null|{"code","message"}}
/// Body and stderr are base64 under the *_base64 key when they are not valid UTF-8, so every
/// byte survives; other text (header values) has invalid UTF-8 replaced by U+FFFD. On failure
/// status is null, headers empty, and error.message is ec.message() plus the diagnostics.
std::string result_line(const ordered_json& id, const fcgi::fanout_result& result);

/// The result line for a job rejected before anything was sent: error.code "invalid_job".
std::string invalid_job_line(const ordered_json& id, std::string_view message);

/// Whether `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points past
/// U+10FFFF), i.e. whether a JSON string can carry it unchanged.
bool is_valid_utf8(std::string_view bytes) noexcept;

}  // namespace fcgi_cli
