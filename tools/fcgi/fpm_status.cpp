#include "fpm_status.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "error_names.hpp"

namespace fcgi_cli {
namespace {

bool field(const nlohmann::json& j, const char* name, std::int64_t& out, std::string& why) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) {
        why = std::string("status page has no integer \"") + name + "\"";
        return false;
    }
    out = it->get<std::int64_t>();
    return true;
}

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

bool parse_fpm_status(std::string_view body, std::string_view own_uri, fpm_status_sample& out,
                      std::string& why) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        why = "status page is not a JSON object (is pm.status_path set and the query 'json'?)";
        return false;
    }
    if (!(field(j, "listen queue", out.listen_queue, why) &&
          field(j, "max listen queue", out.max_listen_queue, why) &&
          field(j, "active processes", out.active_processes, why) &&
          field(j, "total processes", out.total_processes, why)))
        return false;
    // php-fpm's scoreboard counters race under load (php bug #76003, php-src #14212): we saw
    // "active processes" of 11928 in a pool of 4. The per-process states of `full` are taken
    // under the scoreboard lock, so count those when present, leaving out the worker that is
    // serving this very poll.
    auto procs = j.find("processes");
    if (procs != j.end() && procs->is_array()) {
        std::int64_t active = 0;
        for (const auto& p : *procs) {
            auto state = p.value("state", std::string());
            if (state == "Idle")
                continue;
            if (state == "Running" && p.value("request uri", std::string()) == own_uri)
                continue;
            ++active;
        }
        out.active_processes = active;
        out.total_processes = static_cast<std::int64_t>(procs->size());
    }
    out.active_processes = std::clamp<std::int64_t>(out.active_processes, 0, out.total_processes);
    return true;
}

fpm_status_poller::fpm_status_poller(asio::any_io_executor ex, fcgi::endpoint where,
                                     std::string path)
    : client_(ex, poller_options(std::move(where))), timer_(ex), path_(std::move(path)) {}

void fpm_status_poller::poll_once(std::function<void()> done) {
    poll(std::move(done));
}

void fpm_status_poller::start(std::chrono::milliseconds every) {
    every_ = every;
    schedule();
}

void fpm_status_poller::stop() {
    stopped_ = true;
    timer_.cancel();
    client_.cancel();
}

void fpm_status_poller::schedule() {
    if (stopped_)
        return;
    timer_.expires_after(every_);
    timer_.async_wait([this](std::error_code ec) {
        if (ec || stopped_)
            return;
        if (!busy_)
            poll(nullptr);
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
    // php-fpm answers its status page only when SCRIPT_NAME (and SCRIPT_FILENAME) equal
    // pm.status_path; no file is read.
    fcgi::request req;
    req.script = path_;
    req.query = "json&full";
    req.params = {{"SCRIPT_NAME", path_}, {"REQUEST_URI", path_ + "?json&full"}};
    req.timeout = std::chrono::milliseconds(1000);
    client_.async_request(
        std::move(req), [this, done = std::move(done)](std::error_code ec, fcgi::response r) {
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
                ++summary_.polls;
                summary_.max_listen_queue =
                    std::max({summary_.max_listen_queue, s.listen_queue, s.max_listen_queue});
                summary_.max_active_processes =
                    std::max(summary_.max_active_processes, s.active_processes);
                summary_.total_processes = s.total_processes;
            } else {
                ++summary_.failures;
                summary_.last_error = why;
            }
            if (done)
                done();
        });
}

}  // namespace fcgi_cli
