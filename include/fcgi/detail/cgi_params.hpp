// Derives the CGI params of a request (defaults, HTTP_* headers, raw overrides).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "fcgi/protocol/name_value.hpp"
#include "fcgi/request.hpp"

namespace fcgi::detail {

/// The params of one request as name-value views into the request and a few owned strings.
/// Reusable: build() keeps capacity.
class cgi_params {
  public:
    /// Builds the params of `req`, which must have passed validate() (so it cannot fail) and
    /// must outlive params().
    void build(const request& req);

    /// The params, in the order they are sent.
    std::span<const protocol::name_value> params() const noexcept { return params_; }

  private:
    // HTTP_* params from the headers, repeated names joined, in the order of first appearance.
    template <class Own>
    void add_headers(const std::vector<std::pair<std::string, std::string>>& headers, Own& own);

    std::vector<protocol::name_value> params_;
    std::string arena_;  // derived strings; reserved before use, so views into it stay valid
    std::vector<std::size_t> order_;                                // add_headers' scratch
    std::vector<std::pair<std::size_t, std::string_view>> joined_;  // add_headers' scratch
};

/// The sentence for error::param_too_large: which of `params` cannot fit in a PARAMS record.
std::string explain_param_too_large(std::span<const protocol::name_value> params);

}  // namespace fcgi::detail
