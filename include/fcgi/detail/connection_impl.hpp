// The state and Asio glue behind fcgi::connection: one socket, an always-armed reader that routes
// records by request ID, and a writer that gathers queued requests into one write.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fcgi/connection_options.hpp"
#include "fcgi/detail/any_handler.hpp"
#include "fcgi/detail/cgi_params.hpp"
#include "fcgi/detail/context_shutdown.hpp"
#include "fcgi/detail/request_ids.hpp"
#include "fcgi/detail/response_assembler.hpp"
#include "fcgi/endpoint.hpp"
#include "fcgi/prepared_request.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/request_encoder.hpp"
#include "fcgi/request.hpp"
#include "fcgi/response.hpp"

namespace fcgi::detail {

using request_handler = any_handler<void(std::error_code, response)>;
/// A type-erased void(std::error_code) handler: a connect's, a shutdown's, a fan-out's.
using error_handler = any_handler<void(std::error_code)>;

/// The connection's lifecycle.
enum class connection_state { idle, connecting, open, closed };

/// Called by a connection when a request slot frees up or the connection closes, so a pool can
/// hand it more work. Runs on the connection's executor, and may run inside start_request (a
/// write refused at once closes the connection): a pool must not rely on it being deferred.
using connection_event_fn = std::function<void()>;

/// The state of a request that streams its body from a source or its response into a sink.
/// The buffers live here, in the op, so they outlive the slot's reuse while a source or sink
/// still holds them.
struct stream_state {
    std::vector<char> chunk;         // the source reads into it; a write views it
    std::uint64_t upload_left = 0;   // bytes still to read from the source
    bool source_busy = false;        // a source read is outstanding
    std::uint64_t source_reads = 0;  // numbers the reads: a second call of one's `done` is known
    std::string sink_pending;        // STDOUT for the sink, not handed over yet
    std::string sink_inflight;       // the chunk the sink is consuming
    std::uint64_t sink_delivered = 0;
    bool sink_busy = false;         // a sink write is outstanding
    std::uint64_t sink_writes = 0;  // numbers the writes, as source_reads does the reads
    bool head_delivered = false;
    bool ended = false;      // END_REQUEST arrived; completion waits for the sink
    std::error_code end_ec;  // the outcome to complete with once the sink drained
    response end_response;

    bool io_busy() const noexcept { return source_busy || sink_busy; }
};

/// One request on its way: created by the initiating function, owned by the connection until
/// its handler ran and neither a write, a source nor a sink views its bytes any more.
struct request_op {
    request_op(request&& r, request_handler h, std::uint64_t s)
        : req(std::move(r)), timeout(req.timeout), handler(std::move(h)), serial(s) {}
    request_op(prepared_request p, request_handler h, std::uint64_t s)
        : prepared(std::move(p)),
          is_prepared(true),
          timeout(prepared ? prepared.get().timeout : std::chrono::milliseconds(0)),
          handler(std::move(h)),
          serial(s) {}
    /// What is sent: the prepared request's, or `req`.
    const request& get() const noexcept { return prepared ? prepared.get() : req; }

    request req;                // owns the body the encoder's buffers view (unless prepared)
    prepared_request prepared;  // instead of `req`: its shared state owns the body
    bool is_prepared = false;   // sent as a prepared request (an empty one is an error)
    bool checked = false;       // validated already, by the pool that queued it
    // The request's own; a pool sets what is left of the deadline it counts from the call.
    std::chrono::milliseconds timeout;
    // When the caller made the call, if the request then hopped onto the connection's executor
    // (another thread): its deadline counts from there. {}: the call is now.
    std::chrono::steady_clock::time_point called{};
    request_handler handler;  // empty once completed
    std::uint64_t serial;
    // The connection's executor, tracked until the handler is delivered, when the handler runs
    // elsewhere (use_future, another io_context): Asio counts a pending operation as work on
    // its I/O executor, and a reader paused for a busy sink leaves nothing else pending there,
    // so run() returned with the request unfinished. Empty otherwise: the handler's work is it.
    asio::any_io_executor io_work;
    // The deadline (or the abort timeout); its handler finds the op by serial, never by pointer.
    // Made only when needed: constructing a timer per request shows at benchmark rates.
    std::optional<asio::steady_timer> timer;
    std::unique_ptr<stream_state> stream;  // only for streamed requests
    // Where a request that failed with an error that allows sending it again (is_retryable)
    // goes back to before its handler runs: a pool retries from there instead of keeping a copy
    // of every request. Moved when nothing views its bytes any more, copied otherwise. Null:
    // nobody wants it back (nor for a prepared request, which a pool keeps: a copy is cheap).
    std::optional<request>* hand_back = nullptr;
    // Where a pool learns, when the request completes, whether the connection had read nothing
    // at all: by the time the posted completion runs, the connection may be gone. Null: no one
    // asks.
    std::optional<bool>* silent_connection = nullptr;
};

class connection_impl : public std::enable_shared_from_this<connection_impl>, public context_bound {
  public:
    /// A connection registered for its execution context's shutdown (context_shutdown.hpp).
    static std::shared_ptr<connection_impl> create(asio::any_io_executor ex,
                                                   const connection_options& opts);
    /// An unregistered one: create() is the library's way.
    connection_impl(asio::any_io_executor ex, const connection_options& opts);
    ~connection_impl();
    connection_impl(const connection_impl&) = delete;
    connection_impl& operator=(const connection_impl&) = delete;

