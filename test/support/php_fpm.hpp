// A private php-fpm for tests: its own temp dir, unix socket and 127.0.0.1 TCP listener, started
// and stopped by PID.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fcgi::test {

/// How the private php-fpm is configured.
struct php_fpm_options {
    int children = 2;                           ///< pm.max_children with pm = static, per listener
    int max_requests = 0;                       ///< pm.max_requests; 0 = never recycle
    int request_terminate_timeout = 0;          ///< seconds; 0 = off
    int listen_backlog = 511;                   ///< listen.backlog
    bool tcp = true;                            ///< also listen on 127.0.0.1:<free port>
    bool tcp_v6 = false;                        ///< that listener on [::1] instead
    std::string post_max_size = "2G";           ///< Debian's 8M drops larger POST bodies silently
    std::string status_path;                    ///< pm.status_path, empty = none
    std::vector<std::string> extra_pool_lines;  ///< appended verbatim to each pool
};

/// A running php-fpm. The destructor stops it (SIGTERM, then SIGKILL) and removes its temp dir,
/// also when a test fails. Several may run at once. php-fpm also gets SIGTERM when the thread
/// that started it exits (PR_SET_PDEATHSIG), so a test killed mid-run leaves no php-fpm behind:
/// start it from a thread that lives as long as the object (the test's main thread).
class php_fpm {
  public:
    explicit php_fpm(php_fpm_options options = {});
    ~php_fpm();
    php_fpm(const php_fpm&) = delete;
    php_fpm& operator=(const php_fpm&) = delete;

    /// Path of the unix socket.
    const std::string& unix_socket() const noexcept { return unix_socket_; }
    /// Port of the TCP listener (0 when options.tcp is false).
    std::uint16_t tcp_port() const noexcept { return tcp_port_; }
    /// "unix:/path" endpoint string.
    std::string unix_endpoint() const { return "unix:" + unix_socket_; }
    /// "127.0.0.1:port" endpoint string ("[::1]:port" with options.tcp_v6).
    std::string tcp_endpoint() const {
        return (options_.tcp_v6 ? "[::1]:" : "127.0.0.1:") + std::to_string(tcp_port_);
    }
    /// The PID of the php-fpm master.
    pid_t pid() const noexcept { return pid_; }
    /// PIDs of the master's live worker processes (children of pid(), read from /proc): for
    /// tests that kill workers. Empty when stopped.
    std::vector<pid_t> worker_pids() const;
    /// Sends `sig` to `worker` if it is still a worker of this php-fpm (checked through a pidfd,
    /// so a recycled PID is never hit); true when sent.
    bool kill_worker(pid_t worker, int sig) const;
    /// The temp dir holding config, sockets and logs.
    const std::string& dir() const noexcept { return dir_; }
    /// php-fpm's log (workers' output included): for failure messages.
    std::string log() const;

    /// Stops php-fpm and waits for it to exit. Idempotent. `graceful`: SIGQUIT, which lets
    /// each worker finish its request first (the stop before a restart), instead of SIGTERM.
    void stop(bool graceful = false);
    /// Starts it again with the same config, sockets and port.
    void start();

    /// The directory of the test PHP scripts (test/php).
    static std::string script_dir();
    /// Absolute path of a test script, e.g. script("hello.php").
    static std::string script(const std::string& name);

  private:
    void write_config() const;
    void wait_ready();

    php_fpm_options options_;
    std::string dir_;
    std::string unix_socket_;
    std::uint16_t tcp_port_ = 0;
    pid_t pid_ = -1;
};

/// A free TCP port on 127.0.0.1, or on ::1 with `v6` (bound and released; used for listeners
/// started right after). Throws when none can be bound.
std::uint16_t free_tcp_port(bool v6 = false);

}  // namespace fcgi::test
