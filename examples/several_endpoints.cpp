// One client over several php-fpm pools: requests go to the endpoint with the fewest
// outstanding requests; an endpoint that refuses connections (stopped, socket gone) is marked
// down, backs off exponentially and the others take its share. Prints who served what.
// Usage: several_endpoints PHP_DIR JOBS ENDPOINT...
#include <asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <fcgi/fcgi.hpp>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::size_t jobs = 0;
    bool numbers_ok = true;
    try {  // std::stoul throws on what is not a number
        if (argc >= 4)
            jobs = std::stoul(argv[2]);
    } catch (const std::exception&) {
        numbers_ok = false;
    }
    if (!numbers_ok || argc < 4) {
        std::cerr << "usage: " << argv[0] << " PHP_DIR JOBS ENDPOINT...\n";
        return 2;
    }
    std::string php_dir = argv[1];

    asio::io_context ctx;
    fcgi::client_options opts;
    for (int i = 3; i < argc; ++i) {
        fcgi::endpoint where;
        if (fcgi::parse_endpoint(argv[i], where)) {
            std::cerr << "'" << argv[i] << "': not an endpoint (unix:/path.sock, /path.sock, "
                      << "host:port or [v6addr]:port)\n";
            return 2;
        }
        opts.endpoints.push_back(where);
    }
    opts.max_connections_per_endpoint = 4;  // per pool: = its pm.max_children
    opts.connection.request_timeout = std::chrono::seconds(10);
    fcgi::client client(ctx.get_executor(), opts);

    std::vector<fcgi::request> reqs(jobs);
    for (auto& r : reqs) {
        r.script = php_dir + "/sleep.php";  // 5 ms of "I/O": keeps several requests in flight
        r.query = "ms=5";
    }
    std::size_t ok = 0;
    fcgi::async_fanout_each(
        client, std::move(reqs), opts.endpoints.size() * opts.max_connections_per_endpoint,
        [&](std::size_t, fcgi::fanout_result r) {
            if (!r.ec && r.resp.status == 200)
                ++ok;
            else
                std::cerr << "job failed: " << r.ec.message() << ' ' << r.resp.diagnostics << '\n';
        },
        [&](std::error_code) { client.stop(); });  // done: close the kept-alive connections
    ctx.run();

    auto stats = client.stats();
    for (const auto& e : stats.endpoints)
        std::cout << e.where.to_string() << ": served " << e.completed << ", failed " << e.failed
                  << ", refused connects " << e.connect_failures << (e.down ? ", down" : "")
                  << '\n';
    std::cout << ok << " of " << jobs << " jobs ok, " << stats.retries << " retried\n";
    return ok == jobs ? 0 : 1;
}
