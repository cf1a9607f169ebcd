// `fcgi fanout`, run as a child process against a private php-fpm: one JSON result line per job,
// ids echoed, invalid lines reported by number, the summary on stderr, exit codes.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/checksum.hpp"
#include "support/fake_responder.hpp"
#include "support/php_fpm.hpp"
#include "support/refusing_port.hpp"
#include "support/spawn.hpp"
#include "support/temp_file.hpp"

#ifdef FCGI_CLI_PATH

#include <nlohmann/json.hpp>

using fcgi::test::php_fpm;
using fcgi::test::run_result;
using fcgi::test::run_spec;
using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

using fcgi::test::binary_data;
using fcgi::test::md5_of;
using fcgi::test::temp_file;

run_result fanout(std::vector<std::string> args, std::string input = {},
                  std::chrono::seconds limit = 60s) {
    run_spec spec;
    spec.program = FCGI_CLI_PATH;
    spec.args = {"fanout"};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
    spec.input = std::move(input);
    spec.limit = limit;
    return fcgi::test::run_child(spec);
}

// Every stdout line as JSON; a line that does not parse fails the test.
std::vector<json> result_lines(const std::string& out) {
    std::vector<json> lines;
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        BOOST_REQUIRE_MESSAGE(nl != std::string::npos, "last line not terminated: " << out);
        std::string line = out.substr(pos, nl - pos);
        pos = nl + 1;
        json j = json::parse(line, nullptr, false);
        BOOST_REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << line);
        BOOST_REQUIRE(j.is_object());
        for (const char* key : {"id", "status", "headers", "duration_ms", "times_sent", "error"})
            BOOST_REQUIRE_MESSAGE(j.contains(key), key << " missing: " << line);
        lines.push_back(std::move(j));
    }
    return lines;
}

// The output of a coreutils tool fed `input`: oracles independent of PHP and of the tool.
std::string oracle(const std::string& program, const std::vector<std::string>& args,
                   const std::string& input) {
    run_spec spec;
    spec.program = program;
    spec.args = args;
    spec.input = input;
    auto r = fcgi::test::run_child(spec);
    BOOST_REQUIRE_EQUAL(r.exit_code, 0);
    return r.out;
}

std::string base64_of(const std::string& data) {
    return oracle("/usr/bin/base64", {"-w0"}, data);
}

std::string line_of(const json& job) {
    return job.dump() + "\n";
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

struct fpm_fixture {
    // Four workers for the default --connections 4: a kept-alive connection pins a worker.
    php_fpm fpm{{.children = 4}};
    std::string unix_ep = fpm.unix_endpoint();
    std::string tcp_ep = fpm.tcp_endpoint();
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli_fanout, fpm_fixture)

BOOST_AUTO_TEST_CASE(mixed_jobs_with_invalid_lines) {
    const std::string body_text = "name=fanout&x=1";
    const std::string bin = "\x00\x01\xfe\xff binary\r\n"s;  // NUL first: needs the length
    std::string input;
    std::size_t line = 0;
    std::size_t malformed_line = 0, no_script_line = 0;
    std::map<int, std::string> kind;  // id -> what was asked
    for (int id = 0; id < 200; ++id) {
        if (id == 20) {  // blank lines are skipped but still counted
            input += "\n  \n";
            line += 2;
        }
        ++line;
        json job = {{"id", id}};
        if (id == 77) {
            input += R"({"id": 77, "script": "hello.php",)"
                     "\n";  // cut off: not JSON
            malformed_line = line;
            continue;
        }
        if (id == 150) {
            job["method"] = "GET";
            input += line_of(job);
            no_script_line = line;
            continue;
        }
        if (id == 60) {
            job["script"] = php_fpm::script("no-such-script.php");
            kind[id] = "missing";
            input += line_of(job);
            continue;
        }
        switch (id % 6) {
            case 0:
                job["script"] = php_fpm::script("hello.php");
                kind[id] = "hello";
                break;
            case 1:
                job["script"] = php_fpm::script("echo.php");
                job["query"] = "a=1&n=" + std::to_string(id);
                kind[id] = "query";
                break;
            case 2:
                job["script"] = php_fpm::script("echo.php");
                job["body"] = body_text;
                job["headers"] = {{"Content-Type", "application/x-www-form-urlencoded"}};
                kind[id] = "body";
                break;
            case 3:
                job["script"] = php_fpm::script("echo.php");
                job["body_base64"] = base64_of(bin);
                job["method"] = "PUT";
                kind[id] = "body_base64";
                break;
            case 4:
                job["script"] = php_fpm::script("status.php") + "?code=404";
                kind[id] = "status";
                break;
            case 5:
                job["script"] = php_fpm::script("stderr.php");
                kind[id] = "stderr";
                break;
        }
        input += line_of(job);
    }

    auto r = fanout({"--connect", unix_ep, "--concurrency", "16"}, input);
    BOOST_TEST(r.exit_code == 6);  // the two invalid jobs
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 200u);

    std::map<int, int> seen;
    int null_ids = 0;
    const std::string body_md5 = md5_of(body_text);
    const std::string bin_md5 = md5_of(bin);
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            if (j["id"].is_null()) {
                ++null_ids;  // the malformed line: its id cannot be read
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(j["error"]["message"].get<std::string>(),
                               "line " + std::to_string(malformed_line) + ":"));
                continue;
            }
            int id = j["id"].get<int>();
            ++seen[id];
            if (id == 150) {
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(j["error"]["message"].get<std::string>(),
                               "line " + std::to_string(no_script_line) + ":"));
                BOOST_TEST(has(j["error"]["message"].get<std::string>(), "script"));
                BOOST_TEST(j["status"].is_null());
                continue;
            }
            BOOST_REQUIRE(j["error"].is_null());
            BOOST_TEST(j["duration_ms"].get<double>() > 0);
            BOOST_TEST(j["times_sent"] == 1);
            const std::string& k = kind.at(id);
            const std::string body = j.value("body", "");
            if (k == "hello") {
                BOOST_TEST(j["status"] == 200);
                BOOST_TEST(body == "Hello, world!\n");
                BOOST_TEST(j["stderr"] == "");
            } else if (k == "query") {
                auto echo = json::parse(body);
                BOOST_TEST(echo["method"] == "GET");
                BOOST_TEST(echo["query"] == "a=1&n=" + std::to_string(id));
                BOOST_TEST(echo["get"]["n"] == std::to_string(id));
            } else if (k == "body") {
                auto echo = json::parse(body);
                BOOST_TEST(echo["method"] == "POST");
                BOOST_TEST(echo["content_type"] == "application/x-www-form-urlencoded");
                BOOST_TEST(echo["body_md5"] == body_md5);
            } else if (k == "body_base64") {
                auto echo = json::parse(body);
                BOOST_TEST(echo["method"] == "PUT");
                BOOST_TEST(echo["body_length"] == bin.size());
                BOOST_TEST(echo["body_md5"] == bin_md5);
            } else if (k == "status") {
                BOOST_TEST(j["status"] == 404);
                BOOST_TEST(j["headers"]["X-Multi"] == json::array({"one", "two"}));
                BOOST_TEST(j["headers"]["Set-Cookie"] == json::array({"a=1", "b=2"}));
                BOOST_TEST(body == "status 404\n");
            } else if (k == "stderr") {
                BOOST_TEST(j["status"] == 200);
                BOOST_TEST(body == "body-start\nbody-end\n");
                BOOST_TEST(has(j["stderr"].get<std::string>(), "first message"));
                BOOST_TEST(has(j["stderr"].get<std::string>(), "second message"));
            } else if (k == "missing") {
                // php-fpm answers a missing script itself: a response, not a failure.
                BOOST_TEST(j["status"] == 404);
                BOOST_TEST(has(j["stderr"].get<std::string>(), "Primary script unknown"));
            }
        }
    }
    BOOST_TEST(null_ids == 1);
    BOOST_TEST(seen.size() == 199u);  // every id but the malformed line's
    for (const auto& [id, n] : seen)
        BOOST_TEST(n == 1, "id " << id << " seen " << n << " times");
    BOOST_TEST(!seen.contains(77));
    BOOST_TEST(has(r.err, "200 jobs, 198 ok, 2 failed (invalid_job 2)"), r.err);
}

