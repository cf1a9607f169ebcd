// ASCII helpers shared by the protocol and request code (locale-free on purpose).
#pragma once

#include <algorithm>
#include <string_view>

namespace fcgi::detail {

/// Lower-cases an ASCII letter; other bytes pass through.
constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII comparison (header names).
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return ascii_lower(x) == ascii_lower(y);
           });
}

/// True for the characters of an HTTP token (RFC 9110 section 5.6.2).
constexpr bool is_token_char(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127)
        return false;
    return std::string_view("()<>@,;:\\\"/[]?={}").find(c) == std::string_view::npos;
}

}  // namespace fcgi::detail
