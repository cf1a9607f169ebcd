// Loopback requests/s through fcgi::client against an in-process null responder: a thread that
// answers every request with one fixed STDOUT record and END_REQUEST, as soon as the request's
// empty STDIN record arrives, over a unix socket in a temp dir. What is left is the client's
// own cost plus the kernel's, at concurrency 1, 16 and 256, with multiplexing off (a pool of
// several connections, one request each at a time) and on (requests interleaved on one
// connection). Results in docs/benchmarks.md.
//
// Counters: items_per_second is requests/s of wall time; client_cpu_us is the CPU time of the
// client's thread per request (user + system, CLOCK_THREAD_CPUTIME_ID), and one_core_req_s is
// its inverse: the rate one core running only the client would reach.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <benchmark/benchmark.h>

#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"

namespace {

double thread_cpu_s() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// STDOUT "Content-type: text/plain\r\n\r\nhello\n" (34 bytes + 6 padding) + END_REQUEST; the
// request ID goes into bytes 2-3 of both headers.
std::string reply_template() {
    const std::string_view body = "Content-type: text/plain\r\n\r\nhello\n";
    std::string r;
    const std::size_t pad = (8 - body.size() % 8) % 8;
    const unsigned char h[8] = {
        1, 6, 0, 0, 0, static_cast<unsigned char>(body.size()), static_cast<unsigned char>(pad), 0};
    r.append(reinterpret_cast<const char*>(h), 8);
    r.append(body);
    r.append(pad, '\0');
    const unsigned char end[16] = {1, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    r.append(reinterpret_cast<const char*>(end), 16);
    return r;
}

// The null responder: one thread, epoll, any number of connections, any number of requests
// per connection in flight (it answers each as its STDIN ends, so it multiplexes).
class null_responder {
  public:
    null_responder() : reply_(reply_template()) {
        char tmpl[] = "/tmp/fcgi-loopback-XXXXXX";
        if (!mkdtemp(tmpl))
            throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        path_ = dir_ + "/null.sock";
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ||
            ::listen(listener_, 4096))
            throw std::runtime_error("null responder: cannot listen");
        wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        add(listener_, EPOLLIN);
        add(wake_, EPOLLIN);
        thread_ = std::thread([this] { run(); });
    }
    ~null_responder() {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
        thread_.join();
        for (auto& [fd, c] : conns_)
            ::close(fd);
        ::close(listener_);
        ::close(wake_);
        ::close(ep_);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    null_responder(const null_responder&) = delete;
    null_responder& operator=(const null_responder&) = delete;

    const std::string& path() const { return path_; }

  private:
    struct conn {
        std::string in;
        std::string out;
        bool want_out = false;
    };

    void add(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    void modify(int fd, std::uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
    }
    void drop(int fd) {
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        conns_.erase(fd);
    }

    void run() {
        epoll_event events[64];
        char buf[65536];
        for (;;) {
            int n = ::epoll_wait(ep_, events, 64, -1);
            if (n < 0 && errno == EINTR)
                continue;
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == wake_)
                    return;
                if (fd == listener_) {
                    for (int c; (c = ::accept4(listener_, nullptr, nullptr,
                                               SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
                        conns_.emplace(c, conn{});
                        add(c, EPOLLIN);
                    }
                    continue;
                }
                auto it = conns_.find(fd);
                if (it == conns_.end())
                    continue;
                conn& c = it->second;
                bool closed = false;
                for (;;) {
                    ssize_t r = ::read(fd, buf, sizeof buf);
                    if (r > 0) {
                        c.in.append(buf, static_cast<std::size_t>(r));
                        if (static_cast<std::size_t>(r) < sizeof buf)
                            break;
                    } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        closed = true;
                        break;
                    } else if (errno == EAGAIN) {
                        break;
                    }
                }
                if (closed) {
                    drop(fd);
                    continue;
                }
                answer(c);
                if (!flush(fd, c))
                    drop(fd);
            }
        }
    }

    // Walks the complete records received; each empty STDIN record gets the reply.
    void answer(conn& c) {
        std::size_t pos = 0;
        const auto* b = reinterpret_cast<const unsigned char*>(c.in.data());
        while (c.in.size() - pos >= 8) {
            const unsigned char* h = b + pos;
            std::size_t total = 8 + (std::size_t{h[4]} << 8 | h[5]) + h[6];
            if (c.in.size() - pos < total)
                break;
            if (h[1] == 5 && h[4] == 0 && h[5] == 0) {
                std::size_t at = c.out.size();
                c.out.append(reply_);
                c.out[at + 2] = c.out[at + 48 + 2] = static_cast<char>(h[2]);
                c.out[at + 3] = c.out[at + 48 + 3] = static_cast<char>(h[3]);
            }
            pos += total;
        }
        c.in.erase(0, pos);
    }

    bool flush(int fd, conn& c) {
        while (!c.out.empty()) {
            ssize_t w = ::write(fd, c.out.data(), c.out.size());
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN)
                    return false;
                break;
            }
            c.out.erase(0, static_cast<std::size_t>(w));
        }
        bool want = !c.out.empty();
        if (want != c.want_out) {
            modify(fd, want ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
            c.want_out = want;
        }
        return true;
    }

    std::string reply_;
    std::string dir_, path_;
    int listener_ = -1, wake_ = -1, ep_ = -1;
    std::map<int, conn> conns_;
    std::thread thread_;
};

// A closed loop of `concurrency` requests in flight through one client until `count` complete.
struct closed_loop {
    fcgi::client& client;
    const fcgi::request& tmpl;
    long to_start = 0;
    long outstanding = 0;
    long failed = 0;
    asio::steady_timer guard;

