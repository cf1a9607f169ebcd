#include "fcgi/detail/endpoint_backoff.hpp"

#include <algorithm>

namespace fcgi::detail {

void endpoint_backoff::refused(clock::time_point now, ms initial, ms max, double share) noexcept {
    if (now < down_until_)
        return;
    backoff_ = backoff_.count() == 0 ? initial : std::min(backoff_ * 2, max);
    auto hold = std::chrono::duration_cast<ms>(backoff_ * std::clamp(share, 0.0, 1.0));
    down_until_ = now + std::max(hold, ms(1));
    held_over_ = false;
}

void endpoint_backoff::failed_over(clock::time_point now, ms initial, ms max,
                                   double share) noexcept {
    failing_ = true;
    if (now < down_until_)
        return;
    refused(now, initial, max, share);
    held_over_ = true;
}

void endpoint_backoff::connected() noexcept {
    transient_backoff_ = {};
    if (!failing_)
        backoff_ = {};
    down_until_ = {};
}

void endpoint_backoff::backlog_full(clock::time_point now) noexcept {
    transient_backoff_ = std::clamp(transient_backoff_ * 2, ms(2), ms(100));
    grow_after_ = now + transient_backoff_;
}

void endpoint_backoff::overloaded(clock::time_point now, ms initial) noexcept {
    overloaded_until_ = now + std::max(backoff_, initial);
}

void endpoint_backoff::expire(lazy_now& now) noexcept {
    for (auto* t : {&down_until_, &overloaded_until_, &grow_after_})
        if (!now.before(*t))
            *t = {};
}

endpoint_backoff::clock::time_point endpoint_backoff::next_end(lazy_now& now) const {
    auto earliest = clock::time_point::max();
    for (auto t : {down_until_, overloaded_until_, grow_after_})
        if (now.before(t))
            earliest = std::min(earliest, t);
    return earliest;
}

}  // namespace fcgi::detail
