// Fan-out: run many requests through a client, a bounded number at a time.
#pragma once

#include <asio/async_result.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <system_error>
#include <vector>

#include "fcgi/client.hpp"
#include "fcgi/detail/any_handler.hpp"

namespace fcgi {

/// The outcome of one request of a fan-out.
struct fanout_result {
    std::error_code ec;                     ///< empty when a response arrived
    response resp;                          ///< the response, or on error its diagnostics
    std::chrono::microseconds duration{0};  ///< from sending to the client to completion
};

namespace detail {

// Keeps `concurrency` requests in flight; each completion starts the next. The state is shared
// by the in-flight completions only, and dies with the last of them.
template <class OnResult, class OnDone>
struct fanout_state : std::enable_shared_from_this<fanout_state<OnResult, OnDone>> {
    fanout_state(client& c, std::vector<request> reqs, OnResult on_result, OnDone on_done)
        : cl(c),
          requests(std::move(reqs)),
          result(std::move(on_result)),
          done(std::move(on_done)) {}

    void launch() {
        while (next < requests.size() && running < concurrency) {
            std::size_t index = next++;
            ++running;
            auto start = std::chrono::steady_clock::now();
            cl.async_request(std::move(requests[index]), [self = this->shared_from_this(), index,
                                                          start](std::error_code ec, response r) {
                auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start);
                self->on_complete(index, fanout_result{ec, std::move(r), took});
            });
        }
        if (running == 0 && next == requests.size() && !finished) {
            finished = true;
            done();
        }
    }

    void on_complete(std::size_t index, fanout_result r) {
        --running;
        result(index, std::move(r));
        launch();
    }

    client& cl;
    std::vector<request> requests;
    OnResult result;
    OnDone done;
    std::size_t concurrency = 1;
    std::size_t next = 0;
    std::size_t running = 0;
    bool finished = false;
};

}  // namespace detail

/// Runs `requests` through `c`, at most `concurrency` at a time, calling `on_result(index,
/// fanout_result)` as each completes (on the client's executor), then completes the token.
///
/// Handler: void(std::error_code) — always success; per-request errors go to on_result.
/// Memory: results are not collected, but the whole vector of requests is held until the last
/// completes (each request is moved out when it is launched), plus what on_result keeps; feed
/// very large job lists in batches. `c` must outlive the operation.
template <class OnResult, ASIO_COMPLETION_TOKEN_FOR(void(std::error_code))
                              Token = asio::default_completion_token_t<client::executor_type>>
auto async_fanout_each(client& c, std::vector<request> requests, std::size_t concurrency,
                       OnResult on_result, Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [&c](auto handler, std::vector<request> reqs, std::size_t conc, OnResult each) {
            auto h =
                std::make_shared<detail::connect_handler>(std::move(handler), c.get_executor());
            auto on_done = [h] { h->post(std::error_code()); };
            auto st = std::make_shared<detail::fanout_state<OnResult, decltype(on_done)>>(
                c, std::move(reqs), std::move(each), std::move(on_done));
            st->concurrency = conc == 0 ? 1 : conc;
            asio::dispatch(c.get_executor(), [st] { st->launch(); });
        },
        token, std::move(requests), concurrency, std::move(on_result));
}

/// Runs `requests` through `c`, at most `concurrency` at a time, and completes with one result
/// per request in input order. Handler: void(std::error_code, std::vector<fanout_result>), run
/// on its associated executor. Not cancellable through the token: cancel the client instead.
template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, std::vector<fanout_result>))
              Token = asio::default_completion_token_t<client::executor_type>>
auto async_fanout(client& c, std::vector<request> requests, std::size_t concurrency,
                  Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, std::vector<fanout_result>)>(
        [&c](auto handler, std::vector<request> reqs, std::size_t conc) {
            auto results = std::make_shared<std::vector<fanout_result>>(reqs.size());
            // Wrapped first: the lambda below, the token of async_fanout_each, has no associated
            // executor, and the handler must still run on its own (a coroutine's, a strand).
            detail::any_handler<void(std::error_code, std::vector<fanout_result>)> h(
                std::move(handler), c.get_executor());
            async_fanout_each(
                c, std::move(reqs), conc,
                [results](std::size_t i, fanout_result r) { (*results)[i] = std::move(r); },
                [results, h = std::move(h)](std::error_code ec) mutable {
                    h.dispatch(ec, std::move(*results));
                });
        },
        token, std::move(requests), concurrency);
}

}  // namespace fcgi
