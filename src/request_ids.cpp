#include "fcgi/detail/request_ids.hpp"

#include <algorithm>

#include "fcgi/protocol/types.hpp"

namespace fcgi::detail {

std::uint16_t request_ids::next(std::size_t index, std::uint16_t last) const noexcept {
    const std::uint32_t first = static_cast<std::uint32_t>(index) + 1u;
    std::uint32_t id = last == 0 ? first : last + slots_;
    // Each quarantined ID can push it one step further, so this many tries always find a free
    // one when there is one.
    for (std::size_t tries = 0; tries <= quarantined_.size(); ++tries) {
        if (id > protocol::max_request_id)
            id = first;
        if (!quarantined(static_cast<std::uint16_t>(id)))
            break;
        id += slots_;
    }
    return static_cast<std::uint16_t>(id > protocol::max_request_id ? first : id);
}

void request_ids::quarantine(std::uint16_t id) {
    if (quarantined_.size() == max_quarantined)
        quarantined_.erase(quarantined_.begin());
    quarantined_.push_back(id);
}

bool request_ids::quarantined(std::uint16_t id) const noexcept {
    return std::find(quarantined_.begin(), quarantined_.end(), id) != quarantined_.end();
}

}  // namespace fcgi::detail
