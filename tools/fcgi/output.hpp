// What the tool writes: body bytes to stdout, its own errors as one "fcgi: " line on stderr.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "fcgi/endpoint.hpp"

namespace fcgi_cli {

/// Writes `bytes` to stdout exactly (binary-safe). False when the write failed.
bool write_stdout(std::string_view bytes);

/// Writes `bytes` to stderr exactly (the script's FCGI_STDERR, which php-fpm does not end with
/// a newline).
void write_stderr(std::string_view bytes);

/// Ends the line the script's stderr text left open (php-fpm sends none at the end): a prompt,
/// or the next run's lines in a log file, would otherwise run on after it.
void end_line();

/// Prints "fcgi: <message>" as one line on stderr, first ending a line the script's stderr
/// text left open; CR and LF inside become spaces, so a caller can always find exactly one
/// line per failure.
void print_error(std::string_view message);

/// "<ec message>" plus " (<diagnostics>)" when given: a failure in words.
std::string error_text(std::error_code ec, std::string_view diagnostics);

/// "<where>: <what>: <ec message>" plus " (<diagnostics>)" when given: names the endpoint
/// first, so every failure line says where it happened.
std::string describe_failure(std::string_view where, std::string_view what, std::error_code ec,
                             std::string_view diagnostics = {});

/// `diagnostics` with the library's size limits named by the flags that set them
/// ("connection_options::max_stderr_size" becomes "--max-stderr"; "max_stdout_size" becomes
/// "--max-output" when `has_max_output`; "max_requests_per_connection_lifetime" becomes
/// "--recycle-after"): a CLI user cannot act on a C++ option's name.
std::string in_flag_terms(std::string diagnostics, bool has_max_output);

/// How the user named a request's fields: by `fcgi request`'s and `bench`'s flags, or by the
/// keys of a `fcgi fanout` job.
enum class request_terms { flags, job_keys };

/// `diagnostics` with the library's request field names ("request::params", "a
/// request::headers entry") replaced by what set them (`--param`, `--header`; `"params"`,
/// `"headers"`).
std::string in_request_terms(std::string diagnostics, request_terms terms);

/// "cannot connect: " and why, in a CLI user's terms: a connect still pending at its limit is
/// named by `limit` ("--timeout", "5 s") and its likely causes, not by the library's
/// connect_timeout option.
std::string connect_failure_text(const fcgi::endpoint& where, std::error_code ec,
                                 std::string_view limit);

/// Makes sure descriptors 0, 1 and 2 are open, as /dev/null opened the wrong way round (stdin
/// for writing, stdout and stderr for reading): a descriptor the shell closed (`>&-`) stays
/// unusable, and a write to it fails (EBADF) instead of landing in the first socket or eventfd
/// the program opens, which would take its number.
void guard_standard_descriptors();

/// `v` with `decimals` digits after the point ("%.*f").
std::string fixed(double v, int decimals);

/// Whether `sig` is ignored (as SIGINT is in a shell's background job): Ctrl-C handling must
/// then leave it so, not make the job interruptible.
bool signal_ignored(int sig);

}  // namespace fcgi_cli
