// Fan-out: run many requests through a client, a bounded number at a time.
#pragma once

#include <algorithm>
#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/detail/any_handler.hpp"
#include "fcgi/error.hpp"

namespace fcgi {

/// The outcome of one request of a fan-out.
struct fanout_result {
    std::error_code ec;                     ///< empty when a response arrived
    response resp;                          ///< the response, or on error its diagnostics
    std::chrono::microseconds duration{0};  ///< from sending to the client to completion
};

namespace detail {

// Keeps `concurrency` requests in flight; each completion starts the next. The state is shared
// by the in-flight completions only, and dies with the last of them. Runs on the client's
// executor. It refers to the client's implementation, weakly: a client destroyed during the
// fan-out fails its requests with client_stopped, and the fan-out sends no more. Held strongly,
// it made a cycle through the requests' handlers, which the implementation holds: when the
// client's stop never ran (the io_context stopped first), the pool and its sockets leaked.
template <class OnResult, class OnDone>
struct fanout_state : std::enable_shared_from_this<fanout_state<OnResult, OnDone>> {
    fanout_state(const std::shared_ptr<client_impl>& c, std::vector<request> reqs, std::size_t conc,
                 OnResult on_result, OnDone on_done)
        : impl(c),
          ex(c->get_executor()),
          requests(std::move(reqs)),
          result(std::move(on_result)),
          done(std::move(on_done)),
          concurrency(conc == 0 ? 1 : conc) {}

    // One signal per request in flight, to pass a cancellation of the whole on to each.
    void make_cancellable() {
        std::size_t n = std::min(concurrency, requests.size());
        signals = std::make_unique<asio::cancellation_signal[]>(n);
        free_signals.reserve(n);
        for (std::size_t i = n; i > 0; --i)
            free_signals.push_back(i - 1);
    }

    void launch() {
        // Cancelled or stopped, nothing more is sent: fail_unsent() takes the rest, also when
        // on_result threw half way through it and a completion comes before it goes on.
        std::shared_ptr<client_impl> client;
        while (next < requests.size() && running < concurrency && !cancelled && !stopped) {
            if (!client && !(client = impl.lock())) {
                // Gone, its stop already run: whatever it had is failed or answered.
                stopped = true;
                fail_unsent(error::client_stopped, "the client was destroyed");
                break;
            }
            std::size_t index = next++;
            ++running;
            auto start = std::chrono::steady_clock::now();
            std::size_t sig = no_signal;
            if (signals) {
                sig = free_signals.back();
                free_signals.pop_back();
            }
            auto on_response = [self = this->shared_from_this(), index, start, sig](
                                   std::error_code ec, response r) {
                auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start);
                self->on_complete(index, sig, fanout_result{ec, std::move(r), took});
            };
            if (signals)
                client_access::async_request(
                    client, std::move(requests[index]),
                    asio::bind_cancellation_slot(signals[sig].slot(), std::move(on_response)));
            else
                client_access::async_request(client, std::move(requests[index]),
                                             std::move(on_response));
        }
        if (running == 0 && next == requests.size() && !finished) {
            finished = true;
            done(aborted   ? std::error_code(asio::error::operation_aborted)
                 : stopped ? std::error_code(error::client_stopped)
                           : std::error_code());
        }
    }

    void on_complete(std::size_t index, std::size_t sig, fanout_result r) {
        --running;
        if (sig != no_signal)
            free_signals.push_back(sig);
        // A cancellation that came too late for every request is no failure of the whole.
        if (cancelled && r.ec == asio::error::operation_aborted)
            aborted = true;
        // A stopped client stays stopped: the rest would fail one by one.
        const bool client_gone = r.ec == error::client_stopped && !stopped;
        try {
            result(index, std::move(r));
        } catch (...) {
            // on_result threw out of run(), which may be called again: the fan-out goes on
            // there, rather than never sending the rest nor completing.
            asio::post(ex, [self = this->shared_from_this(), client_gone] {
                self->after_result(client_gone);
            });
            throw;
        }
        after_result(client_gone);
    }

    void after_result(bool client_gone) {
        if (client_gone) {
            stopped = true;
            fail_unsent(error::client_stopped, "the client stopped taking requests");
        }
        launch();
    }

    // What is not sent yet completes now with `ec`, `why` before request N was sent.
    void fail_unsent(std::error_code ec, const char* why) {
        while (next < requests.size()) {
            std::size_t index = next++;
            requests[index] = request{};  // not held until the last one in flight ends
            fanout_result r{ec, {}, {}};
            r.resp.diagnostics =
                std::string(why) + " before request " + std::to_string(index) + " was sent";
            try {
                result(index, std::move(r));
            } catch (...) {
                // As in on_complete: the rest fail, and the fan-out ends, in run() called again.
                asio::post(ex, [self = this->shared_from_this(), ec, why] {
                    self->fail_unsent(ec, why);
                    self->launch();
                });
                throw;
            }
        }
    }

    // The caller cancelled the fan-out: what is not sent fails now, what is out is cancelled.
    // Again on a second emit: total leaves the requests already written running, and a
    // terminal emit after it must still reach them.
    void cancel(asio::cancellation_type type) {
        if (finished)
            return;
        const bool first = !cancelled;
        if (first) {
            cancelled = true;  // from here nothing more is sent
            if (next < requests.size())
                aborted = true;
        }
        // The requests out are cancelled before on_result hears of the unsent ones: it may throw.
        const std::size_t n = std::min(concurrency, requests.size());
        for (std::size_t i = 0; i < n; ++i)
            signals[i].emit(type);
        if (first)
            fail_unsent(asio::error::operation_aborted, "the fan-out was cancelled");
        launch();  // completes when nothing was in flight
    }

