// Whether the pool sends a failed request again, and whether the endpoint it failed on backs
// off: the decision half of client_impl::on_request_done, kept apart from the bookkeeping so
// that it can be tested without a socket or a clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>

namespace fcgi::detail {

/// What the pool knows of a request that has just completed, as plain values.
struct retry_input {
    /// How it completed (empty: answered).
    std::error_code ec;
    /// Response bytes received for it (response::bytes_received).
    std::size_t bytes_received = 0;
    /// Its connection had completed a request before this one was handed to it.
    bool reused = false;
    /// Its connection read nothing since it opened, as the connection said when it completed
    /// the request (for one that never reached a connection's slot: as the connection says
    /// now, or, gone already, whether it carried one request at a time).
    bool silent_connection = false;
    /// How long after sending it the connection closed, when lost_unanswered(); max otherwise.
    std::chrono::milliseconds after = std::chrono::milliseconds::max();
    /// Endpoints in the pool.
    std::size_t endpoints = 1;
    /// client_options::wait_when_down.
    bool wait_when_down = false;
    /// client_options::stale_close_window.
    std::chrono::milliseconds stale_close_window{500};
    /// client_options::max_requests_per_connection_lifetime is set: the diagnostics do not
    /// suggest it.
    bool recycling = false;
    /// The connection handed the request back, so it can be sent again without a copy.
    bool sendable = false;
    /// request::is_idempotent(); read only when `ec` is set and `sendable`.
    bool idempotent = false;
    /// request::stdin_source.restartable(); read only when `ec` is set and `sendable`.
    bool restartable = false;
    /// Counted attempts before this one (retries after a stopping endpoint are not counted).
    int attempts = 0;
    /// The client was stopped.
    bool stopped = false;
    /// The request was cancelled while dispatched.
    bool cancelled = false;
};

/// What the pool does with it.
struct retry_decision {
    /// Queue the request again.
    bool retry = false;
    /// The retry counts as an attempt (one after a stopping endpoint does not: its deadline
    /// bounds those).
    bool counted = true;
    /// The retry goes to a connection that did not sit idle (a stale kept-alive connection).
    bool fresh_only = false;
    /// Back the endpoint off as failed over: it is failing, or stopping under wait_when_down.
    bool back_off = false;
    /// The endpoint accepted the connection and then closed it, or never answered on it,
    /// without a byte back, and others can take its share (failover).
    bool failing_endpoint = false;
    /// `diagnostics` reads the close's time as one cause or the other; otherwise, after a
    /// connection lost with nothing back, it gives the bare time.
    bool said_when = false;
    /// To append to response::diagnostics (empty when retried).
    std::string diagnostics;
};

/// The connection was lost before any byte of the response: the case where the time since
/// sending tells a stale or stopping server from a script that ran.
bool lost_unanswered(std::error_code ec, std::size_t bytes_received) noexcept;

/// Decides whether the request of `in` goes again (only once, and only what the connection
/// handed back: one never written whatever its method, any other only when idempotent), and
/// whether its endpoint backs off.
retry_decision decide_retry(const retry_input& in);

}  // namespace fcgi::detail
