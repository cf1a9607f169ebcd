// fcgi: run one FastCGI script the way curl fetches one URL, or probe a FastCGI server.
#include <CLI/CLI.hpp>
#include <string>

#include "exit_codes.hpp"
#include "output.hpp"
#include "probe_command.hpp"
#include "request_command.hpp"
#include "request_options.hpp"

int main(int argc, char** argv) {
    using namespace fcgi_cli;
    CLI::App app{"Run one FastCGI script (like curl for one URL) or probe a FastCGI server.",
                 "fcgi"};
    app.footer(std::string(exit_codes_help));
    app.require_subcommand(1);

    request_flags request;
    add_request_flags(
        *app.add_subcommand("request",
                            "Run SCRIPT[?QUERY]: the body goes to stdout, the script's "
                            "FCGI_STDERR to stderr"),
        request);
    probe_flags probe;
    auto* probe_cmd = app.add_subcommand(
        "probe", "Print what the server reports for GET_VALUES, one NAME=VALUE per line");
    add_probe_flags(*probe_cmd, probe);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);  // --help
    } catch (const CLI::ParseError& e) {
        print_error(std::string(e.what()) + "; see 'fcgi --help'");
        return usage_error;
    }
    if (probe_cmd->parsed())
        return run_probe(probe);
    return run_request(request);
}
