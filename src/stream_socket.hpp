// Connecting a stream socket to an endpoint, and what its errors mean: the connection and the
// GET_VALUES probe both open their sockets this way.
#pragma once

#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <string>
#include <system_error>
#include <utility>

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
    connect_endpoint_op(stream_socket& sock, asio::ip::tcp::resolver& resolver, const endpoint& ep)
        : sock_(sock), resolver_(resolver), ep_(ep) {}

    /// Starts, or completes with an error found before any I/O (posted there, so the handler
    /// never runs inside the initiating call).
    template <class Self>
    void operator()(Self& self) {
        if (failed_)
            return self.complete(last_);
        if (ep_.type == endpoint::kind::tcp) {
            resolver_.async_resolve(ep_.host, std::to_string(ep_.port), std::move(self));
            return;
        }
        unix_ = true;
        if (ep_.path.size() > endpoint::max_unix_path)
            return fail(self, error::invalid_endpoint);  // Asio's endpoint would throw
        asio::generic::stream_protocol::endpoint target{
            asio::local::stream_protocol::endpoint(ep_.path)};
        std::error_code ec;
        sock_.open(target.protocol(), ec);
        if (ec)
            return fail(self, ec);
        sock_.async_connect(target, std::move(self));
    }

    /// The host name resolved.
    template <class Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::resolver::results_type r) {
        if (ec)
            return self.complete(ec);
        results_ = std::move(r);
        next_ = results_.begin();
        last_ = asio::error::host_not_found;
        try_next(self);
    }

    /// A connect ended: done, or the next address.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (!ec || unix_)
            return self.complete(ec);
        last_ = ec;
        ++next_;
        try_next(self);
    }

  private:
    template <class Self>
    void fail(Self& self, std::error_code ec) {
        failed_ = true;
        last_ = ec;
        asio::post(sock_.get_executor(), std::move(self));
    }

    template <class Self>
    void try_next(Self& self) {
        for (; next_ != results_.end(); ++next_) {
            // Cancelled (the caller's connect timeout, or a close): no next address.
            if (last_ == asio::error::operation_aborted ||
                self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
                return self.complete(asio::error::operation_aborted);
            asio::generic::stream_protocol::endpoint target{next_->endpoint()};
            std::error_code ec;
            sock_.close(ec);
            sock_.open(target.protocol(), ec);
            if (ec) {
                last_ = ec;
                continue;
            }
            sock_.async_connect(target, std::move(self));
            return;
        }
        self.complete(last_);
    }

    stream_socket& sock_;
    asio::ip::tcp::resolver& resolver_;
    endpoint ep_;
    asio::ip::tcp::resolver::results_type results_;
    asio::ip::tcp::resolver::results_type::const_iterator next_;
    std::error_code last_;
    bool unix_ = false;
    bool failed_ = false;
};

/// Opens `sock` and connects it to `ep`: a unix socket by its path (error::invalid_endpoint when
/// it is too long), a TCP endpoint through `resolver`, each address it resolves to in turn until
/// one accepts (then the last address's error): the next only once a connect fails, so one whose
/// SYNs are dropped holds the rest back until the caller's timeout cancels the whole attempt.
/// Terminal cancellation through the token's cancellation slot ends it with
/// asio::error::operation_aborted, as does closing the socket under it. Completes with
/// void(std::error_code).
template <class Token>
auto async_connect_endpoint(stream_socket& sock, asio::ip::tcp::resolver& resolver,
                            const endpoint& ep, Token&& token) {
    return asio::async_compose<Token, void(std::error_code)>(
        connect_endpoint_op(sock, resolver, ep), token, sock);
}

}  // namespace fcgi::detail
