// What the pool makes of a failed connect or of multiplexing::auto_detect's GET_VALUES question:
// the judging half of client_impl's probe and connect handlers, kept apart from the bookkeeping
// so that it can be tested without a socket or a clock.
#pragma once

#include <chrono>
#include <system_error>

#include "fcgi/endpoint.hpp"

namespace fcgi::detail {

/// A connect to `where` refused because its listen backlog is full: a unix socket refuses with
/// EAGAIN (ENOBUFS through Asio 1.22) while every php-fpm worker is busy and listen.backlog
/// connections wait. The server is up; a connect shortly after may succeed.
bool backlog_full(const endpoint& where, std::error_code ec) noexcept;

/// What the pool does once the GET_VALUES question ends.
enum class probe_verdict {
    /// The listen backlog was full (backlog_full()): ask again after a short pause.
    ask_again_soon,
    /// A connect failure of condition::transport_error that is not one of the others: refused,
    /// no socket file (ENOENT), unreachable, timed out within the connection's own
    /// connect_timeout (also EAGAIN over TCP, this host out of local ports). Mark the endpoint
    /// down and ask again when its backoff ends.
    down,
    /// Answered; or accepted and then closed, reset or silent; or slow to connect, the probe's
    /// deadline ending a connect the pool's own connects give longer; or failed in a way that
    /// says nothing of the server (a name that does not resolve, an address this host cannot
    /// use). The server is not known to be down: the answer, or the lack of one, decides how
    /// many requests a connection takes, and the pool's own connects find out the rest.
    settled,
};

/// The verdict on a question to `where` that ended with `ec` (empty: answered), asked with a
/// deadline of `probe_timeout` (positive) and a connect limit of `connect_timeout` (zero or less:
/// none but the system's).
probe_verdict judge_probe(const endpoint& where, std::error_code ec,
                          std::chrono::milliseconds probe_timeout,
                          std::chrono::milliseconds connect_timeout) noexcept;

}  // namespace fcgi::detail
