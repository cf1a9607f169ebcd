// One FastCGI connection: connect, send requests, get responses.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <chrono>
#include <memory>
#include <system_error>
#include <type_traits>

#include "fcgi/connection_options.hpp"
#include "fcgi/detail/connection_impl.hpp"
#include "fcgi/detail/context_executor.hpp"
#include "fcgi/detail/request_canceller.hpp"
#include "fcgi/detail/running_in_this_thread.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/request.hpp"
#include "fcgi/response.hpp"

namespace fcgi {

/// A single FastCGI connection over TCP or a unix socket.
///
/// One request is in flight at a time unless `connection_options::max_in_flight` says more (only
/// for servers reporting FCGI_MPXS_CONNS=1; php-fpm does not). Further requests wait in order.
/// Every request is sent with FCGI_KEEP_CONN; the connection is reused only when END_REQUEST
/// ended exactly at the end of the bytes read, and closed when bytes come with no request in
/// flight. A reader is always armed, so a server's close of an idle connection is seen at once.
///
/// Thread safety: async_connect and async_request may be called from any thread (they hop onto
/// the connection's executor), and so may the destructor; the other member functions must be
/// called on that executor. Use a strand as the executor when io_context::run runs on several
/// threads, or on an asio::thread_pool (the constructor taking the pool itself makes one).
/// Destroy the connection before its io_context, unless a handler of its own owns it (a
/// coroutine on the same context awaiting it): when the context is destroyed first, the
/// connection closes and the handlers it holds are destroyed without being called, as Asio's own
/// operations are. A coroutine on another context unwinds there, later, and must not own it.
class connection {
  public:
    /// The connection's I/O executor; a handler runs on its own associated executor, this one
    /// when it has none.
    using executor_type = asio::any_io_executor;

    /// A closed connection using `ex`.
    explicit connection(executor_type ex, const connection_options& options = {})
        : impl_(detail::connection_impl::create(std::move(ex), options)) {}

    /// A closed connection using `ctx.get_executor()` (an io_context, say), or a strand of it
    /// when `ctx` is an asio::thread_pool.
    template <class ExecutionContext>
    requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
    explicit connection(ExecutionContext& ctx, const connection_options& options = {})
        : connection(detail::context_executor(ctx), options) {}

    /// Closes the connection: requests in flight complete with asio::error::operation_aborted,
    /// requests still queued (never sent) with error::not_connected. May run on any thread: the
    /// close happens on the connection's executor (at once when called there).
    ~connection() { close_on_executor(); }

    /// Moves the connection; the moved-from one must only be destroyed or assigned to.
    connection(connection&&) noexcept = default;
    /// Closes this connection (as close()), then takes over `other`'s.
    connection& operator=(connection&& other) noexcept {
        if (impl_ != other.impl_)
            close_on_executor();
        impl_ = std::move(other.impl_);
        return *this;
    }

    /// The executor of the connection.
    executor_type get_executor() const noexcept { return impl_->get_executor(); }

    /// Connects to `ep` (resolving host names) within connect_timeout. May be called from any
    /// thread; the handler runs on its own associated executor, the connection's when it has
    /// none, never inside this call.
    ///
    /// Handler: void(std::error_code) — error::connect_timeout, error::invalid_endpoint (one
    /// validate() refuses), or the system error of the connect (connection_refused, no such
    /// file for a missing socket, ...); a host name's
    /// addresses race as connection_options::connect_attempt_delay says, and when all fail the
    /// most telling of their errors is the one reported (a refusal before a timeout before an
    /// address this machine cannot use).
    /// A connection connects once; make a new one to reconnect. A second call fails with
    /// asio::error::already_started while the first connects, already_connected once it is
    /// open, and error::not_connected once it is closed. Terminal or partial cancellation
    /// through the handler's slot ends a connect under way as close() does
    /// (asio::error::operation_aborted, the connection closed), so `connect || timer` is
    /// bounded by the timer.
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_connect(endpoint ep, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code)>(
            [](auto handler, std::shared_ptr<detail::connection_impl> impl, endpoint e) {
                auto serial = impl->next_serial();
                auto slot = asio::get_associated_cancellation_slot(handler);
                if (slot.is_connected())
                    slot.template emplace<cancel_connect>(cancel_connect{impl, serial});
                auto ex = impl->get_executor();
                detail::error_handler h(std::move(handler), ex);
                // Runs inline on the connection's executor, else hops onto it.
                asio::dispatch(ex, [impl = std::move(impl), e = std::move(e), h = std::move(h),
                                    serial]() mutable {
                    impl->start_connect(std::move(e), std::move(h), serial);
                });
            },
            token, impl_, std::move(ep));
    }

