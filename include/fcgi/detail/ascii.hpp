// ASCII helpers shared by the protocol and request code (locale-free on purpose).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace fcgi::detail {

/// Lower-cases an ASCII letter; other bytes pass through.
constexpr char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Upper-cases an ASCII letter; other bytes pass through.
constexpr char ascii_upper(char c) noexcept {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

/// True for an ASCII control byte or DEL: what no URI, path or host name holds raw.
constexpr bool is_control(char c) noexcept {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
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

/// True for the characters this library allows in a header name: letters, digits and '-'.
/// Other token characters ('_', '.') reach PHP as '_' in $_SERVER, where such a header could
/// pose as another one; nginx and Apache drop them for that reason.
constexpr bool is_header_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/// Appends `text` to `out` for a message: printable ASCII as is, other bytes and `quote` and
/// backslash as \xNN, so caller or server bytes cannot break a log line or a terminal.
inline void append_escaped(std::string& out, std::string_view text, char quote) {
    static constexpr char hex[] = "0123456789abcdef";
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != quote && c != '\\') {
            out.push_back(c);
        } else {
            out += "\\x";
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 0xf]);
        }
    }
}

/// `text` in single quotes for a message, escaped as append_escaped() does and cut after `cap`
/// bytes ("'abc...' (70000 bytes)").
inline std::string in_quotes(std::string_view text, std::size_t cap = 64) {
    std::string out = "'";
    append_escaped(out, text.substr(0, cap), '\'');
    out += text.size() > cap ? "...' (" + std::to_string(text.size()) + " bytes)" : "'";
    return out;
}

}  // namespace fcgi::detail
