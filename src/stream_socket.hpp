// Connecting a stream socket to an endpoint, and what its errors mean: the connection and the
// GET_VALUES probe both open their sockets this way.
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "connect_attempts.hpp"
#include "fcgi/detail/address_order.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"

namespace fcgi::detail {

using stream_socket = asio::generic::stream_protocol::socket;

/// EOF, a reset and a broken pipe all say the same to a FastCGI client: the server closed the
/// connection (error::connection_lost). Any other error is left as it is.
inline std::error_code map_stream_error(std::error_code ec) {
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::broken_pipe)
        return error::connection_lost;
    return ec;
}

/// The steps of async_connect_endpoint().
class connect_endpoint_op {
  public:
    connect_endpoint_op(stream_socket& sock, asio::ip::tcp::resolver& resolver, const endpoint& ep,
                        std::chrono::milliseconds attempt_delay)
        : sock_(sock), resolver_(resolver), ep_(ep), attempt_delay_(attempt_delay) {}

    /// Starts, or completes with an error found before any I/O (posted there, so the handler
    /// never runs inside the initiating call).
    template <class Self>
    void operator()(Self& self) {
        if (failed_)
            return self.complete(last_);
        // One built with endpoint::unix_socket() or tcp() skipped parse()'s checks: an over-long
        // path would make Asio's endpoint throw, a line end in a path fail as "no such file".
        if (std::string why; validate(ep_, why))
            return fail(self, error::invalid_endpoint);
        if (ep_.type == endpoint::kind::tcp) {
            resolver_.async_resolve(ep_.host, std::to_string(ep_.port), std::move(self));
            return;
        }
        asio::generic::stream_protocol::endpoint target{
            asio::local::stream_protocol::endpoint(ep_.path)};
        std::error_code ec;
        sock_.open(target.protocol(), ec);
        if (ec)
            return fail(self, ec);
        sock_.async_connect(target, std::move(self));
    }

    /// The host name resolved: its addresses race.
    template <class Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::resolver::results_type r) {
        if (ec)
            return self.complete(ec);
        // Cancelled while resolving (the caller's connect timeout, or a close): no address.
        if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
            return self.complete(asio::error::operation_aborted);
        std::vector<asio::ip::tcp::endpoint> addresses;
        addresses.reserve(r.size());
        for (const auto& entry : r)
            addresses.push_back(entry.endpoint());
        async_connect_attempts(sock_, interleave_families(std::move(addresses)), attempt_delay_,
                               std::move(self));
    }

    /// The unix socket's connect, or the race, ended.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        self.complete(ec);
    }

  private:
    template <class Self>
    void fail(Self& self, std::error_code ec) {
        failed_ = true;
        last_ = ec;
        asio::post(sock_.get_executor(), std::move(self));
    }

    stream_socket& sock_;
    asio::ip::tcp::resolver& resolver_;
    endpoint ep_;
    std::chrono::milliseconds attempt_delay_;
    std::error_code last_;
    bool failed_ = false;
};

/// Opens `sock` and connects it to `ep`: error::invalid_endpoint when validate() refuses it, a
/// unix socket by its path, a TCP endpoint through `resolver`, the addresses it resolves to raced
/// as async_connect_attempts() does with `attempt_delay` (all failing: the most telling of their
/// errors). Terminal cancellation through the token's cancellation slot ends it with
/// asio::error::operation_aborted, closing every attempt; so does closing the socket of a unix
/// endpoint's connect. Completes with void(std::error_code).
template <class Token>
auto async_connect_endpoint(stream_socket& sock, asio::ip::tcp::resolver& resolver,
                            const endpoint& ep, std::chrono::milliseconds attempt_delay,
                            Token&& token) {
    return asio::async_compose<Token, void(std::error_code)>(
        connect_endpoint_op(sock, resolver, ep, attempt_delay), token, sock);
}

}  // namespace fcgi::detail
