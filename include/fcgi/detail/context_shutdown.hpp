// What a connection or client holds is freed when its execution context shuts down (an
// io_context destroyed with requests still out), as Asio's own I/O objects' operations are.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace fcgi::detail {

/// An object that keeps completion handlers on an execution context. A handler can own the
/// object in turn (a coroutine frame holding the connection it awaits): when the context is
/// destroyed without running them, neither would ever be freed, nor the socket closed.
class context_bound {
  public:
    /// The context is shutting down and will run nothing more: close, and destroy every
    /// handler held without calling it.
    virtual void on_context_shutdown() = 0;
    virtual ~context_bound() = default;

    /// Its context has shut down (and closed it): the public object's destructor, run when a
    /// destroyed handler's frame unwinds, has no stop or close to hand on. Any thread.
    bool context_gone() const noexcept { return context_gone_.load(std::memory_order_acquire); }

  private:
    friend class context_shutdown_service;
    std::atomic<bool> context_gone_{false};
};

/// The execution context's service that calls on_context_shutdown() of the objects registered
/// with it when the context shuts down (an io_context or thread_pool destroyed).
class context_shutdown_service : public asio::execution_context::service {
  public:
    static inline asio::execution_context::id id;

    explicit context_shutdown_service(asio::execution_context& ctx)
        : asio::execution_context::service(ctx) {}

    /// Registers `object` for the context's shutdown. Thread-safe.
    void add(std::weak_ptr<context_bound> object);

  private:
    void shutdown() override;

    std::mutex mutex_;  // objects are made on any thread, the context may run on several
    std::vector<std::weak_ptr<context_bound>> objects_;
    std::size_t live_after_prune_ = 0;  // the list is pruned when it doubles from this
    bool shut_down_ = false;
};

/// Registers `object` with the shutdown service of `ex`'s execution context.
void register_for_shutdown(const asio::any_io_executor& ex, std::weak_ptr<context_bound> object);

}  // namespace fcgi::detail
