// A loopback TCP port that refuses connections for as long as the object lives: a socket bound
// to it that never listens. A port found free and let go (free_tcp_port()) could be bound by a
// test executable running beside this one (ctest -j) before the connect meant to be refused.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdint>

namespace fcgi::test {

/// See the file comment. Connects to port() fail with ECONNREFUSED.
class refusing_port {
  public:
    refusing_port() : socket_(ctx_) {
        socket_.open(asio::ip::tcp::v4());
        socket_.bind({asio::ip::address_v4::loopback(), 0});
    }

    /// The bound port.
    std::uint16_t port() const { return socket_.local_endpoint().port(); }

  private:
    asio::io_context ctx_;  // never run: the socket only holds the port
    asio::ip::tcp::socket socket_;
};

}  // namespace fcgi::test
