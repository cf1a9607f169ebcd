// Client CPU per request of fcgi::connection on kept-alive connections, to set against the
// syscall floor of benchmark/floor/epoll_floor_client.c (same request bytes, same responder,
// same output line). run_connection_cpu.sh runs both and prints the comparison.
//
// Usage: connection_cpu_benchmark [-c conns] [-n requests] [-t seconds] [-w warmup]
//                                 [--coroutine] socket_path
//
// `conns` connections on one single-threaded io_context each loop on async_request, with a
// completion callback (default) or a use_awaitable coroutine. CPU is the process's user+sys time
// (getrusage RUSAGE_SELF) over the measured phase, which starts once `warmup` requests are done.
// allocs_per_req counts calls of the global operator new per request, including the benchmark's
// own copy of the request (bench_allocs_per_req of them), which a caller building requests pays
// too; Asio's handler memory (recycled, via aligned_alloc) is not seen here.
#include <sys/resource.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "fcgi/connection.hpp"

namespace {
// Relaxed: only the io_context thread allocates on the measured path; atomics keep any other
// thread (none expected) from corrupting the count.
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return operator new(n, t);
}
// Out of line: inlined into callers, GCC sees free() of operator new's pointer and warns
// (-Wmismatched-new-delete), though the pair is consistent.
[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void cpu_s(double& user, double& sys) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) * 1e-6;
    sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) * 1e-6;
}

[[noreturn]] void fail(const char* what, std::string_view detail) {
    std::fprintf(stderr, "%s: %.*s\n", what, static_cast<int>(detail.size()), detail.data());
    std::exit(1);
}

// The same bookkeeping as the floor client's `struct run`, so both count alike.
struct run_state {
    long target = 200000;
    long warmup = 1000;
    double max_s = 5.0;
    long started = 0;
    long done = 0;
    bool measuring = false;
    long started0 = 0;
    long done0 = 0;
    std::uint64_t allocs0 = 0;
    double t0 = 0, u0 = 0, s0 = 0;

    void begin_measuring() {
        measuring = true;
        started0 = started;
        done0 = done;
        t0 = now_s();
        cpu_s(u0, s0);
        allocs0 = g_allocs.load(std::memory_order_relaxed);
    }

    // True when no further request should start; reads the clock every 256 requests only.
    bool should_stop() {
        if (!measuring)
            return started >= warmup;
        long measured = started - started0;
        if (measured >= target)
            return true;
        if ((measured & 255) == 0 && now_s() - t0 >= max_s) {
            target = measured;  // stop starting; requests in flight still finish
            return true;
        }
        return false;
    }

    void report(const char* mode, int conns, double bench_allocs) const {
        double u1 = 0, s1 = 0;
        cpu_s(u1, s1);
        double wall = now_s() - t0;
        auto allocs = g_allocs.load(std::memory_order_relaxed) - allocs0;
        double n = static_cast<double>(done - done0);
        double user = u1 - u0, sys = s1 - s0;
        std::printf(
            "mode=%s conns=%d requests=%ld wall_s=%.3f req_per_s=%.0f cpu_us_per_req=%.3f "
            "user_us_per_req=%.3f sys_us_per_req=%.3f allocs_per_req=%.2f "
            "bench_allocs_per_req=%.2f\n",
            mode, conns, done - done0, wall, n / wall, (user + sys) * 1e6 / n, user * 1e6 / n,
            sys * 1e6 / n, static_cast<double>(allocs) / n, bench_allocs);
    }
};

void check(std::error_code ec, const fcgi::response& resp) {
    if (ec)
        fail(ec.message().c_str(), resp.diagnostics);
    if (resp.status != 200 || resp.body != "hello\n")
        fail("unexpected response", resp.body);
}

// Drives the phases: each phase starts every connection's loop and ends when all have stopped.
struct driver {
    asio::io_context& ioc;
    run_state& run;
    int active = 0;

    void loop_stopped() {
        if (--active == 0)
            ioc.stop();
    }
};

