// The demo: fans out hundreds of real PHP runs through one fcgi::client and prints a summary.
// Usage: fanout_demo ENDPOINT PHP_DIR [JOBS] [CONNECTIONS]
// scripts/demo.sh starts a private php-fpm (examples/demo/php-fpm.conf.in) and runs this.
#include <algorithm>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fcgi/fcgi.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

std::vector<fcgi::request> make_jobs(const std::string& dir, std::size_t n) {
    std::vector<fcgi::request> jobs;
    jobs.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        fcgi::request r;
        std::string job = "job=" + std::to_string(i);
        switch (i % 10) {
            case 0:  // one in ten fails on purpose
                r.script = dir + "/fail.php";
                r.query = job;
                break;
            case 1:
            case 2:
                r.script = dir + "/log.php";
                r.query = job;
                break;
            case 3:
            case 4:
            case 5:
                r.script = dir + "/sleep.php";
                r.query = job + "&ms=" + std::to_string(5 + i % 20);
                break;
            default:
                r.script = dir + "/compute.php";
                r.query = job + "&n=" + std::to_string(5000 + (i % 7) * 2000);
                break;
        }
        r.timeout = std::chrono::seconds(30);
        jobs.push_back(std::move(r));
    }
    return jobs;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
    fcgi::endpoint where;
    std::size_t jobs = 600, conns = 4;
    bool numbers_ok = true;
    try {  // std::stoul throws on what is not a number
        if (argc > 3)
            jobs = std::stoul(argv[3]);
        if (argc > 4)
            conns = std::stoul(argv[4]);
    } catch (const std::exception&) {
        numbers_ok = false;
    }
    if (!numbers_ok || argc < 3 || fcgi::parse_endpoint(argv[1], where)) {
        std::fprintf(stderr,
                     "usage: %s ENDPOINT PHP_DIR [JOBS] [CONNECTIONS]\nENDPOINT: unix:/path.sock, "
                     "/path.sock, host:port or [v6addr]:port\n",
                     argv[0]);
        return 2;
    }
    conns = std::max<std::size_t>(1, conns);  // the pool takes 0 as 1: the banner says so

    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {where};
    opts.max_connections_per_endpoint = conns;  // = pm.max_children of the demo's php-fpm
    fcgi::client client(ctx.get_executor(), opts);

    std::size_t ok = 0, script_errors = 0, stderr_lines = 0;
    std::map<std::string, std::size_t> failures;
    std::set<std::string> workers;
    std::vector<double> latencies_ms;
    latencies_ms.reserve(jobs);

    auto start = std::chrono::steady_clock::now();
    fcgi::async_fanout_each(
        client, make_jobs(argv[2], jobs), conns * 4,
        [&](std::size_t, fcgi::fanout_result r) {
            latencies_ms.push_back(static_cast<double>(r.duration.count()) / 1000.0);
            if (r.ec) {
                ++failures[r.ec.message()];
                return;
            }
            if (auto w = r.resp.header("X-Worker"))
                workers.emplace(*w);
            if (!r.resp.stderr_text.empty())
                ++stderr_lines;
            if (r.resp.status >= 500)
                ++script_errors;
            else
                ++ok;
        },
        [&](std::error_code) { client.stop(); });
    ctx.run();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    auto stats = client.stats();
    std::printf("asio-fcgi fan-out demo: %zu PHP runs through %zu kept-alive connections\n\n", jobs,
                conns);
    std::printf("  %-34s %10zu\n", "jobs", jobs);
    std::printf("  %-34s %10zu\n", "ok (2xx)", ok);
    std::printf("  %-34s %10zu\n", "failed: script error (HTTP 500)", script_errors);
    for (const auto& [reason, n] : failures)
        std::printf("  failed: %-26s %10zu\n", reason.substr(0, 26).c_str(), n);
    std::printf("  %-34s %10zu\n", "responses with stderr", stderr_lines);
    std::printf("  %-34s %10.3f\n", "wall time (s)", wall);
    std::printf("  %-34s %10.0f\n", "runs/s", static_cast<double>(jobs) / wall);
    std::printf("  %-34s %10.2f\n", "latency p50 (ms)", percentile(latencies_ms, 0.50));
    std::printf("  %-34s %10.2f\n", "latency p99 (ms)", percentile(latencies_ms, 0.99));
    std::printf("  %-34s %10zu\n", "php-fpm workers that served them", workers.size());
    std::printf("  %-34s %10llu\n", "connections opened",
                static_cast<unsigned long long>(stats.endpoints.at(0).connects));
    std::printf("  %-34s %10llu\n", "transparent retries",
                static_cast<unsigned long long>(stats.retries));
    bool expected = failures.empty() && ok + script_errors == jobs && script_errors == jobs / 10;
    std::printf("\n%s\n", expected ? "every job came back with the expected outcome"
                                   : "UNEXPECTED: some jobs did not come back as expected");
    return expected ? 0 : 1;
}
