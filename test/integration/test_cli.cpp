// The fcgi command-line tool, run as a child process against a private php-fpm: exact stdout
// bytes, stderr kept apart, exit codes.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/checksum.hpp"
#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/refusing_port.hpp"
#include "support/spawn.hpp"
#include "support/temp_file.hpp"
#include "support/unaccepted_listener.hpp"

#ifdef FCGI_CLI_PATH

using fcgi::test::php_fpm;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using fcgi::test::binary_data;
using fcgi::test::md5_of;
using fcgi::test::temp_file;
using fcgi::test::temp_socket_path;

using fcgi::test::run_result;
using fcgi::test::run_spec;

// Runs spec.program, or the tool when it names none.
run_result run(run_spec spec) {
    if (spec.program.empty())
        spec.program = FCGI_CLI_PATH;
    return fcgi::test::run_child(spec);
}

run_result fcgi_cli(std::vector<std::string> args, std::string input = {}) {
    run_spec spec;
    spec.args = std::move(args);
    spec.input = std::move(input);
    return run(spec);
}

// json_encode escapes '/' as '\/'.
std::string json_path(const std::string& p) {
    std::string s;
    for (char c : p) {
        if (c == '/')
            s += '\\';
        s += c;
    }
    return s;
}

bool is_one_error_line(const std::string& err) {
    return err.starts_with("fcgi: ") && std::count(err.begin(), err.end(), '\n') == 1 &&
           err.back() == '\n';
}

struct fpm_fixture {
    php_fpm fpm{{.children = 3}};
    std::string unix_ep = fpm.unix_endpoint();
    std::string tcp_ep = fpm.tcp_endpoint();
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli, fpm_fixture)

BOOST_AUTO_TEST_CASE(get_hello_over_unix_and_tcp) {
    for (const auto& ep : {unix_ep, tcp_ep}) {
        auto r = fcgi_cli({"request", "--connect", ep, php_fpm::script("hello.php")});
        BOOST_TEST_CONTEXT(ep << " stderr: " << r.err) {
            BOOST_TEST(r.exit_code == 0);
            BOOST_TEST(r.out == "Hello, world!\n");
            BOOST_TEST(r.err.empty());
        }
    }
}

// -o - is stdout, as for curl: no file named "-".
BOOST_AUTO_TEST_CASE(output_dash_is_stdout) {
    fcgi::test::temp_dir dir;
    run_spec spec;
    spec.args = {"request", "-c", unix_ep, "-o", "-", php_fpm::script("hello.php")};
    spec.cwd = dir.path.string();
    auto r = run(spec);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out == "Hello, world!\n");
    BOOST_TEST(!std::filesystem::exists(dir.path / "-"));
}

BOOST_AUTO_TEST_CASE(connect_from_environment) {
    run_spec spec;
    spec.args = {"request", php_fpm::script("hello.php")};
    spec.env = {"FCGI_CONNECT=" + unix_ep};
    auto r = run(spec);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "Hello, world!\n");
}

BOOST_AUTO_TEST_CASE(include_prints_status_and_headers) {
    auto r =
        fcgi_cli({"request", "-c", unix_ep, "-i", php_fpm::script("status.php") + "?code=404"});
    BOOST_TEST(r.exit_code == 0);  // without --fail any status is a success
    BOOST_TEST(r.out.starts_with("Status: 404 Not Found\r\n"));
    BOOST_TEST(r.out.find("X-Multi: one\r\nX-Multi: two\r\n") != std::string::npos);
    BOOST_TEST(r.out.find("Set-Cookie: a=1\r\n") != std::string::npos);
    BOOST_TEST(r.out.find("Set-Cookie: b=2\r\n") != std::string::npos);
    BOOST_TEST(r.out.ends_with("\r\n\r\nstatus 404\n"));
    BOOST_TEST(r.out.find("\r\n\r\n") == r.out.size() - std::string("\r\n\r\nstatus 404\n").size());

    auto ok = fcgi_cli({"request", "-c", unix_ep, "--include", php_fpm::script("hello.php")});
    BOOST_TEST(ok.exit_code == 0);
    BOOST_TEST(ok.out.starts_with("Status: 200 OK\r\n"));
    BOOST_TEST(ok.out.ends_with("\r\n\r\nHello, world!\n"));
}

BOOST_AUTO_TEST_CASE(query_string_reaches_the_script) {
    auto r =
        fcgi_cli({"request", "-c", unix_ep, php_fpm::script("echo.php") + "?a=1&b=two%20words"});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find(R"("method":"GET")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("query":"a=1&b=two%20words")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("get":{"a":"1","b":"two words"})") != std::string::npos, r.out);

    // Typed as in a browser's address bar: the space is encoded, the fragment never sent.
    auto typed = fcgi_cli(
        {"request", "-c", unix_ep, php_fpm::script("echo.php") + "?b=two words&c=\t#section-2"});
    BOOST_TEST(typed.exit_code == 0, typed.err);
    BOOST_TEST(typed.out.find(R"("query":"b=two%20words&c=%09")") != std::string::npos, typed.out);
    BOOST_TEST(typed.out.find(R"("get":{"b":"two words","c":"\t"})") != std::string::npos,
               typed.out);
    BOOST_TEST(typed.out.find("section-2") == std::string::npos, typed.out);

    // A fragment with no query, or with a '?' in it: not part of SCRIPT, nor a query (the
    // script was "echo.php#top", a 404).
    for (const std::string tail : {"#top", "#top?x=1"}) {
        auto frag = fcgi_cli({"request", "-c", unix_ep, php_fpm::script("echo.php") + tail});
        BOOST_TEST(frag.exit_code == 0, frag.err);
        BOOST_TEST(frag.out.find(R"("query":"")") != std::string::npos, frag.out);
    }
}

