#include "fcgi/body_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <cerrno>

#include "fcgi/error.hpp"
#include "fcgi/response.hpp"

namespace fcgi {

std::error_code body_sink::implementation::on_head(const response&, std::string&) {
    return {};
}
std::error_code body_sink::implementation::finish(std::string&) {
    return {};
}

namespace {

std::error_code last_error() {
    return {errno, std::system_category()};
}

// Keeps SIGPIPE from being delivered to this thread while it lives: a write to a pipe whose
// reader has gone would kill the process by default; the write fails with EPIPE instead, which
// fails the request with sink_failed. A SIGPIPE pending before is left alone.
class sigpipe_blocked {
  public:
    sigpipe_blocked() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        pending_before_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
        blocked_ = ::pthread_sigmask(SIG_BLOCK, &set_, &old_) == 0;
    }
    ~sigpipe_blocked() {
        if (!blocked_)
            return;
        if (epipe_ && !pending_before_) {
            // Ours: the failed write raised it. Taken before unblocking.
            timespec zero{};
            while (::sigtimedwait(&set_, nullptr, &zero) == -1 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    /// A write failed with EPIPE: it raised SIGPIPE, which the destructor takes.
    void write_failed_with_epipe() noexcept { epipe_ = true; }
    sigpipe_blocked(const sigpipe_blocked&) = delete;
    sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

  private:
    sigset_t set_{}, old_{};
    bool pending_before_ = false;
    bool blocked_ = false;
    bool epipe_ = false;
};

// Writes all of `chunk` to `fd`, waiting when a non-blocking descriptor (a pipe, a terminal
// shared with another process) is full.
std::error_code write_all(int fd, std::string_view chunk) {
    int saved_errno = 0;
    sigpipe_blocked no_sigpipe;
    while (!chunk.empty()) {
        ssize_t n = ::write(fd, chunk.data(), chunk.size());
        if (n >= 0) {
            chunk.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
            continue;
        }
        saved_errno = errno;
        if (saved_errno == EPIPE)
            no_sigpipe.write_failed_with_epipe();
        break;
    }
    return saved_errno ? std::error_code(saved_errno, std::system_category()) : std::error_code();
}

// Writes synchronously on the connection's thread: writes to the page cache or a pipe are short,
// and the connection reads ahead into the sink's buffer meanwhile only up to its limit anyway.
class descriptor_sink : public body_sink::implementation {
  public:
    explicit descriptor_sink(int fd) : fd_(fd) {}
    std::error_code start(std::string&) override { return {}; }
    void async_write(std::string_view chunk, const asio::any_io_executor&,
                     sink_write_handler done) override {
        done(write_all(fd_, chunk));
    }

  protected:
    int fd_;
};

class file_sink final : public descriptor_sink {
  public:
    explicit file_sink(std::string path) : descriptor_sink(-1), path_(std::move(path)) {}
    ~file_sink() override { close_file(); }

    std::error_code start(std::string& why) override {
        close_file();
        // Non-blocking so that a FIFO without a reader fails (ENXIO) instead of blocking the
        // connection's thread in open(); writes block as on any descriptor.
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
        if (fd_ < 0) {
            auto ec = last_error();
            why = "cannot open response body file " + path_ + ": " + ec.message() +
                  (ec.value() == ENXIO ? " (a FIFO that nothing reads)" : "");
            return ec;
        }
        int flags = ::fcntl(fd_, F_GETFL);
        if (flags >= 0)
            ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
        return {};
    }

    // Each copy of a request opens the file itself: sent at once, shared ones would close each
    // other's descriptor.
    std::shared_ptr<body_sink::implementation> clone() const override {
        return std::make_shared<file_sink>(path_);
    }

    std::error_code finish(std::string& why) override {
        int fd = fd_;
        fd_ = -1;
        if (fd >= 0 && ::close(fd) != 0) {
            auto ec = last_error();
            why = "closing response body file " + path_ + " failed: " + ec.message();
            return ec;
        }
        return {};
    }

  private:
    void close_file() noexcept {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    std::string path_;
};

class head_sink : public body_sink::implementation {
  public:
    explicit head_sink(sink_head_fn on_head) : on_head_(std::move(on_head)) {}
    std::error_code start(std::string&) override { return {}; }
    std::error_code on_head(const response& head, std::string& why) override {
        if (!on_head_)
            return {};
        auto ec = on_head_(head);
        if (ec)
            why = "the response sink rejected the head: " + ec.message();
        return ec;
    }

  private:
    sink_head_fn on_head_;
};

class consumer_sink final : public head_sink {
  public:
    consumer_sink(sink_write_fn write, sink_head_fn on_head)
        : head_sink(std::move(on_head)), write_(std::move(write)) {}
    void async_write(std::string_view chunk, const asio::any_io_executor&,
                     sink_write_handler done) override {
        write_(chunk, std::move(done));
    }

  private:
    sink_write_fn write_;
};

class coroutine_sink final : public head_sink {
  public:
    coroutine_sink(sink_coroutine_fn write, sink_head_fn on_head)
        : head_sink(std::move(on_head)), write_(std::move(write)) {}
    void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                     sink_write_handler done) override {
        asio::co_spawn(ex, write_(chunk), [done = std::move(done)](std::exception_ptr e) {
            done(e ? std::error_code(error::sink_failed) : std::error_code());
        });
    }

  private:
    sink_coroutine_fn write_;
};

}  // namespace

body_sink body_sink::file(std::string path) {
    return body_sink(std::make_shared<file_sink>(std::move(path)));
}

body_sink body_sink::descriptor(int fd) {
    return body_sink(std::make_shared<descriptor_sink>(fd));
}

body_sink body_sink::consumer(sink_write_fn write, sink_head_fn on_head) {
    return body_sink(std::make_shared<consumer_sink>(std::move(write), std::move(on_head)));
}

body_sink body_sink::coroutine(sink_coroutine_fn write, sink_head_fn on_head) {
    return body_sink(std::make_shared<coroutine_sink>(std::move(write), std::move(on_head)));
}

}  // namespace fcgi
