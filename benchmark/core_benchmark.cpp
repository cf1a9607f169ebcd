// Per-request cost of the connection core without I/O: what fcgi::connection does for one
// hello-world request apart from the socket calls and the Asio scheduler. The connection is not
// sans-io, so this replays its steps on the detail:: types it uses (src/connection_impl.cpp):
// validate the request, derive the CGI params, encode the records, split the response stream
// into records and assemble the response. Results in docs/benchmarks.md.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "fcgi/detail/cgi_params.hpp"
#include "fcgi/detail/response_assembler.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"
#include "fcgi/protocol/request_encoder.hpp"
#include "fcgi/request.hpp"

namespace {

namespace p = fcgi::protocol;

double min_of(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}

// What `fcgi bench --root /var/www hello.php` sends.
fcgi::request hello_request() {
    fcgi::request r;
    r.script = "/var/www/hello.php";
    r.document_root = "/var/www";
    return r;
}

// What php-fpm 8.2 answers to hello.php: one STDOUT record with the head and body, an empty
// STDOUT record, END_REQUEST.
std::string hello_response_wire() {
    const std::string_view out =
        "X-Powered-By: PHP/8.2.29\r\nContent-type: text/html; charset=UTF-8\r\n\r\n"
        "Hello, world!\n";
    std::string wire;
    char h[p::header_size];
    p::encode_header(p::record_type::stdout_, 1, static_cast<std::uint16_t>(out.size()),
                     std::span<char, p::header_size>(h));
    wire.append(h, sizeof h);
    wire.append(out);
    wire.append(p::padding_for(out.size()), '\0');
    p::encode_header(p::record_type::stdout_, 1, 0, std::span<char, p::header_size>(h));
    wire.append(h, sizeof h);
    auto end = p::encode_end_request(1, {});
    wire.append(end.data(), end.size());
    return wire;
}

// What the connection does to send `req` on a slot: validate, CGI params, records.
std::error_code encode(const fcgi::request& req, fcgi::detail::cgi_params& params,
                       p::request_encoder& enc, std::string& why) {
    auto ec = fcgi::validate(req, why);
    if (!ec)
        params.build(req);
    enc.clear();
    if (!ec)
        ec = enc.encode_request(1, req.role, p::begin_flags::keep_conn, params.params(), req.body);
    return ec;
}

// Request side: validate + CGI params + records, reusing the params and the encoder as a
// connection's slot does.
void BM_core_request(benchmark::State& state) {
    const fcgi::request req = hello_request();
    fcgi::detail::cgi_params params;
    p::request_encoder enc;
    std::string why;
    for (auto _ : state) {
        auto ec = encode(req, params, enc, why);
        auto buffers = enc.buffers();
        benchmark::DoNotOptimize(buffers.data());
        if (ec) {
            state.SkipWithError(why.c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["wire_bytes"] = static_cast<double>(enc.size());
    state.counters["params"] = static_cast<double>(params.params().size());
}
BENCHMARK(BM_core_request)->ComputeStatistics("min", min_of);

// Feeds `wire` through the decoder into the assembler as the connection's read loop does:
// STDOUT to the head parser and body, END_REQUEST finishes the response (`ended`).
std::error_code assemble(p::record_decoder& dec, fcgi::detail::response_assembler& assembler,
                         std::string_view in, bool& ended) {
    std::error_code ec;
    while (!in.empty() && !ec) {
        auto r = dec.feed(in);
        in.remove_prefix(r.consumed);
        ec = r.ec;
        if (!r.has_piece || ec)
            continue;
        if (r.piece.header.type == p::record_type::stdout_) {
            ec = assembler.on_stdout(r.piece.content);
        } else if (r.piece.header.type == p::record_type::end_request) {
            p::end_request_body end;
            ec = p::parse_end_request(r.piece.content, end);
            if (!ec)
                ec = assembler.on_end(end);
            ended = true;
        }
    }
    return ec;
}

// Response side: decode the records of a hello-world answer, route STDOUT through the head
// parser into a response, finish it with END_REQUEST and take it.
void BM_core_response(benchmark::State& state) {
    const std::string wire = hello_response_wire();
    p::record_decoder dec;
    fcgi::detail::response_assembler assembler;
    const fcgi::detail::response_limits limits;
    for (auto _ : state) {
        assembler.reset(limits);
        bool ended = false;
        std::error_code ec = assemble(dec, assembler, wire, ended);
        fcgi::response resp = assembler.take();
        if (ec || !ended || resp.status != 200 || resp.body != "Hello, world!\n") {
            state.SkipWithError("hello-world response not assembled");
            break;
        }
        benchmark::DoNotOptimize(resp.body.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["wire_bytes"] = static_cast<double>(wire.size());
}
BENCHMARK(BM_core_response)->ComputeStatistics("min", min_of);

// Both, plus the copy of the request a benchmark or fan-out makes per request (the connection
// takes its request by value): the CPU the core spends per request outside I/O and scheduling.
void BM_core_request_response(benchmark::State& state) {
    const fcgi::request tmpl = hello_request();
    const std::string wire = hello_response_wire();
    fcgi::detail::cgi_params params;
    p::request_encoder enc;
    p::record_decoder dec;
    fcgi::detail::response_assembler assembler;
    const fcgi::detail::response_limits limits;
    std::string why;
    for (auto _ : state) {
        fcgi::request req = tmpl;
        auto ec = encode(req, params, enc, why);
        benchmark::DoNotOptimize(enc.buffers().data());
        assembler.reset(limits);
        bool ended = false;
        if (!ec)
            ec = assemble(dec, assembler, wire, ended);
        fcgi::response resp = assembler.take();
        if (ec || resp.status != 200) {
            state.SkipWithError("request/response cycle failed");
            break;
        }
        benchmark::DoNotOptimize(resp.body.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_core_request_response)->ComputeStatistics("min", min_of);

}  // namespace

BENCHMARK_MAIN();
