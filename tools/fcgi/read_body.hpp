// --data @- and --data @FILE for a file with no length to announce (a pipe, /proc): the body is
// read into memory first, as CONTENT_LENGTH must go out before it.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace fcgi_cli {

/// The most of a body with no length of its own read into memory: a source that never ends
/// (`yes |`, @/dev/zero) stops there with an error instead of taking every byte of memory.
/// PHP's post_max_size is 8 MiB by default; a larger body belongs in a regular file.
inline constexpr std::size_t max_read_body = std::size_t(1) << 30;

/// Reads `f` to its end into `out` (empty on entry). False, with `why` naming the source as `what`
/// ("stdin",
/// "'name'"), on a read error, when it holds more than `limit` bytes, or when memory runs out
/// first; `out` is then unspecified.
bool read_body(std::FILE* f, const std::string& what, std::string& out, std::string& why,
               std::size_t limit = max_read_body);

}  // namespace fcgi_cli
