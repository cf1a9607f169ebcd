// ASCII helpers shared by the protocol and request code (locale-free on purpose).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
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

/// The characters of an HTTP token (RFC 9110 section 5.6.2), as a table: validation runs on
/// every header name of every request.
inline constexpr auto token_table = [] {
    std::array<bool, 256> t{};
    for (int c = 33; c < 127; ++c)
        t[static_cast<std::size_t>(c)] =
            std::string_view("()<>@,;:\\\"/[]?={}").find(static_cast<char>(c)) ==
            std::string_view::npos;
    return t;
}();

/// True for the characters of an HTTP token.
constexpr bool is_token_char(char c) noexcept {
    return token_table[static_cast<unsigned char>(c)];
}

}  // namespace fcgi::detail
