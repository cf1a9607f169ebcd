#include "request_command.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "exit_codes.hpp"
#include "fcgi/connection.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"
#include "output.hpp"
#include "response_output.hpp"

namespace fcgi_cli {
namespace {

using namespace std::chrono;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<int> run(fcgi::endpoint ep, fcgi::request req, const request_flags& flags) {
    const std::string where = ep.to_string();
    // One budget for connecting and the response together, as --timeout promises.
    std::optional<milliseconds> budget;
    if (flags.timeout > 0)
        budget = seconds_to_ms(flags.timeout);
    const auto start = steady_clock::now();

    fcgi::connection_options options;
    options.max_stderr_size = flags.max_stderr;
    if (budget)
        options.connect_timeout = *budget;
    fcgi::connection conn(co_await asio::this_coro::executor, options);
    auto [cec] = co_await conn.async_connect(ep, use_tuple);
    if (cec) {
        const std::string limit =
            budget ? "--timeout"
                   : fixed(duration<double>(options.connect_timeout).count(), 0) + " s";
        print_error(where + ": " + connect_failure_text(ep, cec, limit));
        co_return exit_code_of_connect(cec);
    }
    if (budget) {
        auto left = *budget - duration_cast<milliseconds>(steady_clock::now() - start);
        req.timeout = std::max(left, milliseconds(1));
    }

    // Named in the hint for php-fpm's "Primary script unknown" (the request is moved below).
    std::string script_filename = req.script;
    std::string_view set_by = "set it with SCRIPT and --root";
    for (const auto& [name, value] : req.params)
        if (name == "SCRIPT_FILENAME") {
            script_filename = value;
            set_by = "set by --param SCRIPT_FILENAME";
        }

    // The body streams to stdout or --output as it arrives.
    auto output = std::make_shared<response_output_state>();
    req.stdout_sink = make_response_output(flags.output, flags.include, flags.fail, output);
    auto [ec, resp] = co_await conn.async_request(std::move(req), use_tuple);
    // Said after the script's own lines, which stop at the limit.
    auto note_dropped_stderr = [&] {
        if (resp.stderr_dropped > 0)
            print_error(where + ": " + std::to_string(resp.stderr_dropped) +
                        " more bytes of the script's FCGI_STDERR were dropped past --max-stderr (" +
                        std::to_string(flags.max_stderr) + " bytes)");
    };
    if (ec) {
        write_stderr(resp.stderr_text);  // what the script logged before it failed
        note_dropped_stderr();
        std::string what = output->write_failed ? "cannot write the response" : "request failed";
        std::string hint;
        if (!output->write_failed && ec == fcgi::error::connection_lost) {
            // The time is the clue: a close at request_terminate_timeout is a killed worker.
            char elapsed[32];
            std::snprintf(elapsed, sizeof elapsed, " after %.3f s",
                          duration<double>(steady_clock::now() - start).count());
            what += elapsed;
            // Reading stops while the output is behind: the close was seen late, not made late.
            if (output->write_wait >= milliseconds(100)) {
                std::snprintf(elapsed, sizeof elapsed, "%.3f s",
                              duration<double>(output->write_wait).count());
                what += std::string(" (") + elapsed + " of it waiting for " +
                        (flags.output.empty() ? "stdout" : "the output file") +
                        " to take the body: the server may have closed that much earlier)";
            }
            // Also beside the library's allowed_clients hint: a worker killed before it wrote
            // anything looks the same, and the time above tells the two apart.
            hint =
                "; php-fpm closes the connection like this when it ends a worker mid-request "
                "(request_terminate_timeout, a crash, a reload): its error_log says which";
        }
        print_error(
            describe_failure(where, what, ec, in_flag_terms(std::move(resp.diagnostics), false)) +
            hint);
        co_return output->write_failed ? request_failure : exit_code_after_connect(ec);
    }
    // The script's own log lines go to stderr, never into stdout.
    write_stderr(resp.stderr_text);
    end_line();
    note_dropped_stderr();
    if (resp.status == 404 && resp.stderr_text.find("Primary script unknown") != std::string::npos)
        // php-fpm could not open SCRIPT_FILENAME: in a container, or on another host, the path
        // it sees may not be the one given here.
        print_error(where + ": php-fpm found no script at SCRIPT_FILENAME " + script_filename +
                    ": is there a file it can read at that path where php-fpm runs? (" +
                    std::string(set_by) + ")");
    if (output->refused_status) {
        std::string status = std::to_string(resp.status);
        if (!resp.reason.empty())
            status += " " + resp.reason;
        print_error(where + ": the script answered " + status);
        co_return http_failure;
    }
    co_return ok;
}

}  // namespace

int run_request(const request_flags& flags) {
    fcgi::endpoint ep;
    if (!parse_connect_flag(flags.connect, ep))
        return usage_error;
    fcgi::request req;
    std::string why;
    if (!flags.output.empty() && !output_path_usable(flags.output, why)) {
        print_error(why);
        return usage_error;
    }
    request_flags streaming = flags;
    streaming.stream_data_file = true;
    if (!build_request(streaming, req, why)) {
        print_error(why);
        return usage_error;
    }

    asio::io_context ctx;
    int code = request_failure;
    asio::co_spawn(ctx, run(std::move(ep), std::move(req), flags),
                   [&](std::exception_ptr e, int rc) {
                       if (!e) {
                           code = rc;
                           return;
                       }
                       try {
                           std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                           print_error(flags.connect + ": " + ex.what());
                       } catch (...) {
                           print_error(flags.connect + ": failed with an unknown exception");
                       }
                   });
    ctx.run();
    return code;
}

}  // namespace fcgi_cli
