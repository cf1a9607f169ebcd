// An incremental FastCGI record decoder: feed it bytes in any split, get record pieces out.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "fcgi/protocol/record_header.hpp"

namespace fcgi::protocol {

/// A piece of a record's content.
///
/// Stream records (PARAMS, STDIN, STDOUT, STDERR, DATA) are handed out as their bytes arrive:
/// zero or more pieces, the last with `end_of_record` set. Other records come whole, in one piece
/// with `end_of_record` set. `content` views the bytes given to feed() or the decoder's own buffer,
/// and is valid until the next call to feed().
struct record_piece {
    record_header header;        ///< the header of the record this piece belongs to
    std::string_view content;    ///< content bytes (no padding)
    bool end_of_record = false;  ///< this is the record's last piece
};

/// The outcome of one record_decoder::feed() call.
struct decode_result {
    std::size_t consumed = 0;  ///< bytes of the input used; the caller drops them
    bool has_piece = false;    ///< `piece` is set
    record_piece piece;        ///< the piece, when has_piece
    std::error_code ec;        ///< bad_version or bad_record_length; the stream is then unusable
};

/// Splits a byte stream into records (Beast's basic_parser::put is the model).
///
/// Checks every header: a version other than 1 gives error::bad_version, and a fixed-size record
/// (BEGIN_REQUEST, END_REQUEST, UNKNOWN_TYPE of 8 bytes, ABORT_REQUEST of 0) of another length
/// gives error::bad_record_length. Unknown types are handed out whole; the caller decides. Padding
/// is skipped. It never throws, never reads outside the input and allocates only once, the first
/// time a non-stream record arrives split (to hold up to 65535 bytes).
class record_decoder {
  public:
    /// Consumes a prefix of `in` and reports at most one piece. Call again with the rest while
    /// input remains; an empty input gives need-more (consumed 0, no piece).
    decode_result feed(std::string_view in) noexcept;

    /// True between records: no partial header, content or padding is pending. A connection is
    /// reusable only when its last END_REQUEST leaves the decoder here with no input left.
    bool at_record_boundary() const noexcept { return state_ == state::header && have_ == 0; }

    /// The header of the record whose content or padding is still to come; empty between
    /// records and while a header is incomplete.
    std::optional<record_header> record_under_way() const noexcept {
        if (state_ == state::content || state_ == state::padding)
            return header_;
        return std::nullopt;
    }

    /// The error that stopped the decoder, if any.
    std::error_code error() const noexcept { return ec_; }

    /// What stopped the decoder, for a person: the offending header's fields ("END_REQUEST
    /// (type 3) for request 1 with content length 7, must be 8"), or for a version other than 1
    /// its raw bytes, which show at once an HTTP or TLS peer. Empty when error() is not set.
    std::string failure() const;

    /// Forgets any partial record and error (for a new connection).
    void reset() noexcept;

  private:
    enum class state { header, content, padding, failed };

    std::error_code check(const record_header& h) const noexcept;

    state state_ = state::header;
    std::array<char, header_size> header_bytes_{};
    std::size_t have_ = 0;          // header bytes collected, or whole-record bytes buffered
    record_header header_{};        // current record
    std::size_t content_left_ = 0;  // content bytes still to come
    std::size_t padding_left_ = 0;
    std::string whole_;  // content of a split non-stream record
    std::error_code ec_;
};

}  // namespace fcgi::protocol
