// Parses the CGI response head (RFC 3875 section 6) at the start of STDOUT, arriving in pieces.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace fcgi::protocol {

/// One response header as the script sent it.
struct header_field {
    std::string name;   ///< as sent (case kept)
    std::string value;  ///< with surrounding spaces and tabs (and a CR before CR LF) trimmed
    /// Field-wise (case-sensitive) equality.
    friend bool operator==(const header_field&, const header_field&) = default;
};

/// Collects STDOUT bytes until the blank line that ends the CGI head, then parses it.
///
/// Lines may end in CRLF or LF. `Status: NNN Reason` sets the status and is not kept as a
/// header; so does a first line `HTTP/1.x NNN Reason` (php-fpm with cgi.rfc2616_headers=1), which
/// a Status header overrides. Either keeps its code next to a Location header. A head with
/// neither is 302 when it has a Location header, else 200. Other headers are kept in order,
/// repeated names included.
class cgi_head_parser {
  public:
    /// Default limit on the head's size.
    static constexpr std::size_t default_max_size = 64 * 1024;

    /// A parser that fails with error::response_head_too_large once the head exceeds `max_size`.
    explicit cgi_head_parser(std::size_t max_size = default_max_size) : max_size_(max_size) {}

    /// The outcome of feed(): how much of the piece belonged to the head, and whether it ended.
    struct result {
        std::size_t consumed = 0;  ///< bytes of the piece that were head; the rest is body
        bool done = false;         ///< the head is complete and parsed
        std::error_code ec;        ///< bad_response_head or response_head_too_large
    };

    /// Feeds the next STDOUT bytes. After `done`, the remaining bytes of the piece (and all
    /// later STDOUT) are body. After an error, feed() and finish() return it until reset().
    result feed(std::string_view piece);

    /// Ends the stream before the blank line: parses what came as the head (php-fpm sends a head
    /// even for empty output, but a stream may end early). Returns done or an error.
    result finish();

    /// True once the head was parsed.
    bool done() const noexcept { return done_; }
    /// Status code (200 when absent).
    int status() const noexcept { return status_; }
    /// Reason phrase, from the Status line or the standard one for the code.
    const std::string& reason() const noexcept { return reason_; }
    /// How much of a malformed line bad_line() keeps.
    static constexpr std::size_t max_bad_line = 200;
    /// The line that made the head malformed (its first `max_bad_line` bytes), else empty.
    const std::string& bad_line() const noexcept { return bad_line_; }
    /// Headers in order, without Status.
    const std::vector<header_field>& headers() const noexcept { return headers_; }
    /// Moves the headers out.
    std::vector<header_field> take_headers() noexcept { return std::move(headers_); }

    /// Forgets everything for a new response; keeps the limit and capacity.
    void reset() noexcept;
    /// Forgets everything and sets a new limit; keeps capacity.
    void reset(std::size_t max_size) noexcept {
        reset();
        max_size_ = max_size;
    }

  private:
    std::error_code parse(std::string_view head);
    /// Sets status and reason from "NNN Reason" or "NNN"; false when malformed.
    bool parse_status(std::string_view value);

    std::size_t max_size_;
    std::string buffer_;
    std::size_t scanned_ = 0;  // bytes of buffer_ already searched for the blank line
    bool done_ = false;
    std::error_code ec_;  // sticky: after an error, feed() and finish() repeat it
    int status_ = 200;
    std::string reason_;
    std::vector<header_field> headers_;
    std::string bad_line_;
};

/// The standard reason phrase for an HTTP status code, or "" when unknown.
std::string_view standard_reason(int status) noexcept;

}  // namespace fcgi::protocol
