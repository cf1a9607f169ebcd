// The pool behind fcgi::client: connections per endpoint, a bounded wait queue, balancing,
// backoff, retries. All state lives on one executor.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "fcgi/client_options.hpp"
#include "fcgi/detail/any_handler.hpp"
#include "fcgi/detail/connection_impl.hpp"
#include "fcgi/detail/context_shutdown.hpp"
#include "fcgi/detail/endpoint_backoff.hpp"
#include "fcgi/detail/endpoint_pool.hpp"
#include "fcgi/detail/wait_queue.hpp"

namespace fcgi::detail {

class client_impl : public std::enable_shared_from_this<client_impl>, public context_bound {
  public:
    /// A client registered for its execution context's shutdown (context_shutdown.hpp).
    static std::shared_ptr<client_impl> create(asio::any_io_executor ex, client_options opts);
    client_impl(asio::any_io_executor ex, client_options opts);
    ~client_impl();

    const asio::any_io_executor& get_executor() const noexcept { return ex_; }
    std::uint64_t next_serial() noexcept { return serial_.fetch_add(1) + 1; }
    /// Queues a request; its deadline counts from `called` (when async_request was called off
    /// the executor), or from now when that is unset.
    void start_request(request&& req, request_handler h, std::uint64_t serial,
                       std::chrono::steady_clock::time_point called = {});
    void start_request(prepared_request&& req, request_handler h, std::uint64_t serial,
                       std::chrono::steady_clock::time_point called = {});
    /// Cancels request `serial` as far as `type` allows: queued, any type; sent, terminal and
    /// partial (its connection may close; the pool stays usable), total only before a byte of
    /// it was written.
    void cancel(std::uint64_t serial, asio::cancellation_type type);
    /// Fails everything pending and in flight with error::client_stopped; closes connections.
    void stop();
    /// Lets in-flight and queued requests finish, then closes everything and calls `h`.
    void start_shutdown(error_handler h);
    /// Ends every endpoint's backoff and connects again for what waits.
    void reset_backoff();
    client_stats stats() const;
    /// The execution context shuts down: closes every connection and destroys every handler
    /// held, queued requests' too, without calling them.
    void on_context_shutdown() override;

