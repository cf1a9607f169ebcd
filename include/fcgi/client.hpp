// fcgi::client: a keep-alive connection pool over one or more endpoints.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <memory>
#include <type_traits>

#include "fcgi/client_options.hpp"
#include "fcgi/detail/client_impl.hpp"
#include "fcgi/detail/context_executor.hpp"
#include "fcgi/detail/request_canceller.hpp"
#include "fcgi/detail/running_in_this_thread.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/request.hpp"
#include "fcgi/response.hpp"

namespace fcgi {

namespace detail {
struct client_access;
}  // namespace detail

/// Runs requests over pooled keep-alive connections.
///
/// Connections open lazily, up to `max_connections_per_endpoint` per endpoint, and are reused;
/// one the server closes while idle (pm.max_requests, restart) is dropped before anyone picks
/// it. Requests beyond the pool's capacity wait in a bounded queue. A request whose connection
/// closed before it was written, or that the server refused with CANT_MPX_CONN or OVERLOADED
/// before any response byte, is retried once; an idempotent request (GET/HEAD/OPTIONS unless
/// `request::idempotent` says otherwise) also when its reused connection closes before any
/// response byte within `stale_close_window`, or, with several endpoints, when a new connection
/// closes with no byte back (once, to another endpoint); under `wait_when_down` it waits again
/// after such a close as often as it happens, until its deadline. docs/errors.md ("What is
/// retried") has the whole list. Endpoints that refuse connections back off
/// exponentially; when all are down, queued requests fail with error::no_endpoint naming each
/// endpoint's error. A new connection that gets no byte back for `backlog_relief` may be in
/// php-fpm's listen backlog: the pool closes one of its idle connections to free a worker for it.
///
/// Thread safety: the executor must run one handler of the client at a time. When
/// io_context::run runs on several threads, or on an asio::thread_pool, pass a strand
/// (`asio::make_strand(ctx)`; the constructor taking a thread_pool does so itself); a plain
/// executor of either breaks the client. async_request and async_shutdown may be called from
/// any thread, and so may the destructor (it stops the client on the executor); the rest on
/// the executor. Never wait for a `use_future` result on the client's executor (in one of its
/// handlers, on its strand): the wait blocks the very handler that would answer it. Destroy the
/// client before its io_context or thread_pool, unless a handler of its own owns it (a coroutine
/// on the same context awaiting it): when the context is destroyed first, the client closes its
/// connections and destroys the handlers it holds without calling them, as Asio's own
/// operations are. A coroutine on another context unwinds there, later, and must not own it.
class client {
  public:
    /// The executor every handler of the client runs on, unless it has its own.
    using executor_type = asio::any_io_executor;

    /// A client on `ex`; nothing connects until the first request.
    client(executor_type ex, client_options options)
        : impl_(detail::client_impl::create(std::move(ex), std::move(options))) {}

    /// A client on `ctx.get_executor()` (an io_context, say), as Asio's I/O objects take one,
    /// or on a strand of it when `ctx` is an asio::thread_pool (its threads run handlers at once).
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&> client(
        ExecutionContext& ctx, client_options options)
        : client(detail::context_executor(ctx), std::move(options)) {}

    /// Stops the client: outstanding requests complete with error::client_stopped.
    ~client() {
        // A context already shut down stopped the client then: there is nothing to hand on.
        if (impl_ && !impl_->context_gone())
            asio::dispatch(impl_->get_executor(), [i = impl_] { i->stop(); });
    }
    /// Moves the client; the moved-from one must only be destroyed.
    client(client&&) noexcept = default;
    /// Not assignable.
    client& operator=(client&&) = delete;

    /// The executor of the client.
    executor_type get_executor() const noexcept { return impl_->get_executor(); }

