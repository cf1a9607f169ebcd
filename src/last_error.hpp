// errno as a std::error_code, for the library's few direct system calls, and the test for a
// code that carries an errno.
#pragma once

#include <asio/error.hpp>
#include <cerrno>
#include <system_error>

namespace fcgi::detail {

/// The calling thread's errno, in the system category.
inline std::error_code last_error() noexcept {
    return {errno, std::system_category()};
}

/// Whether `ec` is an OS error: Asio reports socket errors in its own system category, not
/// std::system_category(), and maps none of them to a std::errc condition.
inline bool is_system(const std::error_code& ec) noexcept {
    return ec.category() == asio::error::get_system_category() ||
           ec.category() == std::system_category();
}

}  // namespace fcgi::detail
