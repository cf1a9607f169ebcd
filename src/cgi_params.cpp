#include "fcgi/detail/cgi_params.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "fcgi/detail/ascii.hpp"

#include "fcgi/error.hpp"

namespace fcgi {
using detail::iequals;
using detail::in_quotes;
using detail::is_header_name_char;
using detail::is_token_char;

namespace {

// A plain loop: find_first_of with a set calls memchr once per character, which showed in the
// benchmark profile (header values are checked on every request).
bool contains_any(std::string_view s, char a, char b, char c) {
    return std::any_of(s.begin(), s.end(), [=](char x) { return x == a || x == b || x == c; });
}

// Bytes no URI holds raw, and no web server passes in QUERY_STRING: controls and DEL.
bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), detail::is_control);
}

// Case-insensitive three-way comparison of header names (letters, digits and '-' only).
int compare_names(std::string_view a, std::string_view b) {
    for (std::size_t i = 0, n = std::min(a.size(), b.size()); i < n; ++i) {
        char x = detail::ascii_lower(a[i]), y = detail::ascii_lower(b[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a.size() == b.size() ? 0 : a.size() < b.size() ? -1 : 1;
}

// The value of param `name` in `params`, if any (the last of a repeated name: it wins).
const std::string* find_param(const request& req, std::string_view name) {
    const std::string* found = nullptr;
    for (const auto& [n, v] : req.params)
        if (n == name)
            found = &v;
    return found;
}

// RFC 3986 pchar and '/': what a URI path holds unencoded. A table: it runs on every
// request's script name.
constexpr auto path_chars = [] {
    std::array<bool, 256> t{};
    for (std::size_t c = 0; c < t.size(); ++c)
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

// The body's length as CONTENT_LENGTH gives it, printed only once a message needs it.
class body_length {
  public:
    explicit body_length(const request& req) : req_(req) {}
    // Whether `value` is the body's length in decimal digits: "05" is 5 (RFC 9110's 1*DIGIT;
    // PHP reads it so too), while a sign, a space or anything else is not a length.
    bool matches(std::string_view value) const {
        std::uint64_t n = 0;
        const char* end = value.data() + value.size();
        auto [stop, ec] = std::from_chars(value.data(), end, n);
        return ec == std::errc() && stop == end && n == req_.body_size();
    }
    std::string_view text() {
        if (text_.empty()) {
            auto end = std::to_chars(digits_, digits_ + sizeof(digits_), req_.body_size()).ptr;
            text_ = std::string_view(digits_, static_cast<std::size_t>(end - digits_));
        }
        return text_;
    }

  private:
    const request& req_;
    char digits_[24];
    std::string_view text_;
};

// The script, the document root and the query.
std::error_code check_paths(const request& req, std::string& why) {
    if (req.script.empty() || req.script.front() != '/') {
        why = "script must be an absolute path (SCRIPT_FILENAME), got " + in_quotes(req.script);
        return error::invalid_request;
    }
    if (req.script.find('\0') != std::string::npos) {
        why = "script path " + in_quotes(req.script) + " contains a NUL byte";
        return error::invalid_request;
    }
    // php-fpm answers any SCRIPT_FILENAME with a ".." segment 404 "Primary script unknown",
    // whatever it resolves to; sent as given, the caller would chase a file that is there.
    // (The script starts with '/', so a segment is "/.." followed by '/' or the end.)
    const std::string_view script = req.script;
    if (script.ends_with("/..") || script.find("/../") != std::string_view::npos) {
        why = "script path " + in_quotes(req.script) +
              " has a '..' segment, which php-fpm refuses (404, \"Primary script unknown\"): "
              "give the path without it (std::filesystem::path::lexically_normal, or "
              "weakly_canonical to follow symbolic links)";
        return error::invalid_request;
    }
    if (req.document_root.find('\0') != std::string::npos) {
        why = "document_root " + in_quotes(req.document_root) + " contains a NUL byte";
        return error::invalid_request;
    }
    // QUERY_STRING and REQUEST_URI go out as given: bytes no URI can hold would reach PHP as
    // no web server passes them (PHP cuts a value at a NUL without a word).
    if (has_control(req.query)) {
        why = "query " + in_quotes(req.query) +
              " holds a control byte (CR, LF, NUL, ...); percent-encode it (%0A)";
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
        if (!is_below && !find_param(req, "SCRIPT_NAME") && !root.starts_with('/')) {
            // The script's path is absolute: no script is ever below a relative root.
            why = "document_root " + in_quotes(req.document_root) +
                  " is not an absolute path, and the script's is: no script is below it (make "
                  "it absolute: std::filesystem::absolute)";
            return error::invalid_request;
        }
        if (!is_below && !find_param(req, "SCRIPT_NAME")) {
            why = "script " + in_quotes(req.script) + " is not below document_root " +
                  in_quotes(req.document_root) +
                  " (SCRIPT_NAME is its path below the root; set a SCRIPT_NAME param, and "
                  "REQUEST_URI follows it, to send it anyway)";
            return error::invalid_request;
        }
    }
    return {};
}

// The method, and where the body comes from.
std::error_code check_method_and_body(const request& req, std::string& why) {
    for (char c : req.method) {
        if (!is_token_char(c)) {
            why = "method " + in_quotes(req.method) + " is not an HTTP token";
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
    return {};
}

// The headers, which become HTTP_* params.
std::error_code check_headers(const request& req, body_length& length, std::string& why) {
    bool content_type = false;
    for (const auto& [name, value] : req.headers) {
        if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) {
            why = "header name " + in_quotes(name) + " is not an HTTP token";
            return error::invalid_request;
        }
        if (!std::all_of(name.begin(), name.end(), is_header_name_char)) {
            std::string as_php = "HTTP_";
            for (char c : std::string_view(name).substr(0, 64))
                as_php += is_header_name_char(c) && c != '-' ? detail::ascii_upper(c) : '_';
            why = "header name " + in_quotes(name) +
                  " holds a character other than letters, digits and '-': PHP would read it as " +
                  in_quotes(as_php) +
                  ", where it could pose as another header (nginx and Apache drop such "
                  "headers); leave it out, or send a param";
            return error::invalid_request;
        }
        if (contains_any(value, '\r', '\n', '\0')) {
            why = "header " + in_quotes(name) + " has CR, LF or NUL in its value";
            return error::invalid_request;
        }
        if (iequals(name, "Content-Type")) {
            if (content_type) {
                why = "two Content-Type headers: a body has one type";
                return error::invalid_request;
            }
            content_type = true;
        }
        if (iequals(name, "Content-Length") && !length.matches(value)) {
            why = "Content-Length header " + in_quotes(value) + " differs from the body's " +
                  std::string(length.text()) + " bytes";
            return error::invalid_request;
        }
    }
    return {};
}

// The raw params.
std::error_code check_params(const request& req, body_length& length, std::string& why) {
    for (const auto& [name, value] : req.params) {
        if (name.empty() || contains_any(name, '=', '\0', '\0')) {
            why = "param name " + in_quotes(name) + " is empty or contains '=' or NUL";
            return error::invalid_request;
        }
        if (value.find('\0') != std::string::npos) {
            why = "param " + in_quotes(name) +
                  " has a NUL byte in its value (PHP would cut it there)";
            return error::invalid_request;
        }
        if (name == "CONTENT_LENGTH" && !length.matches(value)) {
            why = "param CONTENT_LENGTH=" + in_quotes(value) + " differs from the body's " +
                  std::string(length.text()) + " bytes";
            return error::invalid_request;
        }
    }
    return {};
}

}  // namespace

std::error_code validate(const request& req, std::string& why) {
    if (auto ec = check_paths(req, why))
        return ec;
    if (auto ec = check_method_and_body(req, why))
        return ec;
    // CONTENT_LENGTH is always the body's size (known by now): one that contradicts it makes
    // php-fpm wait for bytes that never come, or read the next request as this one's body.
    body_length length(req);
    if (auto ec = check_headers(req, length, why))
        return ec;
    if (auto ec = check_params(req, length, why))
        return ec;
    if (req.role != protocol::role::filter && (!req.data.empty() || req.data_last_modified)) {
        why = "a DATA stream is only sent with the FILTER role";
        return error::invalid_request;
    }
    return {};
}

namespace detail {

void cgi_params::add_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    // PHP keeps the last of params with one name: repeats (any case) are joined into one value,
    // as a web server does (Cookie with "; ", the others with ", "), at the first one's place.
    // Sorted by name, then position, so a request with many headers costs n log n, not n^2.
    if (headers.empty())
        return;
    order_.clear();
    for (std::size_t i = 0; i < headers.size(); ++i) {
        const auto& name = headers[i].first;
        // httpoxy: a Proxy header would become HTTP_PROXY, which libraries read as the proxy to
        // use. A caller who means it sets HTTP_PROXY in `params`.
        if (!iequals(name, "Content-Type") && !iequals(name, "Content-Length") &&
            !iequals(name, "Proxy"))
            order_.push_back(i);
    }
    auto by_name = [&](std::size_t a, std::size_t b) {
        int c = compare_names(headers[a].first, headers[b].first);
        return c < 0 || (c == 0 && a < b);
    };
    std::sort(order_.begin(), order_.end(), by_name);
    joined_.clear();
    for (std::size_t g = 0; g < order_.size();) {
        const auto& [name, value] = headers[order_[g]];
        std::size_t end = g + 1;
        while (end < order_.size() && compare_names(headers[order_[end]].first, name) == 0)
            ++end;
        std::string_view joined = value;
        if (end - g > 1) {
            const std::string_view sep = iequals(name, "Cookie") ? "; " : ", ";
            joined = own(value);
            for (std::size_t k = g + 1; k < end; ++k) {
                own(sep, headers[order_[k]].second);
                joined = std::string_view(
                    joined.data(), joined.size() + sep.size() + headers[order_[k]].second.size());
            }
        }
        joined_.push_back({order_[g], joined});
        g = end;
    }
    std::sort(joined_.begin(), joined_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [i, value] : joined_) {
        const auto& name = headers[i].first;
        std::string_view env = own("HTTP_", name);
        for (std::size_t k = arena_.size() - name.size(); k < arena_.size(); ++k)
            arena_[k] = arena_[k] == '-' ? '_' : ascii_upper(arena_[k]);
        params_.push_back({env, value});
    }
}

std::string_view cgi_params::own(std::string_view a, std::string_view b, std::string_view c) {
    std::size_t at = arena_.size();
    // A reallocation would leave every earlier view dangling: reserve_arena() must cover it all.
    assert(at + a.size() + b.size() + c.size() <= arena_.capacity());
    arena_.append(a).append(b).append(c);
    return std::string_view(arena_).substr(at);
}

std::string_view cgi_params::own_number(std::uint64_t v) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
    return own(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

void cgi_params::reserve_arena(const request& req, const std::string* named_script) {
    // Every derived string goes into one arena reserved up front, so the views stay valid and
    // steady state does not allocate.
    // REQUEST_URI may percent-encode the script name (3 bytes per byte at most), then copy it.
    // SCRIPT_NAME, when it had to be normalised, is one more copy of at most the script.
    std::size_t need = 64 + 7 * req.script.size() + req.query.size();
    // A SCRIPT_NAME param makes REQUEST_URI (below) as the script would: encoded (3 bytes per
    // byte at most), then copied with '?' and the query.
    if (named_script)
        need += 6 * named_script->size() + 1 + req.query.size();
    // A header's value too: repeated headers are joined into one value here.
    for (const auto& h : req.headers)
        need += 5 + h.first.size() + 2 + h.second.size();
    arena_.clear();
    arena_.reserve(need);
}

cgi_params::script_paths cgi_params::derive_paths(const request& req,
                                                  const std::string* named_script) {
    script_paths out;
    std::string_view script = req.script;
    out.root = req.document_root;
    if (out.root.empty())
        out.root = script.substr(0, std::max<std::size_t>(script.rfind('/'), 1));
    while (out.root.size() > 1 && out.root.back() == '/')
        out.root.remove_suffix(1);
    out.script_name = script;
    std::string scratch;
    if (auto name = script_name_below(out.root, script, scratch))
        out.script_name = scratch.empty() ? *name : own(*name);  // scratch dies with this call

    // REQUEST_URI is a URI, as a web server passes it: a '?', '%', '#' or space in the path is
    // encoded (SCRIPT_NAME stays decoded), so a router splitting at '?' finds the real query.
    // A SCRIPT_NAME param (a script outside document_root, or a front controller's public
    // name) is the path REQUEST_URI names too: the file system path is not a URI.
    std::string_view uri_path = named_script ? std::string_view(*named_script) : out.script_name;
    if (!std::all_of(uri_path.begin(), uri_path.end(), is_path_char)) {
        auto own_one = [this](std::string_view part) { return own(part); };
        uri_path = percent_encode_path(uri_path, own_one);
    }
    out.uri = req.query.empty() ? uri_path : own(uri_path, "?", req.query);
    return out;
}

void cgi_params::add_standard(const request& req, const script_paths& paths) {
    // validate() allows one Content-Type header; given empty, it is sent empty.
    std::optional<std::string_view> content_type;
    for (const auto& [name, value] : req.headers)
        if (iequals(name, "Content-Type"))
            content_type = value;
    if (!content_type && req.body_size() != 0)
        content_type = "application/x-www-form-urlencoded";

    params_ = {
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"SERVER_SOFTWARE", "asio-fcgi"},
        {"REQUEST_METHOD", req.effective_method()},
        {"SCRIPT_FILENAME", req.script},
        {"SCRIPT_NAME", paths.script_name},
        {"DOCUMENT_ROOT", paths.root},
        {"REQUEST_URI", paths.uri},
        {"QUERY_STRING", req.query},
        // validate() checked a Content-Length header or CONTENT_LENGTH param against it.
        {"CONTENT_LENGTH", own_number(req.body_size())},
        {"CONTENT_TYPE", content_type.value_or(std::string_view())},
        {"REMOTE_ADDR", "127.0.0.1"},
        {"REMOTE_PORT", "0"},
        {"SERVER_ADDR", "127.0.0.1"},
        {"SERVER_NAME", "localhost"},
        {"SERVER_PORT", "80"},
    };
    if (req.role == protocol::role::filter) {
        params_.push_back({"FCGI_DATA_LENGTH", own_number(req.data.size())});
        if (req.data_last_modified)
            params_.push_back({"FCGI_DATA_LAST_MOD", own_number(*req.data_last_modified)});
    }
}

void cgi_params::apply_params(const std::vector<std::pair<std::string, std::string>>& params) {
    // A raw param replaces the param of its name, derived or raw, in place; a new name goes at
    // the end. A few: a scan each. Many: an index, so that 40,000 of them cost n, not n^2 (this
    // runs on the connection's executor, ahead of every other request).
    if (params.size() <= 16) {
        for (const auto& [name, value] : params) {
            auto it = std::find_if(params_.begin(), params_.end(),
                                   [&](const protocol::name_value& p) { return p.name == name; });
            if (it != params_.end())
                it->value = value;
            else
                params_.push_back({name, value});
        }
        return;
    }
    std::unordered_map<std::string_view, std::size_t> at;
    at.reserve(params_.size() + params.size());
    for (std::size_t i = 0; i < params_.size(); ++i)
        at.emplace(params_[i].name, i);  // the first of a name, as the scan finds
    for (const auto& [name, value] : params) {
        auto [it, added] = at.emplace(name, params_.size());
        if (added)
            params_.push_back({name, value});
        else
            params_[it->second].value = value;
    }
}

void cgi_params::build(const request& req) {
    params_.clear();
    const std::string* named_script = find_param(req, "SCRIPT_NAME");
    reserve_arena(req, named_script);
    add_standard(req, derive_paths(req, named_script));
    add_headers(req.headers);
    apply_params(req.params);
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
    if (param == "REQUEST_METHOD")
        return "request::method";
    if (param.starts_with("HTTP_") || param == "CONTENT_TYPE")
        return "a request::headers entry";
    return {};
}

}  // namespace

std::string explain_param_too_large(std::span<const protocol::name_value> params,
                                    const request& req) {
    for (const auto& p : params) {
        if (protocol::fits_one_record(p.name, p.value))
            continue;
        // In 64 bits: the size of a pair the encoder refused may not fit a 32-bit size_t.
        const unsigned long long n = 0ull + protocol::length_size(p.name.size()) +
                                     protocol::length_size(p.value.size()) + p.name.size() +
                                     p.value.size();
        // A raw param replaces the derived one of its name: it is the caller's.
        auto field =
            find_param(req, p.name) ? std::string_view("request::params") : field_behind(p.name);
        return "param " + std::string(p.name.substr(0, 64)) +
               (field.empty() ? "" : " (from " + std::string(field) + ")") + " takes " +
               std::to_string(n) + " bytes encoded; at most " +
               std::to_string(protocol::max_params_content) + " fit in a record";
    }
    return "a param is too large for a PARAMS record";
}

}  // namespace detail
}  // namespace fcgi
