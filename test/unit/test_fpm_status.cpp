// `fcgi bench --fpm-status`: parsing php-fpm's `?json&full` status page and the run's maxima.
#include "fcgi/fpm_status.hpp"

#include <boost/test/unit_test.hpp>
#include <string>

using fcgi_cli::fpm_status_sample;
using fcgi_cli::fpm_status_summary;
using fcgi_cli::parse_fpm_status;

namespace {

// A status page shaped as php-fpm 8.2 prints it (fields cut to those that matter), with
// `active` as its racy "active processes" counter and the given process states.
std::string page(int listen_queue, int max_listen_queue, int active,
                 std::initializer_list<std::pair<const char*, const char*>> procs) {
    std::string s = R"({"pool":"www","process manager":"static","listen queue":)" +
                    std::to_string(listen_queue) + R"(,"max listen queue":)" +
                    std::to_string(max_listen_queue) +
                    R"(,"listen queue len":4096,"idle processes":1,"active processes":)" +
                    std::to_string(active) + R"(,"total processes":4,"max active processes":4)";
    if (procs.size() > 0) {
        s += R"(,"processes":[)";
        bool first = true;
        for (auto [state, uri] : procs) {
            s += std::string(first ? "" : ",") + R"({"pid":1,"state":")" + state +
                 R"(","request uri":")" + uri + R"("})";
            first = false;
        }
        s += "]";
    }
    return s + "}";
}

fpm_status_sample sample(int listen_queue, int max_listen_queue, int active = 0) {
    fpm_status_sample s;
    s.listen_queue = listen_queue;
    s.max_listen_queue = max_listen_queue;
    s.active_processes = active;
    s.total_processes = 4;
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fpm_status_suite)

// With the process list, active workers are counted from it (the counter races: php bug
// #76003), leaving out the worker serving the poll itself.
BOOST_AUTO_TEST_CASE(active_processes_come_from_the_process_list) {
    auto body = page(2, 7, 11928,
                     {{"Running", "/status?json&full"},
                      {"Running", "/hello.php"},
                      {"Idle", "/hello.php"},
                      {"Finishing", "/hello.php"}});
    fpm_status_sample s;
    std::string why;
    BOOST_REQUIRE(parse_fpm_status(body, "/status?json&full", s, why));
    BOOST_TEST(s.listen_queue == 2);
    BOOST_TEST(s.max_listen_queue == 7);
    BOOST_TEST(s.active_processes == 2);  // Running /hello.php and Finishing
    BOOST_TEST(s.total_processes == 4);
    BOOST_TEST(s.listen_queue_len == 4096);
    BOOST_TEST(s.process_manager == "static");
}

// php-fpm cannot read a unix socket's queue on Linux: "listen queue len" 0 there, and the
// summary says the queue is unknown rather than 0.
BOOST_AUTO_TEST_CASE(a_unix_socket_has_no_listen_queue) {
    fpm_status_sample s;
    std::string why;
    BOOST_REQUIRE(
        parse_fpm_status(R"({"process manager":"ondemand","listen queue":0,"max listen queue":0,)"
                         R"("listen queue len":0,"active processes":1,"total processes":1})",
                         "/s", s, why));
    BOOST_TEST(s.listen_queue_len == 0);
    BOOST_TEST(s.process_manager == "ondemand");
    fpm_status_summary sum;
    sum.add(sample(0, 0));  // listen_queue_len -1: absent, taken as known
    BOOST_TEST(sum.listen_queue_known);
    sum.add(s);
    BOOST_TEST(!sum.listen_queue_known);
    BOOST_TEST(sum.process_manager == "ondemand");
}

// Without it, the counter is used, clamped to the pool's size.
BOOST_AUTO_TEST_CASE(counter_is_clamped_without_the_process_list) {
    fpm_status_sample s;
    std::string why;
    BOOST_REQUIRE(parse_fpm_status(page(0, 0, 11928, {}), "/status?json&full", s, why));
    BOOST_TEST(s.active_processes == 4);
    BOOST_REQUIRE(parse_fpm_status(page(0, 0, -3, {}), "/status?json&full", s, why));
    BOOST_TEST(s.active_processes == 0);
}

