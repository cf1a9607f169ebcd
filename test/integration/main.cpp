#define BOOST_TEST_MODULE fcgi_integration_tests
#include <boost/test/unit_test.hpp>
