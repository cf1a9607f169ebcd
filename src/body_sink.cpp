#include "fcgi/body_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <cerrno>
#include <climits>
#include <string>

#include "exception_text.hpp"
#include "fcgi/detail/writable_wait.hpp"
#include "fcgi/error.hpp"
#include "fcgi/response.hpp"
#include "last_error.hpp"

namespace fcgi {

std::error_code body_sink::implementation::on_head(const response&, std::string&) {
    return {};
}
std::error_code body_sink::implementation::finish(std::string&) {
    return {};
}

namespace {

using detail::last_error;

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

// Writes all of `chunk` to `fd`: a regular file or block device, which never makes a writer
// wait for a reader.
std::error_code write_all(int fd, std::string_view chunk) {
    sigpipe_blocked no_sigpipe;
    while (!chunk.empty()) {
        ssize_t n = ::write(fd, chunk.data(), chunk.size());
        if (n >= 0) {
            chunk.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (errno == EINTR)
            continue;
        auto ec = last_error();
        if (errno == EPIPE)
            no_sigpipe.write_failed_with_epipe();
        return ec;
    }
    return {};
}

// Writes as much of `rest` to `fd` (a pipe, socket, terminal) as it takes without waiting; what
// is left stays in `rest`. A blocking descriptor is written only when poll() says it has room,
// and then at most PIPE_BUF bytes, which a pipe with room takes whole.
std::error_code write_without_waiting(int fd, std::string_view& rest) {
    sigpipe_blocked no_sigpipe;
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0)
        return last_error();
    const bool blocking = (flags & O_NONBLOCK) == 0;
    while (!rest.empty()) {
        if (blocking) {
            pollfd p{fd, POLLOUT, 0};
            int r = ::poll(&p, 1, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return last_error();
            if (r == 0)
                return {};  // full: wait
        }
        std::size_t n = blocking ? std::min<std::size_t>(rest.size(), PIPE_BUF) : rest.size();
        ssize_t written = ::write(fd, rest.data(), n);
        if (written >= 0) {
            rest.remove_prefix(static_cast<std::size_t>(written));
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return {};
        auto ec = last_error();
        if (errno == EPIPE)
            no_sigpipe.write_failed_with_epipe();
        return ec;
    }
    return {};
}

// A descriptor the caller owns. Regular files are written synchronously on the connection's
// thread (page-cache writes are short). Anything with a reader at the other end (a pipe, a
// terminal) is written as far as it has room; then the sink waits on the executor for more room
// instead of blocking the thread, so a slow reader holds up neither other requests nor deadlines.
class descriptor_sink : public body_sink::implementation,
                        public std::enable_shared_from_this<descriptor_sink> {
  public:
    explicit descriptor_sink(int fd) : fd_(fd) {}

    std::error_code start(std::string& why) override {
        wait_.reset();
        struct stat st {};
        if (::fstat(fd_, &st) != 0) {
            auto ec = last_error();
            why = "response body descriptor " + std::to_string(fd_) + ": " + ec.message();
            return ec;
        }
        never_waits_ = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
        return {};
    }

    void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                     sink_write_handler done) override {
        cancelled_ = false;
        if (never_waits_)
            done(write_all(fd_, chunk));
        else
            write_on(chunk, ex, std::move(done));
    }

    void cancel() noexcept override {
        cancelled_ = true;
        wait_.cancel();
    }

    // Each copy has its own wait (and cancellation); all write to the same descriptor.
    std::shared_ptr<body_sink::implementation> clone() const override {
        return std::make_shared<descriptor_sink>(fd_);
    }

  protected:
    void forget_descriptor() noexcept { wait_.reset(); }

    int fd_;

  private:
    void write_on(std::string_view rest, const asio::any_io_executor& ex, sink_write_handler done) {
        auto ec = write_without_waiting(fd_, rest);
        if (ec || rest.empty()) {
            done(ec);
            return;
        }
        wait_.async_wait(fd_, ex,
                         [self = shared_from_this(), rest, ex,
                          done = std::move(done)](std::error_code wait_ec) mutable {
                             if (self->cancelled_)
                                 done(asio::error::operation_aborted);
                             else if (wait_ec && wait_ec != asio::error::operation_aborted)
                                 done(wait_ec);
                             else  // room, or the watch was reset: the write tells which
                                 self->write_on(rest, ex, std::move(done));
                         });
    }

    detail::writable_wait wait_;
    bool never_waits_ = false;
    bool cancelled_ = false;
};

class file_sink final : public descriptor_sink {
  public:
    explicit file_sink(std::string path) : descriptor_sink(-1), path_(std::move(path)) {}
    ~file_sink() override { close_file(); }

    std::error_code start(std::string& why) override {
        close_file();
        // Non-blocking so that a FIFO without a reader fails (ENXIO) instead of blocking the
        // connection's thread in open(); the description is ours, so it stays non-blocking.
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
        if (fd_ < 0) {
            auto ec = last_error();
            why = "cannot open response body file " + path_ + ": " + ec.message() +
                  (ec.value() == ENXIO ? " (a FIFO that nothing reads)" : "");
            return ec;
        }
        return descriptor_sink::start(why);
    }

    // Each copy of a request opens the file itself: sent at once, shared ones would close each
    // other's descriptor.
    std::shared_ptr<body_sink::implementation> clone() const override {
        return std::make_shared<file_sink>(path_);
    }

    std::error_code finish(std::string& why) override {
        forget_descriptor();
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
        forget_descriptor();
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

  protected:
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
        // `this` outlives the write: the connection keeps the sink until `done` runs.
        asio::co_spawn(ex, write_(chunk),
                       asio::bind_cancellation_slot(
                           cancel_.slot(), [this, done = std::move(done)](std::exception_ptr e) {
                               failure_ = e ? detail::exception_text(e) : std::string();
                               done(e ? std::error_code(error::sink_failed) : std::error_code());
                           }));
    }
    std::string failure_text() const override { return failure_; }
    // The coroutine sees the cancellation at its next (or current) co_await.
    void cancel() noexcept override { cancel_.emit(asio::cancellation_type::terminal); }
    // Each copy has its own cancellation; all run the same function.
    std::shared_ptr<body_sink::implementation> clone() const override {
        return std::make_shared<coroutine_sink>(write_, on_head_);
    }

  private:
    sink_coroutine_fn write_;
    asio::cancellation_signal cancel_;
    std::string failure_;  // the last write's exception, in words
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