    const asio::any_io_executor& get_executor() const noexcept { return ex_; }

    /// Connects; `serial` (from next_serial()) names this connect for cancel_connect().
    void start_connect(endpoint ep, error_handler h, std::uint64_t serial = 0);
    /// Ends the connect `serial` as close() does, if it is the one under way; nothing once it
    /// has ended, nor for a call that was refused (already_started): its slot must not cancel
    /// the connect that was.
    void cancel_connect(std::uint64_t serial) {
        if (state_ == connection_state::connecting && serial == connect_serial_)
            close(asio::error::operation_aborted, "connect cancelled");
    }
    /// A new serial for a request, used to find it again on cancellation.
    std::uint64_t next_serial() noexcept { return serial_.fetch_add(1) + 1; }
    /// Queues `op`; its handler is always posted or dispatched later, never run inside.
    void start_request(std::unique_ptr<request_op> op);
    /// Cancels request `serial` as if its deadline passed, with asio::error::operation_aborted,
    /// as far as `type` allows (Asio's meanings): terminal always; partial only where the
    /// connection stays usable (not written yet, already answered, or aborted alone on a
    /// multiplexed connection); total only where nothing happened (not written yet). Returns
    /// false when `type` did not allow it (the request goes on).
    bool cancel(std::uint64_t serial,
                asio::cancellation_type type = asio::cancellation_type::terminal);
    /// Closes the socket; every request in flight completes with `ec` (and `why` in its
    /// diagnostics), every request not yet sent with error::not_connected.
    void close(std::error_code ec, std::string_view why = {});
    /// close() with error::connection_lost on the client's own account (a request that only
    /// closing stops, a stream out of step): `why` says so, and nothing after it speaks of a
    /// server's close, nor hints at listen.allowed_clients.
    void close_here(std::string_view why);

    connection_state state() const noexcept { return state_; }
    const endpoint& remote() const noexcept { return endpoint_; }
    const connection_options& options() const noexcept { return opts_; }
    /// Requests accepted and not yet completed (queued or in flight).
    std::size_t outstanding() const noexcept;
    /// True when a new request would be written at once (a free slot and nothing waiting).
    bool has_free_slot() const noexcept;
    /// One request at a time from now on: another connection to the same server was refused
    /// with CANT_MPX_CONN. Requests already in flight stay.
    void stop_multiplexing() noexcept { max_in_flight_ = 1; }
    /// True when nothing is queued or in flight and the connection is open.
    bool is_idle() const noexcept { return state_ == connection_state::open && outstanding() == 0; }
    /// When the connection was connected or last gave a request slot back (for idle timeouts).
    std::chrono::steady_clock::time_point idle_since() const noexcept { return idle_since_; }
    connection_stats stats() const noexcept { return stats_; }
    /// Entries in the list of freed slots (for tests: bounded by the slots, not the requests).
    std::size_t free_list_size() const noexcept { return free_list_.size(); }
    /// Called after a request completes or the connection closes (for pools).
    void set_event_callback(connection_event_fn fn) { on_event_ = std::move(fn); }
    /// The execution context shuts down: closes the socket and destroys every handler, source
    /// and sink held, without calling them.
    void on_context_shutdown() override;

  private:
    struct slot {
        std::unique_ptr<request_op> op;  // null when free; handler empty once completed
        std::uint16_t id = 0;            // its current or last request's ID; 0 before any
        bool in_use = false;       // the ID is taken: from assignment until END_REQUEST or close
        bool queued = false;       // in write_queue_
        bool writing = false;      // its buffers are part of the current write
        bool written = false;      // its bytes reached the socket
        bool abandoned = false;    // completed early; records dropped until END_REQUEST
        bool end_counted = false;  // its END_REQUEST is in stats_.requests_completed
        cgi_params params;
        protocol::request_encoder encoder;
        response_assembler assembler;
    };

