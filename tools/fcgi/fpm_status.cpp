#include "fpm_status.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

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

// A text field of one entry of "processes".
bool process_text(const nlohmann::json& p, const char* name, std::string& out, std::string& why) {
    auto it = p.find(name);
    if (it == p.end() || !it->is_string()) {
        why = std::string("status page has a process whose \"") + name +
              "\" is missing or not a string";
        return false;
    }
    out = it->get<std::string>();
    return true;
}

// Counts the busy workers in `procs`, leaving out the one running `own_uri`.
bool count_active(const nlohmann::json& procs, std::string_view own_uri, std::int64_t& active,
                  std::string& why) {
    for (const auto& p : procs) {
        if (!p.is_object()) {
            why = "status page's \"processes\" holds " + std::string(p.type_name()) +
                  ", not a process (is it php-fpm's status page?)";
            return false;
        }
        std::string state, uri;
        if (!process_text(p, "state", state, why))
            return false;
        if (state == "Idle")
            continue;
        if (state == "Running") {
            if (!process_text(p, "request uri", uri, why))
                return false;
            if (uri == own_uri)
                continue;
        }
        ++active;
    }
    return true;
}

bool parse_page(const nlohmann::json& j, std::string_view own_uri, fpm_status_sample& out,
                std::string& why) {
    if (!(field(j, "listen queue", out.listen_queue, why) &&
          field(j, "max listen queue", out.max_listen_queue, why) &&
          field(j, "active processes", out.active_processes, why) &&
          field(j, "total processes", out.total_processes, why)))
        return false;
    // Optional: older pages may lack them.
    if (auto len = j.find("listen queue len"); len != j.end() && len->is_number_integer())
        out.listen_queue_len = len->get<std::int64_t>();
    if (auto pm = j.find("process manager"); pm != j.end() && pm->is_string())
        out.process_manager = pm->get<std::string>();
    // php-fpm's scoreboard counters race under load (php bug #76003, php-src #14212): we saw
    // "active processes" of 11928 in a pool of 4. The per-process states of `full` are taken
    // under the scoreboard lock, so count those when present, leaving out the worker that is
    // serving this very poll.
    auto procs = j.find("processes");
    if (procs != j.end() && procs->is_array()) {
        std::int64_t active = 0;
        if (!count_active(*procs, own_uri, active, why))
            return false;
        out.active_processes = active;
        out.total_processes = static_cast<std::int64_t>(procs->size());
    }
    if (out.total_processes < 0) {
        why = "status page reports a negative \"total processes\" (" +
              std::to_string(out.total_processes) + ")";
        return false;
    }
    out.active_processes = std::clamp<std::int64_t>(out.active_processes, 0, out.total_processes);
    return true;
}

}  // namespace

bool parse_fpm_status(std::string_view body, std::string_view own_uri, fpm_status_sample& out,
                      std::string& why) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        why = "status page is not a JSON object (is pm.status_path set and the query 'json'?)";
        return false;
    }
    // The checks above and in parse_page cover the shapes we know of; a page we did not
    // foresee must still fail the poll, not escape the run's event loop and abort the tool.
    try {
        return parse_page(j, own_uri, out, why);
    } catch (const nlohmann::json::exception& e) {
        why = std::string("status page is malformed: ") + e.what();
        return false;
    }
}

void fpm_status_summary::take_count(std::int64_t count) noexcept {
    if (count > max_listen_queue) {
        max_listen_queue = count;
        from_count_ = true;
    }
}

void fpm_status_summary::add(const fpm_status_sample& s, bool queue_is_current) {
    ++polls;
    if (!first_max_listen_queue_)
        first_max_listen_queue_ = s.max_listen_queue;
    queue_sampled_ = queue_sampled_ || queue_is_current;
    if (queue_is_current && s.listen_queue > max_listen_queue) {
        max_listen_queue = s.listen_queue;
        from_count_ = false;
    }
    if (s.max_listen_queue > *first_max_listen_queue_)
        take_count(s.max_listen_queue);
    max_active_processes = std::max(max_active_processes, s.active_processes);
    total_processes = s.total_processes;
    listen_queue_known = s.listen_queue_len != 0;
    process_manager = s.process_manager;
}

void fpm_status_summary::add_before_run(const fpm_status_sample& s) {
    ++polls;
    ++polls_before_run;
    if (!first_max_listen_queue_)
        first_max_listen_queue_ = s.max_listen_queue;
    total_processes = s.total_processes;
    listen_queue_known = s.listen_queue_len != 0;
    process_manager = s.process_manager;
}

void fpm_status_summary::add_after_run(const fpm_status_sample& s) {
    ++polls;
    ++polls_after_run;
    // Without a poll before it there is nothing to tell this run's queue from an earlier one's.
    after_run_queue_ = first_max_listen_queue_.has_value();
    after_run_rose_ = after_run_queue_ && s.max_listen_queue > *first_max_listen_queue_;
    if (after_run_rose_)
        take_count(s.max_listen_queue);
    total_processes = s.total_processes;
    listen_queue_known = s.listen_queue_len != 0;
    process_manager = s.process_manager;
}

bool pool_is_fixed(const fpm_status_summary& s) {
    return s.polls > 0 && s.process_manager == "static" && s.total_processes > 0;
}

bool holds_every_worker(const fpm_status_summary& s, std::size_t connections) {
    return pool_is_fixed(s) && std::int64_t(connections) >= s.total_processes;
}

std::string fpm_status_line(const fpm_status_summary& st) {
    std::ostringstream o;
    if (!st.seen_during_run() && st.polls_after_run == 0) {
        // Only the poll before the run was answered: its figures are not the run's maxima.
        o << "fpm status:  unknown: no poll was answered during or after the run";
        if (st.polls_skipped)
            o << " (none was made during it: its connections held every worker)";
        if (st.failures)
            o << ", " << st.failures << " failed (" << st.last_error << ")\n";
        else if (st.polls_skipped)
            o << "\n";
        else if (st.poll_waited)
            // A poll during the run waits as long as it takes, so none failed; SIGTERM skips
            // the one after the run.
            o << " (a poll waited behind the load until the run ended, and none followed it)\n";
        else
            o << " (shorter than the 500 ms between polls)\n";
        return o.str();
    }
    o << "fpm status:  max listen queue ";
    if (st.queue_known()) {
        o << st.max_listen_queue;
        if (st.queue_may_include_poll())
            o << " (one of them may be the status poll's own connection, which waited behind "
                 "the load)";
    } else if (!st.listen_queue_known)
        o << "n/a (php-fpm cannot read a unix socket's queue)";
    else if (auto stayed = st.count_stayed_at())
        // php-fpm's count is a high-water mark since it started, of samples taken once a
        // second: one set before this run hides a smaller queue, and a short one goes unseen.
        o << "not seen (php-fpm's count, sampled once a second, stayed at " << *stayed << ")";
    else
        o << "unknown";
    o << ", max active processes ";
    if (st.seen_during_run())
        o << st.max_active_processes << " of " << st.total_processes;
    else if (st.polls_skipped)
        o << "unknown (not polled during the run: its connections held every worker)";
    else
        // Polls are not counted until answered: which of the two is not known here.
        o << "unknown (none answered during the run: each poll waited behind the load, or "
             "the run was shorter than the 500 ms between polls)";
    o << ", " << st.polls << " polls";
    if (st.failures)
        o << ", " << st.failures << " failed (" << st.last_error << ")";
    o << "\n";
    return o.str();
}

void fpm_status_summary::add_failure(std::string why) {
    ++failures;
    last_error = std::move(why);
}

}  // namespace fcgi_cli