    void start_one() {
        --to_start;
        ++outstanding;
        client.async_request(tmpl, [this](std::error_code ec, fcgi::response resp) {
            --outstanding;
            if (ec || resp.status != 200 || resp.body != "hello\n")
                ++failed;
            if (to_start > 0)
                start_one();
        });
    }

    // Runs `count` requests; false when one failed or the run took longer than 60 s. The bound
    // is a timer rather than run_one_for(), which reads the clock twice per handler (10 % of
    // the profile), or poll_one(), which costs an extra epoll_wait when nothing is ready.
    bool run(asio::io_context& ioc, long count, long concurrency) {
        to_start = count;
        bool timed_out = false;
        auto flag = std::make_shared<bool>(false);
        guard.expires_after(std::chrono::seconds(60));
        guard.async_wait([flag](std::error_code ec) { *flag = !ec; });
        for (long i = 0; i < concurrency && to_start > 0; ++i)
            start_one();
        while (outstanding > 0 && !(timed_out = *flag))
            ioc.run_one();
        guard.cancel();
        return failed == 0 && outstanding == 0 && !timed_out;
    }
};

// Args: concurrency, connections, multiplexing (0 off, 1 on).
void BM_loopback(benchmark::State& state) {
    const long concurrency = state.range(0);
    const long connections = state.range(1);
    const bool mux = state.range(2) != 0;
    null_responder responder;
    asio::io_context ioc(1);
    fcgi::client_options options;
    fcgi::endpoint ep;
    if (fcgi::parse_endpoint("unix:" + responder.path(), ep)) {
        state.SkipWithError("endpoint");
        return;
    }
    options.endpoints.push_back(ep);
    options.max_connections_per_endpoint = static_cast<std::size_t>(connections);
    if (mux) {
        options.mode = fcgi::multiplexing::on;
        options.max_requests_per_connection =
            static_cast<std::uint16_t>((concurrency + connections - 1) / connections);
    }
    fcgi::request tmpl;
    tmpl.script = "/srv/null.php";
    std::unique_ptr<fcgi::client> client =
        std::make_unique<fcgi::client>(ioc.get_executor(), options);
    closed_loop loop{*client, tmpl, 0, 0, 0, asio::steady_timer(ioc)};
    const long batch = std::max(2000L, concurrency * 20);
    if (!loop.run(ioc, batch, concurrency)) {  // warm-up: connects, allocations
        state.SkipWithError("warm-up failed");
        return;
    }
    double cpu = 0;
    long done = 0;
    for (auto _ : state) {
        const double c0 = thread_cpu_s();
        if (!loop.run(ioc, batch, concurrency)) {
            state.SkipWithError("requests failed or timed out");
            break;
        }
        cpu += thread_cpu_s() - c0;
        done += batch;
    }
    state.SetItemsProcessed(done);
    const double us = done ? cpu / static_cast<double>(done) * 1e6 : 0;
    state.counters["client_cpu_us"] = us;
    state.counters["one_core_req_s"] = us > 0 ? 1e6 / us : 0;
    // Let the connections close before the responder goes away (bounded).
    bool shut = false;
    client->async_shutdown([&shut](std::error_code) { shut = true; });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!shut && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(std::chrono::milliseconds(100));
    client.reset();
    ioc.poll();
}
BENCHMARK(BM_loopback)
    ->ArgNames({"conc", "conns", "mux"})
    ->Args({1, 1, 0})
    ->Args({16, 16, 0})
    ->Args({256, 16, 0})
    ->Args({256, 256, 0})
    ->Args({1, 1, 1})
    ->Args({16, 1, 1})
    ->Args({256, 1, 1})
    ->Args({256, 4, 1})
    ->UseRealTime()
    ->MinTime(2.0)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
