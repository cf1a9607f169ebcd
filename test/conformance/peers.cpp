#include "peers.hpp"

#include <stdexcept>

#include "peer_process.hpp"
#include "support/php_fpm.hpp"

namespace fcgi::conformance {
namespace {

namespace act = fcgi::test::act;
using fcgi::protocol::protocol_status;
using fcgi::test::seen_request;

std::string param_or_empty(const seen_request& r, std::string_view name) {
    return r.param(name).value_or("");
}

// The fake responder's side of the contract (README.md), the same answers as the other peers.
fcgi::test::script fake_contract(const seen_request& r) {
    if (r.role != fcgi::protocol::role::responder)
        return {act::end(protocol_status::unknown_role)};
    auto action = param_or_empty(r, "CONF_ACTION");
    if (action == "status")
        return {act::stdout_("Status: " + param_or_empty(r, "CONF_STATUS") +
                             " Custom\r\nContent-Type: text/plain\r\nX-Conf-Multi: a\r\n"
                             "X-Conf-Multi: b\r\n\r\nstatus"),
                act::end()};
    if (action == "stderr")
        return {act::stderr_("conformance stderr"),
                act::stdout_("Content-Type: text/plain\r\n\r\nstderr"), act::end()};
    if (action == "hold")
        return {};  // answered only by ABORT_REQUEST
    // Head and body in two records, so multiplexed answers interleave record by record.
    return {act::stdout_("Content-Type: text/plain\r\nX-Conf-Peer: fake\r\n\r\n"),
            act::stdout_(
                echo_text(param_or_empty(r, "REQUEST_METHOD"), param_or_empty(r, "QUERY_STRING"),
                          param_or_empty(r, "CONF_VALUE"), param_or_empty(r, "HTTP_X_CONF"),
                          big_summary(r.params), r.stdin_data)),
            act::end()};
}

class php_fpm_peer final : public running_peer {
  public:
    // Three workers: the widest pool here is two kept connections, plus the probe's own.
    php_fpm_peer() : fpm_({.children = 3, .tcp = false}) {}
    fcgi::endpoint endpoint() const override { return fcgi::endpoint::parse(fpm_.unix_endpoint()); }
    std::string log() const override { return fpm_.log(); }

  private:
    fcgi::test::php_fpm fpm_;
};

class process_peer final : public running_peer {
  public:
    process_peer(std::string program, fcgi::test::listen_on where)
        : proc_(std::move(program), where) {}
    fcgi::endpoint endpoint() const override { return proc_.endpoint(); }
    std::string log() const override { return proc_.log(); }

  private:
    fcgi::test::peer_process proc_;
};

class fake_peer final : public running_peer {
  public:
    explicit fake_peer(const start_options& opts) : fake_(options(opts)) {}
    fcgi::endpoint endpoint() const override { return fake_.tcp_endpoint(); }
    std::string log() const override { return {}; }
    const fcgi::test::fake_responder* fake() const override { return &fake_; }

