// <fcgi/version.hpp>: the macros agree with each other and with the library linked in.
#include <boost/test/unit_test.hpp>
#include <string>

#include "fcgi/version.hpp"

BOOST_AUTO_TEST_CASE(version_macros_and_library_agree) {
    const std::string parts = std::to_string(FCGI_VERSION_MAJOR) + "." +
                              std::to_string(FCGI_VERSION_MINOR) + "." +
                              std::to_string(FCGI_VERSION_PATCH);
    BOOST_TEST(parts == FCGI_VERSION_STRING);
    BOOST_TEST(std::string(fcgi::version()) == FCGI_VERSION_STRING);
    BOOST_TEST(FCGI_VERSION ==
               FCGI_VERSION_MAJOR * 10000 + FCGI_VERSION_MINOR * 100 + FCGI_VERSION_PATCH);
}
