#define BOOST_TEST_MODULE fcgi_integration_tests
#include <boost/test/unit_test.hpp>

#include "support/crash_report.hpp"
using fcgi::test::crash_report;
BOOST_TEST_GLOBAL_FIXTURE(crash_report);
