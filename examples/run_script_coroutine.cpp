// Runs one PHP script through php-fpm from a C++20 coroutine.
// Usage: run_script_coroutine unix:/run/php/php8.2-fpm.sock /var/www/hello.php
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <fcgi/fcgi.hpp>
#include <iostream>

asio::awaitable<void> run(fcgi::endpoint where, std::string script) {
    fcgi::connection conn(co_await asio::this_coro::executor);
    co_await conn.async_connect(where, asio::use_awaitable);

    fcgi::request req;
    req.script = std::move(script);
    req.query = "name=world";
    fcgi::response resp = co_await conn.async_request(std::move(req), asio::use_awaitable);

    std::cout << resp.status << ' ' << resp.reason << '\n' << resp.body;
    std::cerr << resp.stderr_text;
}

int main(int argc, char** argv) {
    fcgi::endpoint where;
    if (argc != 3 || fcgi::parse_endpoint(argv[1], where)) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT /abs/path/script.php\n"
                  << "ENDPOINT: unix:/path.sock, /path.sock, host:port or [v6addr]:port\n";
        return 2;
    }
    asio::io_context ctx;
    asio::co_spawn(ctx, run(where, argv[2]), [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    try {
        ctx.run();
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << '\n';
        return 1;
    }
}
