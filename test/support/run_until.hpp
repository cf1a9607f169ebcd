// Drives an io_context until a condition holds, bounded in time: the replacement for sleeps.
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <exception>

namespace fcgi::test {

/// Runs `ctx` until `done()` holds; false when `limit` passed first. Connections keep their
/// readers armed, so "out of work" never means "finished". A predicate on another thread's
/// state needs that thread to post something to `ctx` to wake it.
template <class Pred>
bool run_until(asio::io_context& ctx, Pred done,
               std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    using steady = std::chrono::steady_clock;
    auto deadline = steady::now() + limit;
    while (!done()) {
        auto now = steady::now();
        if (now >= deadline)
            return false;
        if (ctx.stopped())
            ctx.restart();
        if (ctx.run_one_for(deadline - now) == 0 && ctx.stopped())
            return done();  // nothing left that could make progress
    }
    return true;
}

/// Wakes `ctx` every few milliseconds until stop(), so run_until can watch state that lives
/// outside it (another thread's, the kernel's). Must outlive the runs of `ctx` it is used in.
class ticker {
  public:
    explicit ticker(asio::io_context& ctx) : timer_(ctx) { tick(); }
    /// No more wakes; the pending one completes as cancelled, so `ctx` can run out of work.
    void stop() {
        stopped_ = true;
        timer_.cancel();
    }

  private:
    void tick() {
        timer_.expires_after(std::chrono::milliseconds(5));
        timer_.async_wait([this](std::error_code ec) {
            if (!ec && !stopped_)
                tick();
        });
    }
    asio::steady_timer timer_;
    bool stopped_ = false;
};

/// Runs the coroutine made by `fn()` on `ctx`; fails the test if it does not finish within
/// `limit`, and rethrows what it threw.
template <class F>
void run_coro(asio::io_context& ctx, F&& fn,
              std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    bool done = false;
    std::exception_ptr failure;
    asio::co_spawn(ctx, fn(), [&](std::exception_ptr e) {
        failure = e;
        done = true;
    });
    BOOST_REQUIRE_MESSAGE(run_until(
                              ctx, [&] { return done; }, limit),
                          "test coroutine did not finish in time");
    if (failure)
        std::rethrow_exception(failure);
}

}  // namespace fcgi::test
