// The CLI's machine-readable error names (tools/fcgi/error_names.cpp): a socket error is named
// by its errno whichever category carries it, Asio's own included.
#include "fcgi/error_names.hpp"

#include <asio/error.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>

#include "fcgi/error.hpp"

using fcgi_cli::error_name;

BOOST_AUTO_TEST_SUITE(error_names)

BOOST_AUTO_TEST_CASE(socket_errors_by_errno_in_every_category) {
    for (const auto* cat :
         {&asio::error::get_system_category(), &std::system_category(), &std::generic_category()}) {
        BOOST_TEST_CONTEXT(cat->name()) {
            BOOST_TEST(error_name({ECONNREFUSED, *cat}) == "connection_refused");
            BOOST_TEST(error_name({ENOENT, *cat}) == "no_such_file_or_directory");
            BOOST_TEST(error_name({EACCES, *cat}) == "permission_denied");
            BOOST_TEST(error_name({EMFILE, *cat}) == "too_many_files_open");
            BOOST_TEST(error_name({EDOM, *cat}) == "system_error");  // no name of its own
        }
    }
}

BOOST_AUTO_TEST_CASE(library_and_asio_codes) {
    BOOST_TEST(error_name({}) == "");
    BOOST_TEST(error_name(fcgi::error::request_timeout) == "request_timeout");
    BOOST_TEST(error_name(fcgi::server_error::overloaded) == "overloaded");
    BOOST_TEST(error_name(asio::error::operation_aborted) == "cancelled");
    BOOST_TEST(error_name(asio::error::eof) == "connection_lost");
    BOOST_TEST(error_name(asio::error::host_not_found) == "host_not_found");
}

BOOST_AUTO_TEST_SUITE_END()
