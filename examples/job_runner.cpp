// A coroutine job runner: reads jobs (one "script.php?query" per line) from a file or stdin,
// runs N at a time through one fcgi::client, and prints one result line per job in input order.
// Usage: job_runner ENDPOINT PHP_DIR CONCURRENCY [JOBS_FILE]
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <exception>
#include <fcgi/fcgi.hpp>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace {

struct job_result {
    std::string job;
    std::error_code ec;
    int status = 0;
    std::string first_line;  // of the body, or of stderr when the script failed
};

std::string first_line(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

// One worker: takes the next job until none is left. All workers run on one thread (the
// io_context's), so `next` needs no lock.
asio::awaitable<void> worker(fcgi::client& client, const std::string& php_dir,
                             std::vector<job_result>& results, std::size_t& next) {
    while (next < results.size()) {
        job_result& r = results[next++];
        auto q = r.job.find('?');
        fcgi::request req;
        req.script = php_dir + "/" + r.job.substr(0, q);
        if (q != std::string::npos)
            req.query = r.job.substr(q + 1);
        req.timeout = std::chrono::seconds(10);
        auto [ec, resp] = co_await client.async_request(
            std::move(req), asio::experimental::as_tuple(asio::use_awaitable));
        r.ec = ec;
        r.status = resp.status;
        r.first_line = first_line(ec                   ? resp.diagnostics
                                  : resp.status >= 500 ? resp.stderr_text
                                                       : resp.body);
    }
}

asio::awaitable<void> run(fcgi::endpoint where, std::string php_dir, std::size_t concurrency,
                          std::vector<job_result>& results) {
    auto ex = co_await asio::this_coro::executor;
    fcgi::client_options options;
    options.endpoints = {where};
    options.max_connections_per_endpoint = concurrency;
    fcgi::client client(ex, std::move(options));
    std::size_t next = 0;
    std::size_t running = concurrency;
    // N workers; the last one to finish wakes the runner through a timer used as an event.
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (std::size_t i = 0; i < concurrency; ++i)
        asio::co_spawn(ex, worker(client, php_dir, results, next), [&](std::exception_ptr) {
            if (--running == 0)
                all_done.cancel();
        });
    co_await all_done.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    co_await client.async_shutdown(asio::use_awaitable);
}

}  // namespace

int main(int argc, char** argv) {
    fcgi::endpoint where;
    std::size_t concurrency = 0;
    bool numbers_ok = true;
    try {  // std::stoul throws on what is not a number
        if (argc >= 4)
            concurrency = std::max<std::size_t>(1, std::stoul(argv[3]));
    } catch (const std::exception&) {
        numbers_ok = false;
    }
    if (!numbers_ok || argc < 4 || fcgi::parse_endpoint(argv[1], where)) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT PHP_DIR CONCURRENCY [JOBS_FILE]\n"
                  << "ENDPOINT: unix:/path.sock, /path.sock, host:port or [v6addr]:port\n";
        return 2;
    }
    std::vector<job_result> results;
    std::ifstream file;
    if (argc > 4)
        file.open(argv[4]);
    std::istream& in = argc > 4 ? file : std::cin;
    for (std::string line; std::getline(in, line);)
        if (!line.empty())
            results.emplace_back().job = line;

    asio::io_context ctx;
    asio::co_spawn(ctx, run(where, argv[2], concurrency, results), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    ctx.run();

    std::size_t ok = 0;
    for (const auto& r : results) {
        ok += !r.ec && r.status < 400;
        std::cout << r.job << ": " << (r.ec ? r.ec.message() : std::to_string(r.status)) << " "
                  << r.first_line << '\n';
    }
    std::cout << ok << " of " << results.size() << " jobs ok\n";
}