BOOST_AUTO_TEST_CASE(data_from_file_and_stdin) {
    const std::string data = binary_data();
    const std::string expected = std::to_string(data.size()) + " " + md5_of(data) + "\n";
    temp_file file(data);

    auto from_file =
        fcgi_cli({"request", "-c", unix_ep, "--data", "@" + file.path, php_fpm::script("md5.php")});
    BOOST_TEST(from_file.exit_code == 0);
    BOOST_TEST(from_file.out == expected);

    auto from_stdin =
        fcgi_cli({"request", "-c", tcp_ep, "--data", "@-", php_fpm::script("md5.php")}, data);
    BOOST_TEST(from_stdin.exit_code == 0);
    BOOST_TEST(from_stdin.out == expected);

    // A pseudo-file whose stat() size is not its length (procfs says 0): its bytes, as curl
    // sends them. It was streamed with the stat() size, an empty body.
    std::ifstream version_file("/proc/version", std::ios::binary);
    const std::string version((std::istreambuf_iterator<char>(version_file)), {});
    BOOST_REQUIRE(!version.empty());
    auto from_proc = fcgi_cli(
        {"request", "-c", unix_ep, "--data", "@/proc/version", php_fpm::script("md5.php")});
    BOOST_TEST(from_proc.exit_code == 0, from_proc.err);
    BOOST_TEST(from_proc.out == std::to_string(version.size()) + " " + md5_of(version) + "\n");

    auto literal = fcgi_cli({"request", "-c", unix_ep, "-d", "abc", php_fpm::script("echo.php")});
    BOOST_TEST(literal.out.find(R"("method":"POST")") != std::string::npos, literal.out);
    BOOST_TEST(literal.out.find(R"("body_md5":")" + md5_of("abc") + "\"") != std::string::npos,
               literal.out);
}

BOOST_AUTO_TEST_CASE(large_bodies_stream_through_files) {
    // 20 MB each way: --data @FILE is read as records go out, --output gets the body as it
    // arrives (the memory bound is measured in docs/benchmarks.md, not here).
    std::string data(20u << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
    temp_file in(data);
    temp_file out("old");
    auto up = fcgi_cli({"request", "-c", unix_ep, "--data", "@" + in.path, "--output", out.path,
                        php_fpm::script("md5.php")});
    BOOST_TEST(up.exit_code == 0, up.err);
    BOOST_TEST(up.out.empty());  // the body went to --output
    std::ifstream f(out.path, std::ios::binary);
    std::string written((std::istreambuf_iterator<char>(f)), {});
    BOOST_TEST(written == std::to_string(data.size()) + " " + md5_of(data) + "\n");

    const std::string size = std::to_string(20u << 20);
    auto down = fcgi_cli({"request", "-c", tcp_ep, "-i", "-o", out.path,
                          php_fpm::script("big.php") + "?size=" + size});
    BOOST_TEST(down.exit_code == 0, down.err);
    // -i puts the head in the same file, before the body.
    std::ifstream g(out.path, std::ios::binary);
    std::string file((std::istreambuf_iterator<char>(g)), {});
    auto blank = file.find("\r\n\r\n");
    BOOST_REQUIRE(blank != std::string::npos);
    std::string head = file.substr(0, blank);
    BOOST_TEST(head.starts_with("Status: 200 OK\r\n"), head);
    auto md5_at = head.find("X-Md5: ");
    BOOST_REQUIRE(md5_at != std::string::npos);
    BOOST_TEST(file.size() - blank - 4 == 20u << 20);
    BOOST_TEST(md5_of(file.substr(blank + 4)) == head.substr(md5_at + 7, 32));

    auto bad_output = fcgi_cli(
        {"request", "-c", unix_ep, "-o", "/nonexistent/dir/out", php_fpm::script("hello.php")});
    BOOST_TEST(bad_output.exit_code == 2);  // a usage error, found before connecting
    BOOST_TEST(is_one_error_line(bad_output.err), bad_output.err);
    BOOST_TEST(bad_output.err.find("/nonexistent/dir/out") != std::string::npos, bad_output.err);
    BOOST_TEST(bad_output.err.find("no directory /nonexistent/dir") != std::string::npos,
               bad_output.err);
}

// A reader that has fallen behind (a slow pipe, a terminal paused with Ctrl-S): -i's head waits
// for room as the body does, with a body or without one. It was once written assuming the write
// completes at once: "bad executor", exit 6, a truncated head.
BOOST_AUTO_TEST_CASE(include_waits_for_a_full_stdout) {
    namespace act = fcgi::test::act;
    // More than a unix socket holds (~208 KiB by default) plus the tool's 64 KiB read, so once
    // the responder has sent it all the tool has read past the head; less than the 1 MiB the
    // tool buffers for a busy sink, so the responder gets that far while stdout is still full.
    constexpr std::size_t flood = 512u << 10;
    const std::string head(fcgi::test::echo_head);
    struct answer {
        const char* what;
        fcgi::test::action after_head;
        std::string body;
    };
    const answer answers[] = {
        {"a body", act::endless_stdout(flood), std::string(flood, 'x')},
        {"no body", act::endless_stderr(flood), ""},
    };
    for (const auto& a : answers) {
        fcgi::test::fake_responder fake({.script_for = [&](const fcgi::test::seen_request&) {
            return fcgi::test::script{act::stdout_(head), a.after_head, act::end()};
        }});
        run_spec spec;
        spec.args = {"request", "-c", fake.unix_endpoint().to_string(), "-i", "/x.php"};
        spec.stdout_full = true;
        bool held = false;
        // stdout is not read until the tool has taken the head (and exited, or read on past it).
        spec.started = [&](int) {
            held = fake.wait_for(
                [&](const fcgi::test::fake_snapshot& s) {
                    return s.endless_bytes >= flood || s.connections_closed_by_peer > 0;
                },
                20s);
        };
        auto r = run(spec);
        BOOST_TEST_CONTEXT(a.what) {
            BOOST_TEST(held);
            BOOST_TEST(r.exit_code == 0,
                       r.err.substr(r.err.size() - std::min<std::size_t>(r.err.size(), 500)));
            auto filled = std::min(r.out.find_first_not_of('p'), r.out.size());
            BOOST_TEST(filled > 0u);
            const std::string got = r.out.substr(filled);
            BOOST_TEST(got.starts_with(head), got.substr(0, 200));
            BOOST_TEST(got.size() == head.size() + a.body.size());
            BOOST_TEST((got == head + a.body));
        }
    }
}

// A deadline that passes while stdout is full (a reader slower than the deadline): the request
// timed out, exit 4. Cancelling the wait for room was taken for a failed write: "cannot write
// the response", exit 6.
BOOST_AUTO_TEST_CASE(deadline_while_stdout_is_full_is_a_timeout) {
    namespace act = fcgi::test::act;
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::stdout_(std::string(fcgi::test::echo_head)),
                                  act::endless_stdout(std::size_t{64} << 20), act::end()};
    }});
    run_spec spec;
    spec.args = {"request", "-c", fake.unix_endpoint().to_string(), "-t", "0.5", "/x.php"};
    spec.stdout_full = true;
    bool closed = false;
    // stdout is read only once the deadline has closed the connection.
    spec.started = [&](int) {
        closed = fake.wait_for(
            [](const fcgi::test::fake_snapshot& s) { return s.connections_closed_by_peer > 0; },
            20s);
    };
    auto r = run(spec);
    BOOST_TEST(closed);
    BOOST_TEST(r.exit_code == 4, r.err);
    BOOST_TEST(r.err.find("request failed") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("cannot write") == std::string::npos, r.err);
}

