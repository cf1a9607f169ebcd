#include "fcgi/detail/writable_wait.hpp"

#include <sys/epoll.h>
#include <unistd.h>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <cerrno>

#include "last_error.hpp"

namespace fcgi::detail {

namespace {

// One-shot: reported once, then disabled until armed again for the next wait.
int arm(int ep, int op, int fd) noexcept {
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLONESHOT;
    ev.data.fd = fd;
    return ::epoll_ctl(ep, op, fd, &ev);
}

}  // namespace

void writable_wait::async_wait(int fd, const asio::any_io_executor& ex,
                               std::function<void(std::error_code)> handler) {
    if (watcher_ && (fd != fd_ || watcher_->get_executor() != ex))
        reset();
    std::error_code ec;
    if (!watcher_) {
        int ep = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            ec = last_error();
        else {
            try {
                watcher_.emplace(ex, ep);
            } catch (...) {
                ::close(ep);  // not yet owned by the descriptor
                throw;
            }
            fd_ = fd;
            if (arm(ep, EPOLL_CTL_ADD, fd) != 0) {
                ec = last_error();
                reset();
            }
        }
    }
    if (ec) {
        asio::post(ex, [handler = std::move(handler), ec] { handler(ec); });
        return;
    }
    const int ep = watcher_->native_handle();
    // Take what an earlier arming reported, so that the instance is not readable now...
    epoll_event ignored{};
    while (::epoll_wait(ep, &ignored, 1, 0) == -1 && errno == EINTR) {
    }
    // ...then queue the wait, then arm: a descriptor writable already is reported by the arming
    // as a new event, after the wait is queued. Arming first could let another thread's reactor
    // take that event while no wait is queued, and the wait would then never end.
    watcher_->async_wait(asio::posix::descriptor_base::wait_read, std::move(handler));
    if (arm(ep, EPOLL_CTL_MOD, fd) != 0) {
        // The queued wait ends aborted; the caller's next write reports what is wrong.
        reset();
    }
}

void writable_wait::cancel() noexcept {
    if (watcher_) {
        asio::error_code ignored;
        watcher_->cancel(ignored);
    }
}

void writable_wait::reset() noexcept {
    if (watcher_) {
        asio::error_code ignored;
        watcher_->close(ignored);  // a pending wait ends with operation_aborted
        watcher_.reset();
    }
    fd_ = -1;
}

}  // namespace fcgi::detail
