#include "fpm_status_poller.hpp"

#include <utility>

#include "error_names.hpp"

namespace fcgi_cli {
namespace {

fcgi::client_options poller_options(fcgi::endpoint where) {
    fcgi::client_options o;
    o.endpoints.push_back(std::move(where));
    o.max_connections_per_endpoint = 1;
    o.max_pending = 1;
    o.idle_timeout = std::chrono::milliseconds(1);  // frees the worker right after each poll
    o.connection.connect_timeout = std::chrono::milliseconds(1000);
    return o;
}

}  // namespace

fpm_status_poller::fpm_status_poller(asio::any_io_executor ex, fcgi::endpoint where,
                                     std::string path)
    : ex_(ex), where_(std::move(where)), timer_(ex), path_(std::move(path)) {
    make_client();
}

fcgi::client& fpm_status_poller::make_client() {
    return client_.emplace(ex_, poller_options(where_));  // the old one, if any, goes first
}

void fpm_status_poller::poll_once(std::function<void()> done) {
    poll(std::move(done));
}

void fpm_status_poller::start(std::chrono::milliseconds every) {
    every_ = every;
    started_ = true;
    run_started_ = std::chrono::steady_clock::now();
    summary_.polls_before_run = summary_.polls;
    schedule();
}

void fpm_status_poller::stop() {
    note_wait();  // a poll still in flight
    stopped_ = true;
    timer_.cancel();
    client_->stop();
}

void fpm_status_poller::poll_after_run(std::function<void()> done) {
    // The run's connections are closed by now, so a worker is free to answer at once.
    make_client();
    stopped_ = false;
    after_run_ = true;
    poll([this, done = std::move(done)] {
        stopped_ = true;
        client_->stop();  // nothing may keep the io_context running after the report
        if (done)
            done();
    });
}

void fpm_status_poller::schedule() {
    if (stopped_)
        return;
    timer_.expires_after(every_);
    timer_.async_wait([this](std::error_code ec) {
        if (ec || stopped_)
            return;
        if (!busy_) {  // a poll still waiting is not doubled
            if (skip_ && skip_())
                ++summary_.polls_skipped;
            else
                poll(nullptr);
        }
        schedule();
    });
}

void fpm_status_poller::poll(std::function<void()> done) {
    if (stopped_) {
        if (done)
            done();
        return;
    }
    busy_ = true;
    poll_started_ = std::chrono::steady_clock::now();
    // php-fpm answers its status page only when SCRIPT_NAME (and SCRIPT_FILENAME) equal
    // pm.status_path; no file is read.
    fcgi::request req;
    req.script = path_;
    req.query = "json&full";
    req.params = {{"SCRIPT_NAME", path_}, {"REQUEST_URI", path_ + "?json&full"}};
    // During the run a poll waits as long as it takes: one given up on leaves its connection in
    // php-fpm's backlog until a worker takes it, and each next poll's would add one more to
    // the queue being measured. Before and after the run a worker is free to answer at once.
    if (!started_ || after_run_)
        req.timeout = std::chrono::milliseconds(1000);
    client_->async_request(
        std::move(req), [this, done = std::move(done)](std::error_code ec, fcgi::response r) {
            note_wait();
            busy_ = false;
            if (stopped_) {
                if (done)
                    done();
                return;
            }
            fpm_status_sample s;
            std::string why;
            if (ec)
                why = std::string(error_name(ec)) + ": " + ec.message();
            else if (r.status != 200)
                why = "status page answered " + std::to_string(r.status) +
                      " (is pm.status_path set to '" + path_ + "'?)";
            if (why.empty() && parse_fpm_status(r.body, path_ + "?json&full", s, why)) {
                if (after_run_)
                    summary_.add_after_run(s);
                else if (!started_)
                    summary_.add_before_run(s);
                else
                    // php-fpm samples its queue once a second (and a little late, at worst).
                    summary_.add(s, std::chrono::steady_clock::now() - run_started_ >=
                                        std::chrono::milliseconds(1100));
            } else
                summary_.add_failure(std::move(why));
            if (done)
                done();
        });
}

void fpm_status_poller::note_wait() {
    // A status page is answered in well under a millisecond once a worker has the connection:
    // a poll that took this long waited in the backlog, counted in the queue it measures.
    constexpr auto in_backlog = std::chrono::milliseconds(100);
    if (busy_ && started_ && !after_run_ && !stopped_ &&
        std::chrono::steady_clock::now() - poll_started_ >= in_backlog)
        summary_.poll_waited = true;
}

}  // namespace fcgi_cli
