// md5 checksums for tests, computed by coreutils' md5sum: an oracle independent of PHP and of
// the library.
#pragma once

#include <boost/test/unit_test.hpp>
#include <string>

#include "support/spawn.hpp"

namespace fcgi::test {

/// The md5 of `data`, as 32 hex digits.
inline std::string md5_of(const std::string& data) {
    run_spec spec;
    spec.program = "/usr/bin/md5sum";
    spec.input = data;
    auto r = run_child(spec);
    BOOST_REQUIRE_EQUAL(r.exit_code, 0);
    return r.out.substr(0, 32);
}

/// The md5 of the file at `path`, as 32 hex digits.
inline std::string md5_of_file(const std::string& path) {
    run_spec spec;
    spec.program = "/usr/bin/md5sum";
    spec.args = {path};
    spec.limit = std::chrono::seconds(120);
    auto r = run_child(spec);
    BOOST_REQUIRE_EQUAL(r.exit_code, 0);
    return r.out.substr(0, 32);
}

}  // namespace fcgi::test