BOOST_AUTO_TEST_CASE(clean_file_exits_0_with_summary) {
    std::string input;
    for (int id = 0; id < 300; ++id) {
        json job = {{"id", "job-" + std::to_string(id)}};
        job["script"] = id % 2 ? "hello.php" : "echo.php";  // relative: against --root
        input += line_of(job);
    }
    temp_file file(input);
    auto r = fanout({"-c", tcp_ep, "--concurrency", "32", "--connections", "4", "--root",
                     php_fpm::script_dir(), file.path});
    BOOST_TEST(r.exit_code == 0, r.err);
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 300u);
    std::map<std::string, int> seen;
    for (const auto& j : lines) {
        BOOST_TEST(j["error"].is_null(), j.dump());
        BOOST_TEST(j["status"] == 200);
        ++seen[j["id"].get<std::string>()];
    }
    BOOST_TEST(seen.size() == 300u);
    BOOST_TEST(has(r.err, "fanout: 300 jobs, 300 ok, 0 failed\n"), r.err);
    BOOST_TEST(has(r.err, "300 requests sent in "), r.err);
    BOOST_TEST(has(r.err, " req/s, latency p50 "), r.err);
    BOOST_TEST(has(r.err, " ms, p99 "), r.err);
    BOOST_TEST(!has(r.err, "warning"), r.err);  // 300 distinct ids
}

// Results carry only the id: ids given twice are named, and the jobs still run.
BOOST_AUTO_TEST_CASE(repeated_ids_are_named) {
    std::string input;
    for (auto id : {json(1), json("a"), json(1), json(nullptr), json(nullptr), json("a"), json(1)})
        input += line_of({{"id", id}, {"script", php_fpm::script("hello.php")}});
    input += line_of({{"script", php_fpm::script("hello.php")}});  // no id: not counted
    auto r = fanout({"-c", unix_ep}, input);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(result_lines(r.out).size() == 8u);
    BOOST_TEST(has(r.err,
                   "warning: 3 jobs reuse an earlier job's id (id 1 on line 3 repeats line "
                   "1, id \"a\" on line 6 repeats line 2, id 1 on line 7 repeats line 1)"),
               r.err);
}

