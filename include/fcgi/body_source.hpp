// Where a streamed request body (STDIN) comes from: a file or a producer, read in chunks as the
// records go out, so a large upload never sits in memory.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace fcgi {

/// Called by a source when a read finished: an error, or the number of bytes placed in the
/// buffer (0 without an error means the source ended). May be called from any thread, while the
/// connection's io_context exists: it posts to that executor, and it owns the connection, so
/// neither call it nor let it be destroyed after the io_context is gone.
using source_read_handler = std::function<void(std::error_code, std::size_t)>;

/// A producer's read: fill some of `buffer` (at most its size), then call `done` exactly once.
using source_read_fn = std::function<void(asio::mutable_buffer buffer, source_read_handler done)>;

// Only where Asio has coroutines (see body_sink.hpp).
#if defined(ASIO_HAS_CO_AWAIT)
/// A coroutine producer's read: returns how many bytes it placed in `buffer`; 0 ends the source.
/// An exception fails the request with error::source_failed.
using source_coroutine_fn =
    std::function<asio::awaitable<std::size_t>(asio::mutable_buffer buffer)>;
#endif

/// A request body read in chunks while it is sent (`request::stdin_source`).
///
/// FastCGI announces the body's length (CONTENT_LENGTH) before the body, so a source must know
/// its length: a request whose source has none fails with error::body_length_unknown before
/// anything is sent. A source that ends early or fails midway ends the request with
/// error::source_ended_early or error::source_failed; the server's view of the stream is then
/// broken, so the connection is closed (or, on a multiplexed connection, the request aborted).
/// Only `size()` bytes are read: a source that has more is not asked for them.
///
/// A copy of a file source is a source of its own (each send opens the file and reads at its own
/// offset), so copies of one request may be sent at once; copies of a producer share it. A file
/// source may be sent again (a retry re-opens the file); a producer can be consumed once, so the
/// client never retries a request that streams from one.
class body_source {
  public:
    /// What a source does; implement it for a source of your own. An exception thrown from
    /// start() or async_read_some() fails the request with error::source_failed. size(),
    /// restartable() and clone() must not throw: they answer from the caller's side (while
    /// async_request checks the request, and when the pool decides on a retry), so an
    /// exception from them leaves async_request or run() itself and the request's handler is
    /// never called.
    class implementation {
      public:
        /// Destroys the implementation.
        virtual ~implementation() = default;
        /// The body's length, if known.
        virtual std::optional<std::uint64_t> size() const = 0;
        /// Called before the request is sent, on the connection's executor: prepare to read from
        /// the beginning. On failure return an error and set `why` to a sentence for humans.
        virtual std::error_code start(std::string& why) = 0;
        /// Reads the next bytes into `buffer`; calls `done` exactly once, from any thread.
        /// `ex` is the connection's executor, for sources that do asynchronous work.
        virtual void async_read_some(asio::mutable_buffer buffer, const asio::any_io_executor& ex,
                                     source_read_handler done) = 0;
        /// The request ended (a timeout, a cancellation, a closed connection) while
        /// async_read_some() is in progress: make it call `done` soon, with any result. Until it
        /// does, the request's ID on its connection stays taken. The default does nothing; a
        /// coroutine source is cancelled at its next co_await.
        virtual void cancel() noexcept {}
        /// What made the last read fail, in words, once `done` got an error: added to the
        /// diagnostics. Empty by default; the coroutine source gives its exception's message.
        /// Must not throw.
        virtual std::string failure_text() const { return {}; }
        /// True when start() may be called again after bytes were read (a retry). Without a
        /// clone(), a request that fails while its async_read_some() is still in progress is
        /// not sent again (the error's diagnostics say so): the retry's start() would rewind
        /// the source under that read.
        virtual bool restartable() const { return false; }
        /// The implementation a copy of the body_source gets: a new one that reads the same
        /// bytes independently, or null (the default) to share this one.
        virtual std::shared_ptr<implementation> clone() const { return nullptr; }
    };

    /// No source: the request's `body` string is sent.
    body_source() = default;
    /// A source of your own.
    explicit body_source(std::shared_ptr<implementation> impl) noexcept : impl_(std::move(impl)) {}
    /// A copy: the implementation's clone(), or the same implementation.
    body_source(const body_source& other) : impl_(copy_of(other.impl_)) {}
    /// As the copy constructor.
    body_source& operator=(const body_source& other) {
        if (this != &other)
            impl_ = copy_of(other.impl_);
        return *this;
    }
    /// Moves the implementation.
    body_source(body_source&&) noexcept = default;
    /// Moves the implementation.
    body_source& operator=(body_source&&) noexcept = default;

    /// The file at `path`, read in chunks. Its size is taken now; opening it happens when the
    /// request is sent: a file that cannot be opened fails the request with that system error
    /// (ENOENT, EACCES; the diagnostics name the file), one whose size changed with
    /// error::source_ended_early, before anything is sent. The length sent is the size stat()
    /// gives: pseudo-files whose size is not their length (procfs reports 0, sysfs 4096) cannot
    /// be streamed; read them into request::body.
    static body_source file(std::string path);
    /// `size` bytes from `read` (std::nullopt: unknown, which is rejected when sent).
    static body_source producer(std::optional<std::uint64_t> size, source_read_fn read);
#if defined(ASIO_HAS_CO_AWAIT)
    /// `size` bytes from a coroutine run on the connection's executor for each chunk.
    static body_source coroutine(std::optional<std::uint64_t> size, source_coroutine_fn read);
#endif

    /// True when a source is set.
    explicit operator bool() const noexcept {
        return impl_ != nullptr;
    }
    /// The body's length, if known (std::nullopt also when no source is set).
    std::optional<std::uint64_t> size() const {
        return impl_ ? impl_->size() : std::nullopt;
    }
    /// True when a request streaming from this source may be sent again.
    bool restartable() const {
        return !impl_ || impl_->restartable();
    }
    /// The implementation (for the connection).
    implementation* get() const noexcept {
        return impl_.get();
    }
    /// The implementation itself, not a clone (for the connection: kept alive across a call).
    std::shared_ptr<implementation> share() const noexcept {
        return impl_;
    }

  private:
    static std::shared_ptr<implementation> copy_of(const std::shared_ptr<implementation>& p) {
        auto c = p ? p->clone() : nullptr;
        return c ? c : p;
    }

    std::shared_ptr<implementation> impl_;
};

}  // namespace fcgi
