// A caught exception in words, for diagnostics: a user's source or sink throws, and the
// request's error alone would not say what went wrong.
#pragma once

#include <exception>
#include <string>
#include <system_error>
#include <utility>

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

/// Calls into a user's source or sink: an exception thrown there fails its request with
/// `failed`, and `why` names `who` and the exception, instead of unwinding through the
/// connection's read loop, which would leave it half way through a buffer.
template <class F>
std::error_code call_user(const char* who, std::error_code failed, std::string& why, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (...) {
        why = std::string(who) + " " + exception_text(std::current_exception());
    }
    return failed;
}

}  // namespace fcgi::detail
