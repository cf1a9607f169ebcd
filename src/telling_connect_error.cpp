#include "fcgi/detail/telling_connect_error.hpp"

#include <cerrno>

#include "last_error.hpp"

namespace fcgi::detail {

namespace {

int rank(std::error_code ec) {
    if (!ec)
        return 0;
    // Asio's system category matches no std::errc condition: compare the errno itself.
    if (!is_system(ec))
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
