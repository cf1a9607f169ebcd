#include "fcgi/get_values.hpp"

#include <array>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string_view>
#include <variant>

#include "fcgi/detail/capped_duration.hpp"
#include "fcgi/detail/unknown_type_reply.hpp"
#include "fcgi/error.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "stream_socket.hpp"

namespace fcgi::detail {
namespace {

namespace proto = fcgi::protocol;
using namespace asio::experimental::awaitable_operators;

using strand_type = asio::strand<asio::any_io_executor>;
using socket_type = stream_socket;
// Every operation reports its error as a value: an exception in one branch of `||` would make
// the group wait for the other branch (the deadline) instead of finishing.
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Shared by the coroutine's completion and the caller's cancellation slot.
struct op_state {
    explicit op_state(get_values_handler h) : handler(std::move(h)) {}
    get_values_handler handler;
    asio::cancellation_signal signal;  // bound to the coroutine
    bool done = false;
};

// Installed in the caller's slot; hops onto the strand, where the coroutine lives. Weak: a
// caller's handler may own the signal that holds this, and the state holds that handler.
struct canceller {
    std::weak_ptr<op_state> state;
    strand_type strand;
    void operator()(asio::cancellation_type type) const {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
            return;
        auto s = state.lock();
        if (!s)
            return;  // completed and gone
        asio::post(strand, [s = std::move(s)] {
            // co_spawn accepts only terminal cancellation by default; partial and total mean
            // the same thing here, since a half-done probe has no state worth keeping.
            if (!s->done)
                s->signal.emit(asio::cancellation_type::terminal);
        });
    }
};

asio::awaitable<std::error_code> connect_socket(socket_type& sock, const endpoint& ep,
                                                std::chrono::milliseconds attempt_delay) {
    asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
    auto [ec] = co_await async_connect_endpoint(sock, resolver, ep, attempt_delay, use_tuple);
    co_return ec;
}

// Reads until the first GET_VALUES_RESULT record; merges further ones from the same read, up to
// the first other or broken record.
asio::awaitable<std::error_code> read_result(socket_type& sock, proto::get_values_result& out) {
    proto::record_decoder decoder;
    std::array<char, 4096> buffer;
    for (;;) {
        auto [ec, n] = co_await sock.async_read_some(asio::buffer(buffer), use_tuple);
        if (ec)
            co_return map_stream_error(ec);
        std::string_view in(buffer.data(), n);
        bool answered = false;
        while (!in.empty()) {
            auto r = decoder.feed(in);
            in.remove_prefix(r.consumed);
            // Anything after the answer, broken or not, is no concern of a closing probe: the
            // outcome must not depend on whether it came in the answer's read or a later one.
            if (r.ec) {
                if (answered)
                    break;
                co_return r.ec;
            }
            if (!r.has_piece)
                continue;
            const auto& h = r.piece.header;
            // Management records carry request ID 0: one with another ID answers no GET_VALUES.
            const bool management = h.request_id == proto::management_id;
            if (management && h.type == proto::record_type::get_values_result) {
                // Merged only when it parses whole: a broken later record adds nothing.
                auto merged = out;
                if (auto pec = proto::parse_get_values_result(r.piece.content, merged)) {
                    if (answered)
                        break;
                    co_return pec;
                }
                out = std::move(merged);
                answered = true;
                continue;
            }
            if (answered)
                break;
            if (management && h.type == proto::record_type::unknown_type) {
                // Only GET_VALUES was sent. The handler carries no text, so only the code is
                // kept.
                static constexpr proto::record_type sent[] = {proto::record_type::get_values};
                co_return read_unknown_type(r.piece.content, sent, {}).ec;
            }
            co_return proto::is_known(h.type) ? std::error_code(error::unexpected_record)
                                              : std::error_code(error::unknown_record_type);
        }
        if (answered)
            co_return std::error_code{};
    }
}

asio::awaitable<std::error_code> exchange(socket_type& sock, const endpoint& ep,
                                          const get_values_options& opts,
                                          proto::get_values_result& out, bool& connected) {
    auto ex = co_await asio::this_coro::executor;
    std::error_code ec;
    if (opts.connect_timeout.count() > 0) {
        asio::steady_timer timer(ex, capped(opts.connect_timeout));
        auto r = co_await (connect_socket(sock, ep, opts.connect_attempt_delay) ||
                           timer.async_wait(use_tuple));
        if (r.index() == 1)
            co_return std::get<0>(std::get<1>(r)) ? std::error_code(asio::error::operation_aborted)
                                                  : std::error_code(error::connect_timeout);
        ec = std::get<0>(r);
    } else {
        ec = co_await connect_socket(sock, ep, opts.connect_attempt_delay);
    }
    if (ec)
        co_return ec;
    connected = true;

    static constexpr std::array<std::string_view, 3> names{
        proto::max_conns_name, proto::max_reqs_name, proto::mpxs_conns_name};
    std::string record = proto::encode_get_values(names);
    auto [wec, written] = co_await asio::async_write(sock, asio::buffer(record), use_tuple);
    (void)written;
    if (wec)
        co_return map_stream_error(wec);
    co_return co_await read_result(sock, out);
}

struct outcome {
    std::error_code ec;
    proto::get_values_result result;
};

asio::awaitable<outcome> run(endpoint ep, get_values_options opts) {
    // Cancellation is reported through error codes, never as an exception.
    co_await asio::this_coro::throw_if_cancelled(false);
    auto ex = co_await asio::this_coro::executor;
    socket_type sock(ex);
    outcome o;
    bool connected = false;
    if (opts.timeout.count() > 0) {
        asio::steady_timer deadline(ex, capped(opts.timeout));
        auto r = co_await (exchange(sock, ep, opts, o.result, connected) ||
                           deadline.async_wait(use_tuple));
        // The whole deadline passed while still connecting (a SYN nobody answers, a full
        // accept queue): that is a connect that did not complete, not a server that took the
        // question and sat on it.
        if (r.index() == 1)
            o.ec = std::get<0>(std::get<1>(r)) ? std::error_code(asio::error::operation_aborted)
                   : connected                 ? std::error_code(error::request_timeout)
                                               : std::error_code(error::connect_timeout);
        else
            o.ec = std::get<0>(r);
    } else {
        o.ec = co_await exchange(sock, ep, opts, o.result, connected);
    }
    if (o.ec)
        o.result = {};
    std::error_code ignored;
    sock.close(ignored);  // a probe connection is never reused (PROTOCOL.md item 1)
    co_return o;
}

}  // namespace

void start_get_values(asio::any_io_executor ex, endpoint ep, get_values_options options,
                      get_values_handler handler, asio::cancellation_slot slot) {
    auto strand = asio::make_strand(ex);
    auto state = std::make_shared<op_state>(std::move(handler));
    if (slot.is_connected())
        slot.emplace<canceller>(canceller{state, strand});
    // co_spawn starts the coroutine through the strand, and the handler is posted: completion
    // never happens inside the initiating call.
    asio::co_spawn(strand, run(std::move(ep), options),
                   asio::bind_cancellation_slot(
                       state->signal.slot(), [state](std::exception_ptr e, outcome o) {
                           state->done = true;
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::system_error& se) {
                                   o.ec = se.code();
                               } catch (const std::bad_alloc&) {
                                   o.ec = std::make_error_code(std::errc::not_enough_memory);
                               } catch (...) {
                                   o.ec = std::make_error_code(std::errc::io_error);
                               }
                               o.result = {};
                           }
                           state->handler.post(o.ec, std::move(o.result));
                       }));
}

}  // namespace fcgi::detail
