// The order in which a host name's addresses are tried: alternating between IPv6 and IPv4, so
// that a family that does not work costs one attempt delay, not one per address of it.
#pragma once

#include <asio/ip/tcp.hpp>
#include <vector>

namespace fcgi::detail {

/// `addresses` (the resolver's order, best first) with the two families alternating, starting
/// with the family of the first; each family keeps its own order, and whatever one family has
/// left over comes last (RFC 8305, section 4, with a First Address Family Count of 1).
std::vector<asio::ip::tcp::endpoint> interleave_families(
    std::vector<asio::ip::tcp::endpoint> addresses);

}  // namespace fcgi::detail
