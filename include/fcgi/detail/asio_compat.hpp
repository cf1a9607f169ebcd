// Version gaps of Asio in one place: 1.22.1 (Debian 12) has append, deferred and as_tuple only
// under asio::experimental, and no any_completion_handler.
#pragma once

#include <asio/version.hpp>

#if ASIO_VERSION >= 102400
#include <asio/append.hpp>
#else
#include <asio/experimental/append.hpp>
#endif

namespace fcgi::detail {

#if ASIO_VERSION >= 102400
using asio::append;
#else
using asio::experimental::append;
#endif

}  // namespace fcgi::detail
