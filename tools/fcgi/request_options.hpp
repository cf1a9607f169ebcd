// The flags of `fcgi request` and how they become an fcgi::request.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fcgi/connection_options.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/request.hpp"
#include "output.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace fcgi_cli {

/// `fcgi request` flags as given on the command line.
struct request_flags {
    std::string connect;               ///< --connect, or FCGI_CONNECT
    std::string method;                ///< --method
    std::optional<std::string> data;   ///< --data DATA|@FILE|@-
    std::vector<std::string> headers;  ///< --header 'Name: value', repeatable
    std::vector<std::string> params;   ///< --param NAME=VALUE, repeatable
    std::string root;                  ///< --root DIR
    bool include = false;              ///< --include
    double timeout = 0;                ///< --timeout SECONDS; 0 = none
    bool fail = false;                 ///< --fail
    std::string target;                ///< SCRIPT[?QUERY]
    std::string output;                ///< --output FILE (fcgi request only); empty = stdout
    /// Stream a regular --data @FILE as the request is sent instead of reading it into memory
    /// (fcgi request; bench and fanout send a body many times and keep it in memory).
    bool stream_data_file = false;
    /// --max-stderr BYTES (fcgi request): connection_options::max_stderr_size.
    std::size_t max_stderr = fcgi::connection_options{}.max_stderr_size;
};

/// The largest SECONDS any flag or job takes (about 31 years): far enough for "no limit", near
/// enough that a deadline computed from it cannot overflow a clock.
inline constexpr double max_timeout_seconds = 1e9;

/// Makes `option` refuse what is not a finite number in [lo, hi] (or equal to `lo` when
/// `above_lo`) in one short sentence naming `unit` ("seconds"); CLI11's own range check
/// accepts NaN and prints the whole range of a double.
void check_number(CLI::Option& option, double lo, double hi, std::string unit,
                  bool above_lo = false);

/// Makes `option` refuse what is not a whole number in [lo, hi] in one short sentence: CLI11's
/// own range check says "Value 1.5 not in range 1 to 100000" of a number that is in range but
/// not whole, and the same of a word.
void check_count(CLI::Option& option, std::uint64_t lo, std::uint64_t hi);

/// The query as a browser sends a URL's: the #fragment stays behind, and spaces and control
/// bytes are percent-encoded, so REQUEST_URI is a valid URI and PHP decodes them back in $_GET.
std::string query_as_sent(std::string_view raw);

/// A timeout flag's seconds as milliseconds, rounded up and at least 1: a timeout must never
/// fire early, and a small positive one rounded down to 0 would mean "none".
std::chrono::milliseconds seconds_to_ms(double seconds);

/// Makes `option` a size in bytes with units k, M, G (1024s), refusing a negative one.
void size_flag(CLI::Option& option);

/// Declares --max-output and --max-stderr (sizes with units k, M, G) on `cmd`, for fanout and
/// bench; `unit` names what one limit applies to ("job", "response").
void add_response_limit_flags(CLI::App& cmd, std::size_t& max_output, std::size_t& max_stderr,
                              const std::string& unit);

/// Declares --recycle-after N on `cmd`, for fanout and bench:
/// client_options::max_requests_per_connection_lifetime.
void add_recycle_flag(CLI::App& cmd, std::uint64_t& recycle_after);

/// The help of -c/--connect, every command's: the address forms endpoint::parse takes.
inline constexpr const char* connect_help =
    "Server address: unix:/path.sock, /path.sock, ./path.sock, tcp:host:port, host:port, "
    "[v6]:port (default: $FCGI_CONNECT)";
/// The help of -r/--root, for every command that builds requests as `fcgi request` does.
inline constexpr const char* root_help =
    "DOCUMENT_ROOT; a relative SCRIPT is resolved against it, and SCRIPT must be below it "
    "(default: the current directory for a relative SCRIPT below it, otherwise the script's own "
    "directory)";

/// Prints why there is no server address: none given, or an empty --connect overriding
/// FCGI_CONNECT.
void print_missing_connect();

/// The endpoint a --connect value (or FCGI_CONNECT, which fills it) names. On a usage error
/// prints why (an empty one as print_missing_connect(), a bad address) and returns false.
bool parse_connect_flag(const std::string& connect, fcgi::endpoint& ep);

/// Declares the flags of `fcgi request` on `cmd`, storing into `flags`.
void add_request_flags(CLI::App& cmd, request_flags& flags);

/// Builds the request from `flags`: splits off the query, resolves a relative script against
/// --root or the current directory, reads --data, parses headers and params, and runs
/// fcgi::validate, and checks that every param fits in a record. On a usage error returns false
/// and sets `why`, naming request fields in `terms`; nothing has been sent.
bool build_request(const request_flags& flags, fcgi::request& out, std::string& why,
                   request_terms terms = request_terms::flags);

}  // namespace fcgi_cli
