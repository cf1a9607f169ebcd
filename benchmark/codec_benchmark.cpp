// Codec micro-benchmarks: what the protocol layer costs per request and per byte, with no I/O.
// Results and the command that produced them are in docs/benchmarks.md.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "fcgi/protocol/request_encoder.hpp"

namespace {

namespace p = fcgi::protocol;

// The fastest repetition: on a shared machine the mean mostly measures the neighbours.
double min_of(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}

// The environment a web server typically passes for a GET of a PHP page.
const p::name_value typical_params[] = {
    {"SCRIPT_FILENAME", "/var/www/html/index.php"},
    {"SCRIPT_NAME", "/index.php"},
    {"DOCUMENT_ROOT", "/var/www/html"},
    {"REQUEST_METHOD", "GET"},
    {"REQUEST_URI", "/index.php?page=42&sort=desc"},
    {"QUERY_STRING", "page=42&sort=desc"},
    {"CONTENT_TYPE", ""},
    {"CONTENT_LENGTH", "0"},
    {"SERVER_PROTOCOL", "HTTP/1.1"},
    {"GATEWAY_INTERFACE", "CGI/1.1"},
    {"SERVER_SOFTWARE", "asio-fcgi/0.1"},
    {"REMOTE_ADDR", "192.168.10.23"},
    {"REMOTE_PORT", "53122"},
    {"SERVER_ADDR", "192.168.10.1"},
    {"SERVER_PORT", "443"},
    {"SERVER_NAME", "www.example.com"},
    {"HTTPS", "on"},
    {"HTTP_HOST", "www.example.com"},
    {"HTTP_USER_AGENT",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
     "Safari/537.36"},
    {"HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
};
static_assert(std::size(typical_params) == 20);

void BM_encode_request(benchmark::State& state) {
    p::request_encoder enc;
    std::size_t bytes = 0;
    for (auto _ : state) {
        enc.clear();
        auto ec = enc.encode_request(1, p::role::responder, p::begin_flags::keep_conn,
                                     typical_params, {});
        auto buffers = enc.buffers();  // what a write would ask for
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(buffers.data());
        bytes += enc.size();
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["wire_bytes"] = static_cast<double>(enc.size());
}
BENCHMARK(BM_encode_request)->ComputeStatistics("min", min_of);

// 10 MB of STDOUT in records of `record_size` bytes, then END_REQUEST.
std::string make_stdout_stream(std::size_t total, std::size_t record_size) {
    std::string wire;
    wire.reserve(total + total / record_size * 16 + 64);
    std::string chunk(record_size, 'x');
    for (std::size_t i = 0; i < record_size; ++i)
        chunk[i] = static_cast<char>('a' + i % 26);
    for (std::size_t off = 0; off < total; off += record_size) {
        std::size_t n = std::min(record_size, total - off);
        char h[p::header_size];
        p::encode_header(p::record_type::stdout_, 1, static_cast<std::uint16_t>(n),
                         std::span<char, p::header_size>(h));
        wire.append(h, sizeof h);
        wire.append(chunk.data(), n);
        wire.append(p::padding_for(n), '\0');
    }
    auto end = p::encode_end_request(1, {});
    wire.append(end.data(), end.size());
    return wire;
}

void BM_decode_stdout(benchmark::State& state) {
    constexpr std::size_t total = 10 * 1000 * 1000;
    constexpr std::size_t read_size = 64 * 1024;  // what one socket read typically returns
    const auto record_size = static_cast<std::size_t>(state.range(0));
    const std::string wire = make_stdout_stream(total, record_size);
    p::record_decoder dec;
    for (auto _ : state) {
        dec.reset();
        std::size_t content = 0;
        bool ended = false;
        for (std::size_t off = 0; off < wire.size(); off += read_size) {
            std::string_view in = std::string_view(wire).substr(off, read_size);
            while (!in.empty()) {
                auto r = dec.feed(in);
                in.remove_prefix(r.consumed);
                if (r.has_piece) {
                    // A client appends the view to its body; here only its size is kept.
                    benchmark::DoNotOptimize(r.piece.content.data());
                    content += r.piece.content.size();
                    ended |= r.piece.header.type == p::record_type::end_request;
                }
            }
        }
        if (content != total + 8 || !ended) {
            state.SkipWithError("decoded stream does not match");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * total));
    state.counters["records"] = static_cast<double>((total + record_size - 1) / record_size);
}
BENCHMARK(BM_decode_stdout)
    ->Arg(8 * 1024)
    ->Arg(65528)
    ->Unit(benchmark::kMicrosecond)
    ->ComputeStatistics("min", min_of);

// A typical PHP response head (session start, no-cache headers) and the start of its body.
const std::string typical_head =
    "X-Powered-By: PHP/8.2.7\r\n"
    "Set-Cookie: PHPSESSID=3c6e0b8a9c15224a8228b9a98ca1531d; path=/; HttpOnly\r\n"
    "Expires: Thu, 19 Nov 1981 08:52:00 GMT\r\n"
    "Cache-Control: no-store, no-cache, must-revalidate\r\n"
    "Pragma: no-cache\r\n"
    "Content-type: text/html; charset=UTF-8\r\n"
    "\r\n"
    "<!DOCTYPE html>\n<html><head><title>Example</title></head><body>";

void BM_head_parser(benchmark::State& state) {
    p::cgi_head_parser parser;
    std::size_t head_bytes = 0;
    for (auto _ : state) {
        parser.reset();
        auto r = parser.feed(typical_head);
        benchmark::DoNotOptimize(r);
        if (!r.done) {
            state.SkipWithError("head not parsed");
            break;
        }
        head_bytes += r.consumed;
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<std::int64_t>(head_bytes));
}
BENCHMARK(BM_head_parser)->ComputeStatistics("min", min_of);

}  // namespace

BENCHMARK_MAIN();
