#include "fcgi/body_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <cerrno>

#include "exception_text.hpp"
#include "fcgi/error.hpp"
#include "last_error.hpp"

namespace fcgi {
namespace {

using detail::last_error;

// Reads with pread on the connection's thread: page-cache reads are far cheaper than a trip
// through a thread pool, and Asio 1.22 has no portable asynchronous file I/O.
class file_source final : public body_source::implementation {
  public:
    explicit file_source(std::string path) : path_(std::move(path)) {
        struct stat st {};
        if (::stat(path_.c_str(), &st) == 0)
            size_ = static_cast<std::uint64_t>(st.st_size);
    }
    file_source(std::string path, std::optional<std::uint64_t> size)
        : path_(std::move(path)), size_(size) {}
    ~file_source() override { close_file(); }

    std::optional<std::uint64_t> size() const override {
        // A file that cannot be stat'ed reports 0 so the request gets as far as start(), which
        // reports the real reason (no such file, permission denied).
        return size_.value_or(0);
    }

    std::error_code start(std::string& why) override {
        close_file();
        offset_ = 0;
        // Non-blocking only so that a FIFO without a writer cannot block the connection's thread
        // in open(): it is refused below, and a regular file reads the same either way.
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd_ < 0) {
            auto ec = last_error();
            why = "cannot open request body file " + path_ + ": " + ec.message();
            return ec;
        }
        struct stat st {};
        if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
            why = "request body file " + path_ + " is not a regular file";
            close_file();
            return std::make_error_code(std::errc::invalid_argument);
        }
        if (!size_) {
            why = "request body file " + path_ +
                  " could not be examined when the request was made (it did not exist yet?)";
            close_file();
            return error::source_ended_early;
        }
        if (static_cast<std::uint64_t>(st.st_size) != *size_) {
            why = "request body file " + path_ + " changed size since the request was made";
            close_file();
            return error::source_ended_early;
        }
        return {};
    }

    void async_read_some(asio::mutable_buffer buffer, const asio::any_io_executor&,
                         source_read_handler done) override {
        for (;;) {
            ssize_t n = ::pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(offset_));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                done(last_error(), 0);
                return;
            }
            offset_ += static_cast<std::uint64_t>(n);
            done({}, static_cast<std::size_t>(n));
            return;
        }
    }

    bool restartable() const override { return true; }

    // Each copy of a request reads the file with its own descriptor and offset: sent at once,
    // shared ones would close each other's descriptor and interleave their reads.
    std::shared_ptr<body_source::implementation> clone() const override {
        return std::make_shared<file_source>(path_, size_);
    }

  private:
    void close_file() noexcept {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    std::string path_;
    std::optional<std::uint64_t> size_;
    int fd_ = -1;
    std::uint64_t offset_ = 0;
};

// A producer is consumed as it is read, so it can be started only once.
class once_source : public body_source::implementation {
  public:
    explicit once_source(std::optional<std::uint64_t> size) : size_(size) {}
    std::optional<std::uint64_t> size() const override { return size_; }
    std::error_code start(std::string& why) override {
        if (started_) {
            why = "a producer body source can be sent only once";
            return error::invalid_request;
        }
        started_ = true;
        return {};
    }

  private:
    std::optional<std::uint64_t> size_;
    bool started_ = false;
};

class producer_source final : public once_source {
  public:
    producer_source(std::optional<std::uint64_t> size, source_read_fn read)
        : once_source(size), read_(std::move(read)) {}
    void async_read_some(asio::mutable_buffer buffer, const asio::any_io_executor&,
                         source_read_handler done) override {
        read_(buffer, std::move(done));
    }

  private:
    source_read_fn read_;
};

class coroutine_source final : public once_source {
  public:
    coroutine_source(std::optional<std::uint64_t> size, source_coroutine_fn read)
        : once_source(size), read_(std::move(read)) {}
    void async_read_some(asio::mutable_buffer buffer, const asio::any_io_executor& ex,
                         source_read_handler done) override {
        // `this` outlives the read: the connection keeps the source until `done` runs.
        asio::co_spawn(
            ex, read_(buffer),
            asio::bind_cancellation_slot(cancel_.slot(), [this, done = std::move(done)](
                                                             std::exception_ptr e, std::size_t n) {
                failure_ = e ? detail::exception_text(e) : std::string();
                if (e)
                    done(error::source_failed, 0);
                else
                    done({}, n);
            }));
    }
    std::string failure_text() const override { return failure_; }
    // The coroutine sees the cancellation at its next (or current) co_await.
    void cancel() noexcept override { cancel_.emit(asio::cancellation_type::terminal); }

  private:
    source_coroutine_fn read_;
    asio::cancellation_signal cancel_;
    std::string failure_;  // the last read's exception, in words
};

}  // namespace

body_source body_source::file(std::string path) {
    return body_source(std::make_shared<file_source>(std::move(path)));
}

body_source body_source::producer(std::optional<std::uint64_t> size, source_read_fn read) {
    return body_source(std::make_shared<producer_source>(size, std::move(read)));
}

body_source body_source::coroutine(std::optional<std::uint64_t> size, source_coroutine_fn read) {
    return body_source(std::make_shared<coroutine_source>(size, std::move(read)));
}

}  // namespace fcgi
