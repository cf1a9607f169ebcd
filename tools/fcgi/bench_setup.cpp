#include "bench_setup.hpp"

#include <algorithm>

#include "fcgi/error.hpp"

namespace fcgi_cli {
namespace {

std::size_t ceil_div(std::size_t a, std::size_t b) {
    return (a + b - 1) / b;
}

void probe_warnings(bench_setup& s) {
    const auto& ec = s.probe_ec;
    const std::string limit = std::to_string(s.probe_limit.count()) + " ms";
    if (ec == fcgi::error::request_timeout)
        s.warnings.push_back("--multiplex auto: no answer to GET_VALUES within " + limit +
                             "; one request per connection (--multiplex on|off skips the "
                             "question)");
    else if (ec == fcgi::error::connect_timeout)
        s.warnings.push_back("--multiplex auto: could not connect within " + limit +
                             " to ask (GET_VALUES); one request per connection");
    else if (ec && ec.category() == fcgi::client_category())
        s.warnings.push_back("--multiplex auto: GET_VALUES failed (" + ec.message() +
                             "); one request per connection");
    // Anything else failed to connect: the run tries again and reports it.
}

}  // namespace

void size_bench(std::size_t concurrency, std::size_t connections_flag, bool open_loop,
                bench_setup& s) {
    if (s.probed)
        probe_warnings(s);
    // FCGI_MAX_REQS caps each connection, as the library's auto_detect reads it (the spec's
    // words allow a total too, but no server here says more than MPXS_CONNS); 0 means nothing.
    const std::size_t max_reqs = s.probe.max_reqs.value_or(0);
    const std::size_t max_conns = s.probe.max_conns.value_or(0);
    std::size_t cap = max_requests_per_connection;
    if (max_reqs > 0)
        cap = std::min(cap, max_reqs);
    s.connections = connections_flag ? connections_flag
                    : s.multiplexed  ? ceil_div(concurrency, cap)
                                     : concurrency;
    s.per_connection =
        s.multiplexed ? std::min(cap, ceil_div(concurrency, s.connections)) : std::size_t{1};
    // More connections than requests: one each, which is not multiplexing.
    if (s.per_connection <= 1) {
        s.multiplexed = false;
        s.per_connection = 1;
    }
    const std::string conns =
        std::to_string(s.connections) + (s.connections == 1 ? " connection" : " connections");
    if (max_conns > 0 && s.connections > max_conns)
        s.warnings.push_back(conns + " > the server's FCGI_MAX_CONNS " + std::to_string(max_conns) +
                             ": connections beyond it may wait or be refused");
    // Closed loop only: an open loop's --concurrency caps what is in flight, no promise of load.
    if (!open_loop && s.connections * s.per_connection < concurrency)
        s.warnings.push_back("only " + std::to_string(s.connections * s.per_connection) +
                             " of --concurrency " + std::to_string(concurrency) + " fit on " +
                             conns + " (" +
                             (s.multiplexed ? std::to_string(s.per_connection) + " requests each"
                                            : std::string("one request each: not multiplexed")) +
                             "): the rest wait in the pool, their latency the client's (give "
                             "more --connections, or a lower --concurrency)");
}

}  // namespace fcgi_cli