// More connections than php-fpm workers: the connections beyond them wait in php-fpm's backlog
// while the others are kept alive. Without the pool's backlog relief their jobs wait until the
// others have idled out (idle_timeout, 20 s), and the limit below kills the run first; with it
// every job is answered about a second after the queue drained.
BOOST_AUTO_TEST_CASE(more_connections_than_workers_still_finishes) {
    std::string input;
    for (int id = 0; id < 40; ++id)
        input += line_of({{"id", id}, {"script", "hello.php"}});
    temp_file file(input);
    auto r = fanout({"-c", unix_ep, "--concurrency", "16", "--connections", "6", "--root",
                     php_fpm::script_dir(), file.path},
                    {}, 12s);
    BOOST_TEST(r.exit_code == 0, r.err);
    auto lines = result_lines(r.out);
    BOOST_TEST(lines.size() == 40u);
    for (const auto& j : lines)
        BOOST_TEST(j["status"] == 200, j.dump());
    BOOST_TEST(has(r.err, "fanout: 40 jobs, 40 ok, 0 failed\n"), r.err);
    // ... and the summary says why those jobs took a second, and what to change.
    BOOST_TEST(has(r.err, " got no answer for 1000 ms, waiting in php-fpm's listen backlog"),
               r.err);
    BOOST_TEST(has(r.err, "keep --connections at most pm.max_children"), r.err);
}

BOOST_AUTO_TEST_CASE(body_base64_round_trip) {
    const std::string data = binary_data();
    const std::string encoded = base64_of(data);
    const std::string text = "h\xc3\xa9llo \xe2\x9c\x93\n";  // valid UTF-8: comes back as text
    std::string input =
        line_of(
            {{"id", "bin"}, {"script", php_fpm::script("body.php")}, {"body_base64", encoded}}) +
        line_of({{"id", "text"},
                 {"script", php_fpm::script("body.php")},
                 {"body_base64", base64_of(text)}});
    auto r = fanout({"--connect", unix_ep}, input);
    BOOST_TEST(r.exit_code == 0, r.err);
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 2u);
    for (const auto& j : lines) {
        BOOST_REQUIRE_MESSAGE(j["error"].is_null(), j.dump());
        if (j["id"] == "bin") {
            BOOST_TEST(!j.contains("body"));
            BOOST_TEST(j["body_base64"].get<std::string>() == encoded);
        } else {
            BOOST_TEST(!j.contains("body_base64"));
            BOOST_TEST(j["body"].get<std::string>() == text);
        }
    }

    auto bad = fanout({"--connect", unix_ep},
                      line_of({{"id", 1}, {"script", "x.php"}, {"body_base64", "not base64!"}}));
    BOOST_TEST(bad.exit_code == 6);
    auto bad_lines = result_lines(bad.out);
    BOOST_REQUIRE_EQUAL(bad_lines.size(), 1u);
    BOOST_TEST(bad_lines[0]["error"]["code"] == "invalid_job");
    BOOST_TEST(has(bad_lines[0]["error"]["message"].get<std::string>(), "line 1: "));
}

BOOST_AUTO_TEST_CASE(dead_endpoint_beside_a_live_one) {
    std::string input;
    for (int id = 0; id < 50; ++id)
        input += line_of({{"id", id}, {"script", php_fpm::script("hello.php")}});
    fcgi::test::temp_socket_path nothing_there;
    const std::string missing = "unix:" + nothing_there.path;
    fcgi::test::refusing_port closed;
    const std::string refused = "127.0.0.1:" + std::to_string(closed.port());
    for (const auto& dead : {missing, refused}) {
        auto r = fanout({"--connect", dead, "--connect", unix_ep}, input);
        BOOST_TEST_CONTEXT(dead << " stderr: " << r.err) {
            BOOST_TEST(r.exit_code == 0);
            auto lines = result_lines(r.out);
            BOOST_TEST(lines.size() == 50u);
            for (const auto& j : lines)
                BOOST_TEST(j["error"].is_null(), j.dump());
        }
    }

    // Nothing alive: every job fails with a stable code, and the exit code says so.
    auto none = fanout({"--connect", missing}, input.substr(0, input.find('\n') + 1));
    BOOST_TEST(none.exit_code == 6);
    auto lines = result_lines(none.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 1u);
    BOOST_TEST(lines[0]["error"]["code"] == "no_endpoint", lines[0].dump());
    BOOST_TEST(has(lines[0]["error"]["message"].get<std::string>(), missing.substr(5)),
               lines[0].dump());
    // Nothing reached a server: no request was sent, and no latency is made up.
    BOOST_TEST(has(none.err, "fanout: 1 job, 0 ok, 1 failed (no_endpoint 1)"), none.err);
    BOOST_TEST(has(none.err, "fanout: 0 requests sent in "), none.err);
    BOOST_TEST(!has(none.err, "latency"), none.err);
}