// A server that closes while stdout is behind: the tool stops reading while its output waits, so
// it sees the close only once the reader has caught up, and "request failed after N s" (given as
// the clue to request_terminate_timeout) read as a server that closed late. It now says how much
// of that went to waiting for stdout (streaming review 8).
BOOST_AUTO_TEST_CASE(close_seen_behind_a_full_stdout_says_how_long_it_waited) {
    namespace act = fcgi::test::act;
    // More than the tool buffers for a busy sink (1 MiB) and the socket holds together: the
    // responder is still sending when the tool stops reading.
    constexpr std::size_t flood = std::size_t{3} << 20;
    fcgi::test::fake_responder fake({.script_for = [](const fcgi::test::seen_request&) {
        return fcgi::test::script{act::stdout_(std::string(fcgi::test::echo_head)),
                                  act::endless_stdout(flood), act::close()};
    }});
    run_spec spec;
    spec.args = {"request", "-c", fake.unix_endpoint().to_string(), "/x.php"};
    spec.stdout_full = true;
    bool behind = false;
    spec.started = [&](int) {
        // Once the tool holds a full buffer it cannot write out...
        behind = fake.wait_for(
            [](const fcgi::test::fake_snapshot& s) { return s.endless_bytes >= (1u << 20); }, 20s);
        // ...the reader stays away a while longer: the slow reader itself, not a wait for an
        // event, and well past the 100 ms from which the tool names the wait.
        std::this_thread::sleep_for(400ms);
    };
    auto r = run(spec);
    BOOST_TEST(behind);
    BOOST_TEST(r.exit_code == 6, r.err);
    BOOST_TEST(r.err.find("request failed after ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find(" of it waiting for stdout to take the body") != std::string::npos,
               r.err);
}

// As curl -o: the file is created or truncated once a head it will hold arrives, so a failure
// before that (no server, a timeout, --fail's 404) leaves the last good copy as it was.
BOOST_AUTO_TEST_CASE(output_file_is_replaced_only_by_a_response) {
    temp_file out("last good copy");
    temp_socket_path missing;  // nothing listens there
    auto kept = [&] {
        std::ifstream f(out.path, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(f)), {});
    };
    struct failure {
        const char* what;
        std::vector<std::string> args;
        int exit_code;
    };
    const failure failures[] = {
        {"no server", {"-c", "unix:" + missing.path, php_fpm::script("hello.php")}, 3},
        {"--fail and a 404",
         {"-c", unix_ep, "-f", php_fpm::script("status.php") + "?code=404"},
         22},
        {"a timeout before the head",
         {"-c", unix_ep, "--timeout", "0.3", php_fpm::script("sleep.php") + "?ms=2000"},
         4},
    };
    for (const auto& f : failures) {
        run_spec spec;
        spec.args = {"request", "-o", out.path};
        spec.args.insert(spec.args.end(), f.args.begin(), f.args.end());
        spec.limit = 20s;
        auto r = run(spec);
        BOOST_TEST_CONTEXT(f.what) {
            BOOST_TEST(r.exit_code == f.exit_code, r.err);
            BOOST_TEST(kept() == "last good copy");
        }
    }

    auto fine = fcgi_cli({"request", "-c", unix_ep, "-f", "-o", out.path,
                          php_fpm::script("status.php") + "?code=201"});
    BOOST_TEST(fine.exit_code == 0, fine.err);
    BOOST_TEST(kept() == "status 201\n");

    // A directory is refused before connecting.
    auto dir = fcgi_cli({"request", "-c", "unix:" + missing.path, "-o",
                         fs::temp_directory_path().string(), php_fpm::script("hello.php")});
    BOOST_TEST(dir.exit_code == 2, dir.err);
    BOOST_TEST(dir.err.find("it is a directory") != std::string::npos, dir.err);
}

