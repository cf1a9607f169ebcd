// Options of one FastCGI connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace fcgi {

/// Most requests one connection carries at once (connection_options::max_in_flight,
/// client_options::max_requests_per_connection; more is taken as this): each in-flight place
/// then has two of the 65535 request IDs at least, so an ID never comes back at once and a
/// record that comes late for an ended request cannot be taken for the next one's (see
/// docs/multiplexing.md, "Request IDs").
inline constexpr std::uint16_t max_in_flight_limit = 32767;

/// What a connection does with FCGI_STDERR past connection_options::max_stderr_size.
enum class stderr_overflow : std::uint8_t {
    /// Keep the first max_stderr_size bytes and drop the rest, counted in
    /// response::stderr_dropped; the request goes on. STDERR is the script's log, not its
    /// answer: a chatty script still gets its status and body.
    truncate,
    /// Fail the request with error::response_too_large; the script is stopped (the connection
    /// closed, or the request aborted on a multiplexed one).
    fail,
};

/// How a connection behaves. Every field has a usable default.
struct connection_options {
    /// Time allowed for resolving and connecting; error::connect_timeout after it. Zero or
    /// negative: no limit (the system's own, about two minutes for TCP).
    std::chrono::milliseconds connect_timeout{5000};
    /// A host name with several addresses (IPv6 and IPv4, say): how long a connect to one of
    /// them may go unanswered before the next address is tried beside it (RFC 8305's
    /// Connection Attempt Delay). The first to connect wins and the others are closed; a
    /// failure starts the next at once. The families alternate, starting with the resolver's
    /// first. Zero or negative: one address at a time, the next only after a failure, so one
    /// that drops the connect (a firewall) uses up connect_timeout. Every address failing, the
    /// connect reports the most telling failure: a refusal before a timeout before an address
    /// this machine cannot use.
    std::chrono::milliseconds connect_attempt_delay{250};
    /// Deadline of a request that sets none itself; zero (or negative) means no deadline.
    std::chrono::milliseconds request_timeout{0};
    /// Request IDs in flight at once. 1 (the default) is right for php-fpm, which cannot
    /// multiplex; more only for servers that report FCGI_MPXS_CONNS=1. At most
    /// max_in_flight_limit; 0 is taken as 1.
    std::uint16_t max_in_flight = 1;
    /// Largest STDOUT accepted per response (64 MiB); error::response_too_large beyond it.
    std::size_t max_stdout_size = 64u << 20;
    /// Most STDERR kept per response (1 MiB); what happens beyond it is on_stderr_overflow.
    std::size_t max_stderr_size = 1u << 20;
    /// STDERR past max_stderr_size: dropped and counted (the default), or a failed request.
    stderr_overflow on_stderr_overflow = stderr_overflow::truncate;
    /// Largest CGI response head (64 KiB); error::response_head_too_large beyond it.
    std::size_t max_head_size = 64u << 10;
    /// How long a multiplexing server may take to end a request after ABORT_REQUEST. Its ID
    /// stays taken until then; past it the connection takes no new requests (those waiting for a
    /// slot fail with error::not_connected) and is closed once its other requests are done, so
    /// a server that ignores aborts cannot use up every ID. Zero: no limit.
    std::chrono::milliseconds abort_timeout{2000};
    /// Size of the read buffer (64 KiB), allocated when the connection is made; records larger
    /// than it are handed on in pieces. Taken as 1 KiB when smaller and 16 MiB when larger:
    /// beyond that a read gains nothing (records are at most 64 KiB each).
    std::size_t read_buffer_size = 64u << 10;
    /// Bytes read from a request's body source per step (256 KiB; 0 is taken as 1); one such
    /// buffer, no larger than the body, exists per request streaming its body.
    std::size_t source_chunk_size = 256u << 10;
    /// STDOUT buffered for a request whose sink is busy (1 MiB). When a request's buffer is full
    /// the connection stops reading until its sink catches up (on a multiplexed connection this
    /// holds up the other requests too). 0: reading stops whenever a sink is behind at all.
    /// Checked after each read, so the buffer can reach this plus read_buffer_size, and the sink
    /// holds as much again while it writes: a slow sink costs up to about twice the sum.
    std::size_t sink_buffer_size = 1u << 20;
};

/// Counters of one connection, for pools and monitoring.
struct connection_stats {
    std::uint64_t requests_started = 0;    ///< requests whose first byte was written
    std::uint64_t requests_completed = 0;  ///< END_REQUEST received
    std::uint64_t bytes_written = 0;       ///< bytes written to the socket
    std::uint64_t bytes_read = 0;          ///< bytes read from the socket
};

}  // namespace fcgi