BOOST_AUTO_TEST_CASE(timeout_flag_and_job_timeout) {
    const std::string slow = php_fpm::script("sleep.php") + "?ms=3000";
    std::string input = line_of({{"id", "slow"}, {"script", slow}}) +
                        line_of({{"id", "fast"}, {"script", php_fpm::script("hello.php")}});
    auto r = fanout({"--connect", unix_ep, "--timeout", "0.3"}, input, 20s);
    BOOST_TEST(r.exit_code == 6);
    // Cut before the script's 3 s; the rest of the bound is for starting the tool on a loaded
    // machine.
    BOOST_TEST(r.elapsed < 2900ms, r.elapsed.count() << " ms");
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 2u);
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            if (j["id"] == "slow") {
                BOOST_TEST(j["error"]["code"] == "request_timeout");
                BOOST_TEST(j["status"].is_null());
                BOOST_TEST(j["duration_ms"].get<double>() >= 290.0);
            } else {
                BOOST_TEST(j["error"].is_null());
            }
        }
    }
    BOOST_TEST(has(r.err, "request_timeout 1"), r.err);

    // A job's own "timeout" applies without --timeout.
    auto own = fanout({"--connect", unix_ep},
                      line_of({{"id", 1}, {"script", slow}, {"timeout", 0.3}}), 20s);
    BOOST_TEST(own.exit_code == 6);
    BOOST_TEST(own.elapsed < 2900ms, own.elapsed.count() << " ms");
    auto own_lines = result_lines(own.out);
    BOOST_REQUIRE_EQUAL(own_lines.size(), 1u);
    BOOST_TEST(own_lines[0]["error"]["code"] == "request_timeout", own_lines[0].dump());

    // A failed job keeps the stderr that had arrived: often the line that says why.
    auto logged = fanout({"--connect", unix_ep, "--timeout", "0.3"},
                         line_of({{"id", 1}, {"script", slow + "&log=got-this-far"}}), 20s);
    BOOST_TEST(logged.exit_code == 6);
    auto logged_lines = result_lines(logged.out);
    BOOST_REQUIRE_EQUAL(logged_lines.size(), 1u);
    BOOST_TEST_CONTEXT(logged_lines[0].dump()) {
        BOOST_TEST(logged_lines[0]["error"]["code"] == "request_timeout");
        BOOST_TEST(has(logged_lines[0]["stderr"].get<std::string>(), "got-this-far"));
        BOOST_TEST(logged_lines[0]["status"].is_null());
    }

    // One connection: the second job's deadline passes in the client's queue. It was never
    // sent, and the summary no longer counts it as a request sent. The first holds the
    // connection well past it: with equal deadlines, the first's expiry freed the connection
    // and a loaded machine could send the second before its own timer ran.
    auto queued = fanout(
        {"--connect", unix_ep, "--timeout", "0.3", "--concurrency", "2", "--connections", "1"},
        line_of({{"id", 1}, {"script", slow}, {"timeout", 1.5}}) +
            line_of({{"id", 2}, {"script", slow}}),
        20s);
    BOOST_TEST(queued.exit_code == 6);
    auto queued_lines = result_lines(queued.out);
    BOOST_REQUIRE_EQUAL(queued_lines.size(), 2u);
    for (const auto& j : queued_lines)
        BOOST_TEST(j["error"]["code"] == "request_timeout", j.dump());
    BOOST_TEST(has(queued.err, "fanout: 1 request sent in "), queued.err);
}

// pm.max_requests = 1: the second of two POST jobs lands on the connection its worker closes
// after the first. It did not run, but a POST is not sent twice, unless the job says it may be.
BOOST_AUTO_TEST_CASE(idempotent_jobs_survive_a_worker_recycle) {
    php_fpm recycling({.children = 1, .max_requests = 1, .tcp = false});
    auto post = [&](int id, std::optional<bool> idempotent) {
        json j = {{"id", id}, {"script", php_fpm::script("echo_body.php")}, {"body", "job"}};
        if (idempotent)
            j["idempotent"] = *idempotent;
        return line_of(j);
    };
    auto run = [&](std::optional<bool> idempotent) {
        return fanout(
            {"--connect", recycling.unix_endpoint(), "--connections", "1", "--concurrency", "2"},
            post(1, idempotent) + post(2, idempotent));
    };
    auto retried = run(true);
    BOOST_TEST(retried.exit_code == 0, retried.out << retried.err);
    for (const auto& j : result_lines(retried.out))
        BOOST_TEST((j["error"].is_null() && j["body"] == "job"), j.dump());

    auto not_retried = run(std::nullopt);
    BOOST_TEST(not_retried.exit_code == 6, not_retried.out << not_retried.err);
    int failed = 0;
    for (const auto& j : result_lines(not_retried.out))
        failed += !j["error"].is_null();
    BOOST_TEST(failed == 1, not_retried.out);
}

// --wait-when-down keeps jobs waiting for a server that refuses connections until their deadline,
// which then names the endpoint down; --max-output and --max-stderr set the response limits
// (a body past its limit fails the job; STDERR past its limit is cut and counted).
BOOST_AUTO_TEST_CASE(wait_when_down_and_response_limits) {
    fcgi::test::temp_socket_path nothing_there;
    const std::string missing = "unix:" + nothing_there.path;
    const std::string job = line_of({{"id", 1}, {"script", php_fpm::script("hello.php")}});
    auto waited = fanout({"--connect", missing, "--wait-when-down", "--timeout", "0.4"}, job, 20s);
    BOOST_TEST(waited.exit_code == 6, waited.err);
    auto lines = result_lines(waited.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 1u);
    BOOST_TEST(lines[0]["error"]["code"] == "request_timeout", lines[0].dump());
    const auto message = lines[0]["error"]["message"].get<std::string>();
    BOOST_TEST(has(message, "endpoints down: " + missing +
                                ": No such file or directory (is php-fpm running"),
               message);
    BOOST_TEST(lines[0]["duration_ms"].get<double>() >= 390.0, lines[0].dump());

    const std::string big =
        line_of({{"id", "big"}, {"script", php_fpm::script("big.php")}, {"query", "size=2000"}});
    const std::string logs = line_of({{"id", "logs"}, {"script", php_fpm::script("stderr.php")}});
    // Both jobs with limits below what they send, then above: every result says so.
    for (bool enough : {false, true}) {
        BOOST_TEST_CONTEXT((enough ? "limits above" : "limits below")) {
            auto r = fanout({"--connect", unix_ep, "--max-output", enough ? "4k" : "1k",
                             "--max-stderr", enough ? "1k" : "10"},
                            big + logs);
            BOOST_TEST(r.exit_code == (enough ? 0 : 6), r.err);
            lines = result_lines(r.out);
            BOOST_REQUIRE_EQUAL(lines.size(), 2u);
            for (const auto& j : lines) {
                if (j["id"] == "logs") {
                    BOOST_TEST(j["error"].is_null(), j.dump());
                    BOOST_TEST(j["body"] == "body-start\nbody-end\n", j.dump());
                    // php-fpm sends "PHP message: first message; PHP message: second message".
                    BOOST_TEST(j["stderr"].get<std::string>().size() == (enough ? 55u : 10u),
                               j.dump());
                    BOOST_TEST(j["stderr_dropped"] == (enough ? 0u : 45u), j.dump());
                    continue;
                }
                BOOST_TEST(
                    (enough ? j["error"].is_null() : j["error"]["code"] == "response_too_large"),
                    j.dump());
                if (!enough)  // the limit is named by the flag that raises it
                    BOOST_TEST(has(j["error"]["message"].get<std::string>(),
                                   "exceeded --max-output (1024 bytes)"),
                               j.dump());
            }
        }
    }
}