BOOST_AUTO_TEST_CASE(stdout_is_binary_safe) {
    const std::string data = binary_data();
    auto r =
        fcgi_cli({"request", "-c", unix_ep, "--data", "@-", php_fpm::script("body.php")}, data);
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.size() == data.size());
    BOOST_TEST((r.out == data));
}

BOOST_AUTO_TEST_CASE(method_flag) {
    auto r = fcgi_cli({"request", "-c", unix_ep, "--method", "PUT", "--data", "xyz",
                       php_fpm::script("echo.php")});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find(R"("method":"PUT")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("body_length":3)") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(headers_become_http_params) {
    auto r = fcgi_cli({"request", "-c", unix_ep, "--header", "X-Test: hello world", "-H",
                       "Accept:text/plain", php_fpm::script("server.php")});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find(R"("HTTP_X_TEST":"hello world")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("HTTP_ACCEPT":"text\/plain")") != std::string::npos, r.out);
    // Repeated headers reach PHP joined (it keeps the last param of a name), a Proxy header not
    // at all (httpoxy).
    r = fcgi_cli({"request", "-c", unix_ep, "-H", "Cookie: a=1", "-H", "Accept: x", "-H",
                  "cookie: b=2", "-H", "Accept: y", "-H", "Proxy: http://evil:8080",
                  php_fpm::script("server.php")});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find(R"("HTTP_COOKIE":"a=1; b=2")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("HTTP_ACCEPT":"x, y")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("HTTP_PROXY") == std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(params_are_sent_raw) {
    auto r = fcgi_cli({"request", "-c", unix_ep, "--param", "MY_PARAM=a=b c", "-p",
                       "SERVER_NAME=example.test", php_fpm::script("server.php")});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out.find(R"("MY_PARAM":"a=b c")") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(R"("SERVER_NAME":"example.test")") != std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(relative_script_against_cwd_and_root) {
    const std::string dir = php_fpm::script_dir();
    run_spec in_dir;
    in_dir.args = {"request", "-c", unix_ep, "hello.php"};
    in_dir.cwd = dir;
    auto r = run(in_dir);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out == "Hello, world!\n");

    // server.php prints its params as JSON: each run must succeed with these three.
    auto expect_paths = [](const run_result& res, const std::string& root,
                           const std::string& script_name, const std::string& filename) {
        BOOST_TEST(res.exit_code == 0, res.err);
        for (const auto& [name, value] :
             {std::pair{"DOCUMENT_ROOT", root}, std::pair{"SCRIPT_NAME", script_name},
              std::pair{"SCRIPT_FILENAME", filename}})
            BOOST_TEST(res.out.find("\"" + std::string(name) + "\":\"" + json_path(value) + "\"") !=
                           std::string::npos,
                       name << " is not " << value << " in " << res.out);
    };
    const std::string server = dir + "/server.php";

    run_spec rooted;
    rooted.args = {"request", "-c", unix_ep, "--root", dir, "server.php"};
    rooted.cwd = "/";
    expect_paths(run(rooted), dir, "/server.php", server);

    // Without --root, DOCUMENT_ROOT is the current directory (docs/cli.md), not the script's.
    const std::string parent = dir.substr(0, dir.rfind('/'));
    const std::string leaf = dir.substr(dir.rfind('/') + 1);
    run_spec from_parent;
    from_parent.args = {"request", "-c", unix_ep, leaf + "/server.php"};
    from_parent.cwd = parent;
    expect_paths(run(from_parent), parent, "/" + leaf + "/server.php", server);

    // A relative script that climbs out of the current directory: its own directory is the
    // root, as for an absolute one. With --root it must stay below the root... (A fresh
    // directory as both: the checkout itself may be below /tmp.)
    fcgi::test::temp_dir away_dir;
    const std::string away = away_dir.path.string();
    const std::string climb = std::filesystem::path(server).lexically_relative(away).string();
    BOOST_REQUIRE(climb.starts_with("../"));
    run_spec climbing;
    climbing.args = {"request", "-c", unix_ep, climb};
    climbing.cwd = away;
    expect_paths(run(climbing), dir, "/server.php", server);
    climbing.args = {"request", "-c", unix_ep, "--root", away, climb};
    auto outside = run(climbing);
    BOOST_TEST(outside.exit_code == 2, outside.err);
    BOOST_TEST(outside.err.find("not below document_root") != std::string::npos, outside.err);
    // ... unless SCRIPT_NAME is given: sent as given.
    climbing.args = {"request", "-c", unix_ep, "-r", away, "-p", "SCRIPT_NAME=/s.php", climb};
    expect_paths(run(climbing), away, "/s.php", server);
}

// A socket next to the caller, as `-c ./php-fpm.sock`: a bare relative path starting with ./
// is a unix socket, resolved against the current directory (docs/cli.md).
BOOST_AUTO_TEST_CASE(relative_socket_path) {
    const std::filesystem::path sock = unix_ep.substr(std::string_view("unix:").size());
    run_spec here;
    here.args = {"request", "-c", "./" + sock.filename().string(), php_fpm::script("hello.php")};
    here.cwd = sock.parent_path().string();
    auto r = run(here);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out == "Hello, world!\n");
    // Without ./ the name is neither a path nor host:port: a usage error listing the forms.
    here.args[2] = sock.filename().string();
    auto bare = run(here);
    BOOST_TEST(bare.exit_code == 2, bare.err);
    BOOST_TEST(bare.err.find("starting with /, ./ or ../") != std::string::npos, bare.err);
}

