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

/// True when the calling thread runs a handler of `ex`. False when that cannot be told (an
/// executor type not known here, or no RTTI): the caller then goes through asio::dispatch as
/// usual. The type is looked at first because Asio 1.22's any_executor::target<T>() casts
/// without looking: asked for an io_context executor, it hands back a strand's inner one, which
/// answers for every thread running the context, in the strand or not.
template <class Executor>
bool running_in_this_thread(const Executor& ex) noexcept {
    if constexpr (std::is_same_v<Executor, asio::any_io_executor>) {
#if !defined(ASIO_NO_TYPEID)
        // The io_context's executor and a strand of it, as given and as tracking work (bit 4).
        using plain = asio::io_context::basic_executor_type<std::allocator<void>, 0>;
        using tracked = asio::io_context::basic_executor_type<std::allocator<void>, 4>;
        if (!ex)
            return false;
        // One type-erased call, then the type_info objects by address: within one binary each
        // type has one, and a mismatch under a full compare is a strcmp of two long mangled
        // names that differ near their end (the handlers hold the tracked executor, which the
        // plain one, asked first, missed: twice a request on the hot path).
        const std::type_info& type = ex.target_type();
        auto is = [&](const std::type_info& t, bool by_name) {
            return by_name ? type == t : &type == &t;
        };
        for (bool by_name : {false, true}) {
            if (is(typeid(tracked), by_name))
                return ex.template target<tracked>()->running_in_this_thread();
            if (is(typeid(plain), by_name))
                return ex.template target<plain>()->running_in_this_thread();
            if (is(typeid(asio::strand<plain>), by_name))
                return ex.template target<asio::strand<plain>>()->running_in_this_thread();
            if (is(typeid(asio::strand<tracked>), by_name))
                return ex.template target<asio::strand<tracked>>()->running_in_this_thread();
        }
#endif
        return false;
    } else if constexpr (requires { ex.running_in_this_thread(); }) {
        return ex.running_in_this_thread();
    } else {
        return false;
    }
}

}  // namespace fcgi::detail