    static constexpr std::size_t no_signal = static_cast<std::size_t>(-1);

    std::weak_ptr<client_impl> impl;
    asio::any_io_executor ex;  // the client's
    std::vector<request> requests;
    OnResult result;
    OnDone done;
    std::size_t concurrency;
    std::size_t next = 0;
    std::size_t running = 0;
    bool finished = false;
    bool cancelled = false;
    bool aborted = false;  // some request ended with operation_aborted after the cancellation
    bool stopped = false;  // some request ended with client_stopped
    std::unique_ptr<asio::cancellation_signal[]> signals;  // null when not cancellable
    std::vector<std::size_t> free_signals;
};

// Installed in the caller's cancellation slot: hands the cancellation to the client's executor.
// Weak: the slot may outlive the fan-out.
template <class State>
struct cancel_fanout {
    std::weak_ptr<State> state;
    asio::any_io_executor ex;
    void operator()(asio::cancellation_type type) const {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
            return;
        if (auto st = state.lock())
            asio::post(ex, [st = std::move(st), type] { st->cancel(type); });
    }
};

}  // namespace detail

/// Runs `requests` through `c`, at most `concurrency` (0 counts as 1) at a time, calling
/// `on_result(index, fanout_result)` as each completes (on the client's executor), then completes
/// the token.
///
/// Handler: void(std::error_code) — success, asio::error::operation_aborted when a
/// cancellation ended some request, or error::client_stopped when the client was stopped
/// (stop(), destroyed) during the fan-out: the requests not yet sent then go to on_result at
/// once with client_stopped. Per-request errors go to on_result. Cancellation (terminal,
/// partial, total) through the handler's slot: requests not yet handed to the client (beyond
/// the concurrency window) go to on_result at once with operation_aborted, those handed over
/// are cancelled as client::async_request's are, as far as the type allows (and go to
/// on_result when they end); the handler runs after the last. Memory: results are not collected,
/// but the whole vector of requests is held until the last completes (each request is moved out
/// when it is launched), plus what on_result keeps; feed very large job lists in batches. `c` must
/// be alive when the operation starts (for `deferred`, when it is launched); it may be destroyed
/// during the fan-out, which then ends as above.
template <class OnResult, ASIO_COMPLETION_TOKEN_FOR(void(std::error_code))
                              Token = asio::default_completion_token_t<client::executor_type>>
auto async_fanout_each(client& c, std::vector<request> requests, std::size_t concurrency,
                       OnResult on_result, Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [&c](auto handler, std::vector<request> reqs, std::size_t conc, OnResult each) {
            auto slot = asio::get_associated_cancellation_slot(handler);
            auto h = std::make_shared<detail::error_handler>(std::move(handler), c.get_executor());
            auto on_done = [h](std::error_code ec) { h->post(ec); };
            using state = detail::fanout_state<OnResult, decltype(on_done)>;
            auto st = std::make_shared<state>(detail::client_access::impl_of(c), std::move(reqs),
                                              conc, std::move(each), std::move(on_done));
            if (slot.is_connected()) {
                st->make_cancellable();
                slot.template emplace<detail::cancel_fanout<state>>(
                    detail::cancel_fanout<state>{st, c.get_executor()});
            }
            asio::dispatch(c.get_executor(), [st] { st->launch(); });
        },
        token, std::move(requests), concurrency, std::move(on_result));
}

/// Runs `requests` through `c`, at most `concurrency` (0 counts as 1) at a time, and completes with
/// one result per request in input order. Handler: void(std::error_code,
/// std::vector<fanout_result>), run on its associated executor. The error is success,
/// asio::error::operation_aborted when cancelled through the handler's slot, or
/// error::client_stopped when the client was stopped or destroyed (as async_fanout_each).
/// The results are all there either way, but `use_awaitable` throws the error instead, and
/// `use_future`'s future holds the exception: await with
/// `asio::experimental::as_tuple(asio::use_awaitable)` (or pass a callback) to keep them.
template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, std::vector<fanout_result>))
              Token = asio::default_completion_token_t<client::executor_type>>
auto async_fanout(client& c, std::vector<request> requests, std::size_t concurrency,
                  Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, std::vector<fanout_result>)>(
        [&c](auto handler, std::vector<request> reqs, std::size_t conc) {
            auto results = std::make_shared<std::vector<fanout_result>>(reqs.size());
            auto slot = asio::get_associated_cancellation_slot(handler);
            // The inner token carries the handler's executor, so the final hop lands where the
            // handler runs. (It once also kept a slot cleared on the client's executor from
            // racing the caller's emit; any_handler no longer clears slots.)
            auto ex = asio::get_associated_executor(handler, c.get_executor());
            detail::any_handler<void(std::error_code, std::vector<fanout_result>)> h(
                std::move(handler), c.get_executor());
            async_fanout_each(
                c, std::move(reqs), conc,
                [results](std::size_t i, fanout_result r) { (*results)[i] = std::move(r); },
                asio::bind_cancellation_slot(
                    slot, asio::bind_executor(
                              ex, [results, h = std::move(h)](std::error_code ec) mutable {
                                  h.dispatch(ec, std::move(*results));
                              })));
        },
        token, std::move(requests), concurrency);
}

}  // namespace fcgi
