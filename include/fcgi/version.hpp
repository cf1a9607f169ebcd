// The version of asio-fcgi these headers belong to. CMakeLists.txt reads the project version
// from here, so this is the one place to change it.
#pragma once

/// Major version: 0 while the API may still change.
#define FCGI_VERSION_MAJOR 0
/// Minor version: in 0.x, a new minor version may break the API and ABI.
#define FCGI_VERSION_MINOR 1
/// Patch version.
#define FCGI_VERSION_PATCH 0
/// MAJOR * 10000 + MINOR * 100 + PATCH, for `#if FCGI_VERSION >= 100` (0.1.0).
#define FCGI_VERSION (FCGI_VERSION_MAJOR * 10000 + FCGI_VERSION_MINOR * 100 + FCGI_VERSION_PATCH)
/// "MAJOR.MINOR.PATCH".
#define FCGI_VERSION_STRING "0.1.0"

namespace fcgi {

/// The version of the library linked in, "MAJOR.MINOR.PATCH": FCGI_VERSION_STRING when the
/// headers and the library match.
const char* version() noexcept;

}  // namespace fcgi