// A header given as an array is repeated (joined as PHP sees it), a "query" field is sent as the
// part after '?' is, and a header name PHP would read as another header is an invalid job.
BOOST_AUTO_TEST_CASE(repeated_headers_query_field_and_posing_header_names) {
    const std::string server = php_fpm::script("server.php");
    std::string input = line_of({{"id", 1},
                                 {"script", server},
                                 {"query", "q=a b#frag"},
                                 {"headers", {{"Cookie", {"a=1", "b=2"}}, {"X-Tag", "t"}}}});
    input +=
        line_of({{"id", 2}, {"script", server}, {"headers", {{"X_Forwarded_For", "6.6.6.6"}}}});
    input += line_of({{"id", 3}, {"script", server}, {"headers", {{"X-A", {"a", 1}}}}});
    auto r = fanout({"--connect", unix_ep}, input);
    BOOST_TEST(r.exit_code == 6, r.err);
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 3u);
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            if (j["id"] == 1) {
                BOOST_REQUIRE(j["error"].is_null());
                auto env = json::parse(j["body"].get<std::string>());
                BOOST_TEST(env["HTTP_COOKIE"] == "a=1; b=2");
                BOOST_TEST(env["HTTP_X_TAG"] == "t");
                BOOST_TEST(env["QUERY_STRING"] == "q=a%20b");
            } else if (j["id"] == 2) {
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(j["error"]["message"].get<std::string>(),
                               "letters, digits and '-': PHP would read it as "
                               "'HTTP_X_FORWARDED_FOR'"));
            } else {
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(j["error"]["message"].get<std::string>(),
                               "\"headers\".\"X-A\"[1] must be a string, not number"));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(wrong_field_types_are_invalid_jobs) {
    const std::string hello = php_fpm::script("hello.php");
    const std::vector<json> jobs = {
        {{"id", 1}, {"script", 5}},
        {{"id", 2}, {"script", hello}, {"headers", {{"X-A", 1}}}},
        {{"id", 3}, {"script", hello}, {"params", json::array()}},
        {{"id", 4}, {"script", hello}, {"timeout", "1"}},
        {{"id", 5}, {"script", hello}, {"body", "a"}, {"body_base64", "YQ=="}},
        {{"id", 6}, {"script", hello}, {"header", {{"X-A", "b"}}}},  // typo
        {{"id", 7}, {"script", hello}, {"headers", {{"Bad Name", "x"}}}},
        {{"id", 8}, {"script", hello + "?a=1"}, {"query", "b=2"}},
        {{"id", 9}, {"script", hello}, {"idempotent", "yes"}},
    };
    std::string input = "[1, 2]\n";  // JSON, but not an object
    for (const auto& j : jobs)
        input += line_of(j);
    input += line_of({{"id", 10}, {"script", hello}, {"idempotent", false}});
    auto r = fanout({"--connect", unix_ep}, input);
    BOOST_TEST(r.exit_code == 6);
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), jobs.size() + 2);
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            if (j["id"] == 10) {
                BOOST_TEST(j["error"].is_null());
                continue;
            }
            BOOST_TEST(j["error"]["code"] == "invalid_job");
            // Job n is on line n + 1, after the array line.
            int line = j["id"].is_null() ? 1 : j["id"].get<int>() + 1;
            BOOST_TEST(j["error"]["message"].get<std::string>().starts_with(
                "line " + std::to_string(line) + ": "));
        }
    }

    // A number beyond a double and an id nested 100,000 deep: the tool used to abort (an
    // uncaught out_of_range) or overflow its stack, with no line for any job.
    std::string raw = R"({"id":1e400,"script":"x.php"})"
                      "\n";
    raw += R"({"id":)" + std::string(100000, '[') + std::string(100000, ']') +
           R"(,"script":"x.php"})"
           "\n";
    raw += line_of({{"id", 3}, {"script", hello}});
    auto odd = fanout({"--connect", unix_ep}, raw);
    BOOST_TEST(odd.exit_code == 6, odd.err);
    auto odd_lines = result_lines(odd.out);
    BOOST_REQUIRE_EQUAL(odd_lines.size(), 3u);
    std::vector<std::string> messages;
    for (const auto& j : odd_lines) {
        if (j["id"] == 3)
            BOOST_TEST(j["error"].is_null(), j.dump());
        else
            messages.push_back(j["error"]["message"].get<std::string>());
    }
    std::sort(messages.begin(), messages.end());
    BOOST_REQUIRE_EQUAL(messages.size(), 2u);
    BOOST_TEST(messages[0].starts_with("line 1: not usable JSON"), messages[0]);
    BOOST_TEST(messages[1] == "line 2: arrays and objects nest deeper than 64 levels");
}

