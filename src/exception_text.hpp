// A caught exception in words, for diagnostics: a user's coroutine source or sink throws, and
// the request's error alone would not say what went wrong.
#pragma once

#include <exception>
#include <string>

namespace fcgi::detail {

/// "threw: <what()>" for a std::exception, "threw an exception" for anything else.
inline std::string exception_text(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return std::string("threw: ") + x.what();
    } catch (...) {
        return "threw an exception";
    }
}

}  // namespace fcgi::detail