BOOST_AUTO_TEST_CASE(a_page_that_is_not_the_status_page_says_why) {
    fpm_status_sample s;
    std::string why;
    BOOST_TEST(!parse_fpm_status("<html>File not found.</html>", "/s", s, why));
    BOOST_TEST(why.find("not a JSON object") != std::string::npos, why);
    BOOST_TEST(!parse_fpm_status(R"({"listen queue":0})", "/s", s, why));
    BOOST_TEST(why.find("\"max listen queue\"") != std::string::npos, why);
    BOOST_TEST(!parse_fpm_status(R"({"listen queue":"0"})", "/s", s, why));
    BOOST_TEST(why.find("\"listen queue\"") != std::string::npos, why);
}

// A page of another shape (--fpm-status pointing at some other script) fails the poll with a
// reason. A process that is not an object, or a field of the wrong type, once threw out of the
// run's event loop and aborted fcgi bench; a negative total broke std::clamp's precondition.
BOOST_AUTO_TEST_CASE(a_malformed_page_fails_without_throwing) {
    const std::string counters =
        R"({"listen queue":0,"max listen queue":0,"active processes":1,"total processes":)";
    struct shape {
        std::string body;
        const char* why;
    };
    const shape shapes[] = {
        {counters + R"(4,"processes":[1]})", R"("processes" holds number, not a process)"},
        {counters + R"(4,"processes":["Idle"]})", R"("processes" holds string, not a process)"},
        {counters + R"(4,"processes":[null]})", R"("processes" holds null, not a process)"},
        {counters + R"(4,"processes":[[]]})", R"("processes" holds array, not a process)"},
        {counters + R"(4,"processes":[{"state":5}]})", R"("state" is missing or not a string)"},
        {counters + R"(4,"processes":[{"pid":1}]})", R"("state" is missing or not a string)"},
        {counters + R"(4,"processes":[{"state":"Running","request uri":7}]})",
         R"("request uri" is missing or not a string)"},
        {counters + R"(4,"processes":[{"state":"Idle"},{"state":"Running"}]})",
         R"("request uri" is missing or not a string)"},
        {counters + "-1}", R"(a negative "total processes" (-1))"},
        // Past INT64_MAX: nlohmann keeps it unsigned, and it reads back as -1.
        {counters + "18446744073709551615}", R"(a negative "total processes")"},
    };
    for (const auto& s : shapes) {
        BOOST_TEST_CONTEXT(s.body) {
            fpm_status_sample out;
            std::string why;
            bool parsed = true;
            BOOST_CHECK_NO_THROW(parsed = parse_fpm_status(s.body, "/s", out, why));
            BOOST_TEST(!parsed);
            BOOST_TEST(why.find(s.why) != std::string::npos, why);
        }
    }
}

// php-fpm's "max listen queue" counts since php-fpm started: an earlier overloaded run left 7
// in it. A clean run reports what it polled, and the counter only once it rises past 7.
BOOST_AUTO_TEST_CASE(max_listen_queue_counts_this_run_only) {
    fpm_status_summary clean;
    clean.add(sample(0, 7));
    clean.add(sample(1, 7, 3));
    clean.add(sample(0, 7, 4));
    BOOST_TEST(clean.polls == 3u);
    BOOST_TEST(clean.max_listen_queue == 1);
    BOOST_TEST(clean.max_active_processes == 4);

    fpm_status_summary overloaded;
    overloaded.add(sample(0, 7));
    overloaded.add(sample(3, 7));
    overloaded.add(sample(2, 12));  // a queue of 12 between two polls
    BOOST_TEST(overloaded.max_listen_queue == 12);

    fpm_status_summary failing;
    failing.add_failure("status page answered 404");
    failing.add(sample(0, 5));
    BOOST_TEST(failing.failures == 1u);
    BOOST_TEST(failing.last_error == "status page answered 404");
    BOOST_TEST(failing.max_listen_queue == 0);
}

// The poll before the run sizes the pool and sets the baseline: a queue and busy workers it saw
// were other load's, and were reported as the run's maxima.
BOOST_AUTO_TEST_CASE(poll_before_the_run_is_a_baseline_only) {
    fpm_status_summary sum;
    sum.add_before_run(sample(5, 7, 4));
    sum.add(sample(0, 7, 1));  // during the run
    BOOST_TEST(sum.polls == 2u);
    BOOST_TEST(sum.polls_before_run == 1u);
    BOOST_TEST(sum.seen_during_run());
    BOOST_TEST(sum.max_listen_queue == 0);
    BOOST_TEST(sum.max_active_processes == 1);
    sum.add(sample(0, 9, 2));  // php-fpm's counter rose past the baseline: the run's
    BOOST_TEST(sum.max_listen_queue == 9);
}

