#include "peer_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "support/spawn.hpp"

extern char** environ;

namespace fcgi::test {
namespace {

// A listening socket above fd 2, so handing it to the child as fd 0 never clobbers it.
int make_listener(listen_on where, const std::string& dir, fcgi::endpoint& ep) {
    int fd = -1;
    if (where == listen_on::tcp) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error(std::string("tcp listener: ") + std::strerror(errno));
        ep = fcgi::endpoint::tcp("127.0.0.1", ntohs(addr.sin_port));
    } else {
        std::string path = dir + "/peer.sock";
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
            throw std::runtime_error("unix listener " + path + ": " + std::strerror(errno));
        ep = fcgi::endpoint::unix_socket(path);
    }
    if (::listen(fd, 1024) != 0)
        throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
    if (fd <= 2) {
        int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        ::close(fd);
        fd = high;
    }
    return fd;
}

}  // namespace

peer_process::peer_process(std::string program, listen_on where) : program_(std::move(program)) {
    if (program_.empty() || ::access(program_.c_str(), X_OK) != 0)
        throw std::runtime_error("conformance peer '" + program_ +
                                 "' was not built: install libfcgi-dev and golang-go "
                                 "(scripts/setup.sh) and configure again");
    std::string tmpl = (std::filesystem::temp_directory_path() / "fcgi-peer-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    int fd = -1;
    try {
        fd = make_listener(where, dir_, endpoint_);
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fd, 0);
    std::string out = dir_ + "/output.log";
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv{program_.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, program_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    // Only the child accepts: if it dies, connecting fails instead of hanging in the backlog.
    ::close(fd);
    if (rc != 0) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw std::runtime_error("cannot start " + program_ + ": " + std::strerror(rc));
    }
    pid_ = pid;
}

peer_process::~peer_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void peer_process::stop() {
    if (pid_ <= 0)
        return;
    stop_child(pid_, std::chrono::seconds(5));
    pid_ = -1;
}

std::string peer_process::log() const {
    std::ifstream f(dir_ + "/output.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace fcgi::test
