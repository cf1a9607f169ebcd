#include "fcgi/error.hpp"

#include <cerrno>
#include <ostream>

#include "last_error.hpp"

namespace fcgi {
namespace {

class client_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "fcgi"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
            case error::bad_version:
                return "record with a FastCGI version other than 1 from server: the peer is not "
                       "a FastCGI responder, or the stream is out of step";
            case error::bad_record_length:
                return "record of a fixed-size type with the wrong content length from server";
            case error::unknown_record_type:
                return "record of a type this client does not know from server: unknown type";
            case error::unexpected_record:
                return "record for a request that is not in flight, or of a type a client never "
                       "receives, from server";
            case error::bad_name_value:
                return "name-value pair whose lengths run past the end of its record";
            case error::bad_response_head:
                return "malformed CGI response head on STDOUT (a header line without ':', a bad or "
                       "second Status line, or a control byte in a value)";
            case error::response_head_too_large:
                return "CGI response head did not end within the configured limit "
                       "(max_head_size)";
            case error::unknown_type_reply:
                return "server answered with UNKNOWN_TYPE: it does not understand a record we "
                       "sent";
            case error::response_too_large:
                // Neutral words: the diagnostics name the limit (an option, or a CLI's flag).
                return "response STDOUT or STDERR exceeded its size limit; the rest of the "
                       "response was discarded";
            case error::param_too_large:
                return "a single parameter does not fit in one PARAMS record (65528 bytes for name "
                       "and value together); nothing was sent";
            case error::invalid_request:
                return "invalid request; nothing was sent";
            case error::invalid_endpoint:
                return "invalid endpoint: use unix:PATH, a path starting with /, ./ or ../ "
                       "(unix socket), tcp:host:port, host:port or [v6addr]:port (a unix socket "
                       "path of at most 107 bytes)";
            case error::connection_lost:
                return "the server closed the connection before the request completed";
            case error::connect_timeout:
                return "could not connect within the connect timeout";
            case error::request_timeout:
                return "the request did not complete within its deadline (if it had been sent, "
                       "its connection was closed, or the request aborted on a multiplexed one)";
            case error::not_connected:
                return "the connection is not open";
            case error::pool_exhausted:
                return "too many requests waiting for a connection (max_pending); retry later or "
                       "raise max_pending";
            case error::client_stopped:
                return "the client was stopped (stop() or destroyed) or is shutting down";
            case error::no_endpoint:
                return "no endpoint is available: the last connect to each one failed (refused, "
                       "no such socket, timed out; the response's diagnostics name each error)";
            case error::body_length_unknown:
                return "the request body source has no known length: FastCGI sends CONTENT_LENGTH "
                       "before the body, so give the length; nothing was sent";
            case error::source_ended_early:
                return "the request body source ended before the length it announced (or a "
                       "body file changed size); the request was abandoned";
            case error::source_failed:
                return "the request body source failed (could not start, or failed while the "
                       "body was being sent); the request was abandoned";
            case error::sink_failed:
                return "the response sink failed; what it had not taken of the response was "
                       "discarded";
        }
        return "unknown fcgi error " + std::to_string(ev);
    }

    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (static_cast<error>(ev)) {
            case error::bad_version:
            case error::bad_record_length:
            case error::unknown_record_type:
            case error::unexpected_record:
            case error::bad_name_value:
            case error::bad_response_head:
            case error::response_head_too_large:
            case error::unknown_type_reply:
                return condition::protocol_error;
            case error::param_too_large:
            case error::invalid_request:
            case error::invalid_endpoint:
            case error::body_length_unknown:
                return condition::caller_error;
            case error::connection_lost:
            case error::connect_timeout:
            case error::not_connected:
            case error::no_endpoint:  // "backend unreachable" must catch php-fpm not running
                return condition::transport_error;
            default:
                return {ev, *this};
        }
    }
};

class server_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "fcgi.server"; }

    std::string message(int ev) const override {
        switch (static_cast<server_error>(ev)) {
            case server_error::cant_mpx_conn:
                return "server refused a concurrent request on this connection (CANT_MPX_CONN); "
                       "disable multiplexing for it";
            case server_error::overloaded:
                return "server is overloaded (OVERLOADED); retry later or elsewhere";
            case server_error::unknown_role:
                return "server does not implement the requested role (UNKNOWN_ROLE)";
        }
        return "unknown FastCGI protocol status " + std::to_string(ev);
    }
};

class condition_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "fcgi.condition"; }

    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
            case condition::protocol_error:
                return "FastCGI protocol error";
            case condition::caller_error:
                return "invalid request or configuration";
            case condition::transport_error:
                return "connection failure";
        }
        return "unknown fcgi condition " + std::to_string(ev);
    }

    bool equivalent(const std::error_code& code, int cond) const noexcept override {
        if (code.category() == client_category())
            return client_category().default_error_condition(code.value()) ==
                   std::error_condition(cond, *this);
        if (static_cast<condition>(cond) == condition::transport_error && detail::is_system(code)) {
            switch (code.value()) {
                case ECONNREFUSED:
                case ECONNRESET:
                case EPIPE:
                case ENOENT:
                case ETIMEDOUT:
                case EHOSTUNREACH:
                case ENETUNREACH:
                case ECONNABORTED:
                case EAGAIN:
                case ENOBUFS:  // a full unix listen backlog, as Asio 1.22 reports EAGAIN there
                    return true;
                default:
                    return false;
            }
        }
        return false;
    }
};

}  // namespace

const std::error_category& client_category() noexcept {
    static const client_category_impl instance;
    return instance;
}

const std::error_category& server_category() noexcept {
    static const server_category_impl instance;
    return instance;
}

const std::error_category& condition_category() noexcept {
    static const condition_category_impl instance;
    return instance;
}

bool is_retryable(std::error_code ec) noexcept {
    if (ec == error::connection_lost || ec == error::connect_timeout ||
        ec == error::not_connected || ec == server_error::overloaded ||
        ec == server_error::cant_mpx_conn || ec == error::no_endpoint)
        return true;
    if (detail::is_system(ec)) {
        switch (ec.value()) {
            case ECONNREFUSED:
            case ECONNRESET:
            case EPIPE:
            case EAGAIN:
            case ENOBUFS:  // a full unix listen backlog (see condition_category_impl)
            case ENOENT:
                return true;
            default:
                return false;
        }
    }
    return false;
}

std::ostream& operator<<(std::ostream& os, error e) {
    return os << make_error_code(e).message();
}

std::ostream& operator<<(std::ostream& os, server_error e) {
    return os << make_error_code(e).message();
}

std::ostream& operator<<(std::ostream& os, condition c) {
    return os << make_error_condition(c).message();
}

}  // namespace fcgi
