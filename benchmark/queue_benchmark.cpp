// Time fcgi::client takes to take N queued requests out of its wait queue when their callers
// cancel them. One endpoint, max_connections_per_endpoint = 1, and that connection busy for
// good: the server (a unix listener here) accepts it and never reads or answers, so the first
// request holds it and the N after it wait. Each has a cancellation_signal of its own; the
// timed part emits terminal cancellation for all N, newest first (removal from the back, which
// cost a scan of the whole queue per request before 5ea8e08: O(n^2)) or oldest first (removal
// from the front, cheap either way: the control), and runs the io_context until all N
// handlers have completed with operation_aborted. Queuing, connecting and teardown are not
// timed (manual time). items_per_second is cancelled requests per second. Results in
// docs/benchmarks.md.
//
// Every run is bounded: a run that has not completed all N within 60 s is reported as an
// error saying how many did, rather than left to go on for hours.
//
// Run: queue_benchmark [--benchmark_repetitions=3]; the socket goes in a temp dir under
// $TMPDIR (/tmp).
#include <unistd.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <benchmark/benchmark.h>

#include "fcgi/client.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/error.hpp"

namespace {

using std::chrono::steady_clock;

// The timed part of one run; -DQUEUE_BENCHMARK_CAP_S=5 tries the cap on the quadratic queue.
#ifndef QUEUE_BENCHMARK_CAP_S
#define QUEUE_BENCHMARK_CAP_S 60
#endif
constexpr auto cap = std::chrono::seconds(QUEUE_BENCHMARK_CAP_S);
constexpr auto setup_cap = std::chrono::seconds(60);  // queuing and teardown, each
// Cancellations emitted at a time before the io_context runs them. Asio's reactor (and so the
// guard timer below) gets a turn only once per pass over the ready handlers: with all N posted
// at once, a run stuck behind O(n) removals would not notice its cap until every one was done.
constexpr std::size_t chunk = 1000;

// A unix listener that accepts a connection and never reads from it nor writes to it: the
// client's request sits in the socket buffer and its connection stays busy until closed.
class silent_server {
  public:
    explicit silent_server(asio::io_context& ioc) : acceptor_(ioc), peer_(ioc) {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/fcgi-queue-XXXXXX";
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        path_ = dir_ + "/silent.sock";
        acceptor_ = asio::local::stream_protocol::acceptor(ioc, path_);
        acceptor_.async_accept(peer_, [this](std::error_code ec) { accepted_ = !ec; });
    }
    ~silent_server() {
        std::error_code ignored;
        peer_.close(ignored);
        acceptor_.close(ignored);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    silent_server(const silent_server&) = delete;
    silent_server& operator=(const silent_server&) = delete;

    const std::string& path() const { return path_; }
    // True once the client's connection was accepted (by the io_context's run).
    bool accepted() const { return accepted_; }

  private:
    std::string dir_, path_;
    asio::local::stream_protocol::acceptor acceptor_;
    asio::local::stream_protocol::socket peer_;
    bool accepted_ = false;
};

// Runs handlers until `done()` holds or `limit` passes; returns `done()`. For the untimed
// parts: run_one_for wakes every 10 ms to look again even when no handler comes (the client's
// stats change without one). A bare run() or run_one() would wait for good: the busy
// connection is work that never ends.
template <class Done>
bool run_until(asio::io_context& ioc, steady_clock::duration limit, Done done) {
    const auto deadline = steady_clock::now() + limit;
    while (!done() && !ioc.stopped() && steady_clock::now() < deadline)
        ioc.run_one_for(std::chrono::milliseconds(10));
    return done();
}

enum class order { newest_first, oldest_first };

// Completions seen by the queued requests' handlers.
struct tally {
    std::size_t aborted = 0;  // operation_aborted, as documented for a queued request
    std::size_t other = 0;    // anything else: a wrong result
};

// One iteration: a fresh io_context, server and client, so nothing is left between them.
// Returns an error text, empty on success; `seconds` is the timed part.
std::string run_once(std::size_t n, order how, double& seconds) {
    // Declared first, destroyed last: the slots hold the client's cancellers.
    std::unique_ptr<asio::cancellation_signal[]> signals(new asio::cancellation_signal[n]);
    asio::io_context ioc(1);
    silent_server server(ioc);

    fcgi::client_options options;
    options.endpoints.push_back(fcgi::endpoint::unix_socket(server.path()));
    options.max_connections_per_endpoint = 1;
    options.max_pending = n;
    options.backlog_relief = std::chrono::milliseconds(0);  // nothing idle to close anyway
    options.idle_timeout = std::chrono::milliseconds(0);
    std::optional<fcgi::client> client(std::in_place, ioc.get_executor(), options);

    fcgi::request req;
    req.script = "/srv/never.php";  // no deadline: only the cancellations end them

    bool first_done = false;
    std::error_code first_ec;
    client->async_request(req, [&](std::error_code ec, fcgi::response) {
        first_done = true;
        first_ec = ec;
    });
    tally t;
    for (std::size_t i = 0; i < n; ++i)
        client->async_request(
            req, asio::bind_cancellation_slot(
                     signals[i].slot(), [&t](std::error_code ec, fcgi::response) {
                         ++(ec == asio::error::operation_aborted ? t.aborted : t.other);
                     }));

    // Untimed: the connection is made, the first request handed to it, the others queued.
    bool ready = run_until(ioc, setup_cap, [&] {
        if (!server.accepted())
            return false;
        auto s = client->stats();
        return s.queued == n && s.endpoints.at(0).in_flight == 1;
    });
    std::string error;
    if (!ready)
        error = "setup: " + std::to_string(client->stats().queued) + " of " + std::to_string(n) +
                " queued in " + std::to_string(setup_cap.count()) + " s";
    else if (first_done || t.aborted + t.other > 0 || client->stats().rejected > 0)
        error = "setup: a request completed before it was cancelled";

    if (error.empty()) {
        // Timed: bounded by a guard timer rather than run_one_for(), which reads the clock
        // twice per handler. The timer's handler needs no clock of ours and always comes, so
        // run_one() cannot wait for good.
        asio::steady_timer guard(ioc, cap);
        auto expired = std::make_shared<bool>(false);
        guard.async_wait([expired](std::error_code ec) { *expired = !ec; });
        const auto t0 = steady_clock::now();
        for (std::size_t emitted = 0; emitted < n && !*expired;) {
            const std::size_t end = std::min(n, emitted + chunk);
            for (; emitted < end; ++emitted)
                signals[how == order::newest_first ? n - 1 - emitted : emitted].emit(
                    asio::cancellation_type::terminal);
            while (t.aborted + t.other < end && !*expired)
                ioc.run_one();
        }
        seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
        guard.cancel();
        if (t.aborted + t.other < n)
            error = "did not finish in " + std::to_string(cap.count()) +
                    " s: " + std::to_string(t.aborted + t.other) + " of " + std::to_string(n) +
                    " cancelled";
        else if (t.other > 0)
            error = std::to_string(t.other) +
                    " completed with another error than "
                    "operation_aborted";
        else if (first_done)
            error = "the request on the connection completed";
    }

    // Teardown, bounded: stop fails what is left with client_stopped, the connection closes;
    // then the io_context must run out of work (no handler of this run left behind).
    asio::post(ioc, [&] { client->stop(); });
    const auto also = [&error](const char* what) {
        error += (error.empty() ? "" : "; ") + std::string(what);
    };
    if (!run_until(ioc, setup_cap, [&] { return first_done && t.aborted + t.other == n; }))
        also("teardown: handlers left after stop()");
    else if (first_ec != fcgi::error::client_stopped)
        also("teardown: the request on the connection did not end with client_stopped");
    client.reset();
    ioc.run_for(setup_cap);
    if (!ioc.stopped())
        also("teardown: the io_context still has work");
    return error;
}

void queue_removal(benchmark::State& state, order how) {
    const auto n = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        double seconds = 0;
        std::string error = run_once(n, how, seconds);
        if (!error.empty()) {
            state.SkipWithError(error.c_str());
            break;
        }
        state.SetIterationTime(seconds);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_cancel_newest_first(benchmark::State& state) {
    queue_removal(state, order::newest_first);
}
void BM_cancel_oldest_first(benchmark::State& state) {
    queue_removal(state, order::oldest_first);
}

// Fixed iterations: each one queues N requests anew, which costs more than the timed part.
#define QUEUE_BENCHMARK(fn)                                                                    \
    BENCHMARK(fn)->Arg(1000)->Iterations(20)->UseManualTime()->Unit(benchmark::kMillisecond);  \
    BENCHMARK(fn)->Arg(10000)->Iterations(10)->UseManualTime()->Unit(benchmark::kMillisecond); \
    BENCHMARK(fn)->Arg(100000)->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond)
QUEUE_BENCHMARK(BM_cancel_newest_first);
QUEUE_BENCHMARK(BM_cancel_oldest_first);

}  // namespace

BENCHMARK_MAIN();
