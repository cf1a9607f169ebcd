#include "exit_codes.hpp"

#include "fcgi/error.hpp"

namespace fcgi_cli {

exit_code exit_code_after_connect(std::error_code ec) {
    if (ec == fcgi::error::request_timeout || ec == fcgi::error::connect_timeout)
        return timed_out;
    if (ec == fcgi::condition::protocol_error)
        return protocol_failure;
    return request_failure;
}

exit_code exit_code_of_connect(std::error_code ec) {
    if (ec == fcgi::error::request_timeout || ec == fcgi::error::connect_timeout)
        return timed_out;
    return connect_failure;
}

}  // namespace fcgi_cli
