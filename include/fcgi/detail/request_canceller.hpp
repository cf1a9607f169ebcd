// What a request's cancellation slot holds, for a connection's requests and a client's alike.
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/post.hpp>
#include <cstdint>
#include <memory>

namespace fcgi::detail {

/// Cancels request `serial` of `Impl` (connection_impl or client_impl: anything with
/// get_executor() and cancel(serial, type)) on its executor, since the signal may be emitted
/// from elsewhere; for terminal, partial and total cancellation, which Impl::cancel tells
/// apart. Left in the slot after the request completes, as Asio's own operations leave
/// theirs: a later emit finds no request of that serial. Weak, since a handler may own the
/// signal that holds this: a strong reference would keep the implementation, and its
/// sockets, for good.
template <class Impl>
struct request_canceller {
    std::weak_ptr<Impl> impl;
    std::uint64_t serial;

    void operator()(asio::cancellation_type type) const {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
            return;
        if (auto i = impl.lock())
            asio::post(i->get_executor(), [i, s = serial, type] { i->cancel(s, type); });
    }
};

}  // namespace fcgi::detail
