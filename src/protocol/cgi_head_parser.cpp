#include "fcgi/protocol/cgi_head_parser.hpp"

#include <algorithm>
#include <utility>

#include "fcgi/detail/ascii.hpp"

#include "fcgi/error.hpp"

namespace fcgi::protocol {
using detail::iequals;
using detail::is_token_char;
namespace {

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// Finds the end of the head in `s` from `from`: the index just past the blank line's LF, or npos.
std::size_t find_head_end(std::string_view s, std::size_t from) noexcept {
    for (std::size_t i = s.find('\n', from); i != std::string_view::npos; i = s.find('\n', i + 1)) {
        // A blank line: LF at the very start, or LF preceded by LF or by LF CR.
        if (i == 0 || (i == 1 && s[0] == '\r'))
            return i + 1;
        if (s[i - 1] == '\n' || (s[i - 1] == '\r' && i >= 2 && s[i - 2] == '\n'))
            return i + 1;
    }
    return std::string_view::npos;
}

}  // namespace

void cgi_head_parser::reset() noexcept {
    buffer_.clear();
    scanned_ = 0;
    done_ = false;
    ec_.clear();
    status_ = 200;
    reason_.clear();
    headers_.clear();
    bad_line_.clear();
}

cgi_head_parser::result cgi_head_parser::feed(std::string_view piece) {
    result r;
    if (done_) {
        r.done = true;
        return r;
    }
    if (ec_) {
        r.ec = ec_;
        return r;
    }
    if (buffer_.empty()) {
        // The whole head in the first piece, the usual case: parsed where it lies, not copied.
        std::size_t end = find_head_end(piece, 0);
        if (end != std::string_view::npos && end <= max_size_) {
            r.consumed = end;
            ec_ = r.ec = parse(piece.substr(0, end));
            r.done = !r.ec;
            done_ = r.done;
            return r;
        }
    }
    std::size_t old = buffer_.size();
    std::size_t room = max_size_ > old ? max_size_ - old : 0;
    std::size_t take = std::min(piece.size(), room);
    buffer_.append(piece.data(), take);
    // A blank line split across pieces is seen from its last newline, which looks back at the
    // bytes before it; starting two bytes back is a harmless margin, kept.
    std::size_t end = find_head_end(buffer_, scanned_ >= 2 ? scanned_ - 2 : 0);
    scanned_ = buffer_.size();
    if (end == std::string_view::npos) {
        r.consumed = take;
        // Too large once a byte past the limit comes: a head that fills it exactly may still be
        // all there is (a stream that ends without the blank line).
        if (take < piece.size())
            ec_ = r.ec = error::response_head_too_large;
        return r;
    }
    r.consumed = end - old;
    buffer_.resize(end);
    ec_ = r.ec = parse(buffer_);
    r.done = !r.ec;
    done_ = r.done;
    return r;
}

cgi_head_parser::result cgi_head_parser::finish() {
    result r;
    if (!done_) {
        // A head that already failed (too large, malformed) stays failed.
        ec_ = r.ec = ec_ ? ec_ : parse(buffer_);
        done_ = !r.ec;
    }
    r.done = done_;
    return r;
}

bool cgi_head_parser::parse_status(std::string_view value) {
    // "NNN Reason" or "NNN".
    if (value.size() < 3 || (value.size() > 3 && value[3] != ' '))
        return false;
    int code = 0;
    for (std::size_t k = 0; k < 3; ++k) {
        if (value[k] < '0' || value[k] > '9')
            return false;
        code = code * 10 + (value[k] - '0');
    }
    if (code < 100)
        return false;
    status_ = code;
    reason_ = trim(value.substr(3));
    return true;
}

std::error_code cgi_head_parser::parse(std::string_view head) {
    bool have_status = false;
    bool have_location = false;
    bool have_status_line = false;
    bool first = true;
    // Kept for the diagnostics: "malformed head" alone does not say which header to fix.
    auto bad = [this](std::string_view line) {
        bad_line_.assign(line.substr(0, max_bad_line));
        return std::error_code(error::bad_response_head);
    };
    // A bare CR, a NUL or another control byte (tab aside) would reach whoever copies the
    // header, or the status line's reason, into an HTTP response: a split response. PHP's
    // header() never sends them.
    auto has_control = [](std::string_view text) {
        return std::any_of(text.begin(), text.end(), [](char c) {
            auto u = static_cast<unsigned char>(c);
            return (u < 0x20 && c != '\t') || u == 0x7f;
        });
    };
    while (!head.empty()) {
        std::size_t nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.empty())
            break;  // the blank line
        // php-fpm with cgi.rfc2616_headers=1 starts with the script's "HTTP/1.1 404 Not Found"
        // instead of a Status header; a Status header, if any, still wins.
        if (std::exchange(first, false) && line.starts_with("HTTP/")) {
            std::size_t sp = line.find(' ');
            if (sp == std::string_view::npos || has_control(line) ||
                !parse_status(trim(line.substr(sp + 1))))
                return bad(line);
            have_status_line = true;
            continue;
        }
        std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos)
            return bad(line);
        std::string_view name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_token_char))
            return bad(line);
        std::string_view value = trim(line.substr(colon + 1));
        if (has_control(value))
            return bad(line);
        if (iequals(name, "Status")) {
            // A second Status line is malformed.
            if (have_status || !parse_status(value))
                return bad(line);
            have_status = true;
            continue;
        }
        if (iequals(name, "Location"))
            have_location = true;
        // take_headers() leaves no capacity behind; php-fpm sends two to four headers, so one
        // allocation instead of growing 1, 2, 4.
        if (headers_.capacity() == 0)
            headers_.reserve(4);
        headers_.push_back({std::string(name), std::string(value)});
    }
    // As CGI says for a Location without a Status; a script's own status line has its code
    // (PHP keeps a 201 or 3xx code with Location, and php-fpm sends it as that line).
    if (!have_status && !have_status_line && have_location)
        status_ = 302;
    if (reason_.empty())
        reason_ = standard_reason(status_);
    return {};
}

std::string_view standard_reason(int status) noexcept {
    switch (status) {
        case 100:
            return "Continue";
        case 101:
            return "Switching Protocols";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 204:
            return "No Content";
        case 206:
            return "Partial Content";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 413:
            return "Content Too Large";
        case 422:
            return "Unprocessable Content";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}

}  // namespace fcgi::protocol
