#include "fcgi/detail/context_shutdown.hpp"

#include <algorithm>
#include <asio/execution/context.hpp>
#include <asio/query.hpp>
#include <utility>

namespace fcgi::detail {

void context_shutdown_service::add(std::weak_ptr<context_bound> object) {
    std::lock_guard lock(mutex_);
    if (shut_down_)
        return;  // made while the context shuts down: it runs nothing more anyway
    // Connections come and go: the expired entries go when the list has doubled since.
    if (objects_.size() >= 2 * std::max<std::size_t>(live_after_prune_, 16)) {
        std::erase_if(objects_, [](const auto& w) { return w.expired(); });
        live_after_prune_ = objects_.size();
    }
    objects_.push_back(std::move(object));
}

void context_shutdown_service::shutdown() {
    std::vector<std::weak_ptr<context_bound>> objects;
    {
        std::lock_guard lock(mutex_);
        shut_down_ = true;
        objects.swap(objects_);
    }
    // Each is kept alive through its own call: the handlers it destroys may hold its last
    // owner (the coroutine frame that held the connection).
    for (auto& w : objects)
        if (auto object = w.lock()) {
            object->context_gone_.store(true, std::memory_order_release);
            object->on_context_shutdown();
        }
}

void register_for_shutdown(const asio::any_io_executor& ex, std::weak_ptr<context_bound> object) {
    auto& ctx = asio::query(ex, asio::execution::context);
    asio::use_service<context_shutdown_service>(ctx).add(std::move(object));
}

}  // namespace fcgi::detail