// The poll after the run: php-fpm's counter counts once it rose past the first poll's, the
// active count stays unknown when no poll answered during the run, and without a first poll
// there is nothing to compare with.
BOOST_AUTO_TEST_CASE(poll_after_the_run_gives_the_queue_only) {
    fpm_status_summary saturated;
    saturated.add(sample(0, 7, 1));
    saturated.polls_before_run = saturated.polls;
    saturated.add_after_run(sample(0, 10, 1));
    BOOST_TEST(saturated.polls == 2u);
    BOOST_TEST(!saturated.seen_during_run());
    BOOST_TEST(saturated.queue_known());
    BOOST_TEST(saturated.max_listen_queue == 10);

    fpm_status_summary quiet;
    quiet.add(sample(0, 7, 1));
    quiet.polls_before_run = quiet.polls;
    quiet.add(sample(2, 7, 3));  // during the run
    quiet.add_after_run(sample(0, 7, 1));
    BOOST_TEST(quiet.seen_during_run());
    BOOST_TEST(quiet.max_listen_queue == 2);
    BOOST_TEST(quiet.max_active_processes == 3);

    fpm_status_summary no_baseline;
    no_baseline.add_failure("request_timeout: ...");
    no_baseline.add_after_run(sample(0, 9, 0));
    BOOST_TEST(!no_baseline.queue_known());
    BOOST_TEST(no_baseline.max_listen_queue == 0);
    BOOST_TEST(!no_baseline.count_stayed_at());
}

namespace {

// A run with a poll before it and one after it, none answered during it.
fpm_status_summary before_and_after(const fpm_status_sample& before,
                                    const fpm_status_sample& after) {
    fpm_status_summary sum;
    sum.add_before_run(before);
    sum.add_after_run(after);
    return sum;
}

}  // namespace

// No poll answered during the run, and php-fpm's count did not rise past an earlier run's 7:
// the queue was not seen (it said 0). php-fpm samples it once a second, so a count that stayed
// at 0 says no more.
BOOST_AUTO_TEST_CASE(a_count_that_did_not_rise_says_the_queue_was_not_seen) {
    auto sum = before_and_after(sample(0, 7, 1), sample(0, 7, 1));
    BOOST_TEST(!sum.queue_known());
    BOOST_REQUIRE(sum.count_stayed_at());
    BOOST_TEST(*sum.count_stayed_at() == 7);
    auto text = fcgi_cli::fpm_status_line(sum);
    BOOST_TEST(text.find("max listen queue not seen (php-fpm's count, sampled once a second, "
                         "stayed at 7)") != std::string::npos,
               text);

    auto from_zero = before_and_after(sample(0, 0, 1), sample(0, 0, 1));
    BOOST_TEST(!from_zero.queue_known());
    BOOST_REQUIRE(from_zero.count_stayed_at());
    BOOST_TEST(*from_zero.count_stayed_at() == 0);
}

// SIGTERM skips the poll after the run, and a poll during it waits without failing: the
// report said the run was shorter than the time between polls.
BOOST_AUTO_TEST_CASE(a_poll_that_waited_until_the_end_is_said) {
    fpm_status_summary sum;
    sum.add_before_run(sample(0, 0, 1));
    sum.poll_waited = true;
    auto text = fcgi_cli::fpm_status_line(sum);
    BOOST_TEST(
        text.find("no poll was answered during or after the run (a poll waited behind "
                  "the load until the run ended, and none followed it)") != std::string::npos,
        text);
    BOOST_TEST(text.find("shorter than") == std::string::npos, text);
}

// php-fpm samples its listen queue once a second: a poll in the run's first second may read a
// sample from before it (an earlier run's closed connections, still in the backlog), which a
// run of one connection on two workers reported as its own queue of 1.
BOOST_AUTO_TEST_CASE(a_queue_sampled_before_the_run_is_not_its) {
    fpm_status_summary sum;
    sum.add_before_run(sample(0, 2, 1));
    sum.add(sample(1, 2, 1), false);  // 0.5 s into the run
    BOOST_TEST(sum.max_listen_queue == 0);
    BOOST_TEST(sum.seen_during_run());  // its active count is the run's
    BOOST_TEST(!sum.queue_known());     // its queue is not: no "max listen queue 0"
    auto text = fcgi_cli::fpm_status_line(sum);
    BOOST_TEST(
        text.find("max listen queue unknown, max active processes 1 of") != std::string::npos,
        text);
    sum.add(sample(1, 2, 1));  // later: php-fpm sampled it during the run
    BOOST_TEST(sum.queue_known());
    BOOST_TEST(sum.max_listen_queue == 1);
}

