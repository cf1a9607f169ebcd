// A request checked and encoded once, for sending many times.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "fcgi/protocol/encoded_params.hpp"
#include "fcgi/request.hpp"

namespace fcgi {

/// A request whose checks and CGI params were done once, for sending the same request many
/// times: a benchmark, a job runner repeating one script. Sending it skips validate(), deriving
/// the params and encoding them; only the records' headers are written per send.
///
/// Copies share one immutable state, so a copy costs a reference count and every send in flight
/// keeps what it views alive; a prepared request may be sent from several threads at once. It
/// cannot stream: a body source or sink would be shared by every send, so preparing a request
/// with either fails.
class prepared_request {
  public:
    /// Empty: sending it fails with error::invalid_request.
    prepared_request() = default;

    /// Prepares `req`; throws std::system_error with the error and explanation of
    /// prepare_request() when it fails.
    explicit prepared_request(request req);

    /// False when empty (default-constructed or moved from).
    explicit operator bool() const noexcept { return state_ != nullptr; }

    /// The request it was made from. Requires a non-empty prepared request.
    const request& get() const noexcept { return state_->req; }

    /// Its params as sent. Requires a non-empty prepared request.
    const protocol::encoded_params& params() const noexcept { return state_->params; }

  private:
    friend std::error_code prepare_request(request req, prepared_request& out, std::string& why);
    struct state {
        request req;
        protocol::encoded_params params;
    };
    // Shared and const: every copy and every send in flight reads the same bytes.
    std::shared_ptr<const state> state_;
};

/// Prepares `req` into `out`: the checks of validate(), the params derived as a send derives them
/// and encoded (error::param_too_large when a pair cannot fit in a record); a body source or sink
/// is error::invalid_request. On failure `out` is unchanged and `why` names the offending field.
std::error_code prepare_request(request req, prepared_request& out, std::string& why);

/// The check a prepared request gets before it is sent: error::invalid_request, with `why`,
/// when it is empty; a non-empty one was checked when it was prepared.
std::error_code validate(const prepared_request& req, std::string& why);

}  // namespace fcgi
