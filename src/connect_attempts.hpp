// Connecting to one of several addresses of a host name, staggered as RFC 8305 (Happy
// Eyeballs) does: an address that drops the connect (a firewall, a dead route) delays the
// next by the attempt delay, not by the whole connect timeout.
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "fcgi/detail/capped_duration.hpp"
#include "fcgi/detail/telling_connect_error.hpp"

namespace fcgi::detail {

/// The steps of async_connect_attempts().
template <class Socket>
class connect_attempts_op {
  public:
    connect_attempts_op(Socket& sock, std::vector<asio::ip::tcp::endpoint> addresses,
                        std::chrono::milliseconds delay)
        : sock_(sock), addresses_(std::move(addresses)), delay_(capped(delay)) {}

    /// Starts; then each time the wake timer ends: the delay passed, an attempt ended, or the
    /// caller cancelled.
    template <class Self>
    void operator()(Self& self, std::error_code = {}) {
        const bool first = !race_;
        if (first) {
            race_ = std::make_shared<race>(sock_.get_executor());
            race_->sockets.reserve(addresses_.size());  // no move under a pending connect
            start_next(self);
        } else if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none) {
            close_all();
            return self.complete(asio::error::operation_aborted);
        } else if (race_->winner) {
            sock_ = std::move(race_->sockets[*race_->winner]);
            close_all();  // the others, still connecting
            return self.complete(std::error_code());
        } else {
            // The delay passed or an attempt failed: either way the next address goes now.
            start_next(self);
        }
        if (race_->running == 0) {
            if (first)  // not from inside the initiating call: the next resume completes
                return asio::post(sock_.get_executor(), std::move(self));
            // Every address failed; none at all is the resolver's "not found".
            return self.complete(race_->failure ? race_->failure
                                                : std::error_code(asio::error::host_not_found));
        }
        if (next_ < addresses_.size() && delay_.count() > 0)
            race_->wake.expires_after(delay_);
        else
            race_->wake.expires_at(asio::steady_timer::time_point::max());
        race_->wake.async_wait(std::move(self));
    }

  private:
    // Shared with the attempts' handlers: a loser's handler runs after the operation ended.
    struct race {
        explicit race(typename Socket::executor_type ex) : wake(ex) {}
        std::vector<Socket> sockets;
        asio::steady_timer wake;
        std::size_t running = 0;
        std::optional<std::size_t> winner;
        // What to report if every address fails: the most telling failure so far.
        std::error_code failure;
    };

    template <class Self>
    void start_next(Self& self) {
        auto ex = asio::get_associated_executor(self, sock_.get_executor());
        for (; next_ < addresses_.size(); ++next_) {
            asio::generic::stream_protocol::endpoint target{addresses_[next_]};
            auto& s = race_->sockets.emplace_back(sock_.get_executor());
            std::error_code ec;
            s.open(target.protocol(), ec);
            if (ec) {
                // No such family here, say: the next one at once.
                race_->failure = more_telling_connect_error(race_->failure, ec);
                continue;
            }
            ++race_->running;
            s.async_connect(
                target, asio::bind_executor(
                            ex, [r = race_, i = race_->sockets.size() - 1](std::error_code result) {
                                --r->running;
                                if (r->winner)
                                    return;
                                if (!result)
                                    r->winner = i;
                                else if (result != asio::error::operation_aborted)
                                    r->failure = more_telling_connect_error(r->failure, result);
                                r->wake.cancel();
                            }));
            ++next_;
            return;
        }
    }

    void close_all() {
        std::error_code ignored;
        for (auto& s : race_->sockets)
            s.close(ignored);
    }

    Socket& sock_;
    std::vector<asio::ip::tcp::endpoint> addresses_;
    std::chrono::milliseconds delay_;  // capped: milliseconds::max() would overflow the timer
    std::shared_ptr<race> race_;
    std::size_t next_ = 0;
};

/// Connects `sock` (closed) to the first of `addresses` that accepts. The first attempt starts
/// at once, each next one when the one before it fails or after `delay` without an answer,
/// beside those still running; the first to connect wins and the others are closed. Zero or a
/// negative `delay`: one address at a time, the next only after a failure. All failing, it
/// completes with the most telling of their errors (more_telling_connect_error(): a refusal
/// rather than ::1's "cannot assign requested address" on a host without IPv6). Terminal
/// cancellation through the token's slot closes every attempt and completes with
/// asio::error::operation_aborted. Completes with void(std::error_code).
template <class Socket, class Token>
auto async_connect_attempts(Socket& sock, std::vector<asio::ip::tcp::endpoint> addresses,
                            std::chrono::milliseconds delay, Token&& token) {
    return asio::async_compose<Token, void(std::error_code)>(
        connect_attempts_op<Socket>(sock, std::move(addresses), delay), token, sock);
}

}  // namespace fcgi::detail
