#include "fcgi/detail/unknown_type_reply.hpp"

#include <algorithm>
#include <cstdint>

#include "fcgi/error.hpp"
#include "fcgi/protocol/record_bodies.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

unknown_type_reading read_unknown_type(std::string_view content,
                                       std::span<const proto::record_type> sent,
                                       std::string_view peer) {
    std::uint8_t t = 0;
    if (auto ec = proto::parse_unknown_type(content, t))
        return {ec, "UNKNOWN_TYPE of " + std::to_string(content.size()) + " bytes from " +
                        std::string(peer) + " (8 expected)"};
    auto type = static_cast<proto::record_type>(t);
    std::string named = proto::is_known(type) ? std::string(proto::to_string(type)) + " (type " +
                                                    std::to_string(t) + ")"
                                              : "type " + std::to_string(t);
    if (std::find(sent.begin(), sent.end(), type) != sent.end())
        return {error::unknown_type_reply, "server at " + std::string(peer) +
                                               " answered UNKNOWN_TYPE for " + named +
                                               ": it does not implement that record"};
    return {error::unexpected_record, "UNKNOWN_TYPE from " + std::string(peer) + " names " + named +
                                          ", which this connection never sends"};
}

}  // namespace fcgi::detail