  private:
    struct pending_op;
    void enqueue(std::unique_ptr<pending_op> op, std::chrono::steady_clock::time_point called);
    /// Arms the timer that fails `op` with request_timeout if it is still queued at its
    /// deadline (at once when that has passed); nothing when it has none.
    void wait_deadline(pending_op& op);
    /// Cancels `ep`'s GET_VALUES probe if one is running.
    void stop_probe(endpoint_pool& ep);
    /// Removes the queued request `serial`; null when it is not queued.
    std::unique_ptr<pending_op> take_queued(std::uint64_t serial);
    /// Requests queued beyond what the connections being opened will take.
    std::size_t waiting_beyond_connecting() const;
    void pump();
    /// The endpoint to serve the next request (`fresh`: a stale-close retry), not `avoid`
    /// unless every other one is down; null when none can now.
    endpoint_pool* pick_endpoint(bool fresh, lazy_now& now, const endpoint_pool* avoid = nullptr);
    /// Opens a connection to `ep` for a queued request (`fresh`: a stale-close retry, for which
    /// an idle used connection is retired at the limit), unless enough are connecting for the
    /// queue. False when none was opened.
    bool open_for(endpoint_pool& ep, bool fresh, lazy_now& now);
    pooled_connection* find_usable(endpoint_pool& ep, bool fresh) {
        return ep.find_usable(fresh, opts_.max_requests_per_connection_lifetime);
    }
    /// Has had its max_requests_per_connection_lifetime (see pooled_connection::retiring).
    bool retiring(const pooled_connection& pc) const noexcept {
        return pc.retiring(opts_.max_requests_per_connection_lifetime);
    }
    void dispatch(endpoint_pool& ep, pooled_connection& pc, std::unique_ptr<pending_op> op);
    /// The head of the queue is a retry waiting for a fresh connection or another endpoint:
    /// sends the first request behind it that can go now, or opens a connection for it; false
    /// when none can. (A retry further back waits until the requests ahead of it go.)
    bool dispatch_behind(lazy_now& now);
    void open_connection(endpoint_pool& ep);
    void start_probe(endpoint_pool& ep);
    void arm_retry_timer(lazy_now& now);
    /// "; endpoints down: <each with its error>", or empty when none is.
    std::string down_reason() const;
    /// "; a connect to X has been pending for N ms" per endpoint with one connecting for
    /// `at_least` (and the like for an unanswered auto_detect probe, and for connects refused
    /// for a full listen backlog): a request that waited out its deadline in the queue says
    /// what it waited for.
    std::string pending_connects(std::chrono::steady_clock::duration at_least) const;
    /// What `op` waited out its deadline for when no endpoint was down and no connect or probe
    /// was pending long: a connection of its own kind (a retry), or "; every connection was
    /// busy …"; empty when no connection is open.
    std::string waited_for(const pending_op& op) const;
    void mark_down(endpoint_pool& ep, std::error_code ec);
    connection_options connection_options_for(const endpoint_pool& ep) const;
    void on_connected(endpoint_pool* ep, std::uint64_t id, std::error_code ec);
    /// Where a request was sent. `pc` is one of `ep`'s connections only while that connection
    /// is open: a connection leaves the pool once closed.
    struct sent_on {
        endpoint_pool* ep;
        pooled_connection* pc;
    };
    void on_request_done(std::unique_ptr<pending_op> op, sent_on on, bool reused,
                         std::error_code ec, response&& r);
    /// After a request on `conn` ended (answered, failed or queued again): closes the
    /// connection if it is idle and retiring, serves the queue, watches what went idle.
    void after_request(sent_on on, const std::shared_ptr<connection_impl>& conn);
    /// Keeps the pool alive while a shutdown waits for requests that stop() failed, or for
    /// request handlers still to report back (handler_watch()).
    void hold_for_shutdown();
    void on_connection_event();
    /// Arms the idle timer for the connection idle longest, unless armed or none is idle.
    void watch_idle();
    void close_idle();
    /// Frees a worker for connections waiting in a listen backlog (client_options::backlog_relief).
    void relieve_backlog();
    /// Waits on `timer` until `at`, then runs `then` unless the wait was cancelled; `armed`
    /// holds while the wait is pending.
    void wait_then(asio::steady_timer& timer, bool client_impl::*armed,
                   std::chrono::steady_clock::time_point at, void (client_impl::*then)());
    /// Backs `ep` off after a refused connect or (`failed_over`) a failing connection, the
    /// wait jittered.
    void back_off(endpoint_pool& ep, bool failed_over);
    void fail(std::unique_ptr<pending_op> op, std::error_code ec, std::string why);
    /// While a shutdown waits: counts a request handler out, and returns what, released once
    /// that handler has run (any_handler::post_holding), counts it back in on the executor.
    /// Empty otherwise, at no cost.
    std::shared_ptr<void> handler_watch();
    void check_shutdown_done();
    /// Stops for good: timers cancelled, every connection closed (its requests fail).
    void halt();

    asio::any_io_executor ex_;
    client_options opts_;
    std::vector<endpoint_pool> pools_;
    // Why an endpoint of client_options::endpoints cannot be connected to (validate()), for
    // every request to fail with at once; empty when all can.
    std::string bad_endpoint_;
    wait_queue<pending_op> queue_;
    std::vector<pending_op*> in_flight_;  // non-owning: owned by the connection's handler
    std::atomic<std::uint64_t> serial_{0};
    bool stopped_ = false;
    bool stopped_by_call_ =
        false;  // stop() ran: a shutdown under way completes with client_stopped
    bool shutting_down_ = false;
    // Request handlers handed out while a shutdown waited and not yet done with: it completes
    // after them, on whatever executor they run (see handler_watch()).
    std::size_t handlers_out_ = 0;
    std::vector<error_handler> shutdown_handlers_;  // one per async_shutdown, in order
    std::uint64_t connection_ids_ = 0;
    std::size_t tie_start_ = 0;  // where pick_endpoint() starts its scan
    asio::steady_timer retry_timer_;
    bool retry_armed_ = false;
    asio::steady_timer idle_timer_;  // closes connections idle for client_options::idle_timeout
    bool idle_armed_ = false;
    asio::steady_timer relief_timer_;  // next backlog_relief check, while a connection waits
    bool relief_armed_ = false;
    bool relief_waiting_ = false;  // a connection is due for relief and no connection was idle
    bool event_posted_ = false;
    std::chrono::steady_clock::time_point retry_at_{};
    std::uint64_t completed_ = 0, failed_ = 0, retries_ = 0, rejected_ = 0;
    std::minstd_rand jitter_;  // draws each backoff's share; seeded per client
    // Waits, holding the pool, while a shutdown waits for requests that stop() failed: see
    // stop(). A pending wait (not a member pointing at itself) so that an io_context destroyed
    // first still frees the pool.
    asio::steady_timer hold_timer_;
};

}  // namespace fcgi::detail
