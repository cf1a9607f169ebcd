#include "fcgi/detail/probe_verdict.hpp"

#include <asio/error.hpp>

#include "fcgi/error.hpp"

namespace fcgi::detail {

namespace {

// Errors after the server accepted the connection: it is up, whatever it did next.
bool accepted_then_failed(std::error_code ec) noexcept {
    return ec == error::connection_lost || ec == error::not_connected ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::error::connection_aborted;
}

}  // namespace

bool backlog_full(const endpoint& where, std::error_code ec) noexcept {
    return where.type == endpoint::kind::unix_socket &&
           (ec == asio::error::no_buffer_space || ec == asio::error::try_again ||
            ec == asio::error::would_block);
}

probe_verdict judge_probe(const endpoint& where, std::error_code ec,
                          std::chrono::milliseconds probe_timeout,
                          std::chrono::milliseconds connect_timeout) noexcept {
    if (!ec)
        return probe_verdict::settled;
    if (backlog_full(where, ec))
        return probe_verdict::ask_again_soon;
    // The question's own deadline, shorter than the connect's, ended the connect: the endpoint
    // is slow, not refusing, and the pool's connects get the whole connect_timeout.
    const bool probe_deadline_ended_connect =
        ec == error::connect_timeout &&
        (connect_timeout.count() <= 0 || probe_timeout < connect_timeout);
    if (ec == condition::transport_error && !accepted_then_failed(ec) &&
        !probe_deadline_ended_connect)
        return probe_verdict::down;
    return probe_verdict::settled;
}

}  // namespace fcgi::detail
