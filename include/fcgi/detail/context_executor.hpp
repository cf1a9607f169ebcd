// The executor the client and the connection take from an execution context passed by reference.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>
#include <type_traits>

namespace fcgi::detail {

/// `ctx.get_executor()`, or a strand of it for an asio::thread_pool. A thread pool runs
/// handlers on several threads by design, and the client and the connection need one at a time:
/// its plain executor compiled silently and then corrupted them. An io_context is taken as it
/// is, since most programs run it on one thread and a strand would cost each of them.
template <class ExecutionContext>
asio::any_io_executor context_executor(ExecutionContext& ctx) {
    if constexpr (std::is_base_of_v<asio::thread_pool, ExecutionContext>)
        return asio::make_strand(ctx);
    else
        return ctx.get_executor();
}

}  // namespace fcgi::detail
