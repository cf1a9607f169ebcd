// The connections of one endpoint, with its counters, backoff and auto_detect state; which of
// them can take a request. client_impl keeps one per endpoint and decides between them.
#pragma once

#include <asio/cancellation_signal.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <system_error>
#include <vector>

#include "fcgi/client_options.hpp"
#include "fcgi/detail/connection_impl.hpp"
#include "fcgi/detail/endpoint_backoff.hpp"

namespace fcgi::detail {

/// One connection of an endpoint's pool and what the pool knows of it.
struct pooled_connection {
    std::shared_ptr<connection_impl> conn;
    // Names it for client_impl::on_connected(): an address may be reused by a later connection.
    std::uint64_t id = 0;
    bool connected = false;
    // When its first request was handed to it; a relief was tried for it (backlog_relief).
    std::chrono::steady_clock::time_point first_dispatch{};
    bool relieved = false;
    std::uint64_t dispatched = 0;                    // requests handed to it
    std::chrono::steady_clock::time_point opened{};  // when its connect started
    bool hinted = false;                             // in endpoint_pool's hints

    /// Has had `lifetime` requests (0: no limit): takes no more, also while busy (a multiplexed
    /// one may never be idle), and closes once idle.
    bool retiring(std::uint64_t lifetime) const noexcept {
        return lifetime > 0 && dispatched >= lifetime;
    }
    /// Connected, with a request out and not one byte back since it opened: beyond
    /// pm.max_children, php-fpm leaves such a connection in its listen backlog.
    bool unserved() const;
};

/// The pool of one endpoint.
struct endpoint_pool {
    endpoint where;
    std::vector<std::unique_ptr<pooled_connection>> conns;
    // When every endpoint is down with none open, queued requests fail with no_endpoint.
    endpoint_backoff hold;
    std::error_code last_error;
    std::size_t in_flight = 0;
    std::uint64_t connects = 0, connect_failures = 0, completed = 0, failed = 0;
    std::uint64_t closed = 0;  // connections that were open and closed since
    std::uint64_t backlog_reliefs = 0;
    // Connects refused for a full listen backlog since the last one that succeeded: a request
    // that waits out its deadline meanwhile says so.
    std::uint64_t backlog_full_connects = 0;
    std::chrono::steady_clock::time_point last_backlog_full{};
    std::map<std::error_code, std::uint64_t> failed_by_reason;
    enum class probe { needed, running, done } probe_state = probe::done;
    // Stops a running probe when the client stops. The probe's handler owns the signal: its
    // slot must outlive the operation, which may outlive the pool.
    std::weak_ptr<asio::cancellation_signal> probe_stopper;
    std::chrono::steady_clock::time_point probe_started{};  // for a request's timeout text
    std::uint16_t max_in_flight = 1;                // per connection: 1, or the multiplexing limit
    probe_result probed = probe_result::not_asked;  // how auto_detect set max_in_flight
    std::error_code probe_error;

    void note_backlog_full(std::chrono::steady_clock::time_point now) {
        ++backlog_full_connects;
        last_backlog_full = now;
    }
    /// Adds a connection (not yet connected) to `conns`.
    pooled_connection& add(std::unique_ptr<pooled_connection> pc);
    /// `pc` reported an event (a request slot given back, or a close): among the first tried
    /// for the next request, or swept by the next remove_closed().
    void note_event(pooled_connection& pc) noexcept;
    /// A request on `pc`, one of `conns`, has ended: among the first tried for the next one.
    void note_request_done(pooled_connection& pc) noexcept { hint(pc); }
    /// `pc`, one of `conns`, has just connected. Not tried first: beyond pm.max_children a new
    /// connection waits in php-fpm's listen backlog, where a used one is being served.
    void note_connected(pooled_connection& pc) noexcept;
    /// Drops the connections that were open and have closed since.
    void remove_closed();
    /// Closes and drops `pc`, one of `conns`, without an event (counted as closed).
    void close_now(pooled_connection& pc, std::error_code ec);
    /// Drops `pc`, one of `conns`, that never connected.
    void erase_unconnected(pooled_connection& pc);
    /// Drops every connection (whose callbacks the caller has cleared).
    void clear() noexcept {
        conns.clear();
        hints.clear();
        closed_pending = false;
    }
    /// A connection that can take a request now and is not retiring after `lifetime`
    /// requests (`fresh`: a stale-close retry, which a connection that sat idle does not
    /// take), or null.
    pooled_connection* find_usable(bool fresh, std::uint64_t lifetime);
    /// An open idle connection, or null.
    pooled_connection* find_idle();
    /// The open connection idle the longest, or null when none is idle.
    pooled_connection* longest_idle();
    /// Its figures for client_stats (`down` as the caller reckons it).
    endpoint_stats stats(bool down) const;

  private:
    // With hundreds of connections, touching each one per request cost more than a tenth of
    // the client's CPU (docs/benchmarks.md, "The pool's per-request scans"). Both are kept
    // as the connections' events come in.
    // Set when a connection that was open may have closed: remove_closed() has work then.
    // (A connection closed by its execution context's shutdown says nothing, but then the
    // client clears every pool before anything else runs.)
    bool closed_pending = false;
    // Connections whose requests ended (or that reported an event) since they were last found
    // busy, each once, in the order first reported: tried last added first, before the scan,
    // which stays for whatever frees a connection without a word. Its capacity is kept at
    // conns' size, so adding one never allocates (inside a connection's callback).
    std::vector<pooled_connection*> hints;

    void hint(pooled_connection& pc) noexcept;
    void forget(pooled_connection& pc) noexcept;
    /// Takes `pc`, whose callback is cleared, out of `conns` and the hints.
    void erase(pooled_connection& pc);
};

}  // namespace fcgi::detail
