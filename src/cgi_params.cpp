#include "fcgi/detail/cgi_params.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <optional>

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

// Header names that become the same HTTP_* param: case and '-' against '_' do not matter.
bool same_cgi_name(std::string_view a, std::string_view b) {
    auto norm = [](char c) {
        return c == '-' ? '_' : (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
    };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return norm(x) == norm(y); });
}

// RFC 3986 pchar and '/': what a URI path holds unencoded. A table: it runs on every
// request's script name.
constexpr auto path_chars = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    for (char c : std::string_view("-._~!$&'()*+,;=:@/"))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}();

bool is_path_char(char c) {
    return path_chars[static_cast<unsigned char>(c)];
}

// `path` with every byte that is not a path character as %XX, appended by `own`.
template <class Own>
std::string_view percent_encode_path(std::string_view path, Own& own) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string_view out = own(std::string_view());
    std::size_t size = 0;
    for (char c : path) {
        if (is_path_char(c)) {
            own(std::string_view(&c, 1));
            size += 1;
        } else {
            auto u = static_cast<unsigned char>(c);
            const char enc[3] = {'%', hex[u >> 4], hex[u & 15]};
            own(std::string_view(enc, 3));
            size += 3;
        }
    }
    return std::string_view(out.data(), size);
}

// Whether a path may name a directory differently from its lexically normal form: "." or ".."
// segments, or repeated slashes.
bool maybe_not_normal(std::string_view path) {
    return path.find("/.") != std::string_view::npos || path.find("//") != std::string_view::npos;
}

// `path` below `root` (no trailing slash; "/" for the root directory), or nothing.
std::optional<std::string_view> below(std::string_view root, std::string_view path) {
    if (root == "/")
        return path;
    if (path.size() > root.size() && path.starts_with(root) && path[root.size()] == '/')
        return path.substr(root.size());
    return std::nullopt;
}

