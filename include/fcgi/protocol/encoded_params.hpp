// PARAMS content encoded once, for requests that send the same params many times.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/name_value.hpp"

namespace fcgi::protocol {

/// Name-value pairs as PARAMS content bytes, cut into records at pair boundaries the way
/// request_encoder::begin cuts them (whole pairs, at most max_params_content bytes a record:
/// php-fpm resets the connection when a pair spans two records). Holds no request ID, so one
/// encoding serves any request: see request_encoder::begin_encoded.
class encoded_params {
  public:
    /// Encodes `params`, replacing what was held. Fails with error::param_too_large, holding
    /// nothing, when one pair cannot fit in a record.
    std::error_code assign(std::span<const name_value> params);

    /// Number of PARAMS records with content (0 for no params).
    std::size_t record_count() const noexcept { return ends_.size(); }

    /// The content of record `i` (< record_count()), without header or padding.
    std::string_view record(std::size_t i) const noexcept {
        std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(bytes_).substr(begin, ends_[i] - begin);
    }

    /// Content bytes over all records.
    std::size_t size() const noexcept { return bytes_.size(); }

  private:
    std::string bytes_;
    std::vector<std::size_t> ends_;  // where each record's content ends in bytes_
};

}  // namespace fcgi::protocol