    /// Runs one request on a pooled connection. May be called from any thread (it hops onto the
    /// client's executor); the handler runs on its own associated executor, the client's when
    /// it has none, never inside this call. The request is moved in, so nothing the caller holds
    /// needs to outlive the call (a body source or sink is shared with the request).
    ///
    /// Handler: void(std::error_code, fcgi::response), as connection::async_request, plus
    /// error::pool_exhausted (queue full), error::no_endpoint (all endpoints down),
    /// error::invalid_endpoint (client_options::endpoints empty, or one validate() refuses),
    /// error::client_stopped. The deadline (`req.timeout` or the default) counts from this call,
    /// queueing included. Cancellation through the handler's slot completes it with
    /// asio::error::operation_aborted: a queued request is removed (any type); a sent one is
    /// abandoned as on timeout for terminal and partial (its connection may close; the pool
    /// stays usable), and for total only while no byte of it was written (else it goes on).
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, response))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_request(request req, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code, response)>(
            initiate_request{}, token, impl_, std::move(req));
    }

    /// Runs a prepared request, as async_request(request) does without checking, deriving or
    /// encoding its params again: the cheapest way to send one request many times. An empty one
    /// fails with error::invalid_request. It is retried under the same rules as a request. The
    /// prepared request may be sent again, or dropped, while this send is in flight.
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, response))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_request(prepared_request req, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code, response)>(
            initiate_request{}, token, impl_, std::move(req));
    }

    /// Lets queued and in-flight requests finish, then closes every connection. May be called
    /// from any thread (it hops onto the client's executor); the handler runs on its own
    /// associated executor, the client's when it has none, never inside this call. It cannot
    /// be cancelled: stop() ends the wait (client_stopped).
    /// Handler: void(std::error_code), called once per call, when every request it waited for
    /// has completed and its handler has returned, whichever executor that handler is bound to
    /// (one destroyed unrun with its context counts as done), so what those handlers use may be
    /// freed in it: success, or error::client_stopped when stop() or the destructor stopped the
    /// client first. Later requests fail with error::client_stopped, and so do a running
    /// fan-out's unsent ones (the fan-out completes with client_stopped).
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_shutdown(Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code)>(
            [](auto handler, std::shared_ptr<detail::client_impl> impl) {
                auto ex = impl->get_executor();
                detail::error_handler h(std::move(handler), ex);
                asio::dispatch(ex, [impl = std::move(impl), h = std::move(h)]() mutable {
                    impl->start_shutdown(std::move(h));
                });
            },
            token, impl_);
    }

    /// Stops the client for good: fails everything queued and in flight with
    /// error::client_stopped, closes the connections, and every later request fails with
    /// client_stopped too. To end a run gracefully, async_shutdown(). Call on the executor (from
    /// another thread, destroy the client, or post the call there).
    void stop() { impl_->stop(); }
    /// stop() under its old name, which read as Asio's cancel(): that leaves an I/O object
    /// usable, and this does not.
    [[deprecated("client::cancel() is stop(): it stops the client for good")]] void cancel() {
        stop();
    }

    /// Ends every endpoint's backoff now: the pool connects again at once for what waits, and
    /// the next refusal backs off from initial_backoff. For a caller that knows the server is
    /// back (it restarted php-fpm, a health check passed) and will not wait out max_backoff.
    /// Call on the executor.
    void reset_backoff() { impl_->reset_backoff(); }

    /// Counters per endpoint and in total. Call on the executor.
    client_stats stats() const { return impl_->stats(); }

  private:
    friend struct detail::client_access;

    using cancel_request = detail::request_canceller<detail::client_impl>;

    struct initiate_request {
        template <class Handler, class Request>  // request or prepared_request
        void operator()(Handler&& handler, std::shared_ptr<detail::client_impl> impl,
                        Request req) const {
            auto serial = impl->next_serial();
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected())
                slot.template emplace<cancel_request>(cancel_request{impl, serial});
            auto ex = impl->get_executor();
            detail::request_handler h(std::forward<Handler>(handler), ex);
            if (detail::running_in_this_thread(ex)) {
                // On the executor already (a handler sending the next request): what
                // asio::dispatch would do, without wrapping the request in a function object.
                impl->start_request(std::move(req), std::move(h), serial);
                return;
            }
            // The deadline counts from this call, not from when the executor gets to it.
            asio::dispatch(ex, [impl = std::move(impl), req = std::move(req), h = std::move(h),
                                serial, called = std::chrono::steady_clock::now()]() mutable {
                impl->start_request(std::move(req), std::move(h), serial, called);
            });
        }
    };

    std::shared_ptr<detail::client_impl> impl_;
};

namespace detail {

// For operations built on the client (fan-out) that must not depend on the client object
// living on: they hold its implementation, which a stopped client's requests fail against.
struct client_access {
    static std::shared_ptr<client_impl> impl_of(const client& c) { return c.impl_; }
    template <class Handler>
    static void async_request(std::shared_ptr<client_impl> impl, request req, Handler&& handler) {
        client::initiate_request{}(std::forward<Handler>(handler), std::move(impl), std::move(req));
    }
};

}  // namespace detail

}  // namespace fcgi
