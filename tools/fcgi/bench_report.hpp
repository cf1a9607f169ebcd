// `fcgi bench`: the report of a run, for people or as one JSON object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_command.hpp"
#include "bench_counts.hpp"
#include "bench_setup.hpp"
#include "fpm_status.hpp"

namespace fcgi_cli {

/// What the reports take from the run besides its counts.
struct bench_times {
    double duration_s = 0;  ///< the measured period
    double rps = 0;         ///< responses per second of it
    double drain_s = 0;     ///< how long after it the last response came
    double cpu_s = 0;       ///< the client's CPU seconds over it
    /// From the period's start to the first response counted in it (bench_run::start_gap_s);
    /// -1 when throughput counts every response (a closed loop of --requests).
    double start_gap_s = -1;
};

/// The report for a terminal: what was asked, then one line per figure. `st` may be null
/// (no --fpm-status).
std::string human_report(const bench_flags& f, const bench_setup& setup, const bench_counts& c,
                         const bench_times& t, const fpm_status_summary* st);

/// The report as one JSON object and a newline (docs/cli.md shows one); null where a
/// figure is unknown.
std::string json_report(const bench_flags& f, const bench_setup& setup, const bench_counts& c,
                        const bench_times& t, const fpm_status_summary* st);

/// What in the counts needs a word after the report, one line each for stderr: an interrupt,
/// requests never answered or kept waiting in the client, connections that never received a
/// byte, statuses that suggest a wrong script, connection_lost failures without --recycle-after
/// (`recycle_after`).
std::vector<std::string> count_warnings(const bench_counts& c, const bench_setup& setup,
                                        std::uint64_t recycle_after = 0);

/// A warning when throughput reads low because the period's start had no response to count
/// (a run without --warmup, or with one shorter than a response takes): a twentieth of the
/// period or more before the first response counted. Empty otherwise.
std::string slow_start_warning(const bench_counts& c, const bench_times& t);

}  // namespace fcgi_cli
