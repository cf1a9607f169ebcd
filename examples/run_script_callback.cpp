// Completion callbacks, with a deadline and the error's diagnostics.
// Usage: run_script_callback ENDPOINT /abs/path/script.php
#include <asio/io_context.hpp>
#include <fcgi/fcgi.hpp>
#include <iostream>

int main(int argc, char** argv) {
    fcgi::endpoint where;
    if (argc != 3 || fcgi::parse_endpoint(argv[1], where)) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT /abs/path/script.php\n"
                  << "ENDPOINT: unix:/path.sock, /path.sock, host:port or [v6addr]:port\n";
        return 2;
    }
    asio::io_context ctx;
    fcgi::connection conn(ctx.get_executor());
    int rc = 1;
    conn.async_connect(where, [&](std::error_code ec) {
        if (ec) {
            std::cerr << "connect: " << ec.message() << '\n';
            return;
        }
        fcgi::request req;
        req.script = argv[2];
        req.timeout = std::chrono::seconds(10);
        conn.async_request(std::move(req), [&](std::error_code ec2, fcgi::response resp) {
            conn.close();  // the kept-alive connection would keep ctx.run() going
            if (ec2) {
                std::cerr << "request: " << ec2.message() << " (" << resp.diagnostics << ")\n";
                return;
            }
            std::cout << resp.status << ' ' << resp.reason << '\n' << resp.body;
            rc = 0;
        });
    });
    ctx.run();
    return rc;
}
