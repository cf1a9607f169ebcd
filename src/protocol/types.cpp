#include "fcgi/protocol/types.hpp"

namespace fcgi::protocol {

std::string_view to_string(record_type t) noexcept {
    switch (t) {
        case record_type::begin_request:
            return "BEGIN_REQUEST";
        case record_type::abort_request:
            return "ABORT_REQUEST";
        case record_type::end_request:
            return "END_REQUEST";
        case record_type::params:
            return "PARAMS";
        case record_type::stdin_:
            return "STDIN";
        case record_type::stdout_:
            return "STDOUT";
        case record_type::stderr_:
            return "STDERR";
        case record_type::data:
            return "DATA";
        case record_type::get_values:
            return "GET_VALUES";
        case record_type::get_values_result:
            return "GET_VALUES_RESULT";
        case record_type::unknown_type:
            return "UNKNOWN_TYPE";
    }
    return "UNKNOWN";
}

std::string_view to_string(role r) noexcept {
    switch (r) {
        case role::responder:
            return "RESPONDER";
        case role::authorizer:
            return "AUTHORIZER";
        case role::filter:
            return "FILTER";
    }
    return "UNKNOWN_ROLE";
}

std::string_view to_string(protocol_status s) noexcept {
    switch (s) {
        case protocol_status::request_complete:
            return "REQUEST_COMPLETE";
        case protocol_status::cant_mpx_conn:
            return "CANT_MPX_CONN";
        case protocol_status::overloaded:
            return "OVERLOADED";
        case protocol_status::unknown_role:
            return "UNKNOWN_ROLE";
    }
    return "UNKNOWN_STATUS";
}

std::string_view to_string(begin_flags f) noexcept {
    switch (f) {
        case begin_flags::none:
            return "0";
        case begin_flags::keep_conn:
            return "KEEP_CONN";
    }
    return "UNKNOWN_FLAGS";
}

}  // namespace fcgi::protocol
