// The conformance peers and what differs between them: the per-server expectations the suite
// (test_conformance.cpp) checks, written down in one table beside it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgi/endpoint.hpp"
#include "fcgi/request.hpp"
#include "support/fake_responder.hpp"

namespace fcgi::conformance {

/// How a server answers a request whose role it was not written for (AUTHORIZER here).
enum class role_answer {
    unknown_role,  ///< END_REQUEST with FCGI_UNKNOWN_ROLE
    served,        ///< hands it to the application, which answers as usual (FCGI_ROLE set)
};

/// How a server takes ABORT_REQUEST for a request whose STDIN has ended (the client's only case:
/// it writes each request whole).
enum class abort_answer {
    not_applicable,  ///< no multiplexing: the client closes the connection instead
    end_request,     ///< answers END_REQUEST at once and drops the request
    ignored,         ///< ignores it; the application's answer comes later and is drained
};

/// What one server does, as far as the suite checks it.
struct peer_traits {
    std::string name;  ///< php-fpm, libfcgi, go, fake
    /// The GET_VALUES_RESULT pairs, in order, for the three names the client asks; nullopt when
    /// a lone GET_VALUES record is never answered.
    std::optional<std::vector<std::pair<std::string, std::string>>> get_values;
    bool multiplexes = false;  ///< reports FCGI_MPXS_CONNS=1 and serves interleaved requests
    /// The exact stderr_text of the "stderr" action (empty: the server offers no way to write
    /// FCGI_STDERR).
    std::string stderr_text;
    role_answer authorizer = role_answer::served;
    abort_answer abort = abort_answer::not_applicable;
    /// Mode `on` with several requests written at once on one connection: true when every one
    /// is answered (multiplexing, or CANT_MPX_CONN and the client's retry).
    bool survives_forced_multiplexing = false;
};

/// Every peer, in the order the suite runs them.
const std::vector<peer_traits>& all_peers();
/// The names of all_peers(), for BOOST_DATA_TEST_CASE.
std::vector<std::string> peer_names();
/// The entry named `name`; throws std::out_of_range for an unknown one.
const peer_traits& traits(std::string_view name);

/// How to start a peer; only the fake responder takes options.
struct start_options {
    /// Fake: live requests per connection before CANT_MPX_CONN (0: no limit).
    std::size_t fake_max_live_per_connection = 0;
};

/// A running peer, stopped when destroyed.
class running_peer {
  public:
    virtual ~running_peer() = default;
    /// Where to connect.
    virtual fcgi::endpoint endpoint() const = 0;
    /// The server's own log, for failure messages (empty when it has none).
    virtual std::string log() const = 0;
    /// The fake responder, for assertions on what it saw; nullptr for the other peers.
    virtual const fcgi::test::fake_responder* fake() const { return nullptr; }
};

/// Starts the peer named `name`: php-fpm and libfcgi on a unix socket, Go and the fake
/// responder on 127.0.0.1.
std::unique_ptr<running_peer> start_peer(std::string_view name, const start_options& opts = {});

/// A request of the contract: SCRIPT_FILENAME is the PHP contract script (the other peers
/// ignore it), CONF_ACTION=`action` unless empty (echo).
fcgi::request contract_request(std::string action = {});

/// The echo action's body for these inputs (the head is the peer's own).
std::string echo_text(std::string_view method, std::string_view query, std::string_view value,
                      std::string_view header, std::string_view big, std::string_view body);

/// The "big=" field of echo_text for params CONF_BIG_*: "count:total length:byte sum".
std::string big_summary(const std::vector<std::pair<std::string, std::string>>& params);

}  // namespace fcgi::conformance