  private:
    static fcgi::test::fake_responder_options options(const start_options& opts) {
        fcgi::test::fake_responder_options o;
        o.unix_socket = false;
        o.script_for = fake_contract;
        o.max_live_per_connection = opts.fake_max_live_per_connection;
        o.interleave = 8;  // answer up to 8 requests at once, one record of each in turn
        return o;
    }
    fcgi::test::fake_responder fake_;
};

}  // namespace

const std::vector<peer_traits>& all_peers() {
    using gv = std::vector<std::pair<std::string, std::string>>;
    static const std::vector<peer_traits> peers{
        {.name = "php-fpm",
         .get_values = gv{{"FCGI_MPXS_CONNS", "0"}},
         .multiplexes = false,
         .stderr_text = "PHP message: conformance stderr",
         .authorizer = role_answer::served,
         .abort = abort_answer::not_applicable,
         // php-fpm reads exactly one request's records at a time, so whole requests written
         // back to back are served in turn (pipelining); interleaved records would not be.
         .survives_forced_multiplexing = true},
        // libfcgi 2.4.2 reads ahead before it notices the end of a GET_VALUES record, so a
        // lone GET_VALUES is answered (MAX_CONNS=1, MAX_REQS=1, MPXS_CONNS=0) only when more
        // bytes follow: the probe times out. A request that arrives in the same read as the one
        // before it is lost: it sits in that one's input buffer, which FCGX_Finish_r frees.
        {.name = "libfcgi",
         .get_values = std::nullopt,
         .multiplexes = false,
         .stderr_text = "conformance stderr",
         .authorizer = role_answer::served,
         .abort = abort_answer::not_applicable,
         .survives_forced_multiplexing = false},
        // net/http/fcgi answers GET_VALUES with FCGI_MPXS_CONNS=1 whatever was asked, offers
        // no way to write FCGI_STDERR, and forgets a request once its STDIN ended, so a later
        // ABORT_REQUEST is ignored and the handler's answer still comes.
        {.name = "go",
         .get_values = gv{{"FCGI_MPXS_CONNS", "1"}},
         .multiplexes = true,
         .stderr_text = "",
         .authorizer = role_answer::unknown_role,
         .abort = abort_answer::ignored,
         .survives_forced_multiplexing = true},
        {.name = "fake",
         .get_values =
             gv{{"FCGI_MAX_CONNS", "10"}, {"FCGI_MAX_REQS", "100"}, {"FCGI_MPXS_CONNS", "1"}},
         .multiplexes = true,
         .stderr_text = "conformance stderr",
         .authorizer = role_answer::unknown_role,
         .abort = abort_answer::end_request,
         .survives_forced_multiplexing = true},
    };
    return peers;
}

std::vector<std::string> peer_names() {
    std::vector<std::string> names;
    for (const auto& p : all_peers())
        names.push_back(p.name);
    return names;
}

const peer_traits& traits(std::string_view name) {
    for (const auto& p : all_peers())
        if (p.name == name)
            return p;
    throw std::out_of_range("no conformance peer named " + std::string(name));
}

std::unique_ptr<running_peer> start_peer(std::string_view name, const start_options& opts) {
    if (name == "php-fpm")
        return std::make_unique<php_fpm_peer>();
    if (name == "libfcgi")
        return std::make_unique<process_peer>(FCGI_CONF_LIBFCGI_RESPONDER,
                                              fcgi::test::listen_on::unix_socket);
    if (name == "go")
        return std::make_unique<process_peer>(FCGI_CONF_GO_RESPONDER, fcgi::test::listen_on::tcp);
    if (name == "fake")
        return std::make_unique<fake_peer>(opts);
    throw std::out_of_range("no conformance peer named " + std::string(name));
}

fcgi::request contract_request(std::string action) {
    fcgi::request req;
    req.script = FCGI_CONF_PHP_SCRIPT;
    if (!action.empty())
        req.params.emplace_back("CONF_ACTION", std::move(action));
    return req;
}

std::string echo_text(std::string_view method, std::string_view query, std::string_view value,
                      std::string_view header, std::string_view big, std::string_view body) {
    std::string s;
    s.reserve(64 + method.size() + query.size() + value.size() + header.size() + body.size());
    s.append("method=").append(method).append("\nquery=").append(query);
    s.append("\nvalue=").append(value).append("\nheader=").append(header);
    s.append("\nbig=").append(big).append("\nbody=").append(body);
    return s;
}

std::string big_summary(const std::vector<std::pair<std::string, std::string>>& params) {
    unsigned long count = 0, total = 0;
    std::uint32_t sum = 0;
    for (const auto& [name, value] : params) {
        if (!name.starts_with("CONF_BIG_"))
            continue;
        ++count;
        total += value.size();
        for (unsigned char c : value)
            sum += c;
    }
    return std::to_string(count) + ":" + std::to_string(total) + ":" + std::to_string(sum);
}

}  // namespace fcgi::conformance
