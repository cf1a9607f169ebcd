#include "error_names.hpp"

#include <asio/error.hpp>

#include "fcgi/error.hpp"

namespace fcgi_cli {
namespace {

std::string_view client_error_name(fcgi::error e) {
    using fcgi::error;
    switch (e) {
        case error::bad_version:
            return "bad_version";
        case error::bad_record_length:
            return "bad_record_length";
        case error::unknown_record_type:
            return "unknown_record_type";
        case error::unexpected_record:
            return "unexpected_record";
        case error::bad_name_value:
            return "bad_name_value";
        case error::bad_response_head:
            return "bad_response_head";
        case error::response_head_too_large:
            return "response_head_too_large";
        case error::unknown_type_reply:
            return "unknown_type_reply";
        case error::response_too_large:
            return "response_too_large";
        case error::param_too_large:
            return "param_too_large";
        case error::invalid_request:
            return "invalid_request";
        case error::invalid_endpoint:
            return "invalid_endpoint";
        case error::connection_lost:
            return "connection_lost";
        case error::connect_timeout:
            return "connect_timeout";
        case error::request_timeout:
            return "request_timeout";
        case error::not_connected:
            return "not_connected";
        case error::pool_exhausted:
            return "pool_exhausted";
        case error::client_stopped:
            return "client_stopped";
        case error::no_endpoint:
            return "no_endpoint";
        case error::body_length_unknown:
            return "body_length_unknown";
        case error::source_ended_early:
            return "source_ended_early";
        case error::source_failed:
            return "source_failed";
        case error::sink_failed:
            return "sink_failed";
    }
    return "unknown_error";
}

std::string_view server_error_name(fcgi::server_error e) {
    using fcgi::server_error;
    switch (e) {
        case server_error::cant_mpx_conn:
            return "cant_mpx_conn";
        case server_error::overloaded:
            return "overloaded";
        case server_error::unknown_role:
            return "unknown_role";
    }
    return "unknown_error";
}

}  // namespace

std::string_view error_name(std::error_code ec) {
    if (!ec)
        return "";
    if (ec.category() == fcgi::client_category())
        return client_error_name(static_cast<fcgi::error>(ec.value()));
    if (ec.category() == fcgi::server_category())
        return server_error_name(static_cast<fcgi::server_error>(ec.value()));
    // Asio's own codes first: operation_aborted is also ECANCELED in the system category.
    if (ec == asio::error::operation_aborted)
        return "cancelled";
    if (ec == asio::error::eof)
        return "connection_lost";
    if (ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again ||
        ec == asio::error::no_data)
        return "host_not_found";
    // By errno value in the system categories: Asio's own ("asio.system") maps no code to a
    // std::errc condition, so `ec == std::errc::...` is false for every socket error it gives.
    struct named {
        std::errc e;
        std::string_view name;
    };
    static constexpr named by_errc[] = {
        {std::errc::connection_refused, "connection_refused"},
        {std::errc::connection_reset, "connection_reset"},
        {std::errc::connection_aborted, "connection_aborted"},
        {std::errc::broken_pipe, "broken_pipe"},
        {std::errc::timed_out, "timed_out"},
        {std::errc::host_unreachable, "host_unreachable"},
        {std::errc::network_unreachable, "network_unreachable"},
        {std::errc::no_such_file_or_directory, "no_such_file_or_directory"},
        {std::errc::permission_denied, "permission_denied"},
        {std::errc::address_not_available, "address_not_available"},
        {std::errc::too_many_files_open, "too_many_files_open"},
    };
    const bool system = ec.category() == std::system_category() ||
                        ec.category() == std::generic_category() ||
                        ec.category() == asio::error::get_system_category();
    for (const auto& n : by_errc)
        if (ec == n.e || (system && ec.value() == static_cast<int>(n.e)))
            return n.name;
    if (system)
        return "system_error";
    return "unknown_error";
}

}  // namespace fcgi_cli
