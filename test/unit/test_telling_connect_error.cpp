// detail::more_telling_connect_error: what a connect to several addresses reports when every one
// failed. The errors are the system ones a connect gives (asio::error's values).
#include <asio/error.hpp>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <system_error>

#include "fcgi/detail/telling_connect_error.hpp"

using fcgi::detail::more_telling_connect_error;

namespace {

const std::error_code refused = asio::error::connection_refused;
const std::error_code timed_out = asio::error::timed_out;
const std::error_code reset = asio::error::connection_reset;
const std::error_code unreachable = asio::error::network_unreachable;
const std::error_code no_family = asio::error::address_family_not_supported;
// ::1 on a host with IPv6 switched off: EADDRNOTAVAIL, "Cannot assign requested address", in
// Asio's system category as a connect reports it.
const std::error_code cannot_assign(EADDRNOTAVAIL, asio::error::get_system_category());

}  // namespace

BOOST_AUTO_TEST_SUITE(telling_connect_error)

// "localhost" as ::1 then 127.0.0.1, or the other way round, php-fpm down and no IPv6: the
// refusal is the news (nothing listens), whichever address failed last.
BOOST_AUTO_TEST_CASE(a_refusal_outranks_an_address_this_host_cannot_use) {
    BOOST_TEST(more_telling_connect_error(refused, cannot_assign) == refused);
    BOOST_TEST(more_telling_connect_error(cannot_assign, refused) == refused);
    BOOST_TEST(more_telling_connect_error(refused, no_family) == refused);
    BOOST_TEST(more_telling_connect_error(unreachable, refused) == refused);
}

BOOST_AUTO_TEST_CASE(the_order_is_refused_timed_out_other_unusable_none) {
    BOOST_TEST(more_telling_connect_error(refused, timed_out) == refused);
    BOOST_TEST(more_telling_connect_error(timed_out, reset) == timed_out);
    BOOST_TEST(more_telling_connect_error(reset, unreachable) == reset);
    BOOST_TEST(more_telling_connect_error(unreachable, reset) == reset);
    BOOST_TEST(more_telling_connect_error(std::error_code(), cannot_assign) == cannot_assign);
    BOOST_TEST(more_telling_connect_error(no_family, std::error_code()) == no_family);
}

// Two of a kind: the later one, as before the ranking (the last to fail).
// std::system_category() carries errno values too (the library's own system calls).
BOOST_AUTO_TEST_CASE(either_system_category_is_ranked_by_its_errno) {
    const std::error_code std_refused(ECONNREFUSED, std::system_category());
    BOOST_TEST(more_telling_connect_error(std_refused, cannot_assign) == std_refused);
    BOOST_TEST(more_telling_connect_error(reset, std_refused) == std_refused);
}

BOOST_AUTO_TEST_CASE(a_tie_keeps_the_later) {
    const std::error_code aborted_conn = asio::error::connection_aborted;
    BOOST_TEST(more_telling_connect_error(reset, aborted_conn) == aborted_conn);
    BOOST_TEST(more_telling_connect_error(unreachable, cannot_assign) == cannot_assign);
}

BOOST_AUTO_TEST_SUITE_END()
