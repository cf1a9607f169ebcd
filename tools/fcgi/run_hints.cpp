#include "run_hints.hpp"

namespace fcgi_cli {

std::string recycle_hint(std::uint64_t lost, std::uint64_t recycle_after, bool multiplexed) {
    if (lost == 0 || recycle_after > 0 || multiplexed)
        return {};
    return "hint: " + std::to_string(lost) + (lost == 1 ? " request" : " requests") +
           " failed with connection_lost: if php-fpm recycles its workers "
           "(pm.max_requests = N), --recycle-after N closes most connections before php-fpm does";
}

}  // namespace fcgi_cli
