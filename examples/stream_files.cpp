// Streams a file up to a PHP script and a large output down, in bounded memory: the upload is
// read in chunks as records go out, the download goes to a file or a consumer as it arrives.
// Usage: stream_files ENDPOINT PHP_DIR [MEGABYTES]
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdio>
#include <cstdlib>
#include <fcgi/fcgi.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

// CRC-32 (as PHP's hash('crc32b')), to check both directions end to end.
std::uint32_t crc32_update(std::uint32_t crc, std::string_view bytes) {
    static const auto table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (char c : bytes)
        crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
    return ~crc;
}

std::string hex(std::uint32_t v) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return buf;
}

asio::awaitable<int> run(fcgi::endpoint where, std::string php_dir, int megabytes) {
    fcgi::connection conn(co_await asio::this_coro::executor);
    co_await conn.async_connect(where, asio::use_awaitable);
    auto dir = std::filesystem::temp_directory_path();
    auto input = dir / ("stream_files_in_" + std::to_string(::getpid()));
    auto output = dir / ("stream_files_out_" + std::to_string(::getpid()));
    // Removed however the coroutine ends: a failed request throws out of it.
    struct remove_on_exit {
        std::filesystem::path a, b;
        ~remove_on_exit() {
            std::error_code ignored;
            std::filesystem::remove(a, ignored);
            std::filesystem::remove(b, ignored);
        }
    } cleanup{input, output};

    // A file to upload, written in 64 KiB pieces.
    std::uint32_t sent_crc = 0;
    {
        std::ofstream f(input, std::ios::binary);
        std::string piece(64 * 1024, '\0');
        for (int i = 0; i < megabytes * 16; ++i) {
            for (std::size_t k = 0; k < piece.size(); ++k)
                piece[k] = static_cast<char>((static_cast<std::size_t>(i) * 7 + k * 13) & 0xff);
            sent_crc = crc32_update(sent_crc, piece);
            f.write(piece.data(), static_cast<std::streamsize>(piece.size()));
        }
    }

    // Up: the file is the body; CONTENT_LENGTH comes from its size.
    fcgi::request up;
    up.script = php_dir + "/checksum.php";
    up.stdin_source = fcgi::body_source::file(input.string());
    auto r1 = co_await conn.async_request(std::move(up), asio::use_awaitable);
    std::uint64_t got_bytes = 0;
    std::string got_crc;
    std::istringstream(r1.body) >> got_bytes >> got_crc;
    std::cout << "uploaded " << got_bytes << " bytes, crc32 " << got_crc
              << (got_crc == hex(sent_crc) ? " (match)" : " (MISMATCH)") << '\n';

    // Down into a file.
    fcgi::request down;
    down.script = php_dir + "/generate.php";
    down.query = "mb=" + std::to_string(megabytes);
    down.stdout_sink = fcgi::body_sink::file(output.string());
    auto r2 = co_await conn.async_request(down, asio::use_awaitable);
    std::cout << "downloaded " << std::filesystem::file_size(output) << " bytes to a file, status "
              << r2.status << '\n';

    // Down into a consumer that checks the body on the fly and keeps none of it.
    std::uint32_t crc = 0;
    down.stdout_sink =
        fcgi::body_sink::consumer([&crc](std::string_view chunk, fcgi::sink_write_handler done) {
            crc = crc32_update(crc, chunk);
            done({});
        });
    auto r3 = co_await conn.async_request(std::move(down), asio::use_awaitable);
    std::string expected(r3.header("X-Crc32").value_or(""));
    std::cout << "streamed crc32 " << hex(crc)
              << (hex(crc) == expected ? " (match)" : " (MISMATCH)") << '\n';

    co_return got_crc == hex(sent_crc) && hex(crc) == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    fcgi::endpoint where;
    if (argc < 3 || fcgi::parse_endpoint(argv[1], where)) {
        std::cerr << "usage: " << argv[0] << " ENDPOINT PHP_DIR [MEGABYTES]\n"
                  << "ENDPOINT: unix:/path.sock, /path.sock, host:port or [v6addr]:port\n";
        return 2;
    }
    int megabytes = argc > 3 ? std::atoi(argv[3]) : 8;
    asio::io_context ctx;
    int code = 1;
    asio::co_spawn(ctx, run(where, argv[2], megabytes), [&](std::exception_ptr e, int rc) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                std::cerr << "error: " << ex.what() << '\n';
            }
        }
        code = e ? 1 : rc;
    });
    ctx.run();
    return code;
}
