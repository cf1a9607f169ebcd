// prepared_request: the same checks and params as a send derives, done once; shared state.
#include <boost/test/unit_test.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "fcgi/detail/cgi_params.hpp"
#include "fcgi/error.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/protocol/name_value.hpp"

namespace {

using namespace std::string_literals;

fcgi::request typical() {
    fcgi::request req;
    req.script = "/srv/app/index.php";
    req.query = "a=1";
    req.body = "x=1";
    req.headers = {{"Host", "localhost"}, {"Content-Type", "text/plain"}};
    req.params = {{"APP_ENV", "test"}};
    return req;
}

// The pairs of every record, decoded.
std::vector<fcgi::protocol::name_value> pairs_of(const fcgi::protocol::encoded_params& pre) {
    std::vector<fcgi::protocol::name_value> out;
    for (std::size_t i = 0; i < pre.record_count(); ++i) {
        fcgi::protocol::name_value_reader r(pre.record(i));
        for (fcgi::protocol::name_value nv; r.next(nv);)
            out.push_back(nv);
        BOOST_TEST(!r.error());
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(prepared_request)

BOOST_AUTO_TEST_CASE(params_are_those_a_send_derives) {
    fcgi::request req = typical();
    fcgi::detail::cgi_params derived;
    derived.build(req);
    std::vector<fcgi::protocol::name_value> expected(derived.params().begin(),
                                                     derived.params().end());

    fcgi::prepared_request prepared;
    BOOST_TEST(!prepared);
    std::string why;
    BOOST_TEST(!fcgi::prepare_request(req, prepared, why));
    BOOST_REQUIRE(prepared);
    BOOST_TEST(pairs_of(prepared.params()) == expected);
    BOOST_TEST(prepared.get().script == req.script);
    BOOST_TEST(prepared.get().body == "x=1");
}

BOOST_AUTO_TEST_CASE(copies_share_one_state) {
    fcgi::prepared_request a(typical());
    fcgi::prepared_request b = a;
    BOOST_TEST(&a.get() == &b.get());
    BOOST_TEST(&a.params() == &b.params());
    fcgi::prepared_request c = std::move(a);
    BOOST_TEST(!a);  // NOLINT(bugprone-use-after-move): moved from is empty, as documented
    BOOST_TEST(&c.get() == &b.get());
}

BOOST_AUTO_TEST_CASE(what_validate_rejects_is_rejected) {
    fcgi::request req = typical();
    req.script = "index.php";
    fcgi::prepared_request prepared;
    std::string why;
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(why.find("absolute path") != std::string::npos, why);
    BOOST_TEST(!prepared);

    req = typical();
    req.headers.push_back({"X-Bad", "a\r\nb"});
    why.clear();
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(why.find("X-Bad") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(a_failure_leaves_the_output_unchanged) {
    fcgi::prepared_request prepared(typical());
    const fcgi::request* before = &prepared.get();
    fcgi::request bad = typical();
    bad.script.clear();
    std::string why;
    BOOST_TEST(fcgi::prepare_request(bad, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(&prepared.get() == before);
}

BOOST_AUTO_TEST_CASE(streams_cannot_be_prepared) {
    fcgi::request req = typical();
    req.body.clear();
    req.stdin_source = fcgi::body_source::producer(
        3, [](asio::mutable_buffer, fcgi::source_read_handler done) { done({}, 0); });
    fcgi::prepared_request prepared;
    std::string why;
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(why.find("cannot stream") != std::string::npos, why);

    req = typical();
    req.stdout_sink = fcgi::body_sink::consumer(
        [](std::string_view, fcgi::sink_write_handler done) { done({}); });
    why.clear();
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(why.find("cannot stream") != std::string::npos, why);
    BOOST_TEST(!prepared);
}

BOOST_AUTO_TEST_CASE(a_contradicting_content_length_is_rejected) {
    fcgi::request req = typical();
    req.headers.push_back({"Content-Length", "99"});
    fcgi::prepared_request prepared;
    std::string why;
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::invalid_request);
    BOOST_TEST(why.find("Content-Length") != std::string::npos, why);
}

BOOST_AUTO_TEST_CASE(a_param_too_large_is_named) {
    fcgi::request req = typical();
    req.params.push_back({"HUGE_PARAM", std::string(70000, 'v')});
    fcgi::prepared_request prepared;
    std::string why;
    BOOST_TEST(fcgi::prepare_request(req, prepared, why) == fcgi::error::param_too_large);
    BOOST_TEST(why.find("HUGE_PARAM") != std::string::npos, why);
    BOOST_TEST(why.find("HUGE_PARAM (from request::params) takes") != std::string::npos, why);
    BOOST_TEST(!prepared);
    // A raw param with a derived param's name is still the caller's (it was blamed on
    // request::script and request::query, request::headers, ...).
    for (const char* name : {"REQUEST_URI", "HTTP_X_FOO", "DOCUMENT_ROOT", "SCRIPT_NAME"}) {
        fcgi::request raw = typical();
        raw.params.push_back({name, std::string(70000, 'v')});
        BOOST_TEST(fcgi::prepare_request(raw, prepared, why) == fcgi::error::param_too_large);
        BOOST_TEST(why.find(std::string("param ") + name + " (from request::params) takes") !=
                       std::string::npos,
                   why);
    }

    // A param the library derives names the request field it came from.
    fcgi::request long_query = typical();
    long_query.query = "q=" + std::string(70000, 'x');
    BOOST_TEST(fcgi::prepare_request(long_query, prepared, why) == fcgi::error::param_too_large);
    BOOST_TEST(why.find("param REQUEST_URI (from request::script and request::query) takes") !=
                   std::string::npos,
               why);
}

BOOST_AUTO_TEST_CASE(the_constructor_throws_what_prepare_request_returns) {
    fcgi::request req = typical();
    req.method = "GE T";
    try {
        fcgi::prepared_request prepared(req);
        BOOST_FAIL("no exception");
    } catch (const std::system_error& e) {
        BOOST_TEST(e.code() == fcgi::error::invalid_request);
        BOOST_TEST(std::string(e.what()).find("GE T") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_SUITE_END()
