#include "fcgi/protocol/request_encoder.hpp"

#include <algorithm>
#include <cstring>

#include "fcgi/error.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_header.hpp"

namespace fcgi::protocol {

void request_encoder::clear() noexcept {
    storage_.clear();
    segments_.clear();
    views_.clear();
    views_valid_ = false;
    total_ = 0;
}

char* request_encoder::grow_owned(std::size_t n) {
    const std::size_t at = storage_.size();
    if (!segments_.empty() && segments_.back().external == nullptr &&
        segments_.back().offset + segments_.back().length == at) {
        segments_.back().length += n;
    } else {
        segments_.push_back({nullptr, at, n});
    }
    storage_.resize(at + n);
    total_ += n;
    views_valid_ = false;
    return storage_.data() + at;
}

void request_encoder::append_owned(const char* p, std::size_t n) {
    if (n == 0)
        return;
    std::memcpy(grow_owned(n), p, n);
}

void request_encoder::append_zeros(std::size_t n) {
    static constexpr char zeros[8] = {};
    append_owned(zeros, n);
}

void request_encoder::append_external(std::string_view bytes) {
    segments_.push_back({bytes.data(), 0, bytes.size()});
    total_ += bytes.size();
    views_valid_ = false;
}

void request_encoder::append_header(record_type type, std::uint16_t id,
                                    std::size_t content_length) {
    char h[header_size];
    encode_header(type, id, static_cast<std::uint16_t>(content_length),
                  std::span<char, header_size>(h));
    append_owned(h, header_size);
}

std::error_code request_encoder::begin(std::uint16_t request_id, role r, begin_flags flags,
                                       std::span<const name_value> params) {
    // Check every pair first so that nothing is appended on error. The sum only decides whether
    // everything fits in one record, so it stops growing past that (no wrap with many pairs).
    std::size_t params_bytes = 0;
    for (const auto& p : params) {
        if (!fits_one_record(p.name, p.value))
            return error::param_too_large;
        if (params_bytes <= max_params_content)
            params_bytes += encoded_size(p.name, p.value);
    }
    if (!params.empty() && params_bytes <= max_params_content) {
        // The usual case, all pairs in one PARAMS record: one pass straight into storage_.
        const std::size_t pad = padding_for(params_bytes);
        char* out = grow_owned(header_size + 8 + header_size + params_bytes + pad + header_size);
        auto begin_rec = encode_begin_request(request_id, r, flags);
        out = std::copy(begin_rec.begin(), begin_rec.end(), out);
        encode_header(record_type::params, request_id, static_cast<std::uint16_t>(params_bytes),
                      std::span<char, header_size>(out, header_size));
        out += header_size;
        for (const auto& p : params)
            out = encode_name_value(out, p.name, p.value);
        out += pad;  // zeroed by grow_owned
        encode_header(record_type::params, request_id, 0,
                      std::span<char, header_size>(out, header_size));
        return {};
    }
    // Pairs over more than one record (rare: over 64 KiB of params), or none.
    encoded_params split;
    if (auto ec = split.assign(params))
        return ec;
    begin_encoded(request_id, r, flags, split);
    return {};
}

void request_encoder::begin_encoded(std::uint16_t request_id, role r, begin_flags flags,
                                    const encoded_params& params) {
    std::size_t bytes = header_size + 8 + header_size;  // BEGIN_REQUEST, the empty PARAMS
    for (std::size_t i = 0; i < params.record_count(); ++i)
        bytes += header_size + params.record(i).size() + padding_for(params.record(i).size());
    char* out = grow_owned(bytes);  // zeroed: the padding needs no writing
    auto begin_rec = encode_begin_request(request_id, r, flags);
    out = std::copy(begin_rec.begin(), begin_rec.end(), out);
    for (std::size_t i = 0; i < params.record_count(); ++i) {
        std::string_view content = params.record(i);
        encode_header(record_type::params, request_id, static_cast<std::uint16_t>(content.size()),
                      std::span<char, header_size>(out, header_size));
        out = std::copy(content.begin(), content.end(), out + header_size);
        out += padding_for(content.size());
    }
    encode_header(record_type::params, request_id, 0,
                  std::span<char, header_size>(out, header_size));
}

void request_encoder::add_stream(record_type type, std::uint16_t request_id,
                                 std::string_view bytes) {
    while (!bytes.empty()) {
        std::size_t n = bytes.size() < max_stream_content ? bytes.size() : max_stream_content;
        append_header(type, request_id, n);
        append_external(bytes.substr(0, n));
        append_zeros(padding_for(n));
        bytes.remove_prefix(n);
    }
}

void request_encoder::end_stream(record_type type, std::uint16_t request_id) {
    append_header(type, request_id, 0);
}

std::error_code request_encoder::encode_request(std::uint16_t request_id, role r, begin_flags flags,
                                                std::span<const name_value> params,
                                                std::string_view stdin_bytes,
                                                std::string_view data_bytes) {
    if (auto ec = begin(request_id, r, flags, params))
        return ec;
    add_stream(record_type::stdin_, request_id, stdin_bytes);
    end_stream(record_type::stdin_, request_id);
    if (r == role::filter) {
        add_stream(record_type::data, request_id, data_bytes);
        end_stream(record_type::data, request_id);
    }
    return {};
}

void request_encoder::encode_request_encoded(std::uint16_t request_id, role r, begin_flags flags,
                                             const encoded_params& params,
                                             std::string_view stdin_bytes,
                                             std::string_view data_bytes) {
    begin_encoded(request_id, r, flags, params);
    add_stream(record_type::stdin_, request_id, stdin_bytes);
    end_stream(record_type::stdin_, request_id);
    if (r == role::filter) {
        add_stream(record_type::data, request_id, data_bytes);
        end_stream(record_type::data, request_id);
    }
}

std::span<const std::string_view> request_encoder::buffers() const {
    if (!views_valid_) {
        views_.clear();
        views_.reserve(segments_.size());
        for (const auto& s : segments_)
            views_.emplace_back(s.external ? s.external : storage_.data() + s.offset, s.length);
        views_valid_ = true;
    }
    return views_;
}

}  // namespace fcgi::protocol
