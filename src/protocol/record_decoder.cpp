#include "fcgi/protocol/record_decoder.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "fcgi/error.hpp"

namespace fcgi::protocol {

void record_decoder::reset() noexcept {
    state_ = state::header;
    have_ = 0;
    content_left_ = 0;
    padding_left_ = 0;
    whole_.clear();
    ec_.clear();
}

std::error_code record_decoder::check(const record_header& h) const noexcept {
    if (h.version != version_1)
        return error::bad_version;
    switch (h.type) {
        case record_type::begin_request:
        case record_type::end_request:
        case record_type::unknown_type:
            if (h.content_length != 8)
                return error::bad_record_length;
            break;
        case record_type::abort_request:
            if (h.content_length != 0)
                return error::bad_record_length;
            break;
        default:
            break;
    }
    return {};
}

std::string record_decoder::failure() const {
    if (!ec_)
        return {};
    if (header_.version != version_1) {
        // Printable bytes as text too: "HTTP/1.1" from a web server, 16 03 from a TLS one.
        std::string hex, text;
        for (char c : header_bytes_) {
            auto u = static_cast<unsigned char>(c);
            static constexpr char digits[] = "0123456789abcdef";
            if (!hex.empty())
                hex += ' ';
            hex += digits[u >> 4];
            hex += digits[u & 15];
            text += (u >= 0x20 && u < 0x7f) ? c : '.';
        }
        return "the first bytes of a record were " + hex + " (\"" + text + "\"), version " +
               std::to_string(header_.version);
    }
    const auto type = static_cast<unsigned>(header_.type);
    const unsigned must = header_.type == record_type::abort_request ? 0 : 8;
    return std::string(to_string(header_.type)) + " (type " + std::to_string(type) +
           ") for request " + std::to_string(header_.request_id) + " with content length " +
           std::to_string(header_.content_length) + ", must be " + std::to_string(must);
}

decode_result record_decoder::feed(std::string_view in) noexcept {
    decode_result r;
    for (;;) {
        switch (state_) {
            case state::failed:
                r.ec = ec_;
                return r;

            case state::header: {
                std::size_t take = std::min(header_size - have_, in.size() - r.consumed);
                // An empty view may hold a null pointer, which memcpy must never get.
                if (take != 0)
                    std::memcpy(header_bytes_.data() + have_, in.data() + r.consumed, take);
                have_ += take;
                r.consumed += take;
                if (have_ < header_size)
                    return r;  // need more
                have_ = 0;
                header_ = decode_header(header_bytes_);
                if (auto ec = check(header_)) {
                    ec_ = ec;
                    state_ = state::failed;
                    r.ec = ec;
                    return r;
                }
                content_left_ = header_.content_length;
                padding_left_ = header_.padding_length;
                std::string_view rest = in.substr(r.consumed);
                if (!is_stream(header_.type) && rest.size() >= content_left_ + padding_left_) {
                    // Fast path: the whole record is here; view it in place.
                    r.has_piece = true;
                    r.piece = {header_, rest.substr(0, content_left_), true};
                    r.consumed += content_left_ + padding_left_;
                    return r;
                }
                state_ = state::content;
                whole_.clear();
                if (is_stream(header_.type) && content_left_ == 0) {
                    // An empty stream record: report it once padding is skipped.
                    state_ = state::padding;
                }
                break;
            }

            case state::content: {
                std::string_view rest = in.substr(r.consumed);
                if (rest.empty())
                    return r;
                std::size_t take = std::min(content_left_, rest.size());
                content_left_ -= take;
                r.consumed += take;
                if (is_stream(header_.type)) {
                    r.has_piece = true;
                    r.piece = {header_, rest.substr(0, take), false};
                    if (content_left_ == 0) {
                        state_ = state::padding;
                        std::size_t pad = std::min(padding_left_, rest.size() - take);
                        padding_left_ -= pad;
                        r.consumed += pad;
                        if (padding_left_ == 0) {
                            state_ = state::header;
                            r.piece.end_of_record = true;
                        }
                    }
                    return r;
                }
                if (whole_.capacity() < max_content_length)
                    whole_.reserve(max_content_length);
                whole_.append(rest.data(), take);
                if (content_left_ == 0)
                    state_ = state::padding;
                break;
            }

            case state::padding: {
                std::string_view rest = in.substr(r.consumed);
                std::size_t pad = std::min(padding_left_, rest.size());
                padding_left_ -= pad;
                r.consumed += pad;
                if (padding_left_ != 0)
                    return r;
                state_ = state::header;
                r.has_piece = true;
                r.piece = {header_, is_stream(header_.type) ? std::string_view{} : whole_, true};
                return r;
            }
        }
    }
}

}  // namespace fcgi::protocol
