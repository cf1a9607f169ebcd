// Entry point of the unit tests: Boost.Test generates main() here, and only here.
#define BOOST_TEST_MODULE fcgi_unit_tests
#include <boost/test/unit_test.hpp>