// A NUL byte ended the JSON reader's input: the job after it on the line was dropped, and
// the line ran as the job before it. An unclosed string's message quoted the whole line. An
// empty body was a GET here and a POST for `fcgi request -d ''`. A too-large param was named
// by the library's field ("a request::headers entry").
BOOST_AUTO_TEST_CASE(odd_lines_and_empty_bodies) {
    const std::string echo = php_fpm::script("echo.php");
    std::string input = line_of({{"id", 1}, {"script", echo}});
    input.back() = '\0';
    input += line_of({{"id", 2}, {"script", echo}});
    input += R"({"id": 3, "script": ")" + std::string(100000, 'x') + "\n";
    input += line_of({{"id", 4}, {"script", echo}, {"body", ""}});
    input += line_of({{"id", 5}, {"script", echo}, {"body_base64", ""}});
    input += line_of({{"id", 6}, {"script", echo}, {"body", ""}, {"method", "PUT"}});
    input +=
        line_of({{"id", 7}, {"script", echo}, {"headers", {{"X-Big", std::string(70000, 'h')}}}});
    input += line_of({{"id", 8}, {"script", echo + "#top?x=1"}, {"query", "y=2"}});
    // A long token with words after it in the message: they are kept.
    input += "{\"" + std::string(200, 'k') + "\n";  // an unclosed key
    input += line_of({{"id", 10}, {"script", echo + "?" + std::string(70000, 'q')}});
    auto r = fanout({"--connect", unix_ep}, input);
    BOOST_TEST(r.exit_code == 6, r.err);
    auto lines = result_lines(r.out);
    // Line 1 holds jobs 1 and 2 (a NUL between them), line 2 job 3, line 8 an unclosed key: no
    // id to give.
    BOOST_REQUIRE_EQUAL(lines.size(), 9u);
    int no_id = 0;
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            const std::string message =
                j["error"].is_null() ? "" : j["error"]["message"].get<std::string>();
            if (j["id"].is_null()) {
                ++no_id;
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(message.size() < 300u);
                BOOST_TEST((message.starts_with("line 1: holds a NUL byte at column ") ||
                            message.starts_with("line 2: not valid JSON") ||
                            (message.starts_with("line 8: not valid JSON") &&
                             message.ends_with("...'; expected string literal"))),
                           message);
            } else if (j["id"] == 7) {
                BOOST_TEST(j["error"]["code"] == "param_too_large");
                BOOST_TEST(has(message, "param HTTP_X_BIG (from a \"headers\" entry)"), message);
            } else if (j["id"] == 10) {
                // Found before sending, named by the job's keys, not by fcgi request's flags.
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(message, "\"query\") takes "), message);
                BOOST_TEST(!has(message, "SCRIPT?QUERY"), message);
            } else if (j["id"] == 8) {
                BOOST_TEST(j["error"].is_null());
                BOOST_TEST(has(j["body"].get<std::string>(), R"("query":"y=2")"));
            } else {
                BOOST_REQUIRE(j["error"].is_null());
                const std::string method = j["id"] == 6 ? "PUT" : "POST";
                BOOST_TEST(has(j["body"].get<std::string>(), R"("method":")" + method + "\""));
            }
        }
    }
    BOOST_TEST(no_id == 3);
}

BOOST_AUTO_TEST_CASE(usage_errors_exit_2) {
    const std::string job = line_of({{"id", 1}, {"script", php_fpm::script("hello.php")}});
    for (const auto& args : std::vector<std::vector<std::string>>{
             {},                                            // no --connect
             {"--connect", "not an address"},               // bad endpoint
             {"--connect", unix_ep, "/nonexistent/jobs"},   // unreadable FILE
             {"--connect", unix_ep, "--concurrency", "0"},  // out of range
             {"--connect", unix_ep, "--timeout", "-1"},     // not positive
             {"--connect", unix_ep, "--timeout", "nan"},    // not a number
         }) {
        auto r = fanout(args, job);
        BOOST_TEST_CONTEXT(r.err) {
            BOOST_TEST(r.exit_code == 2);
            BOOST_TEST(r.out.empty());
            BOOST_TEST(r.err.starts_with("fcgi: "));
        }
    }
    // One server named twice would get a pool of --connections twice over.
    auto twice = fanout({"--connect", unix_ep, "--connect", unix_ep}, job);
    BOOST_TEST(twice.exit_code == 2, twice.err);
    BOOST_TEST(twice.err.find("names the same server as an earlier --connect") != std::string::npos,
               twice.err);
    // Also by another path to the same socket.
    auto alias = fanout({"--connect", unix_ep, "--connect", "unix:/" + fpm.unix_socket()}, job);
    BOOST_TEST(alias.exit_code == 2, alias.err);
    BOOST_TEST(alias.err.find("names the same server as an earlier --connect (" + unix_ep + ")") !=
                   std::string::npos,
               alias.err);
    // No jobs at all is not an error.
    auto empty = fanout({"--connect", unix_ep}, "\n\n");
    BOOST_TEST(empty.exit_code == 0, empty.err);
    BOOST_TEST(empty.out.empty());
}

