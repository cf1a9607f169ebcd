// The connection's state and lifecycle: connecting, giving requests their slots and IDs,
// completing them, cancelling and closing. Its wire (connection_records.cpp) and its streamed
// bodies (connection_streams.cpp) are apart.
#include "fcgi/detail/connection_impl.hpp"

#include <algorithm>
#include <asio/bind_cancellation_slot.hpp>
#include <chrono>
#include <string>
#include <utility>

#include "fcgi/detail/capped_duration.hpp"
#include "fcgi/error.hpp"
#include "stream_socket.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

namespace {

// For a connection the server closed without ever sending a byte. php-fpm closes a connection
// from an address its listen.allowed_clients does not list just so, as soon as a worker takes
// it (no record is sent, and nothing is logged at the default log_level); a worker that dies
// mid-script (killed, crashed, request_terminate_timeout) closes it so too, later.
constexpr auto refusal_window = std::chrono::milliseconds(100);

std::string silent_close_hint(std::chrono::steady_clock::duration open_for) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(open_for);
    if (ms <= refusal_window)
        return "; a server that closes a new connection without a byte back may not accept this "
               "client (php-fpm: listen.allowed_clients)";
    return "; the server closed it " + std::to_string(ms.count()) +
           " ms after it opened without a byte back: its script may have run and died (a killed "
           "or crashed worker; php-fpm: request_terminate_timeout), or, after that long in the "
           "listen backlog, the server may not accept this client (php-fpm: "
           "listen.allowed_clients)";
}

}  // namespace

connection_impl::connection_impl(asio::any_io_executor ex, const connection_options& opts)
    : ex_(ex),
      opts_(opts),
      socket_(ex),
      resolver_(ex),
      connect_timer_(ex),
      read_buffer_(std::clamp<std::size_t>(opts.read_buffer_size, 1024, 16u << 20)),
      ids_(std::clamp<std::uint16_t>(opts.max_in_flight, 1, max_in_flight_limit)) {
    opts_.connect_timeout = capped(opts_.connect_timeout);
    opts_.abort_timeout = capped(opts_.abort_timeout);
    max_in_flight_ = ids_.slots();
    slots_.resize(max_in_flight_);
    for (std::size_t i = slots_.size(); i-- > 0;)
        free_list_.push_back(static_cast<std::uint16_t>(i));  // slot 0 on top
}

connection_impl::~connection_impl() = default;

std::shared_ptr<connection_impl> connection_impl::create(asio::any_io_executor ex,
                                                         const connection_options& opts) {
    auto conn = std::make_shared<connection_impl>(std::move(ex), opts);
    register_for_shutdown(conn->ex_, conn->weak_from_this());
    return conn;
}

void connection_impl::on_context_shutdown() {
    // Nothing of this runs a handler: Asio destroys the operations of a context that shuts
    // down, and a handler may own this connection (a coroutine frame awaiting it).
    state_ = connection_state::closed;
    closed_with_ = asio::error::operation_aborted;
    closed_why_ = "its execution context was shut down";
    closed_at_ = std::chrono::steady_clock::now();
    std::error_code ignored;
    socket_.close(ignored);
    resolver_.cancel();
    connect_timer_.cancel();
    // Moved out first, destroyed last: their destructors may reach this connection again
    // (a frame's fcgi::connection posts its close), which must find it settled.
    auto connect = std::move(connect_handler_);
    std::vector<std::unique_ptr<request_op>> ops;
    std::vector<request_handler> handlers;
    for (auto& s : slots_) {
        // Every ID is given up (in_use_ is 0 below), kept ops included: nothing is sent again.
        s.in_use = false;
        s.queued = false;
        s.abandoned = false;
        if (!s.op)
            continue;
        if (s.op->stream && s.op->stream->io_busy())
            // Its source or sink (on a thread of its own, say) still uses the op's buffers:
            // the op stays until this connection goes, only its handler goes now.
            handlers.push_back(std::move(s.op->handler));
        else
            ops.push_back(std::move(s.op));
    }
    for (auto& op : waiting_)
        ops.push_back(std::move(op));
    waiting_.clear();
    auto deferred = std::move(deferred_);
    deferred_.clear();
    if (!flushing_busy_) {
        for (auto& d : flushing_)
            deferred.push_back(std::move(d));
        flushing_.clear();
    }
    auto event = std::move(on_event_);
    on_event_ = nullptr;
    in_use_ = 0;
    slot_handlers_ = 0;
    write_queue_.clear();
    writing_slots_.clear();
    gather_.clear();
}

