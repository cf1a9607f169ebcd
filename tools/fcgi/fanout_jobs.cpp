#include "fanout_jobs.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "base64.hpp"
#include "request_options.hpp"

namespace fcgi_cli {
namespace {

// Thrown inside parse_job only, so each check is one line; never escapes it.
struct job_error {
    std::string what;
};

[[noreturn]] void reject(std::string what) {
    throw job_error{std::move(what)};
}

const std::string& string_field(const ordered_json& j, const char* name) {
    if (!j.is_string())
        reject(std::string("\"") + name + "\" must be a string, not " + j.type_name());
    return j.get_ref<const std::string&>();
}

// An object of strings, in the order written. With `arrays`, a value may also be an array of
// strings, each one a pair of its own ("headers": a JSON object cannot repeat a key).
std::vector<std::pair<std::string, std::string>> string_pairs(const ordered_json& j,
                                                              const char* name, bool arrays) {
    if (!j.is_object())
        reject(std::string("\"") + name + "\" must be an object" + (arrays ? "" : " of strings") +
               ", not " + j.type_name());
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [key, value] : j.items()) {
        auto bad = [&] {
            reject(std::string("\"") + name + "\".\"" + key + "\" must be a string" +
                   (arrays ? " or an array of strings" : "") + ", not " + value.type_name());
        };
        if (value.is_string()) {
            out.emplace_back(key, value.get<std::string>());
            continue;
        }
        if (!arrays || !value.is_array())
            bad();
        std::size_t i = 0;
        for (const auto& v : value) {
            if (!v.is_string())
                // Name the element: "not array" of an array of strings would read as wrong.
                reject(std::string("\"") + name + "\".\"" + key + "\"[" + std::to_string(i) +
                       "] must be a string, not " + v.type_name());
            out.emplace_back(key, v.get<std::string>());
            ++i;
        }
    }
    return out;
}

bool bool_field(const ordered_json& j, const char* name) {
    if (!j.is_boolean())
        reject(std::string("\"") + name + "\" must be true or false, not " + j.type_name());
    return j.get<bool>();
}

std::chrono::milliseconds timeout_field(const ordered_json& j) {
    if (!j.is_number())
        reject(std::string("\"timeout\" must be a number of seconds, not ") + j.type_name());
    double s = j.get<double>();
    // The upper bound keeps the conversion to milliseconds from overflowing.
    if (!std::isfinite(s) || s < 0 || s > max_timeout_seconds)
        reject("\"timeout\" must be between 0 and 1e9 seconds");
    if (s == 0)
        return std::chrono::milliseconds(0);
    return seconds_to_ms(s);
}

// nlohmann's message names "line 1" of the one-line text; the caller names the real line.
std::string parse_error_text(const char* what) {
    std::string s = what;
    if (auto p = s.find("] "); s.starts_with("[json.exception.") && p != std::string::npos)
        s.erase(0, p + 2);
    if (auto p = s.find("at line 1, column"); p != std::string::npos)
        s.replace(p, std::string_view("at line 1, column").size(), "at column");
    // The token quoted after "last read" can be the rest of the line (an unclosed string of
    // megabytes): keep its start, cut on a UTF-8 character boundary.
    constexpr std::string_view last_read = "; last read: '";
    constexpr std::size_t max_quoted = 80;
    // What follows the token's closing quote ("; expected string literal") is kept.
    if (auto p = s.find(last_read); p != std::string::npos) {
        const std::size_t from = p + last_read.size();
        const std::size_t close = s.rfind('\'');
        if (close != std::string::npos && close >= from && close - from > max_quoted) {
            std::size_t cut = from + max_quoted;
            while (cut > from && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80)
                --cut;
            s.replace(cut, close - cut, "...");
        }
    }
    return s;
}

// How deep arrays and objects nest in `text` (strings skipped), read without parsing it: the
// JSON library copies, prints and frees values recursively, so a deep enough id would exhaust
// the stack before any check on the parsed value could run.
std::size_t nesting_depth(std::string_view text) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

constexpr std::size_t max_nesting = 64;

void fill_request(const ordered_json& j, const std::string& root, fcgi::request& req) {
    const ordered_json* script = nullptr;
    const ordered_json* body = nullptr;
    const ordered_json* body_base64 = nullptr;
    const ordered_json* query = nullptr;
    for (const auto& [key, value] : j.items()) {
        if (key == "id")
            continue;
        else if (key == "script")
            script = &value;
        else if (key == "method")
            req.method = string_field(value, "method");
        else if (key == "query")
            query = &value;
        else if (key == "params")
            req.params = string_pairs(value, "params", false);
        else if (key == "headers")
            req.headers = string_pairs(value, "headers", true);
        else if (key == "body")
            body = &value;
        else if (key == "body_base64")
            body_base64 = &value;
        else if (key == "timeout")
            req.timeout = timeout_field(value);
        else if (key == "idempotent")
            req.idempotent = bool_field(value, "idempotent");
        else
            reject("unknown field \"" + key + "\"");
    }
    if (!script)
        reject("\"script\" is missing");
    request_flags flags;
    flags.target = string_field(*script, "script");
    flags.root = root;
    if (flags.target.empty())
        reject("\"script\" is empty");
    // The job's own SCRIPT_NAME lets its script lie outside the root, as --param does for
    // `fcgi request`.
    for (const auto& [name, value] : req.params)
        if (name == "SCRIPT_NAME")
            flags.params.push_back(name + "=" + value);
    // Resolved by `fcgi request`'s own code, so both commands agree on paths and DOCUMENT_ROOT.
    fcgi::request resolved;
    std::string why;
    if (!build_request(flags, resolved, why, request_terms::job_keys))
        reject(why);
    req.script = std::move(resolved.script);
    req.document_root = std::move(resolved.document_root);
    if (query) {
        if (flags.target.substr(0, flags.target.find('#')).find('?') != std::string::npos)
            reject("give the query either after '?' in \"script\" or in \"query\", not both");
        // As the part after '?' in "script": a job file written either way sends the same.
        req.query = query_as_sent(string_field(*query, "query"));
    } else {
        req.query = std::move(resolved.query);
    }
    if (body && body_base64)
        reject("give \"body\" or \"body_base64\", not both");
    // A body given, even an empty one, makes the default method POST, as --data does for
    // `fcgi request`.
    if ((body || body_base64) && req.method.empty())
        req.method = "POST";
    if (body)
        req.body = string_field(*body, "body");
    if (body_base64 && !base64_decode(string_field(*body_base64, "body_base64"), req.body))
        reject("\"body_base64\" is not valid base64");
    if (fcgi::validate(req, why))
        reject(why);
}

}  // namespace

