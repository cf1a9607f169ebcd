// Waits until a descriptor the caller owns can be written, without changing its flags.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <functional>
#include <optional>
#include <system_error>

namespace fcgi::detail {

/// Waits for a descriptor such as standard output or a pipe to become writable, on an executor,
/// so that a slow reader does not block the thread (and every deadline on it).
///
/// Asio's own descriptor wait would switch the open file description to non-blocking, which
/// changes it for every process sharing it (a shell's pipeline, a terminal). An epoll instance of
/// our own watches the descriptor instead, and the reactor waits on that instance.
class writable_wait {
  public:
    /// Nothing watched yet.
    writable_wait() = default;
    writable_wait(const writable_wait&) = delete;
    writable_wait& operator=(const writable_wait&) = delete;

    /// Calls `handler` once `fd` can be written, or reports an error or a hang-up (the next write
    /// then tells which); with asio::error::operation_aborted after cancel(). One wait at a time;
    /// `fd` must not be a regular file (those are always writable and cannot be watched).
    void async_wait(int fd, const asio::any_io_executor& ex,
                    std::function<void(std::error_code)> handler);

    /// Ends a pending wait with asio::error::operation_aborted.
    void cancel() noexcept;

    /// Forgets the watched descriptor (closed, or about to be reopened under the same number).
    void reset() noexcept;

  private:
    std::optional<asio::posix::stream_descriptor> watcher_;  // owns the epoll instance
    int fd_ = -1;
};

}  // namespace fcgi::detail
