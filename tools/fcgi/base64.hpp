// Base64 (RFC 4648, standard alphabet, padded): how binary bodies travel in JSON lines.
#pragma once

#include <string>
#include <string_view>

namespace fcgi_cli {

/// `bytes` as padded base64.
std::string base64_encode(std::string_view bytes);

/// Decodes padded or unpadded base64 into `out`. False on a character outside the alphabet,
/// misplaced padding or a dangling sixth bit group; `out` is then unspecified. Whitespace is
/// not accepted: a JSON string has no reason to wrap lines.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace fcgi_cli
