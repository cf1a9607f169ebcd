// Fan-out throughput against the Go net/http/fcgi responder, with and without multiplexing:
//   conformance_mux_bench [requests=20000] [concurrency=256] [connections=2] [rounds=3]
// Each round runs `off` then `auto` on fresh clients against one Go process and prints
// requests per second; docs/benchmarks.md records the results.
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/fanout.hpp"
#include "peers.hpp"

namespace conf = fcgi::conformance;

namespace {

struct run_result {
    double seconds = 0;
    std::size_t failed = 0;
    std::uint16_t per_connection = 0;
};

run_result run(const fcgi::endpoint& ep, fcgi::multiplexing mode, std::size_t requests,
               std::size_t concurrency, std::size_t connections) {
    asio::io_context ctx(1);
    fcgi::client_options o;
    o.endpoints = {ep};
    o.mode = mode;
    o.max_connections_per_endpoint = connections;
    o.max_requests_per_connection = 64;
    o.connection.request_timeout = std::chrono::seconds(60);
    fcgi::client c(ctx.get_executor(), o);
    std::vector<fcgi::request> reqs;
    reqs.reserve(requests);
    for (std::size_t i = 0; i < requests; ++i) {
        auto r = conf::contract_request();
        r.params.emplace_back("CONF_VALUE", std::to_string(i));
        reqs.push_back(std::move(r));
    }
    run_result out;
    auto start = std::chrono::steady_clock::now();
    fcgi::async_fanout_each(
        c, std::move(reqs), concurrency,
        [&](std::size_t, fcgi::fanout_result r) { out.failed += r.ec ? 1 : 0; },
        [&](std::error_code) {
            out.seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            out.per_connection = c.stats().endpoints[0].max_in_flight_per_connection;
            ctx.stop();
        });
    ctx.run_for(std::chrono::seconds(300));
    return out;
}

std::size_t arg(int argc, char** argv, int i, std::size_t dflt) {
    return argc > i ? std::strtoull(argv[i], nullptr, 10) : dflt;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t requests = arg(argc, argv, 1, 20000);
    std::size_t concurrency = arg(argc, argv, 2, 256);
    std::size_t connections = arg(argc, argv, 3, 2);
    std::size_t rounds = arg(argc, argv, 4, 3);
    auto peer = conf::start_peer("go");
    std::printf("requests=%zu concurrency=%zu connections=%zu\n", requests, concurrency,
                connections);
    for (std::size_t round = 1; round <= rounds; ++round) {
        for (auto mode : {fcgi::multiplexing::off, fcgi::multiplexing::auto_detect}) {
            auto r = run(peer->endpoint(), mode, requests, concurrency, connections);
            std::printf("round %zu %-4s in-flight/conn=%-3u %8.0f req/s  failed=%zu\n", round,
                        mode == fcgi::multiplexing::off ? "off" : "auto",
                        unsigned{r.per_connection}, r.seconds > 0 ? requests / r.seconds : 0.0,
                        r.failed);
        }
    }
    return 0;
}