std::size_t connection_impl::outstanding() const noexcept {
    return waiting_.size() + slot_handlers_;
}

bool connection_impl::has_free_slot() const noexcept {
    if (state_ != connection_state::open || !waiting_.empty() || retiring_ ||
        in_use_ >= max_in_flight_)
        return false;  // the pool asks per dispatch: a full connection answers without a scan
    return free_slot() < max_in_flight_;
}

void connection_impl::notify() {
    if (on_event_)
        on_event_();
}

// ---------------------------------------------------------------------------------------------
// Connecting

void connection_impl::start_connect(endpoint ep, error_handler h, std::uint64_t serial) {
    if (state_ != connection_state::idle) {
        std::error_code ec = state_ == connection_state::open ? asio::error::already_connected
                             : state_ == connection_state::connecting
                                 ? std::error_code(asio::error::already_started)
                                 : std::error_code(error::not_connected);
        h.post(ec);
        return;
    }
    endpoint_ = std::move(ep);
    state_ = connection_state::connecting;
    connect_handler_ = std::move(h);
    connect_serial_ = serial;
    connect_timed_out_ = false;
    auto self = shared_from_this();
    if (opts_.connect_timeout.count() > 0) {
        connect_timer_.expires_after(opts_.connect_timeout);
        connect_timer_.async_wait([self](std::error_code ec) {
            if (ec || self->state_ != connection_state::connecting)
                return;
            self->connect_timed_out_ = true;
            self->connect_cancel_.emit(asio::cancellation_type::terminal);
            self->resolver_.cancel();
            std::error_code ignored;
            self->socket_.close(ignored);
        });
    }
    async_connect_endpoint(
        socket_, resolver_, endpoint_, opts_.connect_attempt_delay,
        asio::bind_cancellation_slot(connect_cancel_.slot(),
                                     [self](std::error_code ec) { self->finish_connect(ec); }));
}

void connection_impl::finish_connect(std::error_code ec) {
    if (state_ != connection_state::connecting)
        return;  // closed meanwhile; the handler was completed by close()
    connect_timer_.cancel();
    if (connect_timed_out_)
        ec = error::connect_timeout;
    if (!ec && endpoint_.type == endpoint::kind::tcp)
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    // For the speculative write in start_write().
    if (!ec)
        socket_.non_blocking(true, ec);
    if (ec) {
        state_ = connection_state::closed;
        std::error_code ignored;
        socket_.close(ignored);
        connect_handler_.post(ec);
        notify();
        return;
    }
    state_ = connection_state::open;
    idle_since_ = opened_at_ = std::chrono::steady_clock::now();
    start_read();
    connect_handler_.post(std::error_code());
}

// ---------------------------------------------------------------------------------------------
// Requests