// Callback style: the completion handler starts the next request.
struct callback_loop {
    fcgi::connection& conn;
    const fcgi::request& tmpl;
    driver& drv;

    void next() {
        if (drv.run.should_stop()) {
            drv.loop_stopped();
            return;
        }
        ++drv.run.started;
        conn.async_request(tmpl, [this](std::error_code ec, fcgi::response resp) {
            check(ec, resp);
            ++drv.run.done;
            next();
        });
    }
};

asio::awaitable<void> coroutine_loop(fcgi::connection& conn, const fcgi::request& tmpl,
                                     driver& drv) {
    while (!drv.run.should_stop()) {
        ++drv.run.started;
        auto resp = co_await conn.async_request(tmpl, asio::use_awaitable);
        check({}, resp);
        ++drv.run.done;
    }
    drv.loop_stopped();
}

}  // namespace

int main(int argc, char** argv) {
    int nconns = 4;
    bool coroutine = false;
    run_state run;
    const char* path = nullptr;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--coroutine")
            coroutine = true;
        else if (a == "-c" && i + 1 < argc)
            nconns = std::atoi(argv[++i]);
        else if (a == "-n" && i + 1 < argc)
            run.target = std::atol(argv[++i]);
        else if (a == "-t" && i + 1 < argc)
            run.max_s = std::atof(argv[++i]);
        else if (a == "-w" && i + 1 < argc)
            run.warmup = std::atol(argv[++i]);
        else if (!a.starts_with('-') && !path)
            path = argv[i];
        else
            path = nullptr, nconns = 0;
    }
    if (!path || nconns < 1 || run.target < 1 || run.warmup < 0) {
        std::fprintf(stderr,
                     "usage: %s [-c conns] [-n requests] [-t seconds] [-w warmup] [--coroutine] "
                     "socket_path\n",
                     argv[0]);
        return 2;
    }

    // The request of the floor client: 16 CGI defaults plus 4 headers, 20 params. Short values
    // stay within std::string's small buffer, so copying it allocates only the headers vector.
    fcgi::request tmpl;
    tmpl.script = "/srv/hello.php";
    tmpl.headers = {{"Host", "localhost"},
                    {"User-Agent", "asio-fcgi-bench"},
                    {"Accept", "*/*"},
                    {"Accept-Encoding", "gzip"}};
    double bench_allocs = 0;
    {
        auto a0 = g_allocs.load();
        fcgi::request copy = tmpl;
        bench_allocs = static_cast<double>(g_allocs.load() - a0);
    }

    // Hint 1: one thread runs the context, so Asio queues handlers thread-locally and never wakes
    // another thread (it still takes its mutexes).
    asio::io_context ioc(1);
    driver drv{ioc, run};
    std::vector<std::unique_ptr<fcgi::connection>> conns;
    int connected = 0;
    for (int i = 0; i < nconns; ++i) {
        conns.push_back(std::make_unique<fcgi::connection>(ioc.get_executor()));
        conns.back()->async_connect(fcgi::endpoint::unix_socket(path), [&](std::error_code ec) {
            if (ec)
                fail("connect", ec.message());
            if (++connected == nconns)
                ioc.stop();
        });
    }
    ioc.run();

    std::vector<callback_loop> loops;
    loops.reserve(conns.size());
    for (auto& c : conns)
        loops.push_back(callback_loop{*c, tmpl, drv});
    for (int phase = run.warmup > 0 ? 0 : 1; phase < 2; ++phase) {
        if (phase == 1)
            run.begin_measuring();
        ioc.restart();
        drv.active = nconns;
        for (int i = 0; i < nconns; ++i) {
            if (coroutine)
                asio::co_spawn(ioc, coroutine_loop(*conns[i], tmpl, drv), [](std::exception_ptr e) {
                    if (e)
                        std::rethrow_exception(e);
                });
            else
                loops[i].next();
        }
        ioc.run();
    }
    run.report(coroutine ? "asio-fcgi-coro" : "asio-fcgi", nconns, bench_allocs);
    for (auto& c : conns)
        c->close();
    return 0;
}
