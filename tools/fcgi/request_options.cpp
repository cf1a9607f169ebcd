#include "request_options.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>

#include "fcgi/error.hpp"
#include "fcgi/prepared_request.hpp"
#include "output.hpp"
#include "read_body.hpp"

namespace fcgi_cli {
namespace {

namespace fs = std::filesystem;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// 0.001 as "0.001", 1e9 as "1000000000".
std::string format_number(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.15g", s);
    return buf;
}

// Whether every param of `req` fits in a PARAMS record, found as a send would find it (after
// connecting, and as "request failed", exit 6): its params derived and encoded from a copy
// without the body, whose Content-Length checks validate() has done and whose own param is a
// few digits.
bool params_fit(const fcgi::request& req, std::string& why, request_terms terms) {
    fcgi::request shape;
    shape.script = req.script;
    shape.method = req.method;
    shape.query = req.query;
    shape.document_root = req.document_root;
    auto content_length = [](std::string_view name) {
        constexpr std::string_view cl = "content-length";
        return name.size() == cl.size() &&
               std::equal(name.begin(), name.end(), cl.begin(), [](char a, char b) {
                   return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
               });
    };
    for (const auto& h : req.headers)
        if (!content_length(h.first))
            shape.headers.push_back(h);
    for (const auto& p : req.params)
        if (p.first != "CONTENT_LENGTH")
            shape.params.push_back(p);
    fcgi::prepared_request prepared;
    std::string text;
    if (fcgi::prepare_request(std::move(shape), prepared, text) != fcgi::error::param_too_large)
        return true;
    why = in_request_terms(std::move(text), terms);
    return false;
}

}  // namespace

std::string query_as_sent(std::string_view raw) {
    raw = raw.substr(0, raw.find('#'));
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(raw.size());
    for (char c : raw) {
        auto b = static_cast<unsigned char>(c);
        if (b <= 0x20 || b == 0x7f) {
            out += '%';
            out += hex[b >> 4];
            out += hex[b & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

// Whether a regular file's size is its length. procfs reports 0 and sysfs 4096 whatever the
// content, so CONTENT_LENGTH from stat() would send an empty or a failing body; a real empty
// file reads the same into memory.
bool size_is_length(const std::string& name) {
    struct stat st {};
    struct statfs fs {};
    if (::stat(name.c_str(), &st) != 0 || st.st_size == 0 || ::statfs(name.c_str(), &fs) != 0)
        return false;
    return fs.f_type != PROC_SUPER_MAGIC && fs.f_type != SYSFS_MAGIC;
}

// --data @FILE for a regular file, when streaming: the file is read as the records go out, so
// its size does not matter. Other files (a pipe, /dev/stdin, /proc/...) are read into memory
// first: they have no length to announce.
bool stream_data_file(const std::string& spec, fcgi::request& req, std::string& why) {
    std::string name = spec.substr(1);
    std::error_code ec;
    if (name == "-" || !fs::is_regular_file(name, ec) || !size_is_length(name))
        return false;
    if (::access(name.c_str(), R_OK) != 0) {
        why = "cannot open '" + name + "' for --data: " + std::strerror(errno);
        return false;
    }
    req.stdin_source = fcgi::body_source::file(name);
    return true;
}

// --data DATA, @FILE or @- (stdin), read as bytes: bodies may be binary.
bool read_data(const std::string& spec, std::string& out, std::string& why) {
    if (!spec.starts_with('@')) {
        out = spec;
        return true;
    }
    std::string name = spec.substr(1);
    if (name == "-")
        return read_body(stdin, "stdin", out, why);
    std::FILE* f = std::fopen(name.c_str(), "rb");
    if (!f) {
        why = "cannot open '" + name + "' for --data: " + std::strerror(errno);
        return false;
    }
    // A regular file says its length (bench holds even a large one in memory, as before); only
    // a source without one may never end.
    const std::size_t limit =
        size_is_length(name) ? std::numeric_limits<std::size_t>::max() : max_read_body;
    bool ok = read_body(f, "'" + name + "'", out, why, limit);
    std::fclose(f);
    return ok;
}

bool absolute_path(const fs::path& p, fs::path& out, std::string& why) {
    std::error_code ec;
    out = fs::absolute(p, ec);
    if (ec) {
        why = "cannot make '" + p.string() + "' absolute: " + ec.message();
        return false;
    }
    out = out.lexically_normal();
    return true;
}

// Building an AsSizeValue checks its table of units: over a quarter of building every
// command's flags when each size flag built its own. Each flag copies the one built here.
const CLI::Validator& size_units() {
    static const CLI::AsSizeValue units(false);
    return units;
}

}  // namespace

void size_flag(CLI::Option& option) {
    // CLI11 reads "-1" into a size_t as SIZE_MAX: a typo would mean "no limit".
    option
        .check(CLI::Validator(
            [](std::string& value) -> std::string {
                auto first = value.find_first_not_of(" \t");
                if (first != std::string::npos && value[first] == '-')
                    return "'" + value + "' is negative; give a size in bytes (units k, M, G)";
                // CLI11 checks a unit's product for overflow, not the number itself: past
                // 2^64 - 1 it would take whatever its conversion left.
                if (first != std::string::npos) {
                    std::uint64_t n = 0;
                    const char* begin = value.data() + first;
                    if (std::from_chars(begin, value.data() + value.size(), n).ec ==
                        std::errc::result_out_of_range)
                        return "'" + value + "' is too large; at most " +
                               std::to_string(std::numeric_limits<std::size_t>::max()) + " bytes";
                }
                return {};
            },
            "", "non-negative"))
        ->transform(size_units());
}

void add_response_limit_flags(CLI::App& cmd, std::size_t& max_output, std::size_t& max_stderr,
                              const std::string& unit) {
    size_flag(*cmd.add_option("--max-output", max_output,
                              "Most STDOUT bytes (the CGI head included) kept per " + unit +
                                  " (units k, M, G: 1024s); more fails the " + unit +
                                  " with response_too_large (default 64M)"));
    size_flag(*cmd.add_option(
        "--max-stderr", max_stderr,
        "Most FCGI_STDERR bytes kept per " + unit +
            " (units as --max-output); the rest is dropped and counted (default 1M)"));
}

void add_recycle_flag(CLI::App& cmd, std::uint64_t& recycle_after) {
    // php-fpm closes a worker's connection right after its pm.max_requests-th response; a
    // request written a moment before that close was never read, and one that must not be
    // sent twice (POST, --no-retry) then fails with connection_lost.
    check_count(
        *cmd.add_option("--recycle-after", recycle_after,
                        "Close each kept-alive connection after N responses and open a new one; "
                        "set it to php-fpm's pm.max_requests so that requests which are not sent "
                        "twice (POST, --no-retry) do not meet a connection php-fpm is closing "
                        "(default 0: never)"),
        0, std::numeric_limits<std::uint64_t>::max());
}

void check_number(CLI::Option& option, double lo, double hi, std::string unit, bool above_lo) {
    option.check(CLI::Validator(
        [lo, hi, above_lo, unit](std::string& value) -> std::string {
            double s = 0;
            const char* end = value.data() + value.size();
            auto [ptr, ec] = std::from_chars(value.data(), end, s);
            if (ec != std::errc{} || ptr != end || !std::isfinite(s))
                return "'" + value + "' is not a number of " + unit;
            if (above_lo ? s <= lo : s < lo)
                return std::string("must be ") + (above_lo ? "more than " : "at least ") +
                       format_number(lo) + " " + unit;
            if (s > hi)
                return "must be at most " + format_number(hi) + " " + unit;
            return {};
        },
        ""));
}

void check_count(CLI::Option& option, std::uint64_t lo, std::uint64_t hi) {
    option.check(CLI::Validator(
        [lo, hi](std::string& value) -> std::string {
            std::uint64_t n = 0;
            const char* end = value.data() + value.size();
            auto [ptr, ec] = std::from_chars(value.data(), end, n);
            const bool negative = value.starts_with('-') && value.size() > 1;
            if (!negative && ec == std::errc::result_out_of_range)
                return "must be at most " + std::to_string(hi);
            if (!negative && (ec != std::errc{} || ptr != end))
                return "'" + value + "' is not a whole number";
            if (negative || n < lo)
                return "must be at least " + std::to_string(lo);
            if (n > hi)
                return "must be at most " + std::to_string(hi);
            return {};
        },
        "in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]"));
}

void print_missing_connect() {
    const char* env = std::getenv("FCGI_CONNECT");
    print_error(env && *env ? "--connect is empty: give a server address (an empty --connect "
                              "overrides FCGI_CONNECT)"
                            : "no server address: give --connect ADDR or set FCGI_CONNECT");
}

bool parse_connect_flag(const std::string& connect, fcgi::endpoint& ep) {
    if (connect.empty()) {
        print_missing_connect();
        return false;
    }
    if (auto ec = fcgi::parse_endpoint(connect, ep)) {
        print_error("'" + connect + "': " + ec.message());
        return false;
    }
    return true;
}

void add_request_flags(CLI::App& cmd, request_flags& f) {
    cmd.add_option("-c,--connect", f.connect, connect_help)->envname("FCGI_CONNECT");
    cmd.add_option("-X,--method", f.method, "REQUEST_METHOD (default GET, or POST with --data)");
    cmd.add_option_function<std::string>(
        "-d,--data", [&f](const std::string& v) { f.data = v; },
        "Request body: DATA, @FILE, or @- for stdin");
    // allow_extra_args(false): each occurrence takes one value, so SCRIPT is never swallowed.
    cmd.add_option("-H,--header", f.headers, "Request header 'Name: value' (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-p,--param", f.params, "Raw FastCGI param NAME=VALUE (repeatable)")
        ->allow_extra_args(false);
    cmd.add_option("-r,--root", f.root, root_help);
    cmd.add_flag("-i,--include", f.include, "Print the status line and headers before the body");
    cmd.add_option("-t,--timeout", f.timeout,
                   "Give up after SECONDS (fractional), connecting included (default: none)");
    check_number(*cmd.get_option("--timeout"), 0, max_timeout_seconds, "seconds", true);
    cmd.add_flag("-f,--fail", f.fail, "Exit 22 and print no body when the status is 400 or more");
    cmd.add_option("script", f.target, "SCRIPT[?QUERY]: the script to run")->required();
}

bool build_request(const request_flags& f, fcgi::request& req, std::string& why,
                   request_terms terms) {
    // A #fragment is the browser's, never sent, whether or not a query comes before it: a '?'
    // after the '#' is part of the fragment.
    const std::string_view target = std::string_view(f.target).substr(0, f.target.find('#'));
    auto qmark = target.find('?');
    std::string script(target.substr(0, qmark));
    if (qmark != std::string::npos)
        req.query = query_as_sent(target.substr(qmark + 1));
    if (script.empty()) {
        why = "SCRIPT is empty";
        return false;
    }
    // A relative SCRIPT is under DOCUMENT_ROOT, which is the current directory unless given
    // (docs/cli.md): SCRIPT_NAME is then /examples/demo/php/hello.php, as a web server would
    // have it. An absolute one without --root keeps the library's default, its directory.
    fs::path base;
    if (!f.root.empty() || fs::path(script).is_relative()) {
        if (!absolute_path(f.root.empty() ? std::string(".") : f.root, base, why))
            return false;
        std::string root = base.string();
        while (root.size() > 1 && root.back() == '/')
            root.pop_back();
        req.document_root = root;
    }
    fs::path p(script);
    if (p.is_relative()) {
        // SCRIPT_FILENAME must be absolute (PROTOCOL.md item 10).
        if (!absolute_path(base.empty() ? p : base / p, p, why))
            return false;
    }
    req.script = p.lexically_normal().string();
    // A relative SCRIPT that climbs out of the current directory (../x.php) without --root:
    // the library's default root, its own directory, as for an absolute one. With --root it
    // must stay below the root (validate() says so).
    if (f.root.empty() && fs::path(script).is_relative()) {
        auto rel = fs::path(req.script).lexically_relative(base);
        if (rel.empty() || *rel.begin() == "..")
            req.document_root.clear();
    }
    req.method = f.method;

    if (f.data) {
        bool streamed =
            f.stream_data_file && f.data->starts_with('@') && stream_data_file(*f.data, req, why);
        if (!why.empty())
            return false;
        if (!streamed && !read_data(*f.data, req.body, why))
            return false;
        if (req.method.empty())
            req.method = "POST";  // also for an empty --data '', as curl does
    }
    for (const auto& h : f.headers) {
        if (h.find_first_of("\r\n") != std::string::npos) {
            why = "--header '" + h + "' contains CR or LF";
            return false;
        }
        auto colon = h.find(':');
        if (colon == std::string::npos) {
            why = "--header '" + h + "' is not 'Name: value'";
            return false;
        }
        req.headers.emplace_back(std::string(trim(std::string_view(h).substr(0, colon))),
                                 std::string(trim(std::string_view(h).substr(colon + 1))));
    }
    for (const auto& p2 : f.params) {
        auto eq = p2.find('=');
        if (eq == std::string::npos || eq == 0) {
            why = "--param '" + p2 + "' is not NAME=VALUE";
            return false;
        }
        req.params.emplace_back(p2.substr(0, eq), p2.substr(eq + 1));
    }
    if (fcgi::validate(req, why))
        return false;
    return params_fit(req, why, terms);
}

std::chrono::milliseconds seconds_to_ms(double seconds) {
    return std::chrono::milliseconds(
        std::max<long long>(1, std::llround(std::ceil(seconds * 1000.0))));
}

}  // namespace fcgi_cli
