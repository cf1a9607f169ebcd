// The input of `fcgi fanout`: one JSON job per line, turned into fcgi::request values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "fcgi/request.hpp"
#include "json_output.hpp"

namespace fcgi_cli {

/// One non-empty input line: a request to send, or the reason it cannot be sent.
struct fanout_job {
    std::size_t line = 0;  ///< 1-based line number in the input
    ordered_json id;       ///< the job's "id", echoed back; null when absent or unreadable
    fcgi::request req;     ///< meaningful only when `error` is empty
    std::string error;     ///< why the job is invalid ("line 7: ..."); empty when valid
};

/// Parses one line (not blank). Fields:
///   "id"       any JSON value, echoed back
///   "script"   required string; SCRIPT[?QUERY] resolved against `root` or the current
///              directory exactly as `fcgi request` does
///   "method"   string; default GET, or POST with a body
///   "query"    string, QUERY_STRING (not together with a '?' in "script")
///   "params"   object of strings, raw FastCGI params in order
///   "headers"  object of strings, sent as HTTP_*
///   "body"     string, or "body_base64" (not both)
///   "timeout"  seconds (number > 0); absent or 0 means --timeout
/// Any other field, a wrong type or a request fcgi::validate rejects makes the job invalid,
/// so a typo ("header") is reported rather than silently ignored.
fanout_job parse_job(std::string_view text, std::size_t line, const std::string& root);

/// Splits `input` at LF (a CR before it is dropped), skips blank lines, parses the rest.
std::vector<fanout_job> parse_jobs(std::string_view input, const std::string& root);

/// A warning naming ids given to more than one job ("id 7 on line 12 repeats line 3"), or
/// empty. Results come back in completion order carrying only the id, so repeated ones cannot
/// be told apart. Jobs without an id are not counted.
std::string repeated_ids(const std::vector<fanout_job>& jobs);

}  // namespace fcgi_cli
