// Whether the calling thread is inside a handler of an executor: lets a completion that would
// be dispatched run inline without asio::dispatch type-erasing and allocating it first.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <memory>
#include <type_traits>
#include <typeinfo>

namespace fcgi::detail {

/// The executor held by `ex` when it is exactly a `T`, else null. Asio 1.22's
/// any_executor::target<T>() casts without looking at the type: asked for an io_context
/// executor, it hands back a strand's inner one, which answers for every thread running the
/// context, in the strand or not. Without RTTI the type cannot be told: null.
template <class T>
const T* target_if(const asio::any_io_executor& ex) noexcept {
#if !defined(ASIO_NO_TYPEID)
    if (ex && ex.target_type() == typeid(T))
        return ex.template target<T>();
#endif
    return nullptr;
}

/// True when the calling thread runs a handler of `ex`. False when that cannot be told (an
/// executor type not known here): the caller then goes through asio::dispatch as usual.
template <class Executor>
bool running_in_this_thread(const Executor& ex) noexcept {
    if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
        // The io_context's executor and a strand of it, as given and as tracking work (bit 4).
        using plain = asio::io_context::basic_executor_type<std::allocator<void>, 0>;
        using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;
        if (const auto* e = target_if<plain>(ex))
            return e->running_in_this_thread();
        if (const auto* e = target_if<tracked>(ex))
            return e->running_in_this_thread();
        if (const auto* s = target_if<asio::strand<plain>>(ex))
            return s->running_in_this_thread();
        if (const auto* s = target_if<asio::strand<tracked>>(ex))
            return s->running_in_this_thread();
        return false;
    } else if constexpr (requires { ex.running_in_this_thread(); }) {
        return ex.running_in_this_thread();
    } else {
        return false;
    }
}

}  // namespace fcgi::detail
