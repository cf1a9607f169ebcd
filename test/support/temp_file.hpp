// Temporary files and binary test data for tests.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <string>

namespace fcgi::test {

/// A file holding `content`, removed when the object goes.
struct temp_file {
    explicit temp_file(const std::string& content) {
        std::string templ = (std::filesystem::temp_directory_path() / "fcgi-test-XXXXXX").string();
        int fd = ::mkstemp(templ.data());
        BOOST_REQUIRE(fd >= 0);
        ::close(fd);
        path = templ;
        std::ofstream(path, std::ios::binary) << content;
    }
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    std::string path;
};

/// A fresh private directory (mkdtemp), removed with everything in it when the object goes,
/// whether or not the test reached its end.
struct temp_dir {
    temp_dir() {
        std::string templ = (std::filesystem::temp_directory_path() / "fcgi-test-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::filesystem::path path;
};

/// 64 KiB holding every byte value, NUL, CR, LF and invalid UTF-8 included.
inline std::string binary_data() {
    std::string s(64 * 1024, '\0');
    for (std::size_t i = 0; i < s.size(); ++i)
        s[i] = static_cast<char>((i * 7 + i / 256) & 0xff);
    return s;
}

/// A fresh path for a unix socket a test binds itself, or connects to where nothing listens:
/// inside a private directory, so no other process's file is there (a fixed name in the shared
/// temp dir could be); the directory, and a socket file binding left there, go with the object.
struct temp_socket_path {
    temp_dir dir;
    std::string path = (dir.path / "s.sock").string();
};

}  // namespace fcgi::test
