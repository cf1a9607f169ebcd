// libFuzzer target: the CGI response head parser over any STDOUT bytes, cut into pieces.
//
// Invariants: feed() consumes at most its piece and, until the head ends, all of it; once done,
// the status is in 100..999 and the reason is set; the outcome (status, reason, headers, where
// the body starts, error) does not depend on how STDOUT was cut into records; reset() makes the
// parser reusable.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/cgi_head_parser.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace fcgi::protocol;

void check(bool ok, const char* what) {
    fcgi::fuzz::check(ok, "cgi_head", what);
}

struct outcome {
    bool done = false;
    std::error_code ec;
    std::size_t head_size = 0;  // bytes of STDOUT that were head
    int status = 0;
    std::string reason;
    std::vector<header_field> headers;
    friend bool operator==(const outcome&, const outcome&) = default;
};

outcome run(cgi_head_parser& p, std::string_view in, std::size_t step, std::size_t first_cut) {
    outcome out;
    std::vector<std::string> pieces;
    if (first_cut != 0 && first_cut < in.size()) {
        pieces.emplace_back(in.substr(0, first_cut));
        in.remove_prefix(first_cut);
    }
    while (!in.empty()) {
        std::size_t n = step == 0 ? in.size() : std::min(step, in.size());
        pieces.emplace_back(in.substr(0, n));
        in.remove_prefix(n);
    }
    for (const auto& piece : pieces) {
        auto r = p.feed(piece);
        check(r.consumed <= piece.size(), "consumed <= piece size");
        check(!(r.done && r.ec), "done and failed at once");
        out.head_size += r.consumed;
        if (r.ec || r.done) {
            out.ec = r.ec;
            out.done = r.done;
            break;
        }
        check(r.consumed == piece.size(), "the whole piece is head until the blank line");
    }
    if (!out.done && !out.ec) {
        auto r = p.finish();  // STDOUT ended before the blank line
        check(r.consumed == 0, "finish() consumes nothing");
        out.done = r.done;
        out.ec = r.ec;
    }
    check(out.done == p.done(), "done() agrees");
    if (out.done) {
        check(p.status() >= 100 && p.status() <= 999, "status in 100..999");
        out.status = p.status();
        out.reason = p.reason();
        out.headers = p.headers();
        for (const auto& h : out.headers) {
            check(!h.name.empty(), "header names are not empty");
            check(h.name.find_first_of(":\r\n") == std::string::npos, "header name is a token");
            check(h.value.find('\n') == std::string::npos, "header value is one line");
        }
        // After done, everything is body: a later feed consumes nothing.
        auto r = p.feed("more");
        check(r.done && r.consumed == 0 && !r.ec, "done is final");
    } else {
        check(out.ec.operator bool(), "either done or failed");
        auto r = p.feed("more");
        check(r.ec == out.ec && r.consumed == 0, "errors are sticky");
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    std::size_t step = size == 0 ? 1 : data[0] % 7 + 1;

    // The default limit, and a small one taken from the input so the limit paths are reached.
    std::size_t small_limit = size == 0 ? 16 : 16 + data[0] % 64;
    for (std::size_t limit : {cgi_head_parser::default_max_size, small_limit}) {
        cgi_head_parser p(limit);
        outcome whole = run(p, in, 0, 0);
        check(whole.head_size <= std::min(size, limit), "head within the limit");
        p.reset();
        check(run(p, in, 0, cut) == whole, "same head when split in two");
        p.reset();
        check(run(p, in, step, 0) == whole, "same head in small steps");
        if (size <= 2048) {
            cgi_head_parser q(limit);
            check(run(q, in, 1, 0) == whole, "same head byte by byte");
        }
    }
    return 0;
}