void connection_impl::start_request(std::unique_ptr<request_op> op) {
    if (state_ != connection_state::open) {
        response r;
        // Before async_connect the endpoint is not known yet: naming it would read "unix:".
        r.diagnostics = state_ == connection_state::idle
                            ? std::string(
                                  "the connection is not connected: call async_connect "
                                  "first")
                            : "connection to " + endpoint_.to_string() + " is not open" +
                                  (state_ == connection_state::connecting
                                       ? std::string(" yet: its connect has not completed")
                                       : std::string());
        const auto after = std::to_string(stats_.requests_completed) +
                           (stats_.requests_completed == 1 ? " request" : " requests");
        const bool closed = state_ == connection_state::closed;
        const bool lost = closed && closed_with_ == error::connection_lost;
        if (closed && !closed_why_.empty())
            // Why it closed, said again: a stray byte from the server, a refused write, ...
            r.diagnostics += ": closed after " + after + ": " + closed_why_;
        else if (lost)
            r.diagnostics += ": the server closed it after " + after;
        if (lost && stats_.bytes_read == 0 && !closed_here_)
            r.diagnostics += silent_close_hint(closed_at_ - opened_at_);
        if (op->hand_back && !op->is_prepared)
            *op->hand_back = std::move(op->req);
        op->handler.post(error::not_connected, std::move(r));
        return;
    }
    std::uint64_t serial = op->serial;
    std::string why;
    std::error_code invalid;
    if (!op->checked)
        invalid = op->is_prepared ? validate(op->prepared, why) : validate(op->req, why);
    if (invalid) {
        response r;
        r.diagnostics = std::move(why);
        op->handler.post(invalid, std::move(r));
        return;
    }
    if (op->timeout.count() < 0) {
        response r;
        r.diagnostics = expired_before_the_call(op->timeout);
        op->handler.post(error::request_timeout, std::move(r));
        return;
    }
    auto timeout = op->timeout.count() > 0 ? op->timeout : opts_.request_timeout;
    if (timeout.count() > 0) {
        using clock = std::chrono::steady_clock;
        const bool hopped = op->called != clock::time_point{};
        const auto now = clock::now();
        const auto deadline = (hopped ? op->called : now) + capped(timeout);
        if (deadline <= now) {
            // Its executor was busy past the deadline: sending it now would occupy the server
            // for a reply nobody waits for.
            response r;
            r.diagnostics = "deadline passed before the connection's executor took the request (" +
                            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               now - op->called)
                                               .count()) +
                            " ms after the call), so it was not sent";
            op->handler.post(error::request_timeout, std::move(r));
            return;
        }
        op->timer.emplace(socket_.get_executor(), deadline);
        op->timer->async_wait([self = shared_from_this(), serial](std::error_code ec) {
            if (!ec)
                self->fail_request(serial, error::request_timeout, "deadline passed");
        });
    }
    waiting_.push_back(std::move(op));
    pump_waiting();
}

std::size_t connection_impl::free_slot() const noexcept {
    // Slots are pushed when they free up; entries taken meanwhile are dropped here.
    while (!free_list_.empty()) {
        auto i = free_list_.back();
        if (i < max_in_flight_ && !busy(slots_[i]))
            return i;
        free_list_.pop_back();
    }
    // A slot freed on a path that does not push it (never expected to find much).
    for (std::size_t i = 0; i < max_in_flight_ && i < slots_.size(); ++i)
        if (!busy(slots_[i]))
            return i;
    return slots_.size();
}

void connection_impl::pump_waiting() {
    if (in_read_) {
        // Not while the reader is half way through a buffer: a freed ID handed on at once would
        // get the rest of that buffer's records for the old request (a duplicate END_REQUEST
        // would complete the new one). Those records now find the ID free and close the
        // connection; on_read pumps once the buffer is done.
        pump_after_read_ = true;
        return;
    }
    // A retiring connection starts nothing new: what waits fails with not_connected when it
    // closes, never written, so a pool may send it elsewhere.
    while (!retiring_ && !waiting_.empty() && in_use_ < max_in_flight_) {
        std::size_t i = free_slot();
        if (i >= max_in_flight_)
            break;
        // Found on top of the free list (the fallback scan runs only when the list is empty):
        // taken off it here, or every request would leave one entry behind on a kept-alive
        // connection, whose release pushes the slot again.
        if (!free_list_.empty())
            free_list_.pop_back();
        auto op = std::move(waiting_.front());
        waiting_.pop_front();
        assign(slots_[i], std::move(op));
    }
    start_write();
    if (retiring_)
        close_if_retired();  // however its last live request ended
}

