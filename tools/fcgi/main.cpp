// fcgi: run one FastCGI script the way curl fetches one URL, probe a FastCGI server, or fan
// many jobs out over pooled connections.
#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "bench_command.hpp"
#include "exit_codes.hpp"
#include "fanout_command.hpp"
#include "fcgi/version.hpp"
#include "output.hpp"
#include "probe_command.hpp"
#include "request_command.hpp"
#include "request_options.hpp"

namespace {

// `fcgi request`'s flags: the request's, and where its output goes.
void add_request_command_flags(CLI::App& cmd, fcgi_cli::request_flags& request) {
    using namespace fcgi_cli;
    add_request_flags(cmd, request);
    // "-" is stdout, as for curl; an empty name is a mistake, not stdout.
    cmd.add_option_function<std::string>(
           "-o,--output", [&request](const std::string& v) { request.output = v == "-" ? "" : v; },
           "Write the body to FILE as it arrives instead of stdout (- for stdout)")
        ->check(CLI::Validator(
            [](std::string& v) {
                return v.empty() ? std::string("a file name is needed (- for stdout)")
                                 : std::string();
            },
            "FILE"));
    size_flag(*cmd.add_option(
        "--max-stderr", request.max_stderr,
        "Most FCGI_STDERR bytes kept (units k, M, G: 1024s); the rest is dropped, with a note "
        "saying how much (default 1M)"));
}

}  // namespace

int main(int argc, char** argv) {
    using namespace fcgi_cli;
    guard_standard_descriptors();  // before anything opens a descriptor
    CLI::App app{
        "Run one FastCGI script (like curl for one URL), many (fanout), or probe a FastCGI "
        "server.",
        "fcgi"};
    app.footer(std::string(exit_codes_help));
    app.set_version_flag("--version", "fcgi " FCGI_VERSION_STRING " (asio-fcgi " +
                                          std::string(fcgi::version()) + ")");
    app.require_subcommand(1);

    // Building every command's flags cost more CPU than `fcgi request` spends on its request,
    // and a shell loop of requests pays it every time: only the command named first gets its
    // flags. The others keep their name and description, all that `fcgi --help` shows of them;
    // when none is named first (help, a misspelling, a flag before the command), all get theirs.
    const std::string_view named = argc > 1 ? argv[1] : "";
    const bool any_named =
        named == "request" || named == "probe" || named == "fanout" || named == "bench";
    auto wanted = [&](std::string_view command) { return !any_named || named == command; };

    request_flags request;
    auto* request_cmd = app.add_subcommand(
        "request",
        "Run SCRIPT[?QUERY]: the body streams to stdout (or --output), the script's FCGI_STDERR "
        "goes to stderr");
    if (wanted("request"))
        add_request_command_flags(*request_cmd, request);
    probe_flags probe;
    auto* probe_cmd = app.add_subcommand(
        "probe", "Print what the server reports for GET_VALUES, one NAME=VALUE per line");
    if (wanted("probe"))
        add_probe_flags(*probe_cmd, probe);
    fanout_flags fanout;
    auto* fanout_cmd = app.add_subcommand(
        "fanout",
        "Run many jobs (JSON lines from FILE or stdin) over pooled connections; print one JSON "
        "result line per job as each completes, and a summary on stderr");
    if (wanted("fanout"))
        add_fanout_flags(*fanout_cmd, fanout);
    bench_flags bench;
    auto* bench_cmd = app.add_subcommand(
        "bench",
        "Load-test SCRIPT[?QUERY]: closed loop (--concurrency) or open loop (--rate); report "
        "throughput, latency percentiles, failures and never-answered requests");
    if (wanted("bench"))
        add_bench_flags(*bench_cmd, bench);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        // Point at the help that lists the flags in question: the subcommand's.
        std::string help = "fcgi --help";
        std::string command;
        for (const auto* sub : {request_cmd, probe_cmd, fanout_cmd, bench_cmd})
            if (sub->parsed()) {
                command = sub->get_name();
                help = "fcgi " + command + " --help";
            }
        // CLI11 says "A subcommand is required" of a misspelt one, and of a flag before any,
        // and "not expected" of a command's flag given before it: say what was given.
        std::string what = e.what();
        if (command.empty() && argc > 1)
            what = std::string(argv[1][0] == '-' ? "unknown option '" : "unknown command '") +
                   argv[1] + "': the commands are request, probe, fanout and bench, each " +
                   "followed by its own flags";
        else if (argc > 1 && argv[1][0] == '-')
            what = "'" + std::string(argv[1]) +
                   "' comes before the command: flags follow it (fcgi " + command + " " + argv[1] +
                   " ...)";
        print_error(what + "; see '" + help + "'");
        return usage_error;
    }
    if (probe_cmd->parsed())
        return run_probe(probe);
    if (fanout_cmd->parsed())
        return run_fanout(fanout);
    if (bench_cmd->parsed())
        return run_bench(bench);
    return run_request(request);
}