// A run whose connections held every worker of a static pool polls nothing during it: the
// report says so rather than blame the polls' wait or the run's length.
BOOST_AUTO_TEST_CASE(polls_skipped_during_the_run_are_said) {
    fpm_status_sample pool = sample(0, 0, 1);
    pool.process_manager = "static";
    pool.total_processes = 4;
    fpm_status_summary sum;
    sum.add_before_run(pool);
    BOOST_TEST(fcgi_cli::holds_every_worker(sum, 4));
    BOOST_TEST(fcgi_cli::holds_every_worker(sum, 5));
    BOOST_TEST(!fcgi_cli::holds_every_worker(sum, 3));
    sum.polls_skipped = 3;
    auto text = fcgi_cli::fpm_status_line(sum);  // SIGTERM: no poll after the run either
    BOOST_TEST(text.find("no poll was answered during or after the run (none was made during "
                         "it: its connections held every worker)\n") != std::string::npos,
               text);
    fpm_status_summary failed_after = sum;  // the poll after the run failed: said too
    failed_after.add_failure("request_timeout: no answer");
    text = fcgi_cli::fpm_status_line(failed_after);
    BOOST_TEST(
        text.find("held every worker), 1 failed (request_timeout: no answer)") != std::string::npos,
        text);
    sum.add_after_run(sample(0, 2, 1));
    text = fcgi_cli::fpm_status_line(sum);
    BOOST_TEST(text.find("max listen queue 2, max active processes unknown (not polled during "
                         "the run: its connections held every worker)") != std::string::npos,
               text);

    fpm_status_sample dynamic = pool;
    dynamic.process_manager = "dynamic";  // starts more workers as connections come
    fpm_status_summary grows;
    grows.add_before_run(dynamic);
    BOOST_TEST(!fcgi_cli::holds_every_worker(grows, 8));
    BOOST_TEST(!fcgi_cli::holds_every_worker(fpm_status_summary{}, 8));  // no poll answered
}

// A poll that waited in the backlog may be in php-fpm's count, not in a polled queue (a poll
// is answered once a worker has taken it out of the backlog).
BOOST_AUTO_TEST_CASE(a_waiting_poll_is_named_when_the_count_is_used) {
    auto counted = before_and_after(sample(0, 1, 1), sample(0, 3, 1));
    BOOST_TEST(!counted.queue_may_include_poll());
    counted.poll_waited = true;
    BOOST_TEST(counted.queue_from_count());
    BOOST_TEST(counted.queue_may_include_poll());
    auto text = fcgi_cli::fpm_status_line(counted);
    BOOST_TEST(text.find("max listen queue 3 (one of them may be the status poll's own "
                         "connection") != std::string::npos,
               text);

    fpm_status_summary polled;
    polled.add_before_run(sample(0, 9, 1));
    polled.add(sample(2, 9, 2));
    polled.poll_waited = true;
    BOOST_TEST(!polled.queue_from_count());
    BOOST_TEST(!polled.queue_may_include_poll());
    text = fcgi_cli::fpm_status_line(polled);
    BOOST_TEST(text.find("max listen queue 2, max active") != std::string::npos, text);
}

// On a unix socket php-fpm cannot tell its listen queue: an answered poll after the run is still
// an answer, and the report must not say there was none (the JSON counted it).
BOOST_AUTO_TEST_CASE(report_counts_the_poll_after_the_run_on_a_unix_socket) {
    fpm_status_summary after;
    after.add(sample(0, 0, 1));
    after.polls_before_run = after.polls;
    after.add_failure("request_timeout: waited behind the load");
    after.add_after_run(sample(0, 0, 1));
    after.listen_queue_known = false;
    auto text = fcgi_cli::fpm_status_line(after);
    BOOST_TEST(text.find("no poll was answered") == std::string::npos, text);
    BOOST_TEST(text.find("fpm status:  max listen queue n/a") != std::string::npos, text);
    BOOST_TEST(text.find("2 polls, 1 failed") != std::string::npos, text);

    fpm_status_summary before_only;
    before_only.add(sample(0, 0, 1));
    before_only.polls_before_run = before_only.polls;
    before_only.add_failure("request_timeout: waited behind the load");
    before_only.listen_queue_known = false;
    text = fcgi_cli::fpm_status_line(before_only);
    BOOST_TEST(text.find("fpm status:  unknown: no poll was answered during or after the run, 1 "
                         "failed") != std::string::npos,
               text);
}

BOOST_AUTO_TEST_SUITE_END()