void connection_impl::assign(slot& s, std::unique_ptr<request_op> op) {
    s.op = std::move(op);
    s.id = ids_.next(index_of(s), s.id);
    s.in_use = true;
    ++in_use_;
    ++slot_handlers_;
    s.written = false;
    s.abandoned = false;
    s.end_counted = false;
    const request& req = s.op->get();
    std::string why;
    std::error_code ec;
    s.encoder.clear();
    if (s.op->prepared) {
        // Checked, derived and encoded once; only the records' headers carry this slot's ID.
        s.encoder.encode_request_encoded(s.id, req.role, proto::begin_flags::keep_conn,
                                         s.op->prepared.params(), req.body, req.data);
    } else {
        s.params.build(req);
        // Before the streams start: starting a sink creates (truncates) its file, and a
        // param_too_large must leave everything as it was.
        const auto params = s.params.params();
        if (!std::all_of(params.begin(), params.end(), [](const proto::name_value& p) {
                return proto::fits_one_record(p.name, p.value);
            })) {
            ec = error::param_too_large;
            why = explain_param_too_large(params, req);
        }
        if (!ec && (req.stdin_source || req.stdout_sink))
            ec = start_streams(s, why);
        if (!ec) {
            if (s.op->stream && s.op->stream->upload_left > 0)
                // The body follows chunk by chunk as the source yields it (read_source).
                ec = s.encoder.begin(s.id, req.role, proto::begin_flags::keep_conn,
                                     s.params.params());
            else
                ec = s.encoder.encode_request(s.id, req.role, proto::begin_flags::keep_conn,
                                              s.params.params(), req.body, req.data);
            if (ec == error::param_too_large)
                why = explain_param_too_large(s.params.params(), req);
        }
    }
    if (ec) {
        response r;
        r.diagnostics = std::move(why);
        complete(s, ec, std::move(r));
        release(s);
        return;
    }
    s.assembler.reset({opts_.max_stdout_size, opts_.max_stderr_size, opts_.max_head_size,
                       opts_.on_stderr_overflow == stderr_overflow::truncate});
    s.queued = true;
    write_queue_.push_back(index_of(s));
}

void connection_impl::complete(slot& s, std::error_code ec, response&& r) {
    if (!s.op || !s.op->handler)
        return;
    if (s.written || s.writing) {
        r.times_sent = 1;
        r.bytes_received = s.assembler.stdout_bytes() + s.assembler.stderr_bytes();
        // What the script logged before the request failed is often why it failed. After
        // END_REQUEST it waits, with the rest of the response, for the sink to finish.
        if (ec && r.stderr_text.empty()) {
            bool ended = s.op->stream && s.op->stream->ended;
            r.stderr_dropped =
                ended ? s.op->stream->end_response.stderr_dropped : s.assembler.stderr_dropped();
            r.stderr_text = ended ? std::move(s.op->stream->end_response.stderr_text)
                                  : s.assembler.take_stderr();
        }
    }
    if (auto* st = s.op->stream.get()) {
        st->sink_pending.clear();  // a failed request's output goes nowhere
        // A source or sink still busy for a request that is over is asked to stop: the slot,
        // and its request ID, come back only once it is done.
        if (auto* sink = s.op->req.stdout_sink.get(); sink && st->sink_busy)
            sink->cancel();
        if (auto* source = s.op->req.stdin_source.get(); source && st->source_busy)
            source->cancel();
    }
    if (s.op->timer)
        s.op->timer->cancel();
    // Only what may be sent again (a timeout is not: no copy of a large body for nothing), and
    // not once output came: the script ran, and a sink has seen part of its response.
    // Cleared either way: the handler that owns where it points goes now.
    if (auto* to = std::exchange(s.op->hand_back, nullptr);
        to && !s.op->is_prepared && is_retryable(ec) && r.bytes_received == 0)
        give_back(s, *to, r);
    if (auto* to = std::exchange(s.op->silent_connection, nullptr))
        *to = stats_.bytes_read == 0;
    --slot_handlers_;
    s.op->io_work = {};  // the handler's own executor tracks what is left
    deliver(std::move(s.op->handler), ec, std::move(r));
}

