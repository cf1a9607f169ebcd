#include "support/php_fpm.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/spawn.hpp"

extern char** environ;

namespace fcgi::test {
namespace {

std::string php_fpm_binary() {
    if (const char* p = std::getenv("FCGI_TEST_PHP_FPM"))
        return p;
    return "/usr/sbin/php-fpm8.2";
}

bool can_connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
}

bool can_connect_tcp(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

std::uint16_t free_tcp_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("could not find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string php_fpm::script_dir() {
    return FCGI_TEST_PHP_DIR;
}

std::string php_fpm::script(const std::string& name) {
    return script_dir() + "/" + name;
}

php_fpm::php_fpm(php_fpm_options options) : options_(std::move(options)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fcgi-fpm-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    unix_socket_ = dir_ + "/fpm.sock";
    if (options_.tcp)
        tcp_port_ = free_tcp_port();
    write_config();
    try {
        start();
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw;
    }
}

php_fpm::~php_fpm() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

void php_fpm::write_config() const {
    std::ofstream conf(dir_ + "/php-fpm.conf");
    conf << "[global]\n"
         << "pid = " << dir_ << "/php-fpm.pid\n"
         << "error_log = " << dir_ << "/php-fpm.log\n"
         << "daemonize = no\n"
         << "log_level = notice\n";
    auto pool = [&](const std::string& name, const std::string& listen) {
        conf << "\n[" << name << "]\n"
             << "listen = " << listen << "\n"
             << "listen.backlog = " << options_.listen_backlog << "\n"
             << "listen.mode = 0666\n"
             << "pm = static\n"
             << "pm.max_children = " << options_.children << "\n"
             << "pm.max_requests = " << options_.max_requests << "\n"
             << "request_terminate_timeout = " << options_.request_terminate_timeout << "\n"
             << "catch_workers_output = yes\n"
             << "decorate_workers_output = no\n"
             << "clear_env = no\n"
             << "php_admin_value[post_max_size] = " << options_.post_max_size << "\n"
             << "php_admin_value[upload_max_filesize] = " << options_.post_max_size << "\n"
             << "php_admin_value[memory_limit] = 512M\n"
             << "php_admin_flag[log_errors] = on\n"
             << "php_admin_flag[display_errors] = off\n"
             << "php_admin_value[error_reporting] = 32767\n"
             << "php_admin_value[output_buffering] = 4096\n";
        if (!options_.status_path.empty())
            conf << "pm.status_path = " << options_.status_path << "\n";
        for (const auto& line : options_.extra_pool_lines)
            conf << line << "\n";
    };
    pool("unix", unix_socket_);
    if (options_.tcp)
        pool("tcp", "127.0.0.1:" + std::to_string(tcp_port_));
}

void php_fpm::start() {
    if (pid_ > 0)
        return;
    std::string bin = php_fpm_binary();
    std::string conf = dir_ + "/php-fpm.conf";
    std::vector<std::string> args = {bin, "-F", "-y", conf};
    if (::geteuid() == 0)
        args.push_back("-R");
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    std::string out = dir_ + "/stdout.log";
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw std::runtime_error("cannot start " + bin + ": " + std::strerror(rc) +
                                 " (install php8.2-fpm: scripts/setup.sh)");
    pid_ = pid;
    wait_ready();
}

void php_fpm::wait_ready() {
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::seconds(20);
    // Readiness is polled: php-fpm gives no other signal that its listeners accept.
    while (clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("php-fpm exited at startup:\n" + log());
        }
        if (can_connect_unix(unix_socket_) && (!options_.tcp || can_connect_tcp(tcp_port_)))
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    throw std::runtime_error("php-fpm did not accept connections within 20 s:\n" + log());
}

void php_fpm::stop() {
    if (pid_ <= 0)
        return;
    stop_child(pid_, std::chrono::seconds(5));
    pid_ = -1;
    // php-fpm removes its unix socket on a clean exit; make sure a SIGKILL leaves none behind.
    std::error_code ec;
    std::filesystem::remove(unix_socket_, ec);
}

std::string php_fpm::log() const {
    std::stringstream ss;
    for (const char* name : {"/php-fpm.log", "/stdout.log"}) {
        std::ifstream f(dir_ + name);
        ss << f.rdbuf();
    }
    return ss.str();
}

}  // namespace fcgi::test