    /// Runs one request.
    ///
    /// Handler: void(std::error_code, fcgi::response). A response arrived when the error is
    /// empty, whatever its status; stderr text is data, not an error. Errors: request_timeout
    /// (the deadline of `req.timeout` or the connection's default passed: the connection is
    /// closed, since php-fpm ignores ABORT_REQUEST), connection_lost, the protocol errors,
    /// response_too_large, invalid_request and param_too_large (nothing sent), server_error codes
    /// for END_REQUEST statuses; with streamed bodies body_length_unknown (nothing sent),
    /// source_ended_early, source_failed and sink_failed, and the error a source's or sink's
    /// start() returned as it is (a file that cannot be opened: no_such_file_or_directory, ...).
    /// On error `response::diagnostics` explains what happened.
    /// Cancellation through the handler's slot ends the request with
    /// asio::error::operation_aborted, with the same effect as a timeout, as far as Asio's
    /// meanings allow: terminal always (a request being answered closes the connection unless
    /// it is multiplexed); partial only where the connection stays usable (not written yet,
    /// already answered, or aborted alone on a multiplexed connection); total only before any
    /// byte of it was written. Otherwise the request goes on. The handler never runs inside
    /// this call.
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, response))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_request(request req, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code, response)>(
            initiate_request{}, token, impl_, std::move(req));
    }

    /// Runs a prepared request, as async_request(request) does without checking, deriving or
    /// encoding its params again. An empty one fails with error::invalid_request. The prepared
    /// request may be sent again, or dropped, while this send is in flight.
    template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, response))
                  Token = asio::default_completion_token_t<executor_type>>
    auto async_request(prepared_request req, Token&& token = {}) {
        return asio::async_initiate<Token, void(std::error_code, response)>(
            initiate_request{}, token, impl_, std::move(req));
    }

    /// Closes the socket; requests in flight complete with asio::error::operation_aborted,
    /// requests still queued (never sent) with error::not_connected.
    void close() { impl_->close(asio::error::operation_aborted); }

    /// True once connected and until closed by either side.
    bool is_open() const noexcept { return impl_->state() == detail::connection_state::open; }

    /// Requests accepted and not yet completed.
    std::size_t outstanding() const noexcept { return impl_->outstanding(); }

    /// Where the connection goes.
    const endpoint& remote() const noexcept { return impl_->remote(); }

    /// Counters.
    connection_stats stats() const noexcept { return impl_->stats(); }

  private:
    // close() touches state the executor's handlers use: called there, it runs at once; from
    // another thread it is posted there.
    void close_on_executor() noexcept {
        // A context already shut down closed the connection then, and is no executor to use.
        if (!impl_ || impl_->context_gone())
            return;
        if (detail::running_in_this_thread(impl_->get_executor()))
            impl_->close(asio::error::operation_aborted);
        else
            asio::post(impl_->get_executor(),
                       [i = impl_] { i->close(asio::error::operation_aborted); });
    }

    // Weak, as cancel_request below; a late emit finds the connection no longer connecting,
    // and one for a refused second connect finds another serial under way.
    struct cancel_connect {
        std::weak_ptr<detail::connection_impl> impl;
        std::uint64_t serial;
        void operator()(asio::cancellation_type type) const {
            if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) ==
                asio::cancellation_type::none)
                return;
            if (auto i = impl.lock())
                asio::post(i->get_executor(), [i, s = serial] { i->cancel_connect(s); });
        }
    };

    using cancel_request = detail::request_canceller<detail::connection_impl>;

    // Whether `handler` runs on another executor than `ex` (use_future's, another context's).
    template <class Handler>
    static bool runs_elsewhere(const Handler& handler, const asio::any_io_executor& ex) {
        using handler_executor = asio::associated_executor_t<Handler, asio::any_io_executor>;
        if constexpr (std::is_convertible_v<handler_executor, asio::any_io_executor>)
            return asio::any_io_executor(asio::get_associated_executor(handler, ex)) != ex;
        else
            return true;
    }

    struct initiate_request {
        template <class Handler, class Request>  // request or prepared_request
        void operator()(Handler&& handler, std::shared_ptr<detail::connection_impl> impl,
                        Request req) const {
            auto serial = impl->next_serial();  // atomic: may run off the executor
            auto slot = asio::get_associated_cancellation_slot(handler);
            if (slot.is_connected())
                slot.template emplace<cancel_request>(cancel_request{impl, serial});
            auto ex = impl->get_executor();
            const bool elsewhere = runs_elsewhere(handler, ex);
            auto op = std::make_unique<detail::request_op>(
                std::move(req), detail::request_handler(std::forward<Handler>(handler), ex),
                serial);
            if (elsewhere)
                op->io_work = asio::prefer(ex, asio::execution::outstanding_work.tracked);
            // Runs inline on the connection's executor, else hops onto it, so plain code on
            // another thread may start requests (use_future).
            if (detail::running_in_this_thread(ex)) {
                impl->start_request(std::move(op));
                return;
            }
            op->called = std::chrono::steady_clock::now();  // request::timeout counts from here
            asio::dispatch(ex, [impl = std::move(impl), op = std::move(op)]() mutable {
                impl->start_request(std::move(op));
            });
        }
    };

    std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace fcgi
