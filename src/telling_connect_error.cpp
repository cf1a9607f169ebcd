#include "fcgi/detail/telling_connect_error.hpp"

#include <asio/error.hpp>
#include <cerrno>

namespace fcgi::detail {

namespace {

int rank(std::error_code ec) {
    if (!ec)
        return 0;
    // Asio reports a connect's errno in its own system category, which compares equal to no
    // std::errc condition: compare the errno itself.
    if (ec.category() != asio::error::get_system_category() &&
        ec.category() != std::system_category())
        return 2;
    switch (ec.value()) {
        case ECONNREFUSED:
            return 4;
        case ETIMEDOUT:
            return 3;
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EAFNOSUPPORT:
        case EADDRNOTAVAIL:
        case EPROTONOSUPPORT:
            return 1;
        default:
            return 2;
    }
}

}  // namespace

std::error_code more_telling_connect_error(std::error_code earlier, std::error_code later) {
    return rank(earlier) > rank(later) ? earlier : later;
}

}  // namespace fcgi::detail
