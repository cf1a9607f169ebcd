// Asks a FastCGI server what it supports (GET_VALUES) on a throw-away connection.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <chrono>
#include <system_error>
#include <utility>

#include "fcgi/detail/any_handler.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/protocol/record_bodies.hpp"

namespace fcgi {

/// How async_get_values behaves. Every field has a usable default.
struct get_values_options {
    /// Time allowed for resolving and connecting; error::connect_timeout after it.
    std::chrono::milliseconds connect_timeout{5000};
    /// A host name with several addresses: how long one may go unanswered before the next is
    /// tried beside it, as connection_options::connect_attempt_delay (zero: one at a time).
    std::chrono::milliseconds connect_attempt_delay{250};
    /// Deadline for the whole exchange, connecting included; error::request_timeout after it,
    /// or error::connect_timeout when the connect had not completed by then.
    /// Zero means no deadline (only connect_timeout then bounds anything).
    std::chrono::milliseconds timeout{5000};
};

namespace detail {

using get_values_handler = any_handler<void(std::error_code, protocol::get_values_result)>;

/// The non-template core of async_get_values (src/get_values.cpp). `slot` is the caller's
/// cancellation slot (may be unconnected).
void start_get_values(asio::any_io_executor ex, endpoint ep, get_values_options options,
                      get_values_handler handler, asio::cancellation_slot slot);

}  // namespace detail

/// Opens a new connection to `ep`, sends GET_VALUES for FCGI_MAX_CONNS, FCGI_MAX_REQS and
/// FCGI_MPXS_CONNS, waits for the GET_VALUES_RESULT record and closes the connection.
///
/// Never use a pooled connection for this: php-fpm dedicates a worker to each connection, and
/// other servers may close it after answering.
///
/// Handler: void(std::error_code, fcgi::protocol::get_values_result). On success the result
/// holds what the server reported; names it did not report stay empty (php-fpm 8.2 reports only
/// FCGI_MPXS_CONNS=0). Pairs of further GET_VALUES_RESULT records that arrive in the same read
/// as the first one are merged (Go's net/http/fcgi adds an empty one), up to the first other or
/// broken record; anything after the answer is ignored, broken or not, in whatever read it
/// comes. Errors: the system error of connecting (connection_refused, no such file for a
/// missing unix socket, ...), error::invalid_endpoint (one validate() refuses: built with
/// endpoint::unix_socket() or tcp(), parse() refuses it at once), error::connect_timeout,
/// error::request_timeout (the overall deadline passed), error::connection_lost (the server closed
/// before answering), error::unknown_type_reply (the server does not know GET_VALUES),
/// error::unexpected_record or error::unknown_record_type (any other record came back, or one of
/// these two with a request ID other than 0), and the decoder's protocol errors.
///
/// Cancellation: terminal, partial and total cancellation through the handler's slot stop the
/// exchange, close the connection and complete with asio::error::operation_aborted.
///
/// Executor: the I/O runs on a strand of `ex`; the handler runs on its associated executor
/// (`ex` when it has none) and never inside this call. Thread safety: may be called from any
/// thread; nothing is shared between calls.
template <ASIO_COMPLETION_TOKEN_FOR(void(std::error_code, protocol::get_values_result))
              Token = asio::default_completion_token_t<asio::any_io_executor>>
auto async_get_values(asio::any_io_executor ex, endpoint ep, get_values_options options = {},
                      Token&& token = {}) {
    return asio::async_initiate<Token, void(std::error_code, protocol::get_values_result)>(
        [](auto handler, asio::any_io_executor io, endpoint e, get_values_options opts) {
            auto slot = asio::get_associated_cancellation_slot(handler);
            detail::get_values_handler h(std::move(handler), io);
            detail::start_get_values(std::move(io), std::move(e), opts, std::move(h), slot);
        },
        token, std::move(ex), std::move(ep), options);
}

}  // namespace fcgi
