// A TCP listener on loopback whose connects never complete: it never accepts, and its accept
// queue (backlog 0) is filled first, so Linux drops every further SYN and a client's connect
// stays pending until its own timeout, as behind a firewall that drops packets or a host that is
// down.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <fstream>
#include <system_error>
#include <vector>

#include "fcgi/endpoint.hpp"

namespace fcgi::test {

/// A Boost.Test precondition for the tests that rely on the SYN drop: with the sysctl
/// net.ipv4.tcp_abort_on_overflow set to 1, Linux resets a connect to a full accept queue
/// instead, and those tests are skipped with that reason rather than failing obscurely.
inline boost::test_tools::assertion_result syns_dropped_when_backlog_full(
    boost::unit_test::test_unit_id) {
    std::ifstream in("/proc/sys/net/ipv4/tcp_abort_on_overflow");
    int abort_on_overflow = 0;
    in >> abort_on_overflow;  // unreadable: the default, 0
    boost::test_tools::assertion_result r(abort_on_overflow == 0);
    r.message() << "net.ipv4.tcp_abort_on_overflow is " << abort_on_overflow
                << ": a full accept queue resets connects instead of dropping them";
    return r;
}

/// See the file comment. Needs no io_context run: the fillers' SYNs leave inside their calls.
class unaccepted_listener {
  public:
    unaccepted_listener() : listener_(ctx_) {
        listener_.open(asio::ip::tcp::v4());
        listener_.bind({asio::ip::address_v4::loopback(), 0});
        listener_.listen(0);  // one connection fills the queue
        // On a context of their own, never run: their pending connects keep no test's
        // context busy.
        for (int i = 0; i < 3; ++i) {
            fillers_.emplace_back(ctx_);
            fillers_.back().async_connect(listener_.local_endpoint(), [](std::error_code) {});
        }
    }

    /// Where to connect: 127.0.0.1 and the listener's port.
    fcgi::endpoint endpoint() const {
        return fcgi::endpoint::tcp("127.0.0.1", listener_.local_endpoint().port());
    }

  private:
    asio::io_context ctx_;
    asio::ip::tcp::acceptor listener_;
    std::vector<asio::ip::tcp::socket> fillers_;
};

}  // namespace fcgi::test
