// `fcgi bench`: how a run uses the server, decided once before it starts from the flags and the
// server's GET_VALUES answer: whether to multiplex, how many connections, how many requests per
// connection, and what to warn about. Pure functions, unit-tested (test/unit/test_bench_setup.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

#include "fcgi/connection_options.hpp"
#include "fcgi/protocol/record_bodies.hpp"

namespace fcgi_cli {

/// The library's limit: no connection carries more requests at once.
inline constexpr std::size_t max_requests_per_connection = fcgi::max_in_flight_limit;

/// The run's shape, and what --multiplex auto learnt on the way.
struct bench_setup {
    std::size_t connections = 0;               ///< connections to the server
    bool multiplexed = false;                  ///< more than one request per connection
    std::size_t per_connection = 1;            ///< requests in flight per connection at most
    bool probed = false;                       ///< --multiplex auto asked the server
    std::chrono::milliseconds probe_limit{0};  ///< how long it waited for the answer at most
    std::error_code probe_ec;                  ///< why the question failed, if it did
    fcgi::protocol::get_values_result probe;   ///< the answer (cleared when it failed)
    std::vector<std::string> warnings;         ///< for stderr, in order
};

/// Decides `s.connections` and `s.per_connection` for `concurrency` requests in flight and
/// `connections_flag` (0: not given), multiplexing when `s.multiplexed` is set on entry
/// (--multiplex on, or auto and the server said FCGI_MPXS_CONNS=1) and it carries more than one
/// request per connection. A server's FCGI_MAX_REQS above 0 caps the requests per connection, as
/// the library's auto_detect does. Appends the warnings: the question's failure, more
/// connections than the server's FCGI_MAX_CONNS, requests that no connection can carry.
/// `open_loop`: --rate, where --concurrency only sizes the connections.
void size_bench(std::size_t concurrency, std::size_t connections_flag, bool open_loop,
                bench_setup& s);

}  // namespace fcgi_cli