    /// True while the slot's ID or buffers are taken: it cannot get a new request.
    static bool busy(const slot& s) noexcept {
        return s.in_use || s.writing || (s.op && s.op->stream && s.op->stream->io_busy());
    }
    /// True when ABORT_REQUEST can end `s` without closing: the connection multiplexes, or
    /// stopped doing so (CANT_MPX_CONN) with other requests the server took still on it.
    bool aborts_alone(const slot& s) const noexcept;
    /// Frees the op once nothing views its buffers any more.
    static void drop_op_if_unused(slot& s) noexcept {
        if (!busy(s))
            s.op.reset();
    }
    /// The index of a slot below max_in_flight_ that can take a request now, or slots_.size().
    std::size_t free_slot() const noexcept;
    std::uint16_t index_of(const slot& s) const noexcept {
        return static_cast<std::uint16_t>(&s - slots_.data());
    }
    void assign(slot& s, std::unique_ptr<request_op> op);
    std::error_code start_streams(slot& s, std::string& why);
    void read_source(slot& s);
    void on_source_read(std::uint16_t index, std::uint64_t serial, std::uint64_t read,
                        std::error_code ec, std::size_t n);
    std::error_code on_streamed_stdout(slot& s, std::string_view bytes, std::string& why);
    void start_sink_writes();
    void write_sink(slot& s);
    void on_sink_written(std::uint16_t index, std::uint64_t serial, std::uint64_t write,
                         std::error_code ec);
    /// Completes a streamed request whose sink has everything, releases its slot, pumps.
    void finish_stream(slot& s);
    /// Completes it only: the sink's finish() decides the outcome.
    void complete_stream(slot& s);
    bool sink_buffer_full() const noexcept;
    void resume_reading();
    void abandon(slot& s, std::error_code ec, std::string diagnostics);
    /// An abandoned request's source and sink get nothing more: lets go of them now (a file
    /// sink closes its file), not when END_REQUEST or abort_timeout frees its ID. One still
    /// reading or writing is let go of when it calls `done`.
    static void let_go_of_streams(slot& s) noexcept;
    void on_abort_timeout(std::uint64_t serial);
    void close_if_retired();
    /// Fails the requests waiting for a slot with not_connected: nothing of them was sent, so a
    /// pool may send them elsewhere. `diagnostics` says what stopped the connection taking them.
    void fail_waiting(const std::string& diagnostics);
    void pump_waiting();
    void start_write();
    // `n` bytes went out in this write, after `sent_before` by the attempt that started it.
    void on_write(std::error_code ec, std::size_t n, std::size_t sent_before = 0);
    void start_read();
    void on_read(std::error_code ec, std::size_t n);
    bool handle_piece(const protocol::record_piece& piece, bool input_left);
    void on_end_request(slot& s, std::string_view content, bool input_left);
    void fail_request(std::uint64_t serial, std::error_code ec, const char* what);
    void complete(slot& s, std::error_code ec, response&& r);
    /// Hands the failed request back to `to` for a retry, unless its source is still busy and
    /// cannot be copied (then says so in `r`).
    void give_back(slot& s, std::optional<request>& to, response& r);
    void deliver(request_handler h, std::error_code ec, response&& r);
    void flush_deferred();
    bool process_input(std::string_view in);
    void release(slot& s);
    std::string describe(const slot& s) const;
    void notify();
    void finish_connect(std::error_code ec);

    asio::any_io_executor ex_;
    connection_options opts_;
    asio::generic::stream_protocol::socket socket_;
    asio::ip::tcp::resolver resolver_;
    asio::steady_timer connect_timer_;
    asio::cancellation_signal connect_cancel_;  // ends the connect's next step (timeout, close)
    error_handler connect_handler_;
    std::uint64_t connect_serial_ = 0;  // the connect under way (start_connect's serial)
    bool connect_timed_out_ = false;
    endpoint endpoint_;
    connection_state state_ = connection_state::idle;
    std::error_code closed_with_;  // what close() was given: said to requests started after it
    std::string closed_why_;       // and why, when it said
    bool closed_here_ = false;     // closed by close_here(): the server did not close it

    protocol::record_decoder decoder_;
    std::vector<char> read_buffer_;
    bool reading_ = false;
    bool in_read_ = false;
    bool pump_after_read_ = false;  // a slot freed while reading: pump_waiting() after the buffer
    bool paused_ = false;           // reading stopped: a sink's buffer is full
    bool retiring_ = false;  // an aborted request was never ended: no new requests, close soon
    struct deferred_completion {
        request_handler handler;
        std::error_code ec;
        response resp;
    };
    std::vector<deferred_completion> deferred_;
    std::vector<deferred_completion> flushing_;
    bool flushing_busy_ = false;  // flush_deferred() is iterating flushing_

    std::vector<slot> slots_;
    std::uint16_t max_in_flight_ = 1;
    std::size_t in_use_ = 0;         // slots whose ID is taken (kept, so a full pool is O(1))
    std::size_t slot_handlers_ = 0;  // slots whose op still has its handler
    // Indexes of slots that freed up, most recent last; may hold stale entries (free_slot()).
    mutable std::vector<std::uint16_t> free_list_;
    std::deque<std::unique_ptr<request_op>> waiting_;
    std::vector<std::uint16_t> write_queue_;  // slot indexes in order
    std::vector<std::uint16_t> writing_slots_;
    // Which ID each slot uses next; aborted requests' IDs whose late records are dropped.
    request_ids ids_;
    std::vector<protocol::abort_request_record> aborts_pending_;
    std::vector<protocol::abort_request_record> aborts_writing_;
    std::vector<asio::const_buffer> gather_;
    bool writing_ = false;

    std::atomic<std::uint64_t> serial_{0};
    connection_stats stats_;
    connection_event_fn on_event_;
    std::chrono::steady_clock::time_point idle_since_{};
    std::chrono::steady_clock::time_point opened_at_{};  // the connect completed
    std::chrono::steady_clock::time_point closed_at_{};  // close() ran
};

}  // namespace fcgi::detail
