// A body sink that stays busy until the test lets it go: each chunk's done() is called from a
// thread of its own once release() is called, so the sink completes off the executor, as a
// consumer writing to a slow disk or a queue would.
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fcgi/body_sink.hpp"
#include "support/run_until.hpp"

namespace fcgi::test {

class held_sink {
  public:
    held_sink() : released_(release_.get_future().share()) {}
    ~held_sink() {
        release();
        for (auto& t : threads_)
            t.join();
    }
    held_sink(const held_sink&) = delete;
    held_sink& operator=(const held_sink&) = delete;

    /// The sink for request::stdout_sink; it must not outlive this object.
    fcgi::body_sink sink() {
        return fcgi::body_sink::consumer(
            [this](std::string_view chunk, fcgi::sink_write_handler done) {
                body_ += chunk;
                threads_.emplace_back([released = released_, done = std::move(done)]() mutable {
                    released.wait();
                    done({});
                });
            });
    }

    /// Lets every chunk taken so far, and any taken later, complete.
    void release() {
        if (!released_flag_) {
            released_flag_ = true;
            release_.set_value();
        }
    }

    /// What the sink took.
    const std::string& body() const noexcept { return body_; }

  private:
    std::promise<void> release_;
    std::shared_future<void> released_;
    bool released_flag_ = false;
    std::vector<std::thread> threads_;
    std::string body_;
};

/// Runs `ctx` on a thread of its own while `response` waits behind `held`, and says whether
/// run() returned with the request still pending (it must not: a pending request is work on
/// the executor however long its sink takes). Then lets the sink go, waits for the response
/// (driving `ctx` here when run() had returned) and calls `close` on the executor, so that the
/// reader the connection re-armed lets run() end.
template <class Response>
bool run_returned_early(asio::io_context& ctx, held_sink& held, std::future<Response>& response,
                        std::function<void()> close) {
    using namespace std::chrono_literals;
    ctx.restart();
    auto runner = std::async(std::launch::async, [&] { ctx.run(); });
    const bool early = runner.wait_for(300ms) == std::future_status::ready;
    held.release();
    auto ready = [&] { return response.wait_for(0s) == std::future_status::ready; };
    if (early)  // finish it here, so that the sink's threads can be joined
        run_until(ctx, ready, 10s);
    else
        response.wait_for(10s);
    asio::post(ctx, std::move(close));
    if (early)
        ctx.restart(), ctx.run();
    runner.wait();
    return early;
}

}  // namespace fcgi::test