BOOST_AUTO_TEST_CASE(script_stderr_goes_to_stderr) {
    auto r = fcgi_cli({"request", "-c", unix_ep, php_fpm::script("stderr.php")});
    BOOST_TEST(r.exit_code == 0);
    BOOST_TEST(r.out == "body-start\nbody-end\n");
    BOOST_TEST(r.err.find("first message") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("second message") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("fcgi: ") == std::string::npos, r.err);

    // --max-stderr bounds what is kept: the rest is dropped, said after the kept part, and the
    // request still succeeds with its whole body.
    auto small =
        fcgi_cli({"request", "-c", unix_ep, "--max-stderr", "10", php_fpm::script("stderr.php")});
    BOOST_TEST(small.exit_code == 0, small.err);
    BOOST_TEST(small.out == "body-start\nbody-end\n");
    BOOST_TEST(small.err.rfind("PHP messag\nfcgi: " + unix_ep + ": ", 0) == 0, small.err);
    BOOST_TEST(small.err.find(" more bytes of the script's FCGI_STDERR were dropped past "
                              "--max-stderr (10 bytes)") != std::string::npos,
               small.err);
    BOOST_TEST(small.err.find("second message") == std::string::npos, small.err);
}

// A line the script's stderr left open is ended, on a terminal (a prompt would run on after it)
// and redirected (two runs appended to one log glued their lines together). A 404 for
// "Primary script unknown" names the SCRIPT_FILENAME php-fpm could not open.
BOOST_AUTO_TEST_CASE(open_stderr_line_ended_and_unknown_script_named) {
    run_spec spec;
    const std::string missing = php_fpm::script("no-such-script.php");
    spec.args = {"request", "-c", unix_ep, missing};
    const std::string hint = "fcgi: " + unix_ep + ": php-fpm found no script at SCRIPT_FILENAME " +
                             missing +
                             ": is there a file it can read at that path where php-fpm runs? "
                             "(set it with SCRIPT and --root)";
    auto piped = run(spec);
    BOOST_TEST(piped.exit_code == 0);
    BOOST_TEST(piped.err.starts_with("Primary script unknown\n" + hint), piped.err);
    // Set by --param, where SCRIPT and --root cannot change it.
    auto by_param = fcgi_cli({"request", "-c", unix_ep, "-p", "SCRIPT_FILENAME=" + missing,
                              php_fpm::script("hello.php")});
    BOOST_TEST(by_param.exit_code == 0);
    BOOST_TEST(by_param.err.find("SCRIPT_FILENAME " + missing +
                                 ": is there a file it can read at that path where php-fpm "
                                 "runs? (set by --param SCRIPT_FILENAME)") != std::string::npos,
               by_param.err);
    spec.stderr_terminal = true;
    auto terminal = run(spec);
    BOOST_TEST(terminal.exit_code == 0);
    BOOST_TEST(terminal.err.starts_with("Primary script unknown\r\n"), terminal.err);

    auto found = fcgi_cli({"request", "-c", unix_ep, php_fpm::script("stderr.php")});
    BOOST_TEST(found.exit_code == 0);
    BOOST_TEST(found.err.ends_with("second message\n"), found.err);
    BOOST_TEST(found.err.find("SCRIPT_FILENAME") == std::string::npos, found.err);
}

