// Five ways to stop waiting for PHP scripts: a request deadline, a timer raced with `||`, a
// cancellation slot, a whole fan-out raced with a timer, and client::stop(). Each runs
// sleep.php for longer than we wait.
// Usage: timeouts_cancellation ENDPOINT PHP_DIR   (PHP_DIR holds examples/demo/php)
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <fcgi/fcgi.hpp>
#include <iostream>
#include <vector>

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

fcgi::request sleep_for(const std::string& php_dir, std::chrono::milliseconds ms) {
    fcgi::request req;
    req.script = php_dir + "/sleep.php";
    req.query = "ms=" + std::to_string(ms.count());
    return req;
}

// Callbacks tell the coroutine they ran: a steady_timer that never expires, cancelled by each.
struct completions {
    asio::steady_timer timer;
    int left;
    void one_done() {
        --left;
        timer.cancel();
    }
    asio::awaitable<void> wait() {
        while (left > 0)
            co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
};

// Awaits the request and returns its error instead of throwing it.
asio::awaitable<std::error_code> outcome(fcgi::client& client, fcgi::request req) {
    auto [ec, resp] = co_await client.async_request(
        std::move(req), asio::experimental::as_tuple(asio::use_awaitable));
    co_return ec;
}

asio::awaitable<int> run(fcgi::client& client, std::string php_dir) {
    int failures = 0;
    auto expect = [&](const char* what, std::error_code got, std::error_code want) {
        std::cout << what << ": " << got.message() << '\n';
        failures += got != want;
    };

    // 1. A deadline on the request: request_timeout. php-fpm cannot abort a script, so the
    //    client closes that connection; the worker finishes the script on its own.
    fcgi::request slow = sleep_for(php_dir, 2000ms);
    slow.timeout = 200ms;
    expect("deadline", co_await outcome(client, std::move(slow)), fcgi::error::request_timeout);

    // 2. Race the request against a timer: the loser is cancelled (operation_aborted).
    asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
    auto winner = co_await (client.async_request(sleep_for(php_dir, 2000ms), asio::use_awaitable) ||
                            timer.async_wait(asio::use_awaitable));
    std::cout << "race: " << (winner.index() == 0 ? "the request" : "the timer") << " won\n";
    failures += winner.index() != 1;

    // 3. A cancellation slot bound to a callback: emit the signal to give up (after 100 ms).
    auto ex = co_await asio::this_coro::executor;
    asio::cancellation_signal stop;
    std::error_code slot_ec;
    completions slot_done{asio::steady_timer(ex, asio::steady_timer::time_point::max()), 1};
    client.async_request(
        sleep_for(php_dir, 2000ms),
        asio::bind_cancellation_slot(stop.slot(), [&](std::error_code ec, fcgi::response) {
            slot_ec = ec;
            slot_done.one_done();
        }));
    timer.expires_after(100ms);
    co_await timer.async_wait(asio::use_awaitable);
    stop.emit(asio::cancellation_type::terminal);
    co_await slot_done.wait();
    expect("cancellation slot", slot_ec, asio::error::operation_aborted);

    // The pool still serves: a fast request on a fresh connection.
    expect("after all that", co_await outcome(client, sleep_for(php_dir, 10ms)), {});

    // 4. A batch raced against a timer: the fan-out is cancelled, requests not yet sent and
    //    those in flight alike, and the rest of the client is untouched.
    std::vector<fcgi::request> batch(4, sleep_for(php_dir, 2000ms));
    timer.expires_after(300ms);
    auto batch_winner =
        co_await (fcgi::async_fanout(client, std::move(batch), 2, asio::use_awaitable) ||
                  timer.async_wait(asio::use_awaitable));
    std::cout << "fan-out race: " << (batch_winner.index() == 0 ? "the batch" : "the timer")
              << " won\n";
    failures += batch_winner.index() != 1;

    // 5. client.stop(): everything queued or in flight fails with client_stopped, and the
    //    client takes no more requests.
    std::error_code ecs[2];
    completions both{asio::steady_timer(ex, asio::steady_timer::time_point::max()), 2};
    for (auto& e : ecs)
        client.async_request(sleep_for(php_dir, 2000ms), [&](std::error_code ec, fcgi::response) {
            e = ec;
            both.one_done();
        });
    timer.expires_after(100ms);
    co_await timer.async_wait(asio::use_awaitable);
    client.stop();
    co_await both.wait();
    expect("client.stop() #1", ecs[0], fcgi::error::client_stopped);
    expect("client.stop() #2", ecs[1], fcgi::error::client_stopped);
    co_return failures;
}

}  // namespace

int main(int argc, char** argv) {
    fcgi::endpoint where;
    if (argc != 3 || fcgi::parse_endpoint(argv[1], where)) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT PHP_DIR\n"
                  << "ENDPOINT: unix:/path.sock, /path.sock, host:port or [v6addr]:port\n";
        return 2;
    }
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {where};
    opts.max_connections_per_endpoint = 4;  // = pm.max_children of examples/demo/php-fpm.conf.in
    fcgi::client client(ctx.get_executor(), opts);

    int failures = -1;
    asio::co_spawn(ctx, run(client, argv[2]), [&](std::exception_ptr e, int n) {
        if (e)
            std::rethrow_exception(e);
        failures = n;
    });
    ctx.run();
    std::cout << (failures == 0 ? "every wait ended as expected" : "UNEXPECTED outcome") << '\n';
    return failures == 0 ? 0 : 1;
}
