// Builds against the installed headers and library; prints what it parsed.
#include <asio/io_context.hpp>
#include <fcgi/fcgi.hpp>
#include <iostream>

// The library is built with ASIO_NO_DEPRECATED; its users' code need not be.
#ifdef ASIO_NO_DEPRECATED
#error "fcgi::fcgi imposes ASIO_NO_DEPRECATED on its users"
#endif

int main() {
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse("unix:/run/php/php8.2-fpm.sock")};
    fcgi::client client(ctx.get_executor(), opts);
    std::cout << opts.endpoints[0].to_string() << '\n';
}
