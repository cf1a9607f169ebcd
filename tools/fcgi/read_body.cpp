#include "read_body.hpp"

#include <cerrno>
#include <cstring>
#include <new>

namespace fcgi_cli {

namespace {

// "1 GiB" for the default limit, the byte count otherwise.
std::string size_text(std::size_t bytes) {
    if (bytes >= (std::size_t(1) << 30) && bytes % (std::size_t(1) << 30) == 0)
        return std::to_string(bytes >> 30) + " GiB";
    return std::to_string(bytes) + " bytes";
}

// A regular file has a length: `fcgi request` streams it, bench holds it whatever its size.
constexpr const char* use_a_file =
    ": save it to a regular file and give --data @FILE, whose length is known";

}  // namespace

bool read_body(std::FILE* f, const std::string& what, std::string& out, std::string& why,
               std::size_t limit) {
    char buf[1 << 16];
    std::size_t n = 0;
    try {
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            if (n > limit - out.size()) {
                why = what + " gave more than " + size_text(limit) +
                      ", the most --data reads into memory (it has no length to send first)" +
                      use_a_file;
                return false;
            }
            out.append(buf, n);
        }
    } catch (const std::bad_alloc&) {
        const std::size_t read = out.size();
        out = std::string();  // first: building the message below needs memory too
        why = "out of memory after reading " + std::to_string(read) + " bytes of " + what +
              " for --data" + use_a_file;
        return false;
    }
    if (std::ferror(f)) {
        why = "cannot read " + what + " for --data: " + std::strerror(errno);
        return false;
    }
    return true;
}

}  // namespace fcgi_cli
