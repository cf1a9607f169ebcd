#include "support/php_fpm.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

// The loopback address of either family on `port`, for bind() and connect().
struct loopback_address {
    loopback_address(bool v6, std::uint16_t port) {
        if (v6) {
            auto& a = storage.v6;
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(port);
            a.sin6_addr = in6addr_loopback;
            len = sizeof a;
        } else {
            auto& a = storage.v4;
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof a;
        }
    }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
    union {
        sockaddr_in v4;
        sockaddr_in6 v6;
    } storage{};
    socklen_t len = 0;
};

bool can_connect_tcp(bool v6, std::uint16_t port) {
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    loopback_address addr(v6, port);
    bool ok = ::connect(fd, addr.get(), addr.len) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

std::uint16_t free_tcp_port(bool v6) {
    int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw std::runtime_error("socket() failed");
    loopback_address addr(v6, 0);
    socklen_t len = addr.len;
    if (::bind(fd, addr.get(), addr.len) != 0 || ::getsockname(fd, addr.get(), &len) != 0) {
        ::close(fd);
        throw std::runtime_error(v6 ? "could not find a free port on ::1 (no IPv6 loopback?)"
                                    : "could not find a free port");
    }
    ::close(fd);
    return ntohs(v6 ? addr.storage.v6.sin6_port : addr.storage.v4.sin_port);
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
        tcp_port_ = free_tcp_port(options_.tcp_v6);
    // free_tcp_port() lets the port go before php-fpm binds it, and a test executable running
    // beside this one (ctest -j) may bind it in between: then php-fpm exits at startup, and a
    // fresh port is tried, a few times.
    for (int attempt = 1;; ++attempt) {
        write_config();
        try {
            start();
            return;
        } catch (...) {
            std::error_code ec;
            if (options_.tcp && attempt < 3 && pid_ <= 0 &&
                log().find("Address already in use") != std::string::npos) {
                tcp_port_ = free_tcp_port(options_.tcp_v6);
                for (const auto& stale :
                     {dir_ + "/php-fpm.log", dir_ + "/stdout.log", unix_socket_})
                    std::filesystem::remove(stale, ec);
                continue;
            }
            std::filesystem::remove_all(dir_, ec);
            throw;
        }
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
        pool("tcp", options_.tcp_v6 ? "[::1]:" + std::to_string(tcp_port_)
                                    : "127.0.0.1:" + std::to_string(tcp_port_));
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

    // fork + exec rather than posix_spawn: the child asks for SIGTERM when we die, so a test
    // binary killed mid-run (SIGKILL, a ctest timeout) does not leave its php-fpm behind. SIGTERM,
    // not SIGKILL: php-fpm's master then stops its workers, which would otherwise keep running.
    // Everything the child needs is prepared here; between fork and exec it calls only
    // async-signal-safe functions.
    std::string out = dir_ + "/stdout.log";
    std::string exec_failed = "cannot start " + bin + " (install php8.2-fpm: scripts/setup.sh)\n";
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::runtime_error(std::string("cannot fork for php-fpm: ") + std::strerror(errno));
    if (pid == 0) {
        if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent)
            ::_exit(127);  // the parent is already gone
        int in = ::open("/dev/null", O_RDONLY);
        int log = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || log < 0 || ::dup2(in, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0)
            ::_exit(127);
        ::execve(bin.c_str(), argv.data(), environ);
        (void)!::write(2, exec_failed.data(), exec_failed.size());  // lands in log()
        ::_exit(127);
    }
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
        if (can_connect_unix(unix_socket_) &&
            (!options_.tcp || can_connect_tcp(options_.tcp_v6, tcp_port_)))
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    throw std::runtime_error("php-fpm did not accept connections within 20 s:\n" + log());
}

void php_fpm::stop(bool graceful) {
    if (pid_ <= 0)
        return;
    stop_child(pid_, std::chrono::seconds(5), graceful ? SIGQUIT : SIGTERM);
    pid_ = -1;
    // php-fpm removes its unix socket on a clean exit; make sure a SIGKILL leaves none behind.
    std::error_code ec;
    std::filesystem::remove(unix_socket_, ec);
}

namespace {

// The parent PID of `pid` from /proc/<pid>/stat ("pid (comm) state ppid ..."; comm may hold
// spaces or parentheses, so the fields are read after the last ')'); -1 when it is gone or a
// zombie.
long parent_of(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(f, stat))
        return -1;
    auto close = stat.rfind(')');
    if (close == std::string::npos)
        return -1;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0;
    if (!(rest >> state >> ppid) || state == 'Z')
        return -1;
    return ppid;
}

}  // namespace

std::vector<pid_t> php_fpm::worker_pids() const {
    std::vector<pid_t> pids;
    if (pid_ <= 0)
        return pids;
    DIR* proc = ::opendir("/proc");
    if (!proc)
        return pids;
    while (dirent* e = ::readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid > 0 && *end == '\0' && parent_of(pid) == pid_)
            pids.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(proc);
    return pids;
}

bool php_fpm::kill_worker(pid_t worker, int sig) const {
    if (pid_ <= 0 || worker <= 0)
        return false;
    // Checking the parent after the pidfd pins the process, then signalling through it, cannot
    // hit an unrelated process that reused the PID in between.
    process_signaller target(worker);
    return parent_of(worker) == pid_ && target.send(sig);
}

std::string php_fpm::log() const {
    std::stringstream ss;
    for (const char* name : {"/php-fpm.log", "/stdout.log"}) {
        std::ifstream f(dir_ + name);
        // Streaming an empty or unopened file sets failbit on `ss`, which would drop the rest.
        if (f && f.peek() != std::ifstream::traits_type::eof())
            ss << f.rdbuf();
    }
    return ss.str();
}

}  // namespace fcgi::test