BOOST_AUTO_TEST_CASE(fail_flag) {
    auto r =
        fcgi_cli({"request", "-c", unix_ep, "--fail", php_fpm::script("status.php") + "?code=404"});
    BOOST_TEST(r.exit_code == 22);
    BOOST_TEST(r.out.empty());  // like curl -f: no body for an error status
    BOOST_TEST(is_one_error_line(r.err), r.err);
    BOOST_TEST(r.err.find("404") != std::string::npos, r.err);

    auto fine =
        fcgi_cli({"request", "-c", unix_ep, "-f", php_fpm::script("status.php") + "?code=201"});
    BOOST_TEST(fine.exit_code == 0);
    BOOST_TEST(fine.out == "status 201\n");

    // A fatal error is a 500 response, not a client failure; PHP's message is on stderr.
    auto fatal = fcgi_cli({"request", "-c", unix_ep, php_fpm::script("fatal.php")});
    BOOST_TEST(fatal.exit_code == 0);
    BOOST_TEST(fatal.err.find("undefined_function_xyz") != std::string::npos, fatal.err);
    auto fatal_f = fcgi_cli({"request", "-c", unix_ep, "-f", php_fpm::script("fatal.php")});
    BOOST_TEST(fatal_f.exit_code == 22);

    // php-fpm's stderr text has no final newline; the tool's own line still starts a line.
    auto missing =
        fcgi_cli({"request", "-c", unix_ep, "-f", php_fpm::script("no-such-script.php")});
    BOOST_TEST(missing.exit_code == 22);
    BOOST_TEST(missing.out.empty());
    BOOST_TEST(
        missing.err.find("Primary script unknown\nfcgi: " + unix_ep + ": ") != std::string::npos,
        missing.err);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
    // FCGI_CONNECT is removed from the child's environment by run().
    auto no_connect = fcgi_cli({"request", php_fpm::script("hello.php")});
    BOOST_TEST(no_connect.exit_code == 2);
    BOOST_TEST(is_one_error_line(no_connect.err), no_connect.err);
    BOOST_TEST(no_connect.out.empty());

    // Against a socket that does not exist: a 3 would mean something was tried first.
    temp_socket_path missing;
    const std::string nowhere = "unix:" + missing.path;
    for (const auto& bad : std::vector<std::vector<std::string>>{
             {"--header", "X-Bad: a\r\nX-Injected: 1"},
             {"--header", "X-Bad: a\nb"},
             {"--header", "NoColonHere"},
             {"--header", "Bad Name: x"},
             {"--param", "NO_EQUALS_SIGN"},
             {"--param", "=value"},
             {"--timeout", "-1"},
             {"--timeout", "nan"},
             {"--timeout", "1e300"},
             {"--max-stderr", "-1"},
             {"--max-stderr", "18446744073709551616"},  // 2^64: past what a size holds
             {"--max-stderr", "99999999999999999999999k"},
             {"--data", "@/nonexistent/file"},
             {"--root", "/nonexistent-root"},  // the script is not below it
             {"--no-such-flag"},
             // Too large for a PARAMS record: found before connecting, not after.
             {"--header", "X-Big: " + std::string(70000, 'h')},
             {"--param", "BIG=" + std::string(70000, 'p')},
         }) {
        std::vector<std::string> args{"request", "-c", nowhere};
        args.insert(args.end(), bad.begin(), bad.end());
        args.push_back(php_fpm::script("hello.php"));
        auto r = fcgi_cli(args);
        BOOST_TEST_CONTEXT(bad.front() << " " << bad.back()) {
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(is_one_error_line(r.err), r.err);
        }
    }
    // Named by the flag that made it, not by the library's request field.
    auto big = fcgi_cli({"request", "-c", nowhere, "--header", "X-Big: " + std::string(70000, 'h'),
                         php_fpm::script("hello.php")});
    BOOST_TEST(big.err.find("param HTTP_X_BIG (from a --header) takes 70015 bytes encoded") !=
                   std::string::npos,
               big.err);
    auto long_query = fcgi_cli(
        {"request", "-c", nowhere, php_fpm::script("hello.php") + "?" + std::string(70000, 'q')});
    BOOST_TEST(long_query.exit_code == 2);
    BOOST_TEST(long_query.err.find("SCRIPT?QUERY) takes") != std::string::npos, long_query.err);
    // A flag error names the help of the subcommand it was given to.
    auto bad_flag = fcgi_cli({"bench", "-c", nowhere, "--no-such-flag", "x.php"});
    BOOST_TEST(bad_flag.exit_code == 2);
    BOOST_TEST(bad_flag.err.find("see 'fcgi bench --help'") != std::string::npos, bad_flag.err);
    auto no_sub = fcgi_cli({"--no-such-flag"});
    BOOST_TEST(no_sub.err.find("see 'fcgi --help'") != std::string::npos, no_sub.err);
    BOOST_TEST(no_sub.err.find("unknown option '--no-such-flag'") != std::string::npos, no_sub.err);
    // A command's flag before the command.
    auto flag_first = fcgi_cli({"-c", nowhere, "request", "x.php"});
    BOOST_TEST(flag_first.exit_code == 2);
    BOOST_TEST(flag_first.err.find("'-c' comes before the command: flags follow it (fcgi "
                                   "request -c ...)") != std::string::npos,
               flag_first.err);
    BOOST_TEST(fcgi_cli({}).exit_code == 2);  // no subcommand
    auto misspelt = fcgi_cli({"reqest", "-c", nowhere, "x.php"});
    BOOST_TEST(misspelt.exit_code == 2);
    BOOST_TEST(misspelt.err.find("unknown command 'reqest'") != std::string::npos, misspelt.err);
    // An empty -o is a mistake, not stdout (-o - is).
    auto empty_output = fcgi_cli({"request", "-c", nowhere, "-o", "", "x.php"});
    BOOST_TEST(empty_output.exit_code == 2);
    BOOST_TEST(is_one_error_line(empty_output.err), empty_output.err);
    // One of several fanout endpoints empty: not "no server address", since some were given.
    auto one_empty = fcgi_cli({"fanout", "-c", nowhere, "-c", "", "/dev/null"});
    BOOST_TEST(one_empty.exit_code == 2);
    BOOST_TEST(one_empty.err.find("one of the 2 --connect values is empty") != std::string::npos,
               one_empty.err);
    // An empty --connect overrides FCGI_CONNECT: said so, not "set FCGI_CONNECT".
    for (const char* command : {"request", "probe", "bench", "fanout"}) {
        run_spec spec;
        spec.args = {command, "-c", ""};
        if (std::string(command) != "probe")
            spec.args.push_back(php_fpm::script("hello.php"));
        spec.env = {"FCGI_CONNECT=" + unix_ep};
        auto r = run(spec);
        BOOST_TEST_CONTEXT(command) {
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(r.err.find("--connect is empty") != std::string::npos, r.err);
        }
    }
    BOOST_TEST(fcgi_cli({"request", "-c", unix_ep}).exit_code == 2);  // no script
    BOOST_TEST(fcgi_cli({"request", "-c", "not an address", "x.php"}).exit_code == 2);

    auto help = fcgi_cli({"--help"});
    BOOST_TEST(help.exit_code == 0);
    BOOST_TEST(help.out.find("Exit codes:") != std::string::npos);
    BOOST_TEST(help.out.find("22") != std::string::npos);
    // Only the command named first gets its flags built (start-up): each command's help must
    // still list its own flags (the second loop; the first guards the top-level list).
    for (const char* command : {"request", "probe", "fanout", "bench"})
        BOOST_TEST(help.out.find(std::string("  ") + command + " ") != std::string::npos,
                   command << " in " << help.out);
    for (const auto& [command, flag] :
         std::vector<std::pair<std::string, std::string>>{{"request", "--max-stderr"},
                                                          {"request", "--output"},
                                                          {"request", "--header"},
                                                          {"fanout", "--wait-when-down"},
                                                          {"bench", "--concurrency"},
                                                          {"probe", "--connect"}}) {
        auto command_help = fcgi_cli({command, "--help"});
        BOOST_TEST(command_help.exit_code == 0);
        BOOST_TEST(command_help.out.find(flag) != std::string::npos,
                   flag << " in " << command_help.out);
    }
    auto version = fcgi_cli({"--version"});
    BOOST_TEST(version.exit_code == 0);
    BOOST_TEST(version.out.starts_with("fcgi 0."), version.out);
    // Each subcommand lists the exit codes it can return: probe has no --fail.
    auto probe_help = fcgi_cli({"probe", "--help"});
    BOOST_TEST(probe_help.exit_code == 0);
    BOOST_TEST(probe_help.out.find("answered GET_VALUES") != std::string::npos, probe_help.out);
    BOOST_TEST(probe_help.out.find("--fail") == std::string::npos, probe_help.out);
}

