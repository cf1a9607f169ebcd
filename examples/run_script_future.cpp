// Plain synchronous code: the io_context runs on a thread, the caller waits on std::future.
// Usage: run_script_future ENDPOINT /abs/path/script.php
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <fcgi/fcgi.hpp>
#include <iostream>
#include <thread>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT /abs/path/script.php\n";
        return 2;
    }
    asio::io_context ctx;
    auto work = asio::make_work_guard(ctx);
    std::thread io([&] { ctx.run(); });

    int rc = 0;
    try {
        fcgi::connection conn(ctx.get_executor());
        conn.async_connect(fcgi::endpoint::parse(argv[1]), asio::use_future).get();
        fcgi::request req;
        req.script = argv[2];
        // A failed request throws std::system_error from get().
        fcgi::response resp = conn.async_request(std::move(req), asio::use_future).get();
        std::cout << resp.status << ' ' << resp.reason << '\n' << resp.body;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        rc = 1;
    }
    work.reset();
    io.join();
    return rc;
}