fanout_job parse_job(std::string_view text, std::size_t line, const std::string& root) {
    fanout_job job;
    job.line = line;
    try {
        // The JSON reader takes a NUL byte for the end of its input: a job after it on the same
        // line would be dropped without a word.
        if (auto nul = text.find('\0'); nul != std::string_view::npos)
            reject("holds a NUL byte at column " + std::to_string(nul + 1) +
                   " (a line is one JSON object)");
        if (nesting_depth(text) > max_nesting)
            reject("arrays and objects nest deeper than " + std::to_string(max_nesting) +
                   " levels");
        ordered_json j;
        try {
            j = ordered_json::parse(text);
        } catch (const nlohmann::json::parse_error& e) {
            reject("not valid JSON: " + parse_error_text(e.what()));
        } catch (const nlohmann::json::exception& e) {
            reject("not usable JSON: " + parse_error_text(e.what()));  // 1e400: out_of_range
        }
        if (!j.is_object())
            reject(std::string("a job must be a JSON object, not ") + j.type_name());
        if (auto it = j.find("id"); it != j.end())
            job.id = *it;
        fill_request(j, root, job.req);
    } catch (const job_error& e) {
        job.error = "line " + std::to_string(line) + ": " + e.what;
        job.req = {};
    }
    return job;
}

std::vector<fanout_job> parse_jobs(std::string_view input, const std::string& root) {
    std::vector<fanout_job> jobs;
    std::size_t line = 0;
    while (!input.empty()) {
        ++line;
        auto nl = input.find('\n');
        std::string_view text = input.substr(0, nl);
        input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
        if (text.ends_with('\r'))
            text.remove_suffix(1);
        if (text.find_first_not_of(" \t") == std::string_view::npos)
            continue;
        jobs.push_back(parse_job(text, line, root));
    }
    return jobs;
}

std::string repeated_ids(const std::vector<fanout_job>& jobs) {
    std::unordered_map<std::string, std::size_t> first_line;  // the id as printed
    std::string named;
    std::size_t repeats = 0;
    for (const auto& job : jobs) {
        if (job.id.is_null())
            continue;
        std::string id = job.id.dump();
        auto [it, fresh] = first_line.try_emplace(std::move(id), job.line);
        if (fresh)
            continue;
        if (++repeats <= 3)
            named += (named.empty() ? "" : ", ") + std::string("id ") + it->first + " on line " +
                     std::to_string(job.line) + " repeats line " + std::to_string(it->second);
    }
    if (repeats == 0)
        return {};
    if (repeats > 3)
        named += " and " + std::to_string(repeats - 3) + " more";
    return std::to_string(repeats) + (repeats == 1 ? " job reuses" : " jobs reuse") +
           " an earlier job's id (" + named +
           "): results come in completion order, so theirs cannot be told apart";
}

}  // namespace fcgi_cli