// --data from a source that never ends (`yes |`, @/dev/zero) is a usage error, not an abort on
// std::bad_alloc: under a 512 MiB address-space limit, memory runs out before the 1 GiB cap
// (read_body's other branch, unit-tested with a small limit). Not under ASan, whose shadow
// memory needs more address space than that.
#if !defined(__SANITIZE_ADDRESS__)
BOOST_AUTO_TEST_CASE(endless_data_is_a_usage_error_not_an_abort) {
    temp_socket_path missing;  // found before connecting: nothing need listen
    for (const char* command : {"request", "bench"}) {
        run_spec spec;
        spec.program = "/bin/sh";
        spec.args = {"-c",
                     std::string("ulimit -v 524288 && exec \"$0\" ") + command +
                         " -c unix:" + missing.path + " -d @/dev/zero x.php",
                     FCGI_CLI_PATH};
        auto r = run(spec);
        BOOST_TEST_CONTEXT(command) {
            BOOST_TEST(r.exit_code == 2, r.err);
            BOOST_TEST(is_one_error_line(r.err), r.err);
            BOOST_TEST(r.err.find("out of memory after reading") != std::string::npos, r.err);
            BOOST_TEST(r.err.find("give --data @FILE, whose length is known") != std::string::npos,
                       r.err);
        }
    }
}
#endif