void connection_impl::give_back(slot& s, std::optional<request>& to, response& r) {
    // A closed socket writes nothing more, so a write's views of the request no longer matter;
    // a stream's source and sink use the request until they are done: those get a copy.
    bool viewed = (state_ != connection_state::closed && (s.writing || s.queued)) || s.op->stream;
    if (!viewed) {
        to = std::move(s.op->req);
        return;
    }
    to = s.op->req;
    // A source still reading for this attempt whose copy shares it (no clone()): the retry's
    // start() would rewind it under that read, and the read's late bytes would land in the new
    // pass. Not handed back, so not sent again.
    const auto* source = s.op->req.stdin_source.get();
    if (source && s.op->stream && s.op->stream->source_busy && to->stdin_source.get() == source) {
        to.reset();
        r.diagnostics +=
            "; not sent again: its body source was still reading, and has no "
            "clone() to start afresh from";
    }
}

void connection_impl::deliver(request_handler h, std::error_code ec, response&& r) {
    // Inside on_read, completions wait until the input is processed, then run inline: that
    // saves a trip through the scheduler per request, and the user's code never runs while the
    // read loop is half way through a buffer.
    if (in_read_)
        deferred_.emplace_back(std::move(h), ec, std::move(r));
    else
        h.post(ec, std::move(r));
}

void connection_impl::flush_deferred() {
    if (deferred_.empty())
        return;
    // A handler may run the io_context again (run_one() until its next request is done), which
    // may come back here: that nested call takes a batch of its own. Sharing flushing_, it
    // cleared the outer batch under its loop and left a dispatched handler in deferred_, to be
    // dispatched again, empty, by the next read.
    std::vector<deferred_completion> nested;
    const bool outer = !flushing_busy_;
    auto& batch = outer ? flushing_ : nested;
    flushing_busy_ = true;
    batch.swap(deferred_);
    std::size_t i = 0;
    try {
        for (; i < batch.size(); ++i)
            batch[i].handler.dispatch(batch[i].ec, std::move(batch[i].resp));
    } catch (...) {
        // A handler threw out of run(), which may be called again: the rest still run, later,
        // and no consumed handler stays behind to be dispatched twice.
        for (++i; i < batch.size(); ++i)
            batch[i].handler.post(batch[i].ec, std::move(batch[i].resp));
        batch.clear();
        flushing_busy_ = !outer;
        throw;
    }
    batch.clear();
    flushing_busy_ = !outer;
}

void connection_impl::release(slot& s) {
    free_list_.push_back(index_of(s));
    in_use_ -= s.in_use;
    if (in_use_ == 0)
        idle_since_ = std::chrono::steady_clock::now();
    s.in_use = false;
    s.abandoned = false;
    if (s.queued) {
        std::erase(write_queue_, index_of(s));
        s.queued = false;
    }
    // The op owns the bytes a write, a source or a sink in progress views: it goes when they
    // are done.
    drop_op_if_unused(s);
}

void connection_impl::fail_request(std::uint64_t serial, std::error_code ec, const char* what) {
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
        if ((*it)->serial == serial) {
            auto op = std::move(*it);
            waiting_.erase(it);
            response r;
            r.diagnostics =
                std::string(what) + " before the request was sent to " + endpoint_.to_string();
            op->handler.post(ec, std::move(r));
            return;
        }
    }
    for (auto& s : slots_) {
        if (!s.op || !s.op->handler || s.op->serial != serial)
            continue;
        std::string why = std::string(what) + "; " + describe(s);
        // A connection carrying one request at a time: php-fpm's backlog is the likely reason.
        if (ec == error::request_timeout && (s.written || s.writing) && stats_.bytes_read == 0 &&
            slots_.size() == 1)
            // PROTOCOL.md item 2: the case where a connect succeeds and nothing ever answers.
            why +=
                "; not one byte has come back since the connection opened: the script has "
                "written nothing yet, or the server never took the connection (php-fpm keeps a "
                "worker per kept-alive connection, so connections beyond pm.max_children, or "
                "beyond the workers pm = ondemand or dynamic has started so far, wait in its "
                "listen backlog; the request is in the socket, so a worker that takes the "
                "connection later still runs it)";
        abandon(s, ec, std::move(why));
        return;
    }
}

