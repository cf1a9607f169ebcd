// errno as a std::error_code, for the library's few direct system calls.
#pragma once

#include <cerrno>
#include <system_error>

namespace fcgi::detail {

/// The calling thread's errno, in the system category.
inline std::error_code last_error() noexcept {
    return {errno, std::system_category()};
}

}  // namespace fcgi::detail
