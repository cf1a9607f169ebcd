// `--data @-` and size-less files: read into memory, bounded (tools/fcgi/read_body.cpp).
#include "fcgi/read_body.hpp"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <memory>
#include <string>

namespace {

struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

// An unnamed temporary file holding `bytes`, read from its start.
file_ptr holding(const std::string& bytes) {
    file_ptr f(std::tmpfile());
    BOOST_REQUIRE(f);
    BOOST_REQUIRE_EQUAL(std::fwrite(bytes.data(), 1, bytes.size(), f.get()), bytes.size());
    std::rewind(f.get());
    return f;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(read_body)

BOOST_AUTO_TEST_CASE(reads_binary_bytes_to_the_end) {
    std::string bytes("a\0b\r\n", 5);
    bytes += std::string(200000, 'x');  // several reads of 64 KiB
    auto f = holding(bytes);
    std::string out, why;
    BOOST_TEST(fcgi_cli::read_body(f.get(), "stdin", out, why));
    BOOST_TEST(out == bytes);
    BOOST_TEST(why.empty());
}

BOOST_AUTO_TEST_CASE(an_empty_source_is_an_empty_body) {
    auto f = holding("");
    std::string out, why;
    BOOST_TEST(fcgi_cli::read_body(f.get(), "stdin", out, why));
    BOOST_TEST(out.empty());
}

// Exactly the limit is read; one byte more is refused with advice, not taken into memory.
BOOST_AUTO_TEST_CASE(a_source_longer_than_the_limit_is_refused) {
    std::string out, why;
    auto exact = holding(std::string(100000, 'y'));
    BOOST_TEST(fcgi_cli::read_body(exact.get(), "stdin", out, why, 100000));
    BOOST_TEST(out.size() == 100000u);

    out.clear();
    auto over = holding(std::string(100001, 'y'));
    BOOST_TEST(!fcgi_cli::read_body(over.get(), "'/dev/zero'", out, why, 100000));
    BOOST_TEST(out.size() <= 100000u);
    BOOST_TEST(why ==
               "'/dev/zero' gave more than 100000 bytes, the most --data reads into memory (it "
               "has no length to send first): save it to a regular file and give --data @FILE, "
               "whose length is known");
}

BOOST_AUTO_TEST_CASE(a_read_error_is_named) {
    // A stream opened for writing only: fread fails and sets the error flag.
    file_ptr f(std::fopen("/dev/null", "w"));
    BOOST_REQUIRE(f);
    std::string out, why;
    BOOST_TEST(!fcgi_cli::read_body(f.get(), "stdin", out, why));
    BOOST_TEST(why.starts_with("cannot read stdin for --data: "));
}

BOOST_AUTO_TEST_SUITE_END()
