#include "support/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace fcgi::test {
namespace {

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

void set_nonblocking(int fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// A pseudo-terminal: fds[0] the side we read, fds[1] the child's. Once the child's side is
// closed, reads return what is left, then EIO, which ends the read loop as EOF does.
void open_terminal(int fds[2]) {
    fds[0] = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fds[0] < 0 || ::grantpt(fds[0]) != 0 || ::unlockpt(fds[0]) != 0)
        throw_errno(errno, "pseudo-terminal");
    const char* name = ::ptsname(fds[0]);
    fds[1] = name ? ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (fds[1] < 0)
        throw_errno(errno, std::string("open ") + (name ? name : "pseudo-terminal"));
}

// Closes what is still open however run_child() leaves.
struct fds_guard {
    std::vector<int*> fds;
    ~fds_guard() {
        for (int* fd : fds)
            if (*fd >= 0)
                ::close(*fd);
    }
};

}  // namespace

// Pipes on stdout/stderr and a socket on stdin: send() with MSG_NOSIGNAL cannot raise SIGPIPE in
// the test process when the child does not read its input. Waits with poll() on the pipes and a
// pidfd, so every wait is bounded by spec.limit and needs no sleep.
run_result run_child(const run_spec& spec) {
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, pidfd = -1;
    fds_guard guard{{&out[0], &out[1], &err[0], &err[1], &in[0], &in[1], &pidfd}};
    if (::pipe2(out, O_CLOEXEC) != 0 ||
        ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
        throw_errno(errno, "pipes for " + spec.program);
    if (spec.stdout_full) {
        // An empty pipe takes its own size in one write without blocking, and is then full.
        int size = ::fcntl(out[1], F_GETPIPE_SZ);
        std::string fill(size > 0 ? static_cast<std::size_t>(size) : 0, 'p');
        ssize_t n = size > 0 ? ::write(out[1], fill.data(), fill.size()) : -1;
        if (n != size)
            throw_errno(n < 0 ? errno : EAGAIN, "filling the stdout pipe for " + spec.program);
    }
    if (spec.stderr_terminal)
        open_terminal(err);
    else if (::pipe2(err, O_CLOEXEC) != 0)
        throw_errno(errno, "pipes for " + spec.program);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[1], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (!spec.cwd.empty())
        posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());

    std::vector<std::string> args{spec.program};
    args.insert(args.end(), spec.args.begin(), spec.args.end());
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "FCGI_CONNECT=", 13) != 0)
            env_strings.emplace_back(*e);
    env_strings.insert(env_strings.end(), spec.env.begin(), spec.env.end());
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    auto start = std::chrono::steady_clock::now();
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, spec.program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    for (int* fd : {&in[1], &out[1], &err[1]}) {
        ::close(*fd);
        *fd = -1;
    }
    if (rc != 0)
        throw_errno(rc, "posix_spawn " + spec.program);
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        int e = errno;
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        throw_errno(e, "pidfd_open");
    }

    if (spec.started)
        spec.started(pid);
    set_nonblocking(in[0]);
    set_nonblocking(out[0]);
    set_nonblocking(err[0]);
    std::size_t in_sent = 0;
    if (spec.input.empty()) {
        ::close(in[0]);
        in[0] = -1;
    }
    bool exited = false;
    bool killed = false;
    run_result r;
    auto deadline = start + spec.limit;
    char buf[65536];
    while (out[0] >= 0 || err[0] >= 0 || !exited) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        pollfd fds[4] = {{out[0], POLLIN, 0},
                         {err[0], POLLIN, 0},
                         {in[0], POLLOUT, 0},
                         {exited ? -1 : pidfd, POLLIN, 0}};
        int n = ::poll(fds, 4, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            throw_errno(e, "poll");
        }
        auto drain = [&](int& fd, short revents, std::string& to) {
            if (fd < 0 || !(revents & (POLLIN | POLLHUP | POLLERR)))
                return;
            ssize_t got = ::read(fd, buf, sizeof buf);
            if (got > 0) {
                to.append(buf, static_cast<std::size_t>(got));
            } else if (got == 0 || errno != EAGAIN) {
                ::close(fd);
                fd = -1;
            }
        };
        drain(out[0], fds[0].revents, r.out);
        drain(err[0], fds[1].revents, r.err);
        if (in[0] >= 0 && fds[2].revents) {
            ssize_t sent = ::send(in[0], spec.input.data() + in_sent, spec.input.size() - in_sent,
                                  MSG_NOSIGNAL);
            if (sent > 0)
                in_sent += static_cast<std::size_t>(sent);
            if ((sent < 0 && errno != EAGAIN) || in_sent == spec.input.size()) {
                ::close(in[0]);  // EOF for the child's stdin
                in[0] = -1;
            }
        }
        if (fds[3].revents)
            exited = true;
    }
    int status = 0;
    ::waitpid(pid, &status, 0);  // exited, or just killed
    r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (killed)
        throw std::runtime_error("child " + spec.program + " still running after " +
                                 std::to_string(spec.limit.count()) +
                                 " s: killed; stderr: " + r.err);
    return r;
}

process_signaller::process_signaller(int pid)
    : pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}

process_signaller::~process_signaller() {
    if (pidfd_ >= 0)
        ::close(pidfd_);
}

bool process_signaller::send(int sig) const {
    return pidfd_ >= 0 && ::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) == 0;
}

void stop_child(int pid, std::chrono::milliseconds grace, int sig) {
    ::kill(pid, sig);
    auto deadline = std::chrono::steady_clock::now() + grace;
    int status = 0;
    // Polled: there is no portable way to wait for a child with a timeout.
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

}  // namespace fcgi::test