// SCRIPT_NAME: the script's path below `root` (trailing slashes trimmed), or nothing when the
// script is not below it. Plain paths compare byte-wise at no cost; others in lexically normal
// form ("/var/www/." and "/var//www" are /var/www; "/var/www/../x.php" is not below it), the
// result then held in `scratch`.
std::optional<std::string_view> script_name_below(std::string_view root, std::string_view script,
                                                  std::string& scratch) {
    if (!maybe_not_normal(root) && !maybe_not_normal(script))
        return below(root, script);
    namespace fs = std::filesystem;
    std::string normal_root = fs::path(root).lexically_normal().string();
    while (normal_root.size() > 1 && normal_root.back() == '/')
        normal_root.pop_back();
    scratch = fs::path(script).lexically_normal().string();
    return below(normal_root, scratch);
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
    if (!req.document_root.empty()) {
        // SCRIPT_NAME is the script's path below the root: a script elsewhere would get params
        // that contradict each other. A SCRIPT_NAME given as a raw param is the caller's call.
        std::string_view root = req.document_root;
        while (root.size() > 1 && root.back() == '/')
            root.remove_suffix(1);
        std::string scratch;
        const bool is_below = script_name_below(root, req.script, scratch).has_value();
        const bool named = std::any_of(req.params.begin(), req.params.end(),
                                       [](const auto& p) { return p.first == "SCRIPT_NAME"; });
        if (!is_below && !named) {
            why = "script '" + req.script + "' is not below document_root '" + req.document_root +
                  "' (SCRIPT_NAME is its path below the root; set a SCRIPT_NAME param to send it "
                  "anyway)";
            return error::invalid_request;
        }
    }
    for (char c : req.method) {
        if (!is_token_char(c)) {
            why = "method '" + req.method + "' is not an HTTP token";
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
    // CONTENT_LENGTH is always the body's size (known by now): one that contradicts it makes
    // php-fpm wait for bytes that never come, or read the next request as this one's body.
    char digits[24];
    auto length = [&, text = std::string_view()]() mutable {
        if (text.empty()) {
            auto end = std::to_chars(digits, digits + sizeof(digits), req.body_size()).ptr;
            text = std::string_view(digits, static_cast<std::size_t>(end - digits));
        }
        return text;
    };
    for (const auto& [name, value] : req.headers) {
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
            why = "header name '" + name + "' is not an HTTP token";
            return error::invalid_request;
        }
        if (contains_any(value, '\r', '\n', '\0')) {
            why = "header '" + name + "' has CR, LF or NUL in its value";
            return error::invalid_request;
        }
        if (iequals(name, "Content-Length") && value != length()) {
            why = "Content-Length header " + value + " differs from the body's " +
                  std::string(length()) + " bytes";
            return error::invalid_request;
        }
    }
    for (const auto& [name, value] : req.params) {
        if (name.empty() || contains_any(name, '=', '\0', '\0')) {
            why = "param name '" + name + "' is empty or contains '=' or NUL";
            return error::invalid_request;
        }
        if (name == "CONTENT_LENGTH" && value != length()) {
            why = "param CONTENT_LENGTH=" + value + " differs from the body's " +
                  std::string(length()) + " bytes";
            return error::invalid_request;
        }
    }
    if (req.role != protocol::role::filter && (!req.data.empty() || req.data_last_modified)) {
        why = "a DATA stream is only sent with the FILTER role";
        return error::invalid_request;
    }
    return {};
}

namespace detail {

void cgi_params::build(const request& req) {
    params_.clear();
    // Every derived string goes into one arena reserved up front, so the views stay valid and
    // steady state does not allocate.
    // REQUEST_URI may percent-encode the script name (3 bytes per byte at most), then copy it.
    // SCRIPT_NAME, when it had to be normalised, is one more copy of at most the script.
    std::size_t need = 64 + 7 * req.script.size() + req.query.size();
    // A header's value too: repeated headers are joined into one value here.
    for (const auto& h : req.headers)
        need += 5 + h.first.size() + 2 + h.second.size();
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
    std::string scratch;
    if (auto name = script_name_below(root, script, scratch))
        script_name = scratch.empty() ? *name : own(*name);  // scratch dies with this call

    std::string_view content_type;
    for (const auto& [name, value] : req.headers)
        if (iequals(name, "Content-Type"))
            content_type = value;
    if (content_type.empty() && req.body_size() != 0)
        content_type = "application/x-www-form-urlencoded";

    // validate() checked a Content-Length header or CONTENT_LENGTH param against it.
    std::string_view content_length = number(req.body_size());
    // REQUEST_URI is a URI, as a web server passes it: a '?', '%', '#' or space in the path is
    // encoded (SCRIPT_NAME stays decoded), so a router splitting at '?' finds the real query.
    std::string_view uri_path = script_name;
    if (!std::all_of(script_name.begin(), script_name.end(), is_path_char))
        uri_path = percent_encode_path(script_name, own);
    std::string_view uri = req.query.empty() ? uri_path : own(uri_path, "?", req.query);

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
    const auto& headers = req.headers;
    for (std::size_t i = 0; i < headers.size(); ++i) {
        const auto& [name, value] = headers[i];
        // httpoxy: a Proxy header would become HTTP_PROXY, which libraries read as the proxy to
        // use. A caller who means it sets HTTP_PROXY in `params`.
        if (iequals(name, "Content-Type") || iequals(name, "Content-Length") ||
            iequals(name, "Proxy"))
            continue;
        auto same_param = [&](const auto& h) { return same_cgi_name(h.first, name); };
        if (std::any_of(headers.begin(), headers.begin() + static_cast<std::ptrdiff_t>(i),
                        same_param))
            continue;  // joined into the first of its name below
        std::string_view env = own("HTTP_", name);
        for (std::size_t k = arena_.size() - name.size(); k < arena_.size(); ++k) {
            char c = arena_[k];
            arena_[k] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c;
        }
        // PHP keeps the last of params with one name: repeats are joined into one value, as a
        // web server does (Cookie with "; ", the others with ", ").
        std::string_view joined = value;
        const std::string_view sep = iequals(name, "Cookie") ? "; " : ", ";
        for (std::size_t j = i + 1; j < headers.size(); ++j) {
            if (!same_param(headers[j]))
                continue;
            if (joined.data() == value.data())
                joined = own(value);
            own(sep, headers[j].second);
            joined = std::string_view(joined.data(),
                                      joined.size() + sep.size() + headers[j].second.size());
        }
        params_.push_back({env, joined});
    }
    for (const auto& [name, value] : req.params) {
        auto it = std::find_if(params_.begin(), params_.end(),
                               [&](const protocol::name_value& p) { return p.name == name; });
        if (it != params_.end())
            it->value = value;
        else
            params_.push_back({name, value});
    }
}

namespace {

// The request field a derived param is made from, so the message names what the caller set.
std::string_view field_behind(std::string_view param) {
    if (param == "QUERY_STRING")
        return "request::query";
    if (param == "REQUEST_URI")
        return "request::script and request::query";
    if (param == "SCRIPT_FILENAME" || param == "SCRIPT_NAME")
        return "request::script";
    if (param == "DOCUMENT_ROOT")
        return "request::document_root";
    if (param.starts_with("HTTP_") || param == "CONTENT_TYPE")
        return "a request::headers entry";
    return {};
}

}  // namespace

std::string explain_param_too_large(std::span<const protocol::name_value> params) {
    for (const auto& p : params) {
        if (protocol::fits_one_record(p.name, p.value))
            continue;
        // In 64 bits: the size of a pair the encoder refused may not fit a 32-bit size_t.
        const unsigned long long n = 0ull + protocol::length_size(p.name.size()) +
                                     protocol::length_size(p.value.size()) + p.name.size() +
                                     p.value.size();
        auto field = field_behind(p.name);
        return "param " + std::string(p.name.substr(0, 64)) +
               (field.empty() ? "" : " (from " + std::string(field) + ")") + " takes " +
               std::to_string(n) + " bytes encoded; at most " +
               std::to_string(protocol::max_params_content) + " fit in a record";
    }
    return "a param is too large for a PARAMS record";
}

}  // namespace detail
}  // namespace fcgi
