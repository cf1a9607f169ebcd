// A FastCGI server program started the way a web server spawns one: the suite creates the
// listening socket (127.0.0.1 on an ephemeral port, or a unix socket in a temp dir) and hands it
// to the child as fd 0 (FCGI_LISTENSOCK_FILENO). The socket accepts before the child runs, so
// no readiness polling is needed. Stopped by PID.
#pragma once

#include <sys/types.h>

#include <string>

#include "fcgi/endpoint.hpp"

namespace fcgi::test {

/// Where the spawned server listens.
enum class listen_on { tcp, unix_socket };

/// A running server program. The destructor stops it (SIGTERM, then SIGKILL) and removes its
/// temp dir, also when a test fails.
class peer_process {
  public:
    /// Starts `program` with a listener on `where` as its fd 0; throws std::runtime_error naming
    /// the program when it cannot be started (not built: run scripts/setup.sh).
    peer_process(std::string program, listen_on where);
    ~peer_process();
    peer_process(const peer_process&) = delete;
    peer_process& operator=(const peer_process&) = delete;

    /// Where to connect.
    const fcgi::endpoint& endpoint() const noexcept { return endpoint_; }
    /// What the program wrote to stdout and stderr so far: for failure messages.
    std::string log() const;
    /// The child's PID.
    pid_t pid() const noexcept { return pid_; }

  private:
    void stop();

    std::string program_;
    std::string dir_;
    fcgi::endpoint endpoint_;
    pid_t pid_ = -1;
};

}  // namespace fcgi::test
