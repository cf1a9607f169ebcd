// Builds against the installed headers and library; prints what it parsed.
#include <asio/io_context.hpp>
#include <fcgi/fcgi.hpp>
#include <iostream>

int main() {
    asio::io_context ctx;
    fcgi::client_options opts;
    opts.endpoints = {fcgi::endpoint::parse("unix:/run/php/php8.2-fpm.sock")};
    fcgi::client client(ctx.get_executor(), opts);
    std::cout << opts.endpoints[0].to_string() << '\n';
}
