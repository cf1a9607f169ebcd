// detail::interleave_families: the order a host name's addresses are tried in.
#include <asio/ip/tcp.hpp>
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "fcgi/detail/address_order.hpp"

using fcgi::detail::interleave_families;
using tcp = asio::ip::tcp;

namespace {

std::vector<tcp::endpoint> addresses(std::vector<std::string> texts) {
    std::vector<tcp::endpoint> out;
    for (const auto& t : texts)
        out.emplace_back(asio::ip::make_address(t), 9000);
    return out;
}

std::vector<std::string> texts(const std::vector<tcp::endpoint>& in) {
    std::vector<std::string> out;
    for (const auto& e : in)
        out.push_back(e.address().to_string());
    return out;
}

std::vector<std::string> order(std::vector<std::string> in) {
    return texts(interleave_families(addresses(std::move(in))));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(address_order)

BOOST_AUTO_TEST_CASE(families_alternate_from_the_first_ones) {
    std::vector<std::string> want{"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"};
    BOOST_TEST(order({"2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"}) == want,
               boost::test_tools::per_element());
    std::vector<std::string> v4_first{"192.0.2.1", "::1", "192.0.2.2", "192.0.2.3"};
    BOOST_TEST(order({"192.0.2.1", "192.0.2.2", "192.0.2.3", "::1"}) == v4_first,
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(each_family_keeps_its_order_and_leftovers_come_last) {
    std::vector<std::string> want{"::3", "192.0.2.9", "::1", "::2"};
    BOOST_TEST(order({"::3", "192.0.2.9", "::1", "::2"}) == want, boost::test_tools::per_element());
    std::vector<std::string> mixed{"::1", "10.0.0.1", "::2", "10.0.0.2", "10.0.0.3"};
    BOOST_TEST(order({"::1", "10.0.0.1", "10.0.0.2", "::2", "10.0.0.3"}) == mixed,
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(one_family_or_few_addresses_are_left_as_they_are) {
    std::vector<std::string> v4{"10.0.0.3", "10.0.0.1", "10.0.0.2"};
    BOOST_TEST(order(v4) == v4, boost::test_tools::per_element());
    std::vector<std::string> two{"127.0.0.1", "::1"};
    BOOST_TEST(order(two) == two, boost::test_tools::per_element());
    BOOST_TEST(order({"::1"}) == std::vector<std::string>{"::1"}, boost::test_tools::per_element());
    BOOST_TEST(interleave_families({}).empty());
}

BOOST_AUTO_TEST_CASE(ports_travel_with_their_addresses) {
    std::vector<tcp::endpoint> in{{asio::ip::make_address("::1"), 1},
                                  {asio::ip::make_address("::2"), 2},
                                  {asio::ip::make_address("127.0.0.1"), 3}};
    auto out = interleave_families(in);
    BOOST_REQUIRE(out.size() == 3u);
    BOOST_TEST(out[0].port() == 1);
    BOOST_TEST(out[1].port() == 3);
    BOOST_TEST(out[2].port() == 2);
}

BOOST_AUTO_TEST_SUITE_END()
