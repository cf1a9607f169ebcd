// Error categories: messages, conditions and the retry rule.
#include <cerrno>
#include <string>
#include <system_error>

#include <boost/test/unit_test.hpp>

#include "fcgi/error.hpp"

namespace {

using fcgi::condition;
using fcgi::error;
using fcgi::server_error;

// Every enumerator, so a new one without a message or condition shows up here.
constexpr error all_errors[] = {
    error::bad_version,
    error::bad_record_length,
    error::unknown_record_type,
    error::unexpected_record,
    error::bad_name_value,
    error::bad_response_head,
    error::response_head_too_large,
    error::unknown_type_reply,
    error::response_too_large,
    error::param_too_large,
    error::invalid_request,
    error::invalid_endpoint,
    error::connection_lost,
    error::connect_timeout,
    error::request_timeout,
    error::not_connected,
    error::pool_exhausted,
    error::client_stopped,
    error::no_endpoint,
    error::body_length_unknown,
    error::source_ended_early,
    error::source_failed,
    error::sink_failed,
};

constexpr error protocol_errors[] = {
    error::bad_version,
    error::bad_record_length,
    error::unknown_record_type,
    error::unexpected_record,
    error::bad_name_value,
    error::bad_response_head,
    error::response_head_too_large,
    error::unknown_type_reply,
};

constexpr server_error all_server_errors[] = {
    server_error::cant_mpx_conn,
    server_error::overloaded,
    server_error::unknown_role,
};

bool is_protocol_error(error e) {
    for (auto p : protocol_errors)
        if (p == e)
            return true;
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(error_codes)

BOOST_AUTO_TEST_CASE(enumerators_start_at_one_and_are_dense) {
    // Value 0 would be "no error" in std::error_code; the list above must cover every value.
    BOOST_TEST(static_cast<int>(all_errors[0]) == 1);
    for (std::size_t i = 0; i < std::size(all_errors); ++i)
        BOOST_TEST(static_cast<int>(all_errors[i]) == static_cast<int>(i) + 1);
    BOOST_TEST(static_cast<int>(error::sink_failed) == static_cast<int>(std::size(all_errors)));
    // The value after the last one has no message: an enumerator added to error.hpp without
    // being added to the list above (and so without these checks) shows up here.
    std::error_code next(static_cast<int>(std::size(all_errors)) + 1, fcgi::client_category());
    BOOST_TEST(next.message().find("unknown fcgi error") == 0u, next.message());
}

BOOST_AUTO_TEST_CASE(every_client_error_has_a_message) {
    for (auto e : all_errors) {
        std::error_code ec = e;
        BOOST_TEST(static_cast<bool>(ec));
        BOOST_TEST(&ec.category() == &fcgi::client_category());
        std::string msg = ec.message();
        BOOST_TEST(!msg.empty());
        BOOST_TEST(msg.find("unknown fcgi error") == std::string::npos, msg);
    }
}

BOOST_AUTO_TEST_CASE(messages_are_distinct) {
    for (std::size_t i = 0; i < std::size(all_errors); ++i)
        for (std::size_t j = i + 1; j < std::size(all_errors); ++j)
            BOOST_TEST(std::error_code(all_errors[i]).message() !=
                       std::error_code(all_errors[j]).message());
}

BOOST_AUTO_TEST_CASE(unknown_values_still_have_a_message) {
    std::error_code ec(999, fcgi::client_category());
    BOOST_TEST(ec.message() == "unknown fcgi error 999");
    std::error_code zero(0, fcgi::client_category());
    BOOST_TEST(!zero.message().empty());
    std::error_code server(42, fcgi::server_category());
    BOOST_TEST(server.message() == "unknown FastCGI protocol status 42");
    BOOST_TEST(!fcgi::condition_category().message(77).empty());
}

BOOST_AUTO_TEST_CASE(every_server_error_has_a_message) {
    for (auto e : all_server_errors) {
        std::error_code ec = e;
        BOOST_TEST(&ec.category() == &fcgi::server_category());
        BOOST_TEST(!ec.message().empty());
        BOOST_TEST(ec.message().find("unknown") == std::string::npos);
    }
    // The values mirror protocolStatus on the wire.
    BOOST_TEST(static_cast<int>(server_error::cant_mpx_conn) == 1);
    BOOST_TEST(static_cast<int>(server_error::overloaded) == 2);
    BOOST_TEST(static_cast<int>(server_error::unknown_role) == 3);
}

BOOST_AUTO_TEST_CASE(category_names) {
    BOOST_TEST(std::string(fcgi::client_category().name()) == "fcgi");
    BOOST_TEST(std::string(fcgi::server_category().name()) == "fcgi.server");
    BOOST_TEST(std::string(fcgi::condition_category().name()) == "fcgi.condition");
    // Singletons: comparisons of error codes rely on the category's address.
    BOOST_TEST(&fcgi::client_category() == &fcgi::client_category());
    BOOST_TEST(&fcgi::client_category() != &fcgi::server_category());
}

BOOST_AUTO_TEST_CASE(condition_messages) {
    for (auto c :
         {condition::protocol_error, condition::caller_error, condition::transport_error}) {
        std::error_condition cond = c;
        BOOST_TEST(&cond.category() == &fcgi::condition_category());
        BOOST_TEST(!cond.message().empty());
        BOOST_TEST(cond.message().find("unknown") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(protocol_error_condition_matches_protocol_codes) {
    for (auto e : all_errors) {
        std::error_code ec = e;
        BOOST_TEST((ec == condition::protocol_error) == is_protocol_error(e), ec.message());
    }
    BOOST_TEST(!(std::error_code(server_error::overloaded) == condition::protocol_error));
    BOOST_TEST(!(std::error_code() == condition::protocol_error));
    BOOST_TEST(!(std::make_error_code(std::errc::connection_reset) == condition::protocol_error));
}

BOOST_AUTO_TEST_CASE(caller_error_condition) {
    std::error_code caller[] = {error::param_too_large, error::invalid_request,
                                error::invalid_endpoint, error::body_length_unknown};
    for (auto ec : caller)
        BOOST_TEST((ec == condition::caller_error), ec.message());
    for (auto e : all_errors) {
        std::error_code ec = e;
        bool expected = e == error::param_too_large || e == error::invalid_request ||
                        e == error::invalid_endpoint || e == error::body_length_unknown;
        BOOST_TEST((ec == condition::caller_error) == expected, ec.message());
    }
}

BOOST_AUTO_TEST_CASE(transport_error_condition) {
    BOOST_TEST((std::error_code(error::connection_lost) == condition::transport_error));
    BOOST_TEST((std::error_code(error::connect_timeout) == condition::transport_error));
    BOOST_TEST((std::error_code(error::not_connected) == condition::transport_error));
    // php-fpm not running: what an alert on "backend unreachable" is for.
    BOOST_TEST((std::error_code(error::no_endpoint) == condition::transport_error));
    BOOST_TEST(!(std::error_code(error::bad_version) == condition::transport_error));
    BOOST_TEST(!(std::error_code(error::param_too_large) == condition::transport_error));
    // Socket errors from the OS count as transport failures.
    for (int ev : {ECONNREFUSED, ECONNRESET, EPIPE, ENOENT, ETIMEDOUT, EHOSTUNREACH, ENETUNREACH,
                   ECONNABORTED, EAGAIN, ENOBUFS})
        BOOST_TEST((std::error_code(ev, std::system_category()) == condition::transport_error), ev);
    BOOST_TEST(!(std::error_code(EINVAL, std::system_category()) == condition::transport_error));
    BOOST_TEST(
        !(std::error_code(ECONNREFUSED, std::system_category()) == condition::protocol_error));
    // A condition is not a code: the generic category is a different category.
    BOOST_TEST(!(std::error_code(server_error::overloaded) == condition::transport_error));
}

BOOST_AUTO_TEST_CASE(codes_compare_by_category) {
    std::error_code a = error::bad_version;
    std::error_code b = server_error::cant_mpx_conn;
    // Same numeric value 1, different categories.
    BOOST_TEST(a.value() == b.value());
    BOOST_TEST(a != b);
    BOOST_TEST((a == error::bad_version));
    BOOST_TEST(!(a == error::bad_record_length));
}

BOOST_AUTO_TEST_CASE(retryable_codes) {
    BOOST_TEST(fcgi::is_retryable(error::connection_lost));
    BOOST_TEST(fcgi::is_retryable(error::connect_timeout));
    BOOST_TEST(fcgi::is_retryable(error::no_endpoint));
    BOOST_TEST(fcgi::is_retryable(server_error::overloaded));
    BOOST_TEST(fcgi::is_retryable(server_error::cant_mpx_conn));
    for (int ev : {ECONNREFUSED, ECONNRESET, EPIPE, EAGAIN, ENOBUFS, ENOENT})
        BOOST_TEST(fcgi::is_retryable(std::error_code(ev, std::system_category())), ev);
}

BOOST_AUTO_TEST_CASE(non_retryable_codes) {
    BOOST_TEST(!fcgi::is_retryable(std::error_code()));
    // The server saw the request, or the caller must change it: sending again cannot help.
    for (auto e :
         {error::bad_version, error::bad_record_length, error::unknown_record_type,
          error::unexpected_record, error::bad_name_value, error::bad_response_head,
          error::response_head_too_large, error::unknown_type_reply, error::response_too_large,
          error::param_too_large, error::invalid_request, error::invalid_endpoint,
          error::request_timeout, error::pool_exhausted, error::client_stopped})
        BOOST_TEST(!fcgi::is_retryable(e), std::error_code(e).message());
    BOOST_TEST(!fcgi::is_retryable(server_error::unknown_role));
    BOOST_TEST(!fcgi::is_retryable(std::error_code(EINVAL, std::system_category())));
    // Same value as ECONNREFUSED but another category: not an OS error.
    BOOST_TEST(!fcgi::is_retryable(std::error_code(ECONNREFUSED, fcgi::client_category())));
}

BOOST_AUTO_TEST_SUITE_END()
