#include "fcgi/version.hpp"

namespace fcgi {

const char* version() noexcept {
    return FCGI_VERSION_STRING;  // as the library was built, whatever headers the caller has
}

}  // namespace fcgi
