#include "fcgi/response.hpp"

#include <algorithm>

#include "fcgi/detail/ascii.hpp"

namespace fcgi {
using detail::iequals;

std::optional<std::string_view> response::header(std::string_view name) const noexcept {
    for (const auto& h : headers)
        if (iequals(h.name, name))
            return h.value;
    return std::nullopt;
}

std::vector<std::string_view> response::headers_named(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& h : headers)
        if (iequals(h.name, name))
            out.push_back(h.value);
    return out;
}

}  // namespace fcgi
