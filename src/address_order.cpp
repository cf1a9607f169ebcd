#include "fcgi/detail/address_order.hpp"

#include <cstddef>
#include <utility>

namespace fcgi::detail {

std::vector<asio::ip::tcp::endpoint> interleave_families(
    std::vector<asio::ip::tcp::endpoint> addresses) {
    if (addresses.size() < 3)
        return addresses;  // nothing to move: the first is first, the second second
    const bool first_v6 = addresses.front().address().is_v6();
    std::vector<asio::ip::tcp::endpoint> same, other;
    for (auto& a : addresses)
        (a.address().is_v6() == first_v6 ? same : other).push_back(std::move(a));
    std::vector<asio::ip::tcp::endpoint> out;
    out.reserve(addresses.size());
    for (std::size_t i = 0; i < same.size() || i < other.size(); ++i) {
        if (i < same.size())
            out.push_back(std::move(same[i]));
        if (i < other.size())
            out.push_back(std::move(other[i]));
    }
    return out;
}

}  // namespace fcgi::detail
