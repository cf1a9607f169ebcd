// The bench tool's latency histogram: percentiles of known distributions within its precision.
#include "fcgi/latency_histogram.hpp"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>

using fcgi_cli::latency_histogram;
using us = std::chrono::microseconds;

namespace {

// Relative distance of `got` from `want`.
double rel(us got, double want) {
    return std::abs(static_cast<double>(got.count()) - want) / want;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(latency_histogram_suite)

BOOST_AUTO_TEST_CASE(empty_reports_zero) {
    latency_histogram h;
    BOOST_TEST(h.count() == 0u);
    BOOST_TEST(h.percentile(50).count() == 0);
    BOOST_TEST(h.percentile(100).count() == 0);
    BOOST_TEST(h.max().count() == 0);
    BOOST_TEST(h.min().count() == 0);
    BOOST_TEST(h.mean_us() == 0.0);
}

BOOST_AUTO_TEST_CASE(single_value_is_every_percentile) {
    latency_histogram h;
    h.record(us(12345));
    for (double p : {0.0, 1.0, 50.0, 99.9, 100.0})
        BOOST_TEST(h.percentile(p).count() == 12345);  // clamped to [min, max]
    BOOST_TEST(h.max().count() == 12345);
    BOOST_TEST(h.min().count() == 12345);
}

BOOST_AUTO_TEST_CASE(uniform_1_to_1000) {
    latency_histogram h;
    for (int v = 1; v <= 1000; ++v)
        h.record(us(v));
    BOOST_TEST(h.count() == 1000u);
    BOOST_TEST(rel(h.percentile(50), 500) <= 0.01);
    BOOST_TEST(rel(h.percentile(90), 900) <= 0.01);
    BOOST_TEST(rel(h.percentile(99), 990) <= 0.01);
    BOOST_TEST(rel(h.percentile(99.9), 999) <= 0.01);
    BOOST_TEST(h.max().count() == 1000);
    BOOST_TEST(h.percentile(100).count() == 1000);
    BOOST_TEST(h.min().count() == 1);
    BOOST_TEST(h.mean_us() == 500.5);
}

// 99.9 / 100 * 1000 is a hair above 999 in doubles: p99.9 of a thousand samples is the 999th,
// not the one outlier that is the maximum.
BOOST_AUTO_TEST_CASE(p999_of_a_thousand_is_not_the_max) {
    for (std::uint64_t n : {1000u, 10000u, 100000u}) {
        latency_histogram h;
        for (std::uint64_t i = 1; i < n; ++i)
            h.record(us(100));
        h.record(us(100000));
        BOOST_TEST(h.percentile(99.9).count() == 100, n << " samples");
        BOOST_TEST(h.percentile(100).count() == 100000);
    }
}

BOOST_AUTO_TEST_CASE(exact_below_128) {
    latency_histogram h;
    for (int v = 0; v < 128; ++v)
        h.record(us(v));
    for (int v = 1; v < 128; ++v)
        BOOST_TEST(h.percentile(100.0 * (v + 1) / 128.0).count() == v);
}

// Every value from 1 µs to 100 s (sampled) comes back within 1% as its own only sample
// neighbour: the bucket layout's precision, not luck of the distribution.
BOOST_AUTO_TEST_CASE(one_percent_over_the_whole_range) {
    for (double v = 1; v <= 100e6; v *= 1.013) {
        latency_histogram h;
        h.record(us(1));  // a second sample so clamping does not hide the bucket value
        h.record(us(static_cast<std::int64_t>(v)));
        h.record(us(200'000'000));
        auto got = h.percentile(50);
        BOOST_TEST(rel(got, std::floor(v)) <= 0.01, "value " << v << " reported " << got.count());
    }
}

BOOST_AUTO_TEST_CASE(beyond_range_and_negative) {
    latency_histogram h;
    h.record(us(-5));
    h.record(us(500'000'000));  // 500 s: beyond 100 s
    BOOST_TEST(h.min().count() == 0);
    BOOST_TEST(h.max().count() == 500'000'000);  // max stays exact
    BOOST_TEST(h.percentile(50).count() == 0);
    BOOST_TEST(h.percentile(100).count() == 500'000'000);
}

BOOST_AUTO_TEST_CASE(skewed_distribution) {
    // 99% at 1 ms, 1% at 1 s: p99 is 1 ms, p99.9 is 1 s.
    latency_histogram h;
    for (int i = 0; i < 9900; ++i)
        h.record(us(1000));
    for (int i = 0; i < 100; ++i)
        h.record(us(1'000'000));
    BOOST_TEST(rel(h.percentile(50), 1000) <= 0.01);
    BOOST_TEST(rel(h.percentile(99), 1000) <= 0.01);
    BOOST_TEST(rel(h.percentile(99.9), 1e6) <= 0.01);
    BOOST_TEST(h.max().count() == 1'000'000);
}

BOOST_AUTO_TEST_SUITE_END()