void connection_impl::abandon(slot& s, std::error_code ec, std::string diagnostics) {
    response r;
    r.diagnostics = std::move(diagnostics);
    bool server_done = s.op->stream && s.op->stream->ended;
    complete(s, ec, std::move(r));
    if (server_done || (!s.written && !s.writing)) {
        // Nothing of it is on the wire, or the server already ended it: the connection is fine.
        release(s);
        pump_waiting();
    } else if (aborts_alone(s)) {
        // A multiplexing server can abort one request; its ID stays taken until END_REQUEST.
        s.abandoned = true;
        let_go_of_streams(s);
        if (s.queued) {
            // A streamed body's next chunk waiting to go: after ABORT_REQUEST the server would
            // get records for a request it has forgotten.
            std::erase(write_queue_, index_of(s));
            s.queued = false;
        }
        aborts_pending_.push_back(proto::encode_abort_request(s.id));
        if (opts_.abort_timeout.count() > 0) {
            if (!s.op->timer)
                s.op->timer.emplace(socket_.get_executor());
            s.op->timer->expires_after(opts_.abort_timeout);
            s.op->timer->async_wait(
                [self = shared_from_this(), serial = s.op->serial](std::error_code tec) {
                    if (!tec)
                        self->on_abort_timeout(serial);
                });
        }
        start_write();
    } else {
        // php-fpm ignores ABORT_REQUEST: closing is the only way to stop the script, and the
        // stream cannot be resynchronised anyway (PROTOCOL.md item 6).
        close_here("closed by this client when request " + std::to_string(s.id) + " failed (" +
                   ec.message() +
                   "): on a connection that does not multiplex, only closing stops its script");
    }
    resume_reading();
    notify();
}

void connection_impl::let_go_of_streams(slot& s) noexcept {
    if (!s.op || !s.op->stream)
        return;
    auto& st = *s.op->stream;
    // Every call into a source or sink holds a share of it, so one on the stack stays alive.
    if (!st.source_busy)
        s.op->req.stdin_source = {};
    if (!st.sink_busy) {
        s.op->req.stdout_sink = {};
        std::string().swap(st.sink_pending);
    }
}

bool connection_impl::aborts_alone(const slot& s) const noexcept {
    if (slots_.size() <= 1 || state_ != connection_state::open)
        return false;
    if (max_in_flight_ > 1)
        return true;
    // A server that answered CANT_MPX_CONN tells the requests it took apart by ID: closing
    // would fail those too, and they may not be sent again.
    return std::any_of(slots_.begin(), slots_.end(), [&](const slot& o) {
        return &o != &s && o.in_use && !o.abandoned && (o.written || o.writing);
    });
}

void connection_impl::on_abort_timeout(std::uint64_t serial) {
    for (auto& s : slots_) {
        if (s.in_use && s.abandoned && s.op && s.op->serial == serial) {
            retiring_ = true;
            // No slot frees up for them here now: a live request may run for long.
            fail_waiting("connection to " + endpoint_.to_string() +
                         " takes no more requests: the server did not end aborted request " +
                         std::to_string(s.id) + " within " +
                         std::to_string(opts_.abort_timeout.count()) + " ms");
            close_if_retired();
            notify();
            return;
        }
    }
}

void connection_impl::close_if_retired() {
    if (!retiring_ || state_ != connection_state::open)
        return;
    std::string stuck;
    for (const auto& s : slots_) {
        if (s.in_use && !s.abandoned)
            return;  // a live request finishes first
        if (s.in_use)
            stuck += (stuck.empty() ? "" : ", ") + std::to_string(s.id);
    }
    close_here("closed by this client: server at " + endpoint_.to_string() +
               " did not end aborted request(s) " + stuck + " within " +
               std::to_string(opts_.abort_timeout.count()) + " ms");
}

bool connection_impl::cancel(std::uint64_t serial, asio::cancellation_type type) {
    using ct = asio::cancellation_type;
    if ((type & ct::terminal) == ct::none) {
        for (const auto& s : slots_) {
            if (!s.op || !s.op->handler || s.op->serial != serial)
                continue;
            const bool sent = s.written || s.writing;
            const bool answered = s.op->stream && s.op->stream->ended;
            const bool partial_ok =
                (type & ct::partial) != ct::none && (answered || aborts_alone(s));
            if (sent && !partial_ok)
                return false;  // the script runs (total), or only closing would stop it
            break;
        }
    }
    fail_request(serial, asio::error::operation_aborted, "cancelled");
    return true;
}

