// Runs a program as a child process with its stdin, stdout and stderr attached to the test: for
// tests of the fcgi command-line tool.
#pragma once

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

namespace fcgi::test {

/// What a child did.
struct run_result {
    int exit_code = -1;  ///< 128 + signal when killed
    std::string out;     ///< everything it wrote to stdout
    std::string err;     ///< everything it wrote to stderr
    std::chrono::milliseconds elapsed{0};
};

/// What to run.
struct run_spec {
    std::string program;             ///< absolute path
    std::vector<std::string> args;   ///< argv[1..]
    std::string input;               ///< written to the child's stdin, then EOF
    std::vector<std::string> env;    ///< extra NAME=VALUE entries
    std::string cwd;                 ///< empty = ours
    std::chrono::seconds limit{30};  ///< the child is killed after this
    /// Stderr on a pseudo-terminal instead of a pipe, for what a tool does only for a person
    /// watching; its "\n" reads back as "\r\n".
    bool stderr_terminal = false;
    /// Stdout's pipe filled to the brim with 'p's before the child starts, so that its first
    /// write finds no room (a reader that has fallen behind); they come first in `out`. Hold
    /// the reader back longer from `started`.
    bool stdout_full = false;
    /// Called with the child's PID once it runs, before its output is read (so it must not wait
    /// for output): e.g. to signal it once a server has seen its requests.
    std::function<void(int pid)> started;
};

/// Runs `spec` to completion and collects its output. The child inherits our environment
/// minus FCGI_CONNECT (so a caller's setting cannot leak into a test of the flag), plus
/// spec.env. Every wait is bounded by spec.limit and none is a sleep. Throws std::system_error
/// when the child cannot be started, and std::runtime_error when it outlives spec.limit (it is
/// killed and reaped first).
run_result run_child(const run_spec& spec);

/// Signals a process through a pidfd, which pins it: once the process is gone, send() fails
/// instead of reaching whatever process took its PID. Open it while the PID cannot have been
/// reused yet: a child before it is reaped (in run_spec::started, for a thread that signals it
/// later), or check the process after opening (php_fpm::kill_worker checks the parent).
class process_signaller {
  public:
    explicit process_signaller(int pid);
    ~process_signaller();
    process_signaller(const process_signaller&) = delete;
    process_signaller& operator=(const process_signaller&) = delete;
    /// True when the signal was delivered.
    bool send(int sig) const;

  private:
    int pidfd_;
};

/// Stops a child we started and reaps it: `sig` (SIGTERM by default), then SIGKILL once `grace`
/// has passed.
void stop_child(int pid, std::chrono::milliseconds grace, int sig = SIGTERM);

}  // namespace fcgi::test
