// Where a streamed response body (STDOUT after the CGI head) goes: a file, a descriptor or a
// consumer, chunk by chunk as records arrive, so a large output never sits in memory.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace fcgi {

struct response;

/// Called by a sink when it is done with a chunk. May be called from any thread, while the
/// connection's io_context exists: it posts to that executor, and it owns the connection, so
/// neither call it nor let it be destroyed after the io_context is gone.
using sink_write_handler = std::function<void(std::error_code)>;

/// A consumer's write: take `chunk` (valid until `done` is called), then call `done` once.
using sink_write_fn = std::function<void(std::string_view chunk, sink_write_handler done)>;

// Only where Asio has coroutines (not clang 14 with libstdc++ without its defines), so the
// rest of the API compiles for callback users there.
#if defined(ASIO_HAS_CO_AWAIT)
/// A coroutine consumer's write: returns when it is done with `chunk`; an exception fails the
/// request with error::sink_failed.
using sink_coroutine_fn = std::function<asio::awaitable<void>(std::string_view chunk)>;
#endif

/// Called once the CGI head arrived (status, reason and headers; the body is empty), before the
/// first chunk. An error fails the request with error::sink_failed.
using sink_head_fn = std::function<std::error_code(const response& head)>;

/// A response body delivered in chunks as it arrives (`request::stdout_sink`).
///
/// Order: the head once (on_head), then body chunks in order, then the request's handler runs
/// with the response (status and headers, empty body). STDERR is still collected in the response.
/// Backpressure: while a sink is busy, STDOUT for it is buffered up to
/// `connection_options::sink_buffer_size` (plus up to one read); beyond that the connection
/// stops reading until the sink catches up. On a multiplexed connection that pauses the other
/// requests too, so the rule is: a slow sink holds up others only once its own buffer is full.
/// A sink that fails ends the request with error::sink_failed; the rest of the response is
/// discarded as after a timeout (the connection is closed, or the request aborted when the
/// connection multiplexes). An error returned by start() (a file that cannot be created) is
/// the request's error as it is, before anything is sent.
/// File and descriptor sinks write a regular file at once; a pipe, socket or terminal only as
/// far as it has room, then they wait on the executor (the descriptor's flags untouched), so
/// a slow reader holds up neither other requests nor deadlines.
class body_sink {
  public:
    /// What a sink does; implement it for a sink of your own. Called on the connection's executor.
    /// An exception thrown from a call fails the request with error::sink_failed (its message in
    /// the diagnostics); the connection carries on as after any failed sink.
    class implementation {
      public:
        /// Destroys the implementation.
        virtual ~implementation() = default;
        /// Called before the request is sent: prepare (open, truncate). On failure return an
        /// error and set `why`; nothing is sent then.
        virtual std::error_code start(std::string& why) = 0;
        /// The CGI head arrived.
        virtual std::error_code on_head(const response& head, std::string& why);
        /// Consumes `chunk`, which stays valid until `done` is called; calls `done` exactly once
        /// (a second call for one write fails the request with error::sink_failed).
        virtual void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                                 sink_write_handler done) = 0;
        /// Every chunk was consumed and the response ended: flush, close.
        virtual std::error_code finish(std::string& why);
        /// The request ended (a timeout, a cancellation, a closed connection) while
        /// async_write() is in progress: make it call `done` soon, with any result. Until it
        /// does, the request's ID on its connection stays taken. The default does nothing; the
        /// built-in descriptor, file and coroutine sinks stop waiting.
        virtual void cancel() noexcept {}
        /// What made the last write fail, in words, once `done` got an error: added to the
        /// diagnostics. Empty by default; the coroutine sink gives its exception's message. Must
        /// not throw.
        virtual std::string failure_text() const { return {}; }
        /// The implementation a copy of the body_sink gets: a new one (a file sink opens its
        /// file for each send), or null (the default) to share this one.
        virtual std::shared_ptr<implementation> clone() const { return nullptr; }
    };

    /// No sink: the body is collected in `response::body`.
    body_sink() = default;
    /// A sink of your own.
    explicit body_sink(std::shared_ptr<implementation> impl) noexcept : impl_(std::move(impl)) {}
    /// A copy: the implementation's clone(), or the same implementation.
    body_sink(const body_sink& other) : impl_(copy_of(other.impl_)) {}
    /// As the copy constructor.
    body_sink& operator=(const body_sink& other) {
        if (this != &other)
            impl_ = copy_of(other.impl_);
        return *this;
    }
    /// Moves the implementation.
    body_sink(body_sink&&) noexcept = default;
    /// Moves the implementation.
    body_sink& operator=(body_sink&&) noexcept = default;

    /// Writes the body to the file at `path`, created or truncated when the request is sent.
    static body_sink file(std::string path);
    /// Writes the body to the open descriptor `fd` (not closed; standard output, a pipe).
    static body_sink descriptor(int fd);
    /// Hands each chunk to `write`; `on_head` (optional) gets the head first.
    static body_sink consumer(sink_write_fn write, sink_head_fn on_head = {});
#if defined(ASIO_HAS_CO_AWAIT)
    /// Awaits `write` for each chunk, run on the connection's executor; `on_head` (optional)
    /// gets the head first. Each copy of the request gets a copy of `write` and `on_head`
    /// (state they captured by value is not shared between copies).
    static body_sink coroutine(sink_coroutine_fn write, sink_head_fn on_head = {});
#endif

    /// True when a sink is set.
    explicit operator bool() const noexcept {
        return impl_ != nullptr;
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