std::string connection_impl::describe(const slot& s) const {
    std::string d = "request " + std::to_string(s.id) + " to " + endpoint_.to_string();
    if (!s.written && !s.writing)
        return d + " was not sent";
    if (s.op && s.op->stream && s.op->req.stdin_source) {
        auto total = s.op->req.body_size();
        // Read, not sent: the last chunk read may still be queued or being written.
        d += " had read " + std::to_string(total - s.op->stream->upload_left) + " of " +
             std::to_string(total) + " body bytes from its source and";
    }
    d += " had received " + std::to_string(s.assembler.stdout_bytes()) + " bytes of STDOUT and " +
         std::to_string(s.assembler.stderr_bytes()) + " of STDERR";
    // Not counting its own END_REQUEST: a response that fails as it ends (a bad head, a sink).
    const auto earlier = stats_.requests_completed - (s.end_counted ? 1 : 0);
    d += " (" + std::to_string(earlier) + (earlier == 1 ? " request" : " requests") +
         " completed earlier on this connection)";
    return d;
}

void connection_impl::close_here(std::string_view why) {
    if (state_ == connection_state::closed)
        return;
    closed_here_ = true;
    close(error::connection_lost, why);
}

void connection_impl::close(std::error_code ec, std::string_view why) {
    if (state_ == connection_state::closed)
        return;
    bool was_connecting = state_ == connection_state::connecting;
    state_ = connection_state::closed;
    closed_with_ = ec;
    closed_why_ = why;
    closed_at_ = std::chrono::steady_clock::now();
    std::error_code ignored;
    if (was_connecting)
        connect_cancel_.emit(asio::cancellation_type::terminal);
    resolver_.cancel();
    connect_timer_.cancel();
    socket_.close(ignored);
    if (was_connecting && connect_handler_)
        connect_handler_.post(ec);
    for (auto& s : slots_) {
        // The server ended it: its sink drains on and completes it (finish_stream), unless the
        // caller is stopping (a sink that never finishes would hold the stop up for good).
        if (s.op && s.op->handler && s.op->stream && s.op->stream->ended &&
            ec != asio::error::operation_aborted && ec != error::client_stopped)
            continue;
        if (s.op && s.op->handler && !s.written && !s.writing) {
            // Assigned a slot but still queued behind another request's write: nothing of it
            // reached the server, so it fails as a request that waited for a slot does and a
            // pool may send it elsewhere, whatever closed the connection.
            response r;
            r.diagnostics = "connection to " + endpoint_.to_string() +
                            " closed before the request was sent" +
                            (why.empty() ? std::string() : " (" + std::string(why) + ")");
            complete(s, error::not_connected, std::move(r));
        } else if (s.op && s.op->handler) {
            response r;
            std::string what(why);
            if (what.empty())
                what = ec == error::connection_lost ? "server closed the connection"
                                                    : "connection closed";
            r.diagnostics = what + "; " + describe(s);
            if (ec == error::connection_lost && why.empty() && stats_.bytes_read == 0)
                r.diagnostics += silent_close_hint(closed_at_ - opened_at_);
            complete(s, ec, std::move(r));
        }
        in_use_ -= s.in_use;
        s.in_use = false;
        s.queued = false;
        s.abandoned = false;
        drop_op_if_unused(s);
    }
    write_queue_.clear();
    fail_waiting("connection to " + endpoint_.to_string() + " closed before the request was sent" +
                 (why.empty() ? std::string() : " (" + std::string(why) + ")"));
    notify();
}

void connection_impl::fail_waiting(const std::string& diagnostics) {
    while (!waiting_.empty()) {
        auto op = std::move(waiting_.front());
        waiting_.pop_front();
        response r;
        r.diagnostics = diagnostics;
        if (op->hand_back && !op->is_prepared)
            *op->hand_back = std::move(op->req);
        op->handler.post(error::not_connected, std::move(r));
    }
}

}  // namespace fcgi::detail
