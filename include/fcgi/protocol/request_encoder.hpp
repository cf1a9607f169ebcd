// Encodes a request's records into a buffer sequence: header bytes the encoder owns, and views
// into the caller's body, which is never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/encoded_params.hpp"
#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/types.hpp"

namespace fcgi::protocol {

/// Builds BEGIN_REQUEST, PARAMS, STDIN and DATA records for one request.
///
/// PARAMS are packed as whole pairs per record with at most 65528 bytes of content and padding
/// to 8 (php-fpm resets the connection when a pair spans two records). STDIN and DATA are split
/// into records of at most 65528 bytes that view the caller's bytes; those bytes must outlive the
/// write of buffers(). Reuse one encoder across requests: clear() keeps its capacity, so steady
/// state encoding does not allocate. Request IDs are 1 to 65535: 0 is the management ID, which
/// no responder accepts a request on (the encoder does not check).
class request_encoder {
  public:
    /// Forgets everything encoded; keeps allocated capacity.
    void clear() noexcept;

    /// Appends BEGIN_REQUEST, the PARAMS records for `params` and the empty PARAMS record.
    /// Fails with error::param_too_large, appending nothing, when one pair cannot fit in a record.
    std::error_code begin(std::uint16_t request_id, role r, begin_flags flags,
                          std::span<const name_value> params);

    /// The same with params encoded beforehand: their bytes are copied, not encoded again.
    void begin_encoded(std::uint16_t request_id, role r, begin_flags flags,
                       const encoded_params& params);

    /// Appends records of `type` (STDIN or DATA) carrying `bytes`, which are viewed, not copied.
    /// Appends nothing for empty `bytes`: call end_stream() to send the empty record.
    void add_stream(record_type type, std::uint16_t request_id, std::string_view bytes);

    /// Appends the empty record that ends stream `type`.
    void end_stream(record_type type, std::uint16_t request_id);

    /// The whole request in one call: begin(), then STDIN with `stdin_bytes` and its end, then,
    /// for the FILTER role, DATA with `data_bytes` and its end. The empty STDIN record is always
    /// sent (php-fpm waits for it even without a body).
    std::error_code encode_request(std::uint16_t request_id, role r, begin_flags flags,
                                   std::span<const name_value> params, std::string_view stdin_bytes,
                                   std::string_view data_bytes = {});

    /// The same with params encoded beforehand.
    void encode_request_encoded(std::uint16_t request_id, role r, begin_flags flags,
                                const encoded_params& params, std::string_view stdin_bytes,
                                std::string_view data_bytes = {});

    /// The encoded bytes in order: a scatter-gather list for one write. Valid until the next
    /// non-const call.
    std::span<const std::string_view> buffers() const;

    /// Total bytes in buffers().
    std::size_t size() const noexcept { return total_; }

  private:
    struct segment {
        const char* external;  // nullptr: owned bytes at storage_[offset]
        std::size_t offset;
        std::size_t length;
    };

    char* grow_owned(std::size_t n);  // n more owned bytes (zeroed) at the end; their start
    void append_owned(const char* p, std::size_t n);
    void append_zeros(std::size_t n);
    void append_external(std::string_view bytes);
    void append_header(record_type type, std::uint16_t id, std::size_t content_length);

    std::string storage_;
    std::vector<segment> segments_;
    mutable std::vector<std::string_view> views_;
    mutable bool views_valid_ = false;
    std::size_t total_ = 0;
};

}  // namespace fcgi::protocol
