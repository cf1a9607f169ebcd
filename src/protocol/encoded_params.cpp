#include "fcgi/protocol/encoded_params.hpp"

#include "fcgi/error.hpp"

namespace fcgi::protocol {

std::error_code encoded_params::assign(std::span<const name_value> params) {
    bytes_.clear();
    ends_.clear();
    std::size_t total = 0;
    for (const auto& p : params) {
        if (!fits_one_record(p.name, p.value))
            return error::param_too_large;
        // Views may alias one buffer, so the total can exceed memory: refuse rather than wrap.
        const std::size_t n = encoded_size(p.name, p.value);
        if (total > bytes_.max_size() - n)
            return error::param_too_large;
        total += n;
    }
    bytes_.resize(total);
    char* out = bytes_.data();
    std::size_t in_record = 0;
    for (const auto& p : params) {
        std::size_t n = encoded_size(p.name, p.value);
        if (in_record + n > max_params_content) {
            ends_.push_back(static_cast<std::size_t>(out - bytes_.data()));
            in_record = 0;
        }
        out = encode_name_value(out, p.name, p.value);
        in_record += n;
    }
    if (total != 0)
        ends_.push_back(total);
    return {};
}

}  // namespace fcgi::protocol
