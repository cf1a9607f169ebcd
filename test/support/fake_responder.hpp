// A scripted, fault-injecting FastCGI responder for tests. It listens on 127.0.0.1 and a unix
// socket, runs its own io_context on its own thread (so the client under test runs on another
// one), parses requests with the library's sans-io protocol code and answers each one with a
// script of actions chosen per request. Everything it saw is recorded for assertions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fcgi/endpoint.hpp"
#include "fcgi/protocol/types.hpp"
#include "fcgi/request.hpp"

namespace fcgi::test {

/// One request as the responder received it.
struct seen_request {
    std::size_t connection = 0;     ///< 1-based number of the accepted connection
    std::size_t index_on_conn = 0;  ///< 1-based number of this request on its connection
    std::uint16_t id = 0;
    protocol::role role = protocol::role::responder;
    protocol::begin_flags flags = protocol::begin_flags::none;
    std::vector<std::pair<std::string, std::string>> params;
    std::string stdin_data;
    std::string data;       ///< FILTER role: the DATA stream
    bool complete = false;  ///< PARAMS and STDIN (and DATA for FILTER) ended
    bool aborted = false;   ///< ABORT_REQUEST arrived for it
    bool refused = false;   ///< answered CANT_MPX_CONN at BEGIN_REQUEST

    /// The value of param `name`, if sent.
    std::optional<std::string> param(std::string_view name) const;
};

/// One step of the answer to a request. Build them with the act:: functions.
struct action {
    enum class kind {
        stdout_,         ///< STDOUT records carrying `bytes` (an empty one when `bytes` is empty)
        stderr_,         ///< STDERR records carrying `bytes`
        end_request,     ///< END_REQUEST with `status` and `app_status`
        raw,             ///< `bytes` written verbatim (garbage, hand-made records)
        delay,           ///< wait `delay` (a timer) before the next action
        close,           ///< flush what is queued, then close the connection
        endless_stdout,  ///< STDOUT records of `record_size` bytes until the client goes away or
                         ///< `cap` bytes were sent (STDERR records when `stream` says so)
        reset,           ///< write what is queued, then close with RST (SO_LINGER 0)
        wait_until,      ///< write what is queued, then wait until `until()` holds (20 s at most)
    };
    kind what = kind::raw;
    std::string bytes;
    std::optional<std::uint16_t> id;  ///< record request ID; default: the request's own
    protocol::protocol_status status = protocol::protocol_status::request_complete;
    std::uint32_t app_status = 0;
    std::chrono::milliseconds delay{0};
    std::size_t record_size = 65535;  ///< largest content per STDOUT/STDERR record
    std::size_t cap = 0;              ///< endless_stdout: stop after this many bytes
    char fill = 'x';                  ///< endless_stdout: the byte repeated
    /// endless_stdout: the record type sent (stdout_ or stderr_).
    protocol::record_type stream = protocol::record_type::stdout_;
    /// wait_until: polled on the responder's thread, so it reads what the test sets atomically.
    std::function<bool()> until;

