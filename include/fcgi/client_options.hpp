// Options and statistics of fcgi::client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <system_error>
#include <vector>

#include "fcgi/connection_options.hpp"
#include "fcgi/endpoint.hpp"

namespace fcgi {

/// Whether a client sends several requests at once on one connection.
enum class multiplexing {
    off,          ///< one request per connection at a time (php-fpm)
    on,           ///< up to max_requests_per_connection, without asking the server
    auto_detect,  ///< ask each endpoint with GET_VALUES on a throw-away connection first, and
                  ///< multiplex only where it reports FCGI_MPXS_CONNS=1
};

/// How a client's pool behaves. Every field but `endpoints` has a usable default.
struct client_options {
    /// The servers (php-fpm pools) to balance over: least outstanding requests first. None, or
    /// one that validate() refuses, fails every request with error::invalid_endpoint.
    std::vector<endpoint> endpoints;
    /// Connections per endpoint: the real concurrency limit against php-fpm; keep it <=
    /// pm.max_children. Each kept-alive connection pins one worker, so one beyond that waits in
    /// the listen backlog until another connection closes: `backlog_relief` closes an idle one
    /// of the pool's for it; without that, an idle timeout or the request's deadline ends it.
    /// Zero is taken as 1.
    std::size_t max_connections_per_endpoint = 4;
    /// Whether to multiplex; off by default, which is right for php-fpm.
    multiplexing mode = multiplexing::off;
    /// Requests in flight per connection when multiplexing (ignored when off). A server that
    /// answers CANT_MPX_CONN drops that endpoint's connections to one, now and later. Zero is taken
    /// as 1, more than max_in_flight_limit as that.
    std::uint16_t max_requests_per_connection = 16;
    /// auto_detect: deadline of the GET_VALUES probe, its connect included. A server that does
    /// not answer within it (libfcgi waits for more bytes before it answers), or is not
    /// connected to by then, is treated as not multiplexing; only a connect refused (or failed
    /// within connection.connect_timeout) marks the endpoint down. Zero or less means the
    /// default.
    std::chrono::milliseconds probe_timeout{1000};
    /// Requests waiting for a busy connection (a request a new connection is being opened for
    /// does not count, nor, while an auto_detect probe runs, one per connection the pool may
    /// open after it); beyond it requests fail at once with error::pool_exhausted. Zero: no
    /// waiting beyond the connections the pool may open.
    std::size_t max_pending = 100000;
    /// An idle connection is closed after this long; keep it below php-fpm's
    /// request_terminate_timeout, which also kills idle kept workers. Zero: never.
    std::chrono::milliseconds idle_timeout{20000};
    /// A connection that has sent a request and received nothing for this long may be waiting
    /// in php-fpm's listen backlog for a worker that one of this pool's idle kept-alive
    /// connections holds. The pool then closes its longest-idle connection to that endpoint,
    /// which frees the worker, once per waiting connection (a slow script that has not
    /// written yet costs one reconnect). Zero: never; the request then waits for its deadline.
    std::chrono::milliseconds backlog_relief{1000};
    /// A connection is retired after this many requests (0: never). Set it to php-fpm's
    /// pm.max_requests to recycle with the workers: that avoids most, not all, closes of a
    /// connection under a request, since php-fpm counts per worker and a worker may have served
    /// other connections (another client, a closed idle one) first.
    std::uint64_t max_requests_per_connection_lifetime = 0;
    /// An idempotent request whose reused connection closes before any byte of the response is
    /// sent again, on a fresh connection, only when the close came within this time of sending
    /// it: php-fpm had closed the kept-alive connection (pm.max_requests, a reload). A later
    /// close means the script was running (output buffering sends nothing before it ends) and
    /// its worker died (request_terminate_timeout, a kill): it fails with
    /// error::connection_lost, so the script does not run twice. Zero: never sent again once
    /// written.
    std::chrono::milliseconds stale_close_window{500};
    /// A refused endpoint is retried after this backoff (at least 1 ms), doubling with each
    /// round of connects that fails (connects opened together count once) up to max_backoff.
    /// Each wait is drawn at random between 80 % and all of the backoff, so that clients that
    /// lost a server together do not all reconnect in the same instant.
    std::chrono::milliseconds initial_backoff{100};
    /// The longest backoff of a refused endpoint. A server that comes back (a php-fpm restart)
    /// is found at most this late; a refused connect to a unix socket or a local port costs
    /// microseconds, so a second is cheap. client::reset_backoff() cuts a wait short. An
    /// initial_backoff longer than it is taken as it.
    std::chrono::milliseconds max_backoff{1000};
    /// When every endpoint is down (its last connect failed, none open): false fails queued
    /// and new requests at once with error::no_endpoint; true keeps them queued, connecting
    /// again at each backoff's end, until an endpoint is back or their deadline passes
    /// (error::request_timeout, naming the endpoints down). True rides out a php-fpm restart:
    /// the part where its socket is gone or refuses, and the stop before it, where php-fpm still
    /// accepts connections and then resets them: a new connection closed within
    /// stale_close_window of its request, without a byte back, backs the endpoint off as a
    /// refused connect does, and an idempotent request on it waits again (as often as that
    /// happens, until its deadline); another request fails with error::connection_lost. Give
    /// requests a deadline, or they wait as long as the endpoints are down (`max_pending` still
    /// bounds the queue), and so does async_shutdown, which waits for them.
    bool wait_when_down = false;
    /// Connect timeout, default request deadline, response limits. Its max_in_flight is not
    /// used: the pool sets it per endpoint from `mode` and max_requests_per_connection.
    connection_options connection;
};

/// What an endpoint said to multiplexing::auto_detect's question (FCGI_GET_VALUES).
enum class probe_result {
    not_asked,    ///< multiplexing is set by option, or no question has ended yet
    multiplexes,  ///< the server said FCGI_MPXS_CONNS=1
    declined,     ///< the server answered without FCGI_MPXS_CONNS=1 (php-fpm says 0)
    no_answer,    ///< accepted, then closed, reset or silent past probe_timeout, or not
                  ///< connected within it: see probe_error
};

/// Counters of one endpoint's pool.
struct endpoint_stats {
    endpoint where;        ///< the endpoint
    std::size_t open = 0;  ///< connections open or connecting
    std::size_t idle = 0;  ///< open with nothing in flight, ready for a request
    /// Open with requests in flight, or with none but a request slot still held: a request that
    /// ended (its deadline, a cancellation) while its body source or sink was busy keeps its
    /// slot until that finishes (body_sink::implementation::cancel()).
    std::size_t busy = 0;
    /// Busy connections that have not received a single byte since they opened. php-fpm
    /// gives each kept-alive connection a worker of its own: connections beyond
    /// pm.max_children wait in its listen backlog like this, and only a deadline ends them.
    std::size_t unserved = 0;
    std::size_t in_flight = 0;  ///< requests handed to connections
    bool down = false;          ///< in backoff: refused a connect or answered OVERLOADED recently
    /// What last put the endpoint down: the connect's system error (ENOENT: no socket, php-fpm
    /// not running; ECONNREFUSED; EACCES), or connection_lost / request_timeout when it failed
    /// over; empty if never. connect_error_text() says what to check. Kept after it is back up.
    /// An OVERLOADED answer holds the endpoint (`down`) without setting it.
    std::error_code last_down_error;
    std::uint16_t max_in_flight_per_connection = 1;  ///< 1 unless multiplexing is in use
    /// Why max_in_flight_per_connection is what it is, under multiplexing::auto_detect.
    probe_result probe = probe_result::not_asked;
    std::error_code probe_error;  ///< with probe_result::no_answer: what ended the question
    /// Connection attempts (reconnects included; not the connection auto_detect's GET_VALUES
    /// question opens, which counts in neither of these two).
    std::uint64_t connects = 0;
    std::uint64_t reconnects = 0;        ///< connections that were open and closed since
    std::uint64_t connect_failures = 0;  ///< connection attempts that failed
    /// Idle connections closed to free a php-fpm worker for a new connection that got no byte
    /// back for `backlog_relief` (client_options): more connections than pm.max_children, as a
    /// rule. Each costs the waiting request that long; they count in `reconnects` too.
    std::uint64_t backlog_reliefs = 0;
    std::uint64_t completed = 0;  ///< requests that got a response
    /// Requests that failed on this endpoint (after any retry). One that fails while queued (its
    /// deadline, no_endpoint), a retry included, counts only in client_stats::failed.
    std::uint64_t failed = 0;
    /// Failed requests by error code (a request retried successfully is not counted).
    std::map<std::error_code, std::uint64_t> failed_by_reason;
};

/// Counters of a client.
struct client_stats {
    std::vector<endpoint_stats> endpoints;  ///< per endpoint, in the order of the options
    std::size_t queued = 0;                 ///< requests waiting for a connection
    std::uint64_t completed = 0;            ///< requests that got a response
    std::uint64_t failed = 0;               ///< requests that failed, rejected ones included
    std::uint64_t retries = 0;              ///< requests sent again after a retryable failure
    std::uint64_t rejected = 0;             ///< pool_exhausted
};

}  // namespace fcgi