BOOST_AUTO_TEST_CASE(connect_failure_exits_3) {
    temp_socket_path missing;
    const std::string ep = "unix:" + missing.path;
    auto r = fcgi_cli({"request", "--connect", ep, php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 3);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(is_one_error_line(r.err), r.err);
    BOOST_TEST(r.err.find(ep) != std::string::npos, r.err);

    fcgi::test::refusing_port closed;
    const std::string refused = "127.0.0.1:" + std::to_string(closed.port());
    auto t = fcgi_cli({"request", "--connect", refused, php_fpm::script("hello.php")});
    BOOST_TEST(t.exit_code == 3);
    BOOST_TEST(is_one_error_line(t.err), t.err);
    BOOST_TEST(t.err.find(refused) != std::string::npos, t.err);

    // The errno says "refused" for a directory too; the message says what is at the path.
    const std::string dir = fs::temp_directory_path().string();
    auto d = fcgi_cli({"request", "--connect", "unix:" + dir, php_fpm::script("hello.php")});
    BOOST_TEST(d.exit_code == 3);
    BOOST_TEST(is_one_error_line(d.err), d.err);
    BOOST_TEST(d.err.find(dir + " is a directory, not a socket") != std::string::npos, d.err);
    BOOST_TEST(r.err.find("is php-fpm running") != std::string::npos, r.err);
}

// php-fpm closes a connection from an address listen.allowed_clients does not list as soon as a
// worker takes it, with nothing sent and nothing logged: the error line names the setting,
// whether the close came before the request was written (not_connected) or after it.
BOOST_AUTO_TEST_CASE(client_not_in_allowed_clients) {
    php_fpm picky({.children = 1, .extra_pool_lines = {"listen.allowed_clients = 192.0.2.1"}});
    const std::string ep = "127.0.0.1:" + std::to_string(picky.tcp_port());
    auto r = fcgi_cli({"request", "-c", ep, php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 6, r.err);
    BOOST_TEST(r.out.empty());
    BOOST_TEST(is_one_error_line(r.err), r.err);
    BOOST_TEST(r.err.find("may not accept this client (php-fpm: listen.allowed_clients)") !=
                   std::string::npos,
               r.err);
    // Said once; once the request was written, the hint about killed workers stays, since one
    // killed before writing anything closes the connection just so (the time printed tells them
    // apart). A close seen before the write (not_connected, "is not open") ran no script.
    BOOST_TEST(r.err.find("allowed_clients") == r.err.rfind("allowed_clients"), r.err);
    const bool written = r.err.find("is not open") == std::string::npos;
    BOOST_TEST(written == (r.err.find("request_terminate_timeout") != std::string::npos), r.err);
}

// A shell's `>&-` (or `<&- >&-`) leaves the standard descriptors closed: the body went into
// whatever the tool opened next under that number (Asio's eventfd), lost with exit 0, or failed
// with that descriptor's errno. It now fails as a closed stdout does.
BOOST_AUTO_TEST_CASE(closed_stdout_fails_the_request) {
    for (const char* closing : {">&-", "<&- >&-"}) {
        BOOST_TEST_CONTEXT(closing) {
            run_spec spec;
            spec.program = "/bin/sh";
            spec.args = {"-c", std::string("exec \"$0\" request -c \"$1\" \"$2\" ") + closing,
                         FCGI_CLI_PATH, unix_ep, php_fpm::script("hello.php")};
            auto r = run(spec);
            BOOST_TEST(r.exit_code == 6, r.err);
            BOOST_TEST(is_one_error_line(r.err), r.err);
            BOOST_TEST(r.err.find("Bad file descriptor") != std::string::npos, r.err);
        }
    }
}

// A connect still pending at --timeout is named by the flag, not the library's option.
BOOST_AUTO_TEST_CASE(connect_timeout_is_said_in_flag_terms,
                     *boost::unit_test::precondition(fcgi::test::syns_dropped_when_backlog_full)) {
    fcgi::test::unaccepted_listener full;
    auto r = fcgi_cli(
        {"request", "-c", full.endpoint().to_string(), "-t", "0.3", php_fpm::script("hello.php")});
    BOOST_TEST(r.exit_code == 4, r.err);
    BOOST_TEST(r.err.find("did not complete within --timeout") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("connect_timeout") == std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(timeout_exits_4) {
    run_spec spec;
    spec.args = {"request",   "-c",  unix_ep,
                 "--timeout", "0.5", php_fpm::script("sleep.php") + "?ms=3000"};
    spec.limit = 20s;
    auto r = run(spec);
    BOOST_TEST(r.exit_code == 4);
    // Cut before the script's 3 s; the rest of the bound is for starting the tool on a loaded
    // machine.
    BOOST_TEST(r.elapsed < 2900ms, r.elapsed.count() << " ms");
    BOOST_TEST(r.elapsed >= 450ms, r.elapsed.count() << " ms");
    BOOST_TEST(r.out.empty());
    BOOST_TEST(is_one_error_line(r.err), r.err);
    BOOST_TEST(r.err.find(unix_ep) != std::string::npos, r.err);

    // What the script logged before it timed out is printed too, before the error line: it was
    // once dropped with the failed response.
    spec.args.back() += "&log=stuck-waiting-for-the-database";
    r = run(spec);
    BOOST_TEST(r.exit_code == 4);
    auto logged = r.err.find("stuck-waiting-for-the-database");
    BOOST_TEST(logged != std::string::npos, r.err);
    BOOST_TEST((logged < r.err.find("fcgi: ")), r.err);
}

// php-fpm kills a worker past request_terminate_timeout and closes its connection: the error
// says when, and what usually does that.
BOOST_AUTO_TEST_CASE(killed_worker_is_named) {
    php_fpm strict({.children = 1, .extra_pool_lines = {"request_terminate_timeout = 1"}});
    run_spec spec;
    spec.args = {"request", "-c", strict.unix_endpoint(),
                 php_fpm::script("sleep.php") + "?ms=10000&log=started"};
    spec.limit = 20s;
    auto r = run(spec);
    BOOST_TEST(r.exit_code == 6, r.err);
    BOOST_TEST(r.err.find("started") < r.err.find("fcgi: "), r.err);
    BOOST_TEST(r.err.find("request failed after ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("(request_terminate_timeout, a crash, a reload)") != std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("of it waiting for") == std::string::npos, r.err);  // stdout kept up
    // Bytes came back, so not the hint for a server that refuses the client.
    BOOST_TEST(r.err.find("may not accept this client") == std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(probe_reports_get_values) {
    for (const auto& ep : {unix_ep, tcp_ep}) {
        auto r = fcgi_cli({"probe", "--connect", ep});
        BOOST_TEST_CONTEXT(ep << " stderr: " << r.err) {
            BOOST_TEST(r.exit_code == 0);
            BOOST_TEST(r.out == "FCGI_MPXS_CONNS=0\nmultiplexing: no\n");
            BOOST_TEST(r.err.empty());
        }
    }
    temp_socket_path missing;
    const std::string ep = "unix:" + missing.path;
    auto bad = fcgi_cli({"probe", "--connect", ep, "--timeout", "2"});
    BOOST_TEST(bad.exit_code == 3);
    BOOST_TEST(is_one_error_line(bad.err), bad.err);
    BOOST_TEST(bad.err.find(ep) != std::string::npos, bad.err);
    BOOST_TEST(fcgi_cli({"probe"}).exit_code == 2);

    // Accepted and never answered (php-fpm with every worker busy): a timeout that says so,
    // so a health check does not take a saturated pool for a dead server.
    fcgi::test::fake_responder silent({.silent = true});
    auto quiet =
        fcgi_cli({"probe", "--connect", silent.unix_endpoint().to_string(), "--timeout", "0.3"});
    BOOST_TEST(quiet.exit_code == 4);
    BOOST_TEST(is_one_error_line(quiet.err), quiet.err);
    BOOST_TEST(quiet.err.find("with every worker busy") != std::string::npos, quiet.err);
}

// A server's value is printed so that it cannot forge a line of the output or reach the
// terminal as an escape; one that is not a number is not "not reported".
BOOST_AUTO_TEST_CASE(probe_prints_odd_values_safely) {
    fcgi::test::fake_responder forging(
        {.mpxs_conns = "0\nmultiplexing: yes\x1b[2J", .max_reqs = {}, .max_conns = {}});
    auto r = fcgi_cli({"probe", "--connect", forging.unix_endpoint().to_string()});
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(r.out ==
                   "FCGI_MPXS_CONNS=0\\x0amultiplexing: yes\\x1b[2J\n"
                   "multiplexing: unknown (FCGI_MPXS_CONNS is not a number)\n",
               r.out);
    fcgi::test::fake_responder wordy({.mpxs_conns = "yes", .max_reqs = {}, .max_conns = {}});
    auto w = fcgi_cli({"probe", "--connect", wordy.unix_endpoint().to_string()});
    BOOST_TEST(w.out ==
                   "FCGI_MPXS_CONNS=yes\nmultiplexing: unknown (FCGI_MPXS_CONNS is not a "
                   "number)\n",
               w.out);
}

BOOST_AUTO_TEST_SUITE_END()

#else

BOOST_AUTO_TEST_CASE(cli_not_built) {
    BOOST_TEST_MESSAGE("fcgi CLI not built (FCGI_BUILD_TOOLS=OFF): CLI tests skipped");
}

#endif