    /// This action with its records sent under request ID `other` instead.
    action for_id(std::uint16_t other) const {
        action a = *this;
        a.id = other;
        return a;
    }
};

/// What to send for one request, in order. Empty: never answer (the request stays live until
/// ABORT_REQUEST or the connection ends).
using script = std::vector<action>;

namespace act {
action stdout_(std::string bytes, std::size_t record_size = 65535);
action stderr_(std::string bytes, std::size_t record_size = 65535);
action end(protocol::protocol_status status = protocol::protocol_status::request_complete,
           std::uint32_t app_status = 0);
action raw(std::string bytes);
action delay(std::chrono::milliseconds d);
/// Holds the rest of the script until the test says so: output that must come in a read of its
/// own, after the client has handled what came before, with no timing to guess.
action wait_until(std::function<bool()> ready);
action close();
action endless_stdout(std::size_t cap, std::size_t record_size = 16384, char fill = 'x');
/// endless_stdout with STDERR records: a flood of error output.
action endless_stderr(std::size_t cap, std::size_t record_size = 16384, char fill = 'e');
action reset();
}  // namespace act

/// The CGI head every echo response starts with.
inline constexpr std::string_view echo_head = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";

/// The body the echo script answers `r` with: "id=<X_ID>", plus "\nstdin=<stdin>" when a body
/// was sent.
std::string echo_body(const seen_request& r);

/// A request the default script answers with its X_ID param echoed: lets a test check that
/// every response was routed to its own request.
fcgi::request tagged_request(const std::string& id, std::string body = {});

/// The body the default script sends for tagged_request(id, body).
std::string tagged_body(const std::string& id, const std::string& body = {});

/// The default script: for RESPONDER, STDOUT with echo_head, STDOUT with echo_body (two records,
/// so multiplexed answers interleave), then END_REQUEST (no empty STDOUT, as php-fpm does); for
/// other roles END_REQUEST with UNKNOWN_ROLE.
script echo_script(const seen_request& r);

/// A whole record with a header of our choosing (any version), padded to 8.
std::string make_record(protocol::record_type type, std::uint16_t id, std::string_view content,
                        std::uint8_t version = protocol::version_1);

/// How output bytes are cut into writes.
enum class write_split {
    whole,       ///< each flush in one write
    every_byte,  ///< one write per byte
    random,      ///< writes of 1..random_max_fragment bytes (seeded)
};

/// Behaviour of a fake_responder. Every field has a default: an echoing, multiplexing server.
struct fake_responder_options {
    bool tcp = true;          ///< listen on 127.0.0.1:<ephemeral port>
    bool unix_socket = true;  ///< listen on a unix socket in a temp dir
    /// Chooses the answer to each request once its streams ended; empty means echo_script.
    /// Runs on the responder's thread.
    std::function<script(const seen_request&)> script_for;
    write_split split = write_split::whole;
    std::chrono::milliseconds fragment_delay{0};  ///< pause between fragments (split modes)
    std::size_t random_max_fragment = 64;
    std::uint32_t seed = 12345;
    /// Reads at most this many bytes at a time, pausing `read_pause` after each: a server that
    /// takes its input slowly, so the client's writes fill the socket buffer and finish later.
    std::size_t read_size = 16 * 1024;
    std::chrono::milliseconds read_pause{0};
    bool close_on_accept = false;          ///< close each connection as soon as it is accepted
    bool silent = false;                   ///< read and record everything, never write a byte
    std::string greeting;                  ///< bytes written right after accept
    std::size_t close_after_requests = 0;  ///< close after N END_REQUESTs on a connection (0: no)
    /// Unix sockets: after N END_REQUESTs on a connection, stop receiving (SHUT_RD) and keep it
    /// open without a word, so the client's next write fails whole (EPIPE) before its reader
    /// sees any end: a worker gone between requests, noticed by the write first. 0: no.
    std::size_t refuse_after_requests = 0;
    /// Live requests allowed per connection; one more gets END_REQUEST CANT_MPX_CONN at once
    /// (as libfcgi does). 0: no limit.
    std::size_t max_live_per_connection = 0;
    /// Multiplexing: gather up to this many finished requests (or whatever arrived within
    /// interleave_wait) and answer them newest first, one record of each in turn.
    std::size_t interleave = 1;
    std::chrono::milliseconds interleave_wait{2};
    bool answer_abort = true;  ///< answer ABORT_REQUEST of a live request with END_REQUEST
    /// Answer once PARAMS end, without waiting for STDIN (an early answer, as php-fpm's
    /// fastcgi_finish_request() gives); STDIN after the END_REQUEST counts as a violation.
    bool answer_at_params_end = false;
    /// GET_VALUES answers; a name left empty is omitted from the reply.
    std::optional<std::string> mpxs_conns = "1";
    std::optional<std::string> max_reqs = "100";
    std::optional<std::string> max_conns = "10";
    /// False: GET_VALUES is read and never answered (as libfcgi does with a lone GET_VALUES).
    bool answer_get_values = true;
    /// When set, written verbatim instead of the GET_VALUES_RESULT record built from the three
    /// fields above (a malformed answer).
    std::optional<std::string> get_values_reply;
};

/// A libfcgi-like server: one live request per connection, CANT_MPX_CONN for any other, echo
/// answers after 50 ms (so requests sent together overlap on the server).
fake_responder_options one_live_request_options();

/// What the responder has seen so far.
struct fake_snapshot {
    std::size_t connections_accepted = 0;
    std::size_t connections_closed_by_peer = 0;  ///< EOF or reset read from the client
    std::size_t get_values = 0;                  ///< GET_VALUES records received
    std::size_t max_live = 0;                    ///< most requests live at once on one connection
    std::size_t ends_sent = 0;                   ///< END_REQUEST records queued for live requests
    std::size_t endless_bytes = 0;               ///< STDOUT bytes written by endless_stdout actions
    std::vector<seen_request> requests;          ///< in order of BEGIN_REQUEST
    std::vector<std::pair<std::size_t, std::uint16_t>> aborts;  ///< (connection, request ID)
    /// Protocol rules the client broke: ID reuse while live, a PARAMS record splitting a pair,
    /// records for unknown requests, undecodable bytes.
    std::vector<std::string> violations;
};

/// The responder. Construct, point a client at tcp_endpoint() or unix_endpoint(), inspect with
/// snapshot()/wait_for(). The destructor stops its thread and removes its temp dir.
class fake_responder {
  public:
    explicit fake_responder(fake_responder_options options = {});
    ~fake_responder();
    fake_responder(const fake_responder&) = delete;
    fake_responder& operator=(const fake_responder&) = delete;

    /// 127.0.0.1:<port> (requires options.tcp).
    fcgi::endpoint tcp_endpoint() const;
    /// unix:<temp dir>/fcgi.sock (requires options.unix_socket).
    fcgi::endpoint unix_endpoint() const;

    /// A copy of everything recorded so far. Thread-safe.
    fake_snapshot snapshot() const;

    /// Blocks until `pred` holds for the recorded state (re-checked on every change) or
    /// `timeout` passes; returns whether it held. Thread-safe; `pred` runs under the lock and
    /// must not call back into the responder.
    bool wait_for(const std::function<bool(const fake_snapshot&)>& pred,
                  std::chrono::milliseconds timeout) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace fcgi::test
