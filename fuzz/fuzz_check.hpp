// Invariant checks shared by the fuzz targets.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string_view>

namespace fcgi::fuzz {

/// Aborts so libFuzzer saves the input; the message names the target and the invariant.
inline void check(bool ok, const char* target, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "%s invariant broken: %s\n", target, what);
        std::abort();
    }
}

/// True when `inner` lies inside `outer` (an empty view lies anywhere).
inline bool within(std::string_view inner, std::string_view outer) {
    if (inner.empty())
        return true;
    std::less_equal<const char*> le;
    return le(outer.data(), inner.data()) &&
           le(inner.data() + inner.size(), outer.data() + outer.size());
}

}  // namespace fcgi::fuzz
