// Derives the CGI params of a request (defaults, HTTP_* headers, raw overrides).
#pragma once

#include <cstdint>
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
    // The paths derived from the script: views into the request or the arena.
    struct script_paths {
        std::string_view root;         // DOCUMENT_ROOT
        std::string_view script_name;  // SCRIPT_NAME
        std::string_view uri;          // REQUEST_URI
    };

    // The steps of build(), in order; `named_script` is the caller's SCRIPT_NAME param, if any.
    // Room in the arena for every string the later steps derive.
    void reserve_arena(const request& req, const std::string* named_script);
    // DOCUMENT_ROOT, SCRIPT_NAME and REQUEST_URI from the script, the root and the query.
    script_paths derive_paths(const request& req, const std::string* named_script);
    // The CGI defaults (and FILTER's data params), replacing whatever params_ held.
    void add_standard(const request& req, const script_paths& paths);
    // HTTP_* params from the headers, repeated names joined, in the order of first appearance.
    void add_headers(const std::vector<std::pair<std::string, std::string>>& headers);
    // The caller's raw params: each replaces the param of its name, or is appended.
    void apply_params(const std::vector<std::pair<std::string, std::string>>& params);

    // a + b + c copied into the arena; the view stays valid until the next build().
    std::string_view own(std::string_view a, std::string_view b = {}, std::string_view c = {});
    // `v` in decimal, in the arena.
    std::string_view own_number(std::uint64_t v);

    std::vector<protocol::name_value> params_;
    std::string arena_;  // derived strings; reserved before use, so views into it stay valid
    std::vector<std::size_t> order_;                                // add_headers' scratch
    std::vector<std::pair<std::size_t, std::string_view>> joined_;  // add_headers' scratch
};

/// The sentence for error::param_too_large: which of `params`, built from `req`, cannot fit in a
/// PARAMS record, and which of the request's fields it comes from.
std::string explain_param_too_large(std::span<const protocol::name_value> params,
                                    const request& req);

}  // namespace fcgi::detail
