// libFuzzer target: `fcgi bench --fpm-status`'s reader of php-fpm's status page, over any body.
//
// Invariants: nothing escapes it (a page of an unforeseen shape once aborted the tool); a
// failure says why; a parsed sample has 0 <= active processes <= total processes, and the
// run's summary takes it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fcgi/fpm_status.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto check = [](bool ok, const char* what) { fcgi::fuzz::check(ok, "fpm_status", what); };
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    fcgi_cli::fpm_status_sample sample;
    std::string why;
    bool parsed = false;
    try {
        parsed = fcgi_cli::parse_fpm_status(body, "/status?json&full", sample, why);
    } catch (...) {
        check(false, "an exception escaped parse_fpm_status");
    }
    if (!parsed) {
        check(!why.empty(), "a failure without a reason");
        return 0;
    }
    check(sample.active_processes >= 0, "negative active processes");
    check(sample.active_processes <= sample.total_processes, "more active than total processes");
    fcgi_cli::fpm_status_summary summary;
    summary.add(sample);
    summary.add(sample);
    check(summary.polls == 2, "the summary lost a poll");
    return 0;
}