// --multiplex: off (the default) never asks and sends one request per connection at a time;
// auto asks each endpoint once and multiplexes where it says it can, up to --concurrency /
// --connections per connection; on multiplexes without asking. The responder holds up to 4
// finished requests before it answers, so requests sent together are seen live together.
BOOST_AUTO_TEST_CASE(multiplex_flag) {
    struct mode_case {
        std::vector<std::string> flags;
        double job_timeout;  // each job's "timeout" (0: none)
        fcgi::test::fake_responder_options fake;
        std::size_t get_values;
        std::size_t min_live, max_live;
        std::string_view told;  // what the summary says of multiplexing ("": nothing)
    };
    constexpr std::string_view yes = " multiplexed, up to 4 requests per connection\n";
    constexpr std::string_view silent =
        " not multiplexed (no answer to FCGI_GET_VALUES in time): one request per connection\n";
    constexpr std::string_view declined =
        " not multiplexed (it does not multiplex, "
        "FCGI_MPXS_CONNS is not 1): one request per connection\n";
    const mode_case cases[] = {
        {{}, 0, {.interleave = 4}, 0, 1, 1, ""},
        {{"--multiplex", "auto"}, 0, {.interleave = 4}, 1, 2, 4, yes},
        {{"--multiplex", "on"}, 0, {.interleave = 4, .mpxs_conns = "0"}, 0, 2, 4, ""},
        {{"--multiplex", "auto"}, 0, {.interleave = 4, .mpxs_conns = "0"}, 1, 1, 1, declined},
        // No answer: the jobs wait for the question (half of the shortest deadline at most:
        // --timeout, or the jobs' own), then go one per connection with the rest of it. (3 s:
        // under ASan on a loaded machine 40 jobs on 2 connections once took more than the
        // 0.4 s that a 0.8 s deadline left them.)
        {{"--multiplex", "auto", "--timeout", "3"},
         0,
         {.interleave = 4, .answer_get_values = false},
         1,
         1,
         1,
         silent},
        {{"--multiplex", "auto"},
         3,
         {.interleave = 4, .answer_get_values = false},
         1,
         1,
         1,
         silent},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT("flags " << (c.flags.empty() ? "none" : c.flags[1])
                                    << (c.flags.size() > 2 ? " --timeout" : "")
                                    << (c.fake.mpxs_conns == "0" ? ", MPXS_CONNS=0" : "")
                                    << (c.job_timeout > 0 ? ", job timeouts" : "")) {
            std::string jobs;
            for (int i = 1; i <= 40; ++i) {
                json job = {{"id", i}, {"script", php_fpm::script("hello.php")}};
                if (c.job_timeout > 0)
                    job["timeout"] = c.job_timeout;
                jobs += line_of(job);
            }
            fcgi::test::fake_responder fake(c.fake);
            std::vector<std::string> args = {
                "-c", fake.unix_endpoint().to_string(), "--concurrency", "8", "--connections", "2"};
            args.insert(args.end(), c.flags.begin(), c.flags.end());
            auto r = fanout(args, jobs);
            BOOST_TEST(r.exit_code == 0, r.err);
            BOOST_TEST(result_lines(r.out).size() == 40u);
            BOOST_TEST(has(r.err, "fanout: 40 jobs, 40 ok, 0 failed\n"), r.err);
            auto snap = fake.snapshot();
            BOOST_TEST(snap.violations.empty());
            BOOST_TEST(snap.get_values == c.get_values);
            BOOST_TEST(snap.max_live >= c.min_live);
            BOOST_TEST(snap.max_live <= c.max_live);
            if (c.told.empty())
                BOOST_TEST(!has(r.err, "multiplexed"), r.err);
            else
                BOOST_TEST(
                    has(r.err, "fanout: " + fake.unix_endpoint().to_string() + std::string(c.told)),
                    r.err);
        }
    }
}

// With --concurrency no more than --connections there is one request per connection to give,
// whatever the server answers: the line says so instead of blaming the server's FCGI_MAX_REQS.
BOOST_AUTO_TEST_CASE(multiplex_auto_with_one_request_per_connection_to_give) {
    fcgi::test::fake_responder fake;  // answers FCGI_MPXS_CONNS=1
    std::string jobs;
    for (int i = 1; i <= 6; ++i)
        jobs += line_of({{"id", i}, {"script", php_fpm::script("hello.php")}});
    auto ep = fake.unix_endpoint().to_string();
    auto r =
        fanout({"-c", ep, "--concurrency", "2", "--connections", "2", "--multiplex", "auto"}, jobs);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(has(r.err, "fanout: " + ep +
                              " not multiplexed (it multiplexes, but --concurrency / "
                              "--connections is 1): one request per connection\n"),
               r.err);
}

