#include "probe_command.hpp"

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "exit_codes.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "output.hpp"
#include "request_options.hpp"

namespace fcgi_cli {

namespace {

// The server's names and values as they may be printed, one pair per line: a line end or a
// terminal escape in one would forge a line ("multiplexing: yes") or reach the terminal. A
// control byte or a backslash becomes \xNN.
std::string printable(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == '\\') {
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

void add_probe_flags(CLI::App& cmd, probe_flags& f) {
    cmd.add_option("-c,--connect", f.connect, connect_help)->envname("FCGI_CONNECT");
    check_number(
        *cmd.add_option("-t,--timeout", f.timeout, "Give up after SECONDS (fractional; default 5)"),
        0, max_timeout_seconds, "seconds", true);
    // Not the top-level list: probe has no --fail and no response status.
    cmd.footer(
        "Exit codes:\n"
        "  0   the server answered GET_VALUES\n"
        "  2   usage error: bad flags or address, nothing was sent\n"
        "  3   could not connect (refused, no such socket, unknown host)\n"
        "  4   timed out (connecting, or waiting for the answer)\n"
        "  5   FastCGI protocol error from the server\n"
        "  6   other failure (connection lost, stdout not writable, ...)\n");
}

int run_probe(const probe_flags& flags) {
    fcgi::endpoint ep;
    if (!parse_connect_flag(flags.connect, ep))
        return usage_error;
    fcgi::get_values_options options;
    options.timeout = seconds_to_ms(flags.timeout);
    options.connect_timeout = options.timeout;

    asio::io_context ctx;
    std::error_code result_ec;
    fcgi::protocol::get_values_result result;
    fcgi::async_get_values(ctx.get_executor(), ep, options,
                           [&](std::error_code ec, fcgi::protocol::get_values_result r) {
                               result_ec = ec;
                               result = std::move(r);
                           });
    ctx.run();

    const std::string where = ep.to_string();
    if (result_ec) {
        std::string hint;
        if (result_ec == fcgi::error::request_timeout)
            // Connected, then no answer: php-fpm answers from a worker, so a saturated pool
            // looks like this, and a health check should not read it as a dead server.
            hint =
                "; the server accepted the connection but did not answer: php-fpm answers "
                "GET_VALUES from a worker, so with every worker busy (pm.max_children reached) "
                "the question waits in its listen backlog";
        // A connect still pending at the deadline (a SYN nobody answers) is not a busy
        // php-fpm; errors outside the library's category come from connecting (refused, no
        // socket).
        if (result_ec == fcgi::error::connect_timeout ||
            result_ec.category() != fcgi::client_category()) {
            print_error(where + ": " + connect_failure_text(ep, result_ec, "--timeout"));
            return exit_code_of_connect(result_ec);
        }
        print_error(describe_failure(where, "GET_VALUES failed", result_ec) + hint);
        return exit_code_after_connect(result_ec);
    }
    std::string out;
    bool mpxs_named = false;
    for (const auto& [name, value] : result.all) {
        out += printable(name) + "=" + printable(value) + "\n";
        mpxs_named = mpxs_named || name == fcgi::protocol::mpxs_conns_name;
    }
    out += "multiplexing: ";
    out += result.mpxs_conns ? (*result.mpxs_conns ? "yes" : "no")
           : mpxs_named      ? "unknown (FCGI_MPXS_CONNS is not a number)"
                             : "unknown (not reported)";
    out += "\n";
    if (!write_stdout(out)) {
        print_error(where + ": cannot write to stdout");
        return request_failure;
    }
    return ok;
}

}  // namespace fcgi_cli
