#include "fcgi/prepared_request.hpp"

#include "fcgi/detail/cgi_params.hpp"
#include "fcgi/error.hpp"

namespace fcgi {

prepared_request::prepared_request(request req) {
    std::string why;
    if (auto ec = prepare_request(std::move(req), *this, why))
        throw std::system_error(ec, why);
}

std::error_code prepare_request(request req, prepared_request& out, std::string& why) {
    if (auto ec = validate(req, why))
        return ec;
    if (req.stdin_source || req.stdout_sink) {
        why =
            "a prepared request cannot stream: its body source or sink would be shared by "
            "every send";
        return error::invalid_request;
    }
    detail::cgi_params derived;
    derived.build(req);
    protocol::encoded_params params;
    if (auto ec = params.assign(derived.params())) {
        why = detail::explain_param_too_large(derived.params(), req);
        return ec;
    }
    // The params are bytes now, so moving the request (and its strings) cannot leave a view
    // dangling.
    out.state_ = std::make_shared<const prepared_request::state>(
        prepared_request::state{std::move(req), std::move(params)});
    return {};
}

std::error_code validate(const prepared_request& req, std::string& why) {
    if (req)
        return {};
    why = "the prepared request is empty (default-constructed or moved from)";
    return error::invalid_request;
}

}  // namespace fcgi
