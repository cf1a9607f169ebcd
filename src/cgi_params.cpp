#include "fcgi/detail/cgi_params.hpp"

#include <algorithm>
#include <charconv>

#include "fcgi/detail/ascii.hpp"

#include "fcgi/error.hpp"

namespace fcgi {
using detail::iequals;
using detail::is_token_char;

namespace {

// A plain loop: find_first_of with a set calls memchr once per character, which showed in the
// benchmark profile (header values are checked on every request).
bool contains_any(std::string_view s, char a, char b, char c) {
    return std::any_of(s.begin(), s.end(), [=](char x) { return x == a || x == b || x == c; });
}

}  // namespace

std::error_code validate(const request& req, std::string& why) {
    if (req.script.empty() || req.script.front() != '/') {
        why = "script must be an absolute path (SCRIPT_FILENAME), got '" + req.script + "'";
        return error::invalid_request;
    }
    if (req.script.find('\0') != std::string::npos) {
        why = "script path contains a NUL byte";
        return error::invalid_request;
    }
    for (char c : req.method) {
        if (!is_token_char(c)) {
            why = "method '" + req.method + "' is not an HTTP token";
            return error::invalid_request;
        }
    }
    for (const auto& [name, value] : req.headers) {
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
            why = "header name '" + name + "' is not an HTTP token";
            return error::invalid_request;
        }
        if (contains_any(value, '\r', '\n', '\0')) {
            why = "header '" + name + "' has CR, LF or NUL in its value";
            return error::invalid_request;
        }
    }
    for (const auto& [name, value] : req.params) {
        if (name.empty() || contains_any(name, '=', '\0', '\0')) {
            why = "param name '" + name + "' is empty or contains '=' or NUL";
            return error::invalid_request;
        }
    }
    if (req.stdin_source && !req.body.empty()) {
        why = "a request has either a body or a body source, not both";
        return error::invalid_request;
    }
    if (req.stdin_source && !req.stdin_source.size()) {
        why =
            "the request body source has no known length; FastCGI needs CONTENT_LENGTH "
            "before the body";
        return error::body_length_unknown;
    }
    if (req.role != protocol::role::filter && (!req.data.empty() || req.data_last_modified)) {
        why = "a DATA stream is only sent with the FILTER role";
        return error::invalid_request;
    }
    return {};
}

namespace detail {

std::error_code cgi_params::build(const request& req, std::string& why) {
    params_.clear();
    // Every derived string goes into one arena reserved up front, so the views stay valid and
    // steady state does not allocate.
    std::size_t need = 64 + req.script.size() + req.query.size();
    for (const auto& h : req.headers)
        need += 5 + h.first.size();
    arena_.clear();
    arena_.reserve(need);
    auto own = [&](std::string_view a, std::string_view b = {},
                   std::string_view c = {}) -> std::string_view {
        std::size_t at = arena_.size();
        arena_.append(a).append(b).append(c);
        return std::string_view(arena_).substr(at);
    };
    char digits[24];
    auto number = [&](std::uint64_t v) -> std::string_view {
        auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
        return own(std::string_view(digits, static_cast<std::size_t>(end - digits)));
    };

    std::string_view script = req.script;
    std::string_view root = req.document_root;
    if (root.empty())
        root = script.substr(0, std::max<std::size_t>(script.rfind('/'), 1));
    while (root.size() > 1 && root.back() == '/')
        root.remove_suffix(1);
    std::string_view script_name = script;
    if (script.starts_with(root) && script.size() > root.size() && script[root.size()] == '/')
        script_name = root == "/" ? script : script.substr(root.size());

    std::string_view content_type;
    std::string_view content_length_header;
    for (const auto& [name, value] : req.headers) {
        if (iequals(name, "Content-Type"))
            content_type = value;
        else if (iequals(name, "Content-Length"))
            content_length_header = value;
    }
    if (content_type.empty() && req.body_size() != 0)
        content_type = "application/x-www-form-urlencoded";

    std::string_view content_length = number(req.body_size());
    if (!content_length_header.empty() && content_length_header != content_length) {
        why = "Content-Length header " + std::string(content_length_header) +
              " differs from the body's " + std::string(content_length) + " bytes";
        return error::invalid_request;
    }
    std::string_view uri = req.query.empty() ? script_name : own(script_name, "?", req.query);

    params_ = {
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"SERVER_SOFTWARE", "asio-fcgi"},
        {"REQUEST_METHOD", req.effective_method()},
        {"SCRIPT_FILENAME", script},
        {"SCRIPT_NAME", script_name},
        {"DOCUMENT_ROOT", root},
        {"REQUEST_URI", uri},
        {"QUERY_STRING", req.query},
        {"CONTENT_LENGTH", content_length},
        {"CONTENT_TYPE", content_type},
        {"REMOTE_ADDR", "127.0.0.1"},
        {"REMOTE_PORT", "0"},
        {"SERVER_ADDR", "127.0.0.1"},
        {"SERVER_NAME", "localhost"},
        {"SERVER_PORT", "80"},
    };
    if (req.role == protocol::role::filter) {
        params_.push_back({"FCGI_DATA_LENGTH", number(req.data.size())});
        if (req.data_last_modified)
            params_.push_back({"FCGI_DATA_LAST_MOD", number(*req.data_last_modified)});
    }
    for (const auto& [name, value] : req.headers) {
        if (iequals(name, "Content-Type") || iequals(name, "Content-Length"))
            continue;
        std::string_view env = own("HTTP_", name);
        for (std::size_t i = arena_.size() - name.size(); i < arena_.size(); ++i) {
            char c = arena_[i];
            arena_[i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
        }
        params_.push_back({env, value});
    }
    for (const auto& [name, value] : req.params) {
        if (name == "CONTENT_LENGTH" && value != content_length) {
            why = "param CONTENT_LENGTH=" + value + " differs from the body's " +
                  std::string(content_length) + " bytes";
            return error::invalid_request;
        }
        auto it = std::find_if(params_.begin(), params_.end(),
                               [&](const protocol::name_value& p) { return p.name == name; });
        if (it != params_.end())
            it->value = value;
        else
            params_.push_back({name, value});
    }
    return {};
}

std::string explain_param_too_large(std::span<const protocol::name_value> params) {
    for (const auto& p : params) {
        std::size_t n = protocol::encoded_size(p.name, p.value);
        if (n > protocol::max_params_content)
            return "param " + std::string(p.name.substr(0, 64)) + " takes " + std::to_string(n) +
                   " bytes encoded; at most " + std::to_string(protocol::max_params_content) +
                   " fit in a record";
    }
    return "a param is too large for a PARAMS record";
}

}  // namespace detail
}  // namespace fcgi