// Ctrl-C used to kill the tool with no summary and jobs without a line. Now what is not done
// fails with client_stopped: every job still gets its line, and the summary is printed, without
// the stopped jobs in the requests sent (their duration is the time to the interruption). So
// does SIGTERM, as a supervisor stops a job runner.
BOOST_AUTO_TEST_CASE(interrupt_still_summarises) {
    for (int sig : {SIGINT, SIGTERM}) {
        BOOST_TEST_CONTEXT("signal " << sig) {
            fcgi::test::fake_responder fake({.silent = true});
            std::string jobs;
            for (int i = 1; i <= 3; ++i)
                jobs += line_of({{"id", i}, {"script", php_fpm::script("hello.php")}});
            run_spec spec;
            spec.program = FCGI_CLI_PATH;
            spec.args = {"fanout", "--connect", fake.tcp_endpoint().to_string(), "--concurrency",
                         "2"};
            spec.input = jobs;
            std::optional<fcgi::test::process_signaller> child;
            bool both_sent = false;
            std::jthread interrupter;  // joined also when run_child throws
            spec.started = [&](int pid) {
                // The thread may signal after run_child has reaped the child (if it ended
                // early): through a pidfd, that fails instead of hitting a reused PID.
                child.emplace(pid);
                interrupter = std::jthread([&] {
                    both_sent =
                        fake.wait_for([](const auto& s) { return s.requests.size() >= 2; }, 20s);
                    child->send(both_sent ? sig : SIGKILL);
                });
            };
            auto r = fcgi::test::run_child(spec);
            interrupter.join();
            BOOST_TEST_REQUIRE(both_sent);
            BOOST_TEST_INFO("stderr: " << r.err);
            BOOST_TEST(r.exit_code == 6);
            auto lines = result_lines(r.out);
            BOOST_TEST(lines.size() == 3u);
            for (const auto& j : lines)
                BOOST_TEST(j["error"]["code"] == "client_stopped", j.dump());
            BOOST_TEST(has(r.err, "fanout: 3 jobs, 0 ok, 3 failed (client_stopped 3)"));
            BOOST_TEST(has(r.err, "fanout: 0 requests sent in "));
            BOOST_TEST(has(r.err, "interrupted"));
        }
    }
}

// A job's script outside --root is an invalid job, unless the job sets SCRIPT_NAME itself (as
// `fcgi request -p SCRIPT_NAME=...` may): the job's params once never reached that check.
BOOST_AUTO_TEST_CASE(script_outside_the_root) {
    const std::string hello = php_fpm::script("hello.php");
    std::string input = line_of({{"id", 1}, {"script", hello}});
    input += line_of({{"id", 2}, {"script", hello}, {"params", {{"SCRIPT_NAME", "/hello.php"}}}});
    auto r = fanout({"--connect", unix_ep, "--root", "/nonexistent-root"}, input);
    BOOST_TEST(r.exit_code == 6);
    auto lines = result_lines(r.out);
    BOOST_REQUIRE_EQUAL(lines.size(), 2u);
    for (const auto& j : lines) {
        BOOST_TEST_CONTEXT(j.dump()) {
            if (j["id"] == 1) {
                BOOST_TEST(j["error"]["code"] == "invalid_job");
                BOOST_TEST(has(j["error"]["message"].get<std::string>(), "not below"));
            } else {
                BOOST_TEST(j["error"].is_null());
                BOOST_TEST(j["status"] == 200);
            }
        }
    }
}

// --recycle-after N: a connection carries N jobs at most (client_options'
// max_requests_per_connection_lifetime), as php-fpm's pm.max_requests would have it.
BOOST_AUTO_TEST_CASE(recycle_after_limits_jobs_per_connection) {
    fcgi::test::fake_responder fake;
    std::string jobs;
    for (int i = 1; i <= 9; ++i)
        jobs += line_of({{"id", i}, {"script", php_fpm::script("hello.php")}});
    auto r = fanout({"-c", fake.unix_endpoint().to_string(), "--concurrency", "1", "--connections",
                     "1", "--recycle-after", "2"},
                    jobs);
    BOOST_TEST(r.exit_code == 0, r.err);
    BOOST_TEST(result_lines(r.out).size() == 9u);
    const auto seen = fake.snapshot();
    BOOST_TEST(seen.requests.size() == 9u);
    for (const auto& req : seen.requests)
        BOOST_TEST(req.index_on_conn <= 2u);
    BOOST_TEST(seen.connections_accepted == 5u);
}

// A job that is not sent twice (POST) and meets a closing connection fails with
// connection_lost; the summary then names --recycle-after, unless it was given.
BOOST_AUTO_TEST_CASE(connection_lost_hints_at_recycle_after) {
    for (bool given : {false, true}) {
        BOOST_TEST_CONTEXT("--recycle-after given: " << given) {
            auto seen = std::make_shared<std::atomic<int>>(0);
            fcgi::test::fake_responder fake(
                {.script_for = [seen](const fcgi::test::seen_request& r) {
                    if (++*seen == 2)
                        return fcgi::test::script{fcgi::test::act::close()};
                    return fcgi::test::echo_script(r);
                }});
            std::string jobs;
            for (int i = 1; i <= 3; ++i)
                jobs += line_of({{"id", i},
                                 {"script", php_fpm::script("echo.php")},
                                 {"method", "POST"},
                                 {"body", "x"}});
            std::vector<std::string> args = {
                "-c", fake.unix_endpoint().to_string(), "--concurrency", "1", "--connections", "1"};
            if (given)
                args.insert(args.end(), {"--recycle-after", "100"});
            auto r = fanout(args, jobs);
            BOOST_TEST(r.exit_code == 6, r.err);
            BOOST_TEST(has(r.err, "connection_lost 1"), r.err);
            BOOST_TEST(has(r.err,
                           "hint: 1 request failed with connection_lost: if php-fpm "
                           "recycles its workers (pm.max_requests = N), --recycle-after "
                           "N closes most connections before php-fpm does\n") != given,
                       r.err);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

#else

BOOST_AUTO_TEST_CASE(cli_fanout_not_built) {
    BOOST_TEST_MESSAGE("fcgi CLI not built (FCGI_BUILD_TOOLS=OFF): fanout CLI tests skipped");
}

#endif
