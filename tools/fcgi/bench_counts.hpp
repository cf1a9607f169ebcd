// `fcgi bench`: what a run counts, for its reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "latency_histogram.hpp"

namespace fcgi_cli {

/// Everything a run counts. Only requests intended to start after the warmup are counted.
struct bench_counts {
    std::uint64_t sent = 0;
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t unanswered = 0;
    // Connections with a request out and not one byte back when the run ended: beyond
    // pm.max_children, php-fpm leaves them in its listen backlog.
    std::size_t unserved_connections = 0;
    std::map<std::string, std::uint64_t, std::less<>> errors;
    // The first failure of each name, in words: a run where every request fails should say
    // why ("cannot connect: No such file or directory"), not only how often.
    std::map<std::string, std::string, std::less<>> first_error;
    std::map<int, std::uint64_t> status;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    latency_histogram latency;  // responses only: a failure's time says nothing of the server
    bool interrupted = false;   // SIGINT or SIGTERM ended the run before its end
    int signal = 0;             // which one
    // Responses to requests written twice: the first connection closed under them (a worker
    // recycled or died), so the pool sent them again; a crash rate hides here.
    std::uint64_t resent = 0;
    // Failures of requests written twice: counted in `failed` too.
    std::uint64_t resent_failed = 0;
    // Open loop: requests that found every connection busy and waited in the client, their
    // latency including that wait (the pace asks more than --concurrency can carry).
    std::uint64_t waited_in_client = 0;
    // Of the never-answered, those that never left the client (queued for a connection).
    std::uint64_t unsent = 0;
    // Open loop: requests due in the measured period that the client never sent, being behind
    // the pace when the period ended (it cannot send at the --rate asked).
    std::uint64_t behind_schedule = 0;
    // Responses that came within the measured period (a warmup request's too): throughput.
    std::uint64_t ok_in_period = 0;
    // Responses with status 400 or more, 500 or more.
    std::uint64_t status_4xx_5xx = 0, status_5xx = 0;
};

}  // namespace fcgi_cli
