#define BOOST_TEST_MODULE fcgi_conformance_tests
#include <boost/test/unit_test.hpp>
