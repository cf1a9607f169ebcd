#include "fcgi/detail/connection_impl.hpp"

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <span>
#include <utility>

#include "exception_text.hpp"
#include "fcgi/detail/ascii.hpp"
#include "fcgi/detail/capped_duration.hpp"
#include "fcgi/error.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

namespace {

// Calls into a user's source or sink: an exception thrown there fails its request with `failed`
// and the exception's message instead of unwinding through the read loop, which would leave the
// connection half way through a buffer.
template <class F>
std::error_code call_user(const char* who, std::error_code failed, std::string& why, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (...) {
        why = std::string(who) + " " + exception_text(std::current_exception());
    }
    return failed;
}

// After a limit's name in a message: where a client user sets it.
constexpr const char* in_a_client = "; client_options::connection in a client";

// 'the head line "X-A: a\x01b"': a malformed head named by its line, bytes a terminal or a log
// would mangle written as \xNN.
std::string bad_head_line(std::string_view line) {
    std::string out = "the head line \"";
    detail::append_escaped(out, line, '"');
    if (line.size() >= proto::cgi_head_parser::max_bad_line)
        out += "...";
    return out + "\"";
}

}  // namespace

connection_impl::connection_impl(asio::any_io_executor ex, const connection_options& opts)
    : ex_(ex),
      opts_(opts),
      socket_(ex),
      resolver_(ex),
      connect_timer_(ex),
      read_buffer_(std::max<std::size_t>(opts.read_buffer_size, 1024)) {
    opts_.connect_timeout = capped(opts_.connect_timeout);
    opts_.abort_timeout = capped(opts_.abort_timeout);
    max_in_flight_ = std::max<std::uint16_t>(opts.max_in_flight, 1);
    slots_.resize(max_in_flight_);
    for (std::size_t i = slots_.size(); i-- > 0;)
        free_list_.push_back(static_cast<std::uint16_t>(i));  // slot 0 on top
}

connection_impl::~connection_impl() = default;

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

void connection_impl::start_connect(endpoint ep, connect_handler h, std::uint64_t serial) {
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
            self->resolver_.cancel();
            std::error_code ignored;
            self->socket_.close(ignored);
        });
    }
    if (endpoint_.type == endpoint::kind::unix_socket) {
        if (endpoint_.path.size() > endpoint::max_unix_path) {
            // Asio's endpoint would throw; endpoint::unix_socket() does not check.
            finish_connect(error::invalid_endpoint);
            return;
        }
        asio::generic::stream_protocol::endpoint target{
            asio::local::stream_protocol::endpoint(endpoint_.path)};
        std::error_code ec;
        socket_.open(target.protocol(), ec);
        if (ec) {
            finish_connect(ec);
            return;
        }
        socket_.async_connect(target, [self](std::error_code ec2) { self->finish_connect(ec2); });
        return;
    }
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [self](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
            if (ec) {
                self->finish_connect(ec);
                return;
            }
            self->resolved_ = std::move(results);
            self->try_next_endpoint(0, asio::error::host_not_found);
        });
}

void connection_impl::try_next_endpoint(std::size_t index, std::error_code last) {
    if (state_ != connection_state::connecting)
        return;  // closed meanwhile (its connect was aborted): no next address
    if (connect_timed_out_ || index >= resolved_.size()) {
        finish_connect(last);
        return;
    }
    auto it = resolved_.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(index));
    asio::generic::stream_protocol::endpoint target{it->endpoint()};
    std::error_code ec;
    socket_.close(ec);
    socket_.open(target.protocol(), ec);
    if (ec) {
        try_next_endpoint(index + 1, ec);
        return;
    }
    socket_.async_connect(target, [self = shared_from_this(), index](std::error_code ec2) {
        if (ec2)
            self->try_next_endpoint(index + 1, ec2);
        else
            self->finish_connect({});
    });
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
    idle_since_ = std::chrono::steady_clock::now();
    start_read();
    connect_handler_.post(std::error_code());
}

// ---------------------------------------------------------------------------------------------
// Requests

void connection_impl::start_request(std::unique_ptr<request_op> op) {
    if (state_ != connection_state::open) {
        response r;
        r.diagnostics = "connection to " + endpoint_.to_string() + " is not open";
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

std::uint16_t connection_impl::next_id(const slot& s) const noexcept {
    // Slot i uses the IDs i+1, i+1+n, i+1+2n... (n slots) in turn, so a record finds its slot
    // in O(1) and an ID comes back only after the slot's other IDs. A record that arrives for a
    // request after its END_REQUEST (a server's duplicate, or Go's answer to an ABORT_REQUEST
    // followed by the handler's own output and END_REQUEST) then meets no live request, instead
    // of being taken for the next request's response.
    const std::uint32_t n = static_cast<std::uint32_t>(slots_.size());
    const std::uint32_t first = index_of(s) + 1u;
    std::uint32_t id = s.id == 0 ? first : s.id + n;
    for (std::size_t tries = 0; tries <= quarantined_.size(); ++tries) {
        if (id > proto::max_request_id)
            id = first;
        if (std::find(quarantined_.begin(), quarantined_.end(), id) == quarantined_.end())
            break;
        id += n;
    }
    return static_cast<std::uint16_t>(id > proto::max_request_id ? first : id);
}

void connection_impl::assign(slot& s, std::unique_ptr<request_op> op) {
    s.op = std::move(op);
    s.id = next_id(s);
    s.in_use = true;
    ++in_use_;
    ++slot_handlers_;
    s.written = false;
    s.abandoned = false;
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
            why = explain_param_too_large(params);
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
                why = explain_param_too_large(s.params.params());
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
        give_back(s, *to);
    --slot_handlers_;
    s.op->io_work = {};  // the handler's own executor tracks what is left
    deliver(std::move(s.op->handler), ec, std::move(r));
}

void connection_impl::give_back(slot& s, std::optional<request>& to) {
    // A closed socket writes nothing more, so a write's views of the request no longer matter;
    // a stream's source and sink use the request until they are done: those get a copy.
    bool viewed = (state_ != connection_state::closed && (s.writing || s.queued)) || s.op->stream;
    if (viewed)
        to = s.op->req;
    else
        to = std::move(s.op->req);
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
        if (ec == error::request_timeout && (s.written || s.writing) && stats_.bytes_read == 0)
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
    } else if (max_in_flight_ > 1 && slots_.size() > 1 && state_ == connection_state::open) {
        // A multiplexing server can abort one request; its ID stays taken until END_REQUEST.
        s.abandoned = true;
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
        close(error::connection_lost);
    }
    resume_reading();
    notify();
}

void connection_impl::on_abort_timeout(std::uint64_t serial) {
    for (auto& s : slots_) {
        if (s.in_use && s.abandoned && s.op && s.op->serial == serial) {
            retiring_ = true;
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
    close(error::connection_lost, "server at " + endpoint_.to_string() +
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
            const bool aborts_alone =
                max_in_flight_ > 1 && slots_.size() > 1 && state_ == connection_state::open;
            const bool partial_ok = (type & ct::partial) != ct::none && (answered || aborts_alone);
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
    d += " (" + std::to_string(stats_.requests_completed) +
         " requests completed earlier on this connection)";
    return d;
}

void connection_impl::close(std::error_code ec, std::string_view detail) {
    if (state_ == connection_state::closed)
        return;
    bool was_connecting = state_ == connection_state::connecting;
    state_ = connection_state::closed;
    std::error_code ignored;
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
                            (detail.empty() ? std::string() : " (" + std::string(detail) + ")");
            complete(s, error::not_connected, std::move(r));
        } else if (s.op && s.op->handler) {
            response r;
            std::string what(detail);
            if (what.empty())
                what = ec == error::connection_lost ? "server closed the connection"
                                                    : "connection closed";
            r.diagnostics = what + "; " + describe(s);
            complete(s, ec, std::move(r));
        }
        in_use_ -= s.in_use;
        s.in_use = false;
        s.queued = false;
        s.abandoned = false;
        drop_op_if_unused(s);
    }
    write_queue_.clear();
    while (!waiting_.empty()) {
        auto op = std::move(waiting_.front());
        waiting_.pop_front();
        response r;
        r.diagnostics =
            "connection to " + endpoint_.to_string() + " closed before the request was sent";
        if (op->hand_back && !op->is_prepared)
            *op->hand_back = std::move(op->req);
        op->handler.post(error::not_connected, std::move(r));
    }
    notify();
}

// ---------------------------------------------------------------------------------------------
// Writing

void connection_impl::start_write() {
    if (writing_ || state_ != connection_state::open)
        return;
    if (write_queue_.empty() && aborts_pending_.empty())
        return;
    gather_.clear();
    writing_slots_.clear();
    aborts_writing_.swap(aborts_pending_);
    aborts_pending_.clear();
    for (const auto& a : aborts_writing_)
        gather_.emplace_back(a.data(), a.size());
    for (auto idx : write_queue_) {
        slot& s = slots_[idx];
        s.queued = false;
        s.writing = true;
        for (auto b : s.encoder.buffers())
            gather_.emplace_back(b.data(), b.size());
        writing_slots_.push_back(idx);
        if (!s.written)
            ++stats_.requests_started;  // a streamed body's later chunks are the same request
    }
    write_queue_.clear();
    writing_ = true;
    // Try the write at once: a request usually fits in the socket buffer, and finishing it here
    // saves a trip through the reactor and the scheduler.
    std::error_code ec;
    // One buffer, the usual request, goes out through send(): a buffer sequence takes
    // sendmsg(), which also copies in a message header and an iovec array.
    std::size_t n = gather_.size() == 1
                        ? socket_.write_some(gather_.front(), ec)
                        : socket_.write_some(std::span<const asio::const_buffer>(gather_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again)
        ec.clear();
    std::size_t total = asio::buffer_size(gather_);
    if (ec || n == total) {
        on_write(ec, n);
        return;
    }
    // Drop what went out and let async_write finish the rest.
    std::size_t skip = n;
    auto first = gather_.begin();
    while (skip >= first->size()) {
        skip -= first->size();
        ++first;
    }
    *first += skip;
    gather_.erase(gather_.begin(), first);
    stats_.bytes_written += n;
    asio::async_write(socket_, std::span<const asio::const_buffer>(gather_),
                      [self = shared_from_this(), n](std::error_code ec2, std::size_t m) {
                          self->on_write(ec2, m, n);
                      });
}

void connection_impl::on_write(std::error_code ec, std::size_t n, std::size_t sent_before) {
    writing_ = false;
    stats_.bytes_written += n;
    // The kernel refused the whole write (EPIPE: the server had closed a kept-alive connection
    // and the reader has not seen it yet): a request with nothing out before stays unwritten,
    // so it fails as never sent and a pool may send it again, whatever its method.
    const bool refused_whole = ec && n == 0 && sent_before == 0;
    bool uploading = false;
    bool freed = false;
    for (auto idx : writing_slots_) {
        slot& s = slots_[idx];
        s.writing = false;
        s.written = s.written || !refused_whole;
        if (!s.in_use) {
            drop_op_if_unused(s);
            free_list_.push_back(idx);
            freed = true;
        } else if (s.op->stream && s.op->stream->upload_left > 0)
            uploading = true;
    }
    if (uploading && !ec && state_ == connection_state::open) {
        for (auto idx : writing_slots_) {
            slot& s = slots_[idx];
            if (s.in_use && !s.abandoned && s.op->handler && s.op->stream && !s.op->stream->ended &&
                s.op->stream->upload_left > 0 && !s.op->stream->source_busy)
                read_source(s);
        }
    }
    writing_slots_.clear();
    aborts_writing_.clear();
    if (state_ != connection_state::open)
        return;
    if (ec) {
        // The reader usually sees the reset first; either way every request on it is lost.
        close(ec == asio::error::broken_pipe || ec == asio::error::connection_reset
                  ? std::error_code(error::connection_lost)
                  : ec,
              refused_whole
                  ? "the server had closed it: the write was refused whole (" + ec.message() + ")"
                  : std::string());
        return;
    }
    pump_waiting();
    if (freed)
        notify();  // the slot was still being written when its release was announced
}

// ---------------------------------------------------------------------------------------------
// Reading

void connection_impl::start_read() {
    if (reading_ || state_ != connection_state::open)
        return;
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(read_buffer_),
        [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void connection_impl::on_read(std::error_code ec, std::size_t n) {
    reading_ = false;
    if (state_ != connection_state::open)
        return;
    if (ec) {
        close(ec == asio::error::eof || ec == asio::error::connection_reset
                  ? std::error_code(error::connection_lost)
                  : ec);
        return;
    }
    stats_.bytes_read += n;
    in_read_ = true;
    bool open = false;
    try {
        open = process_input(std::string_view(read_buffer_.data(), n));
    } catch (...) {
        // Out of memory, most likely (a response body growing): the stream is out of step now.
        // Left as it was, in_read_ would defer every completion and request for good; instead
        // every request on it ends, and the exception goes on to run() as Asio's own do.
        in_read_ = false;
        close(error::connection_lost,
              "an exception was thrown while reading from " + endpoint_.to_string());
        flush_deferred();
        throw;
    }
    in_read_ = false;
    if (std::exchange(pump_after_read_, false) && open) {
        pump_waiting();
        open = state_ == connection_state::open;
    }
    if (open) {
        // Re-armed first, so a close by the user's handlers below is seen; not while a sink's
        // buffer is full (backpressure: resume_reading() re-arms it).
        if (sink_buffer_full())
            paused_ = true;
        else
            start_read();
    }
    start_sink_writes();
    flush_deferred();
}

bool connection_impl::process_input(std::string_view in) {
    while (!in.empty()) {
        auto r = decoder_.feed(in);
        in.remove_prefix(r.consumed);
        if (r.ec) {
            close(r.ec, decoder_.failure() + ", from " + endpoint_.to_string());
            return false;
        }
        if (r.has_piece && !handle_piece(r.piece, !in.empty()))
            return false;
    }
    return state_ == connection_state::open;
}

bool connection_impl::handle_piece(const proto::record_piece& piece, bool input_left) {
    const auto& h = piece.header;
    auto type_name = [&] {
        return proto::is_known(h.type) ? std::string(proto::to_string(h.type))
                                       : "type " + std::to_string(static_cast<int>(h.type));
    };
    if (h.request_id == proto::management_id) {
        if (h.type == proto::record_type::get_values_result)
            return true;  // an answer nobody asked for on this connection: harmless
        if (h.type == proto::record_type::unknown_type) {
            std::uint8_t t = 0;
            (void)proto::parse_unknown_type(piece.content, t);
            auto type = static_cast<proto::record_type>(t);
            std::string named = proto::is_known(type) ? std::string(proto::to_string(type)) +
                                                            " (type " + std::to_string(t) + ")"
                                                      : "type " + std::to_string(t);
            // Only a type this connection sends can be one the server does not understand;
            // any other is a stray record, as a record for an ID never issued is.
            if (type == proto::record_type::begin_request ||
                type == proto::record_type::abort_request || type == proto::record_type::params ||
                type == proto::record_type::stdin_ || type == proto::record_type::data)
                close(error::unknown_type_reply, "server at " + endpoint_.to_string() +
                                                     " answered UNKNOWN_TYPE for " + named +
                                                     ": it does not implement that record");
            else
                close(error::unexpected_record, "UNKNOWN_TYPE from " + endpoint_.to_string() +
                                                    " names " + named +
                                                    ", which this connection never sends");
            return false;
        }
        close(proto::is_known(h.type) ? std::error_code(error::unexpected_record)
                                      : std::error_code(error::unknown_record_type),
              "record of " + type_name() + " for request 0 from " + endpoint_.to_string());
        return false;
    }
    slot& s = slots_[(h.request_id - 1u) % slots_.size()];
    if (!s.in_use || s.id != h.request_id) {
        // An aborted request's late records (see next_id): the server may answer the abort and
        // still send what the request had produced.
        if (std::find(quarantined_.begin(), quarantined_.end(), h.request_id) != quarantined_.end())
            return true;
        close(error::unexpected_record,
              "record of " + type_name() + " for request " + std::to_string(h.request_id) +
                  ", which is not in flight (a late record of an earlier request?), from " +
                  endpoint_.to_string());
        return false;
    }
    if (!s.written && !s.writing) {
        // Queued behind another request's write: whatever this answers, it is not that request.
        close(error::unexpected_record,
              "record of " + type_name() + " for request " + std::to_string(h.request_id) +
                  ", which was not sent yet, from " + endpoint_.to_string());
        return false;
    }
    if (s.op->stream && s.op->stream->ended) {
        close(error::unexpected_record, "record of " + type_name() + " for request " +
                                            std::to_string(h.request_id) +
                                            " after its END_REQUEST from " + endpoint_.to_string());
        return false;
    }
    std::error_code ec;
    std::string why;
    switch (h.type) {
        case proto::record_type::stdout_:
            if (!s.abandoned && s.op->req.stdout_sink)
                ec = on_streamed_stdout(s, piece.content, why);
            else if (!s.abandoned)
                ec = s.assembler.on_stdout(piece.content);
            break;
        case proto::record_type::stderr_:
            if (!s.abandoned)
                ec = s.assembler.on_stderr(piece.content);
            break;
        case proto::record_type::end_request:
            on_end_request(s, piece.content, input_left);
            return state_ == connection_state::open;
        default:
            close(proto::is_known(h.type) ? std::error_code(error::unexpected_record)
                                          : std::error_code(error::unknown_record_type),
                  "record of " + type_name() + " from server at " + endpoint_.to_string() +
                      " for request " + std::to_string(h.request_id));
            return false;
    }
    if (ec) {
        // As after a timeout: a multiplexed connection aborts this request alone and drops the
        // rest of its records; otherwise closing is the only way to stop the script (php-fpm).
        // Named as a client user sets them too, through client_options::connection.
        if (ec == error::response_too_large && h.type == proto::record_type::stderr_)
            why = "STDERR exceeded connection_options::max_stderr_size (" +
                  std::to_string(opts_.max_stderr_size) + " bytes" + in_a_client + ")";
        else if (ec == error::response_too_large)
            why = "STDOUT exceeded connection_options::max_stdout_size (" +
                  std::to_string(opts_.max_stdout_size) + " bytes" + in_a_client + ")";
        else if (ec == error::response_head_too_large)
            why = "the CGI response head did not end within connection_options::max_head_size (" +
                  std::to_string(opts_.max_head_size) + " bytes" + in_a_client + ")";
        else if (ec == error::bad_response_head)
            why = bad_head_line(s.assembler.bad_head_line());
        else if (ec != error::sink_failed)
            why = ec.message();
        abandon(s, ec, why + "; " + describe(s));
        return state_ == connection_state::open;
    }
    return true;
}

void connection_impl::on_end_request(slot& s, std::string_view content, bool input_left) {
    proto::end_request_body end;
    if (auto ec = proto::parse_end_request(content, end)) {
        close(ec, "malformed END_REQUEST from " + endpoint_.to_string());
        return;
    }
    ++stats_.requests_completed;
    if (end.status == proto::protocol_status::cant_mpx_conn)
        max_in_flight_ = 1;  // the server cannot multiplex: one request at a time from now on
    // A body not sent in full when the server ended the request leaves records the server will
    // read as the next request's: that stream cannot be reused unless it multiplexes. A server
    // that refused to (CANT_MPX_CONN, max_in_flight_ dropped to 1) still tells requests apart by
    // ID, so closing would only fail the request it is serving.
    bool body_unsent =
        s.writing || s.queued ||
        (s.op && s.op->stream && (s.op->stream->upload_left > 0 || s.op->stream->source_busy));
    bool draining = false;
    const bool delivered = !s.abandoned && s.op && s.op->handler;
    if (delivered) {
        std::error_code ec = s.assembler.on_end(end);
        response r = s.assembler.take();
        if (!ec && end.status != proto::protocol_status::request_complete)
            ec = make_error_code(static_cast<server_error>(end.status));
        if (ec == error::bad_response_head)
            r.diagnostics = bad_head_line(s.assembler.bad_head_line()) + "; " + describe(s);
        else if (ec)
            r.diagnostics = "server at " + endpoint_.to_string() + " ended request " +
                            std::to_string(s.id) + ": " + ec.message();
        auto* sink = s.op->req.stdout_sink.get();
        if (!ec && sink && !s.op->stream->head_delivered) {
            // The stream ended before the blank line: the head is all there is.
            s.op->stream->head_delivered = true;
            std::string why;
            auto keep =
                s.op->req.stdout_sink.share();  // closing from on_head drops the op and the sink
            bool failed = bool(call_user("response sink's on_head()", error::sink_failed, why,
                                         [&] { return sink->on_head(r, why); }));
            if (!s.op || !s.op->handler)
                return;  // the sink closed the connection, which completed the request
            if (failed) {
                ec = error::sink_failed;
                r.diagnostics = why + "; " + describe(s);
            }
        }
        if (!ec && sink) {
            // The response is complete; the handler runs once the sink has everything.
            auto& st = *s.op->stream;
            st.ended = true;
            st.end_response = std::move(r);
            draining = st.sink_busy || !st.sink_pending.empty();
            if (draining && s.queued) {
                // An early answer (fastcgi_finish_request()): the rest of the body is not
                // sent, and a chunk waiting to go would be records for an ended request.
                std::erase(write_queue_, index_of(s));
                s.queued = false;
            }
            if (!draining)
                // Released below like any other request: finish_stream() would also hand the
                // slot to a waiting request at once, which that release would drop unanswered.
                complete_stream(s);
        } else {
            complete(s, ec, std::move(r));
        }
    }
    if (s.abandoned) {
        // Records for its ID may still come; they are dropped, and the ID is not reused, while
        // it is among the last few aborted.
        if (quarantined_.size() == max_quarantined)
            quarantined_.erase(quarantined_.begin());
        quarantined_.push_back(s.id);
    }
    if (!draining && s.in_use)
        release(s);
    // Reuse the stream only if END_REQUEST ended exactly where the bytes read ended: anything
    // after it, with nothing else in flight, means the stream is out of step (PROTOCOL.md item 8).
    auto others = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const slot& o) {
            return o.in_use && !(o.op && o.op->stream && o.op->stream->ended);
        });
    };
    if (((input_left || !decoder_.at_record_boundary()) && !others()) ||
        (body_unsent && slots_.size() == 1)) {
        close(error::connection_lost);
        return;
    }
    close_if_retired();
    if (state_ != connection_state::open)
        return;
    pump_waiting();
    // A delivered completion reaches the pool through its handler; only a slot freed without
    // one (an aborted request's END_REQUEST) needs telling.
    if (!delivered)
        notify();
}

// ---------------------------------------------------------------------------------------------
// Streamed bodies

std::error_code connection_impl::start_streams(slot& s, std::string& why) {
    auto st = std::make_unique<stream_state>();
    // Copies: a start() that closes the connection drops the op, and with it the request's.
    auto source = s.op->req.stdin_source.share();
    auto sink = s.op->req.stdout_sink.share();
    auto closed = [&] { return !s.op || !s.op->handler; };
    if (source) {
        if (auto ec = call_user("request body source's start()", error::source_failed, why,
                                [&] { return source->start(why); }))
            return ec;
        if (closed())
            return error::not_connected;
        st->upload_left = s.op->req.body_size();
    }
    if (sink) {
        if (auto ec = call_user("response sink's start()", error::sink_failed, why,
                                [&] { return sink->start(why); }))
            return ec;
        if (closed())
            return error::not_connected;
    }
    s.op->stream = std::move(st);
    return {};
}

void connection_impl::read_source(slot& s) {
    auto& st = *s.op->stream;
    if (st.chunk.empty())
        st.chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(
            std::max<std::size_t>(opts_.source_chunk_size, 1), st.upload_left)));
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(st.chunk.size(), st.upload_left));
    st.source_busy = true;
    auto index = index_of(s);
    // The source may complete inline or on another thread: hop onto the executor either way,
    // which also keeps a fast source from recursing through write and read.
    auto source =
        s.op->req.stdin_source.share();  // a source that closes the connection drops the op
    std::string why;
    auto ec = call_user("request body source's async_read_some()", error::source_failed, why, [&] {
        source->async_read_some(asio::buffer(st.chunk.data(), n), ex_,
                                [self = shared_from_this(), index, serial = s.op->serial](
                                    std::error_code ec2, std::size_t m) {
                                    auto& ex = self->ex_;
                                    asio::post(ex, [self = std::move(self), index, serial, ec2, m] {
                                        self->on_source_read(index, serial, ec2, m);
                                    });
                                });
        return std::error_code();
    });
    if (ec && s.op && s.op->handler && s.op->stream) {
        s.op->stream->source_busy = false;
        abandon(s, ec, why + "; " + describe(s));
    }
}

void connection_impl::on_source_read(std::uint16_t index, std::uint64_t serial, std::error_code ec,
                                     std::size_t n) {
    slot& s = slots_[index];
    if (!s.op || s.op->serial != serial || !s.op->stream)
        return;
    auto& st = *s.op->stream;
    st.source_busy = false;
    if (!s.in_use || s.abandoned || !s.op->handler || st.ended ||
        state_ != connection_state::open) {
        // Ended meanwhile (by the server too: an early answer whose sink still drains): the
        // chunk is not sent.
        if (!s.in_use) {
            drop_op_if_unused(s);
            free_list_.push_back(index);
            pump_waiting();
            notify();  // the slot was busy when its release was announced
        }
        return;
    }
    std::uint64_t total = s.op->req.body_size();
    std::uint64_t asked = std::min<std::uint64_t>(st.chunk.size(), st.upload_left);
    if (ec || n == 0 || n > asked) {
        std::string sent =
            std::to_string(total - st.upload_left) + " of " + std::to_string(total) + " bytes";
        std::string text = ec ? s.op->req.stdin_source.get()->failure_text() : std::string();
        std::string what = ec ? "request body source failed after " + sent + ": " + ec.message() +
                                    (text.empty() ? "" : " (" + text + ")")
                           : n == 0 ? "request body source ended after " + sent
                                    : "request body source returned more bytes than asked";
        abandon(s, ec || n > asked ? error::source_failed : error::source_ended_early,
                what + "; " + describe(s));
        return;
    }
    st.upload_left -= n;
    s.encoder.clear();
    s.encoder.add_stream(proto::record_type::stdin_, s.id, std::string_view(st.chunk.data(), n));
    if (st.upload_left == 0) {
        s.encoder.end_stream(proto::record_type::stdin_, s.id);
        if (s.op->req.role == proto::role::filter) {
            s.encoder.add_stream(proto::record_type::data, s.id, s.op->req.data);
            s.encoder.end_stream(proto::record_type::data, s.id);
        }
    }
    s.queued = true;
    write_queue_.push_back(index);
    start_write();
}

std::error_code connection_impl::on_streamed_stdout(slot& s, std::string_view bytes,
                                                    std::string& why) {
    auto& st = *s.op->stream;
    auto piece = s.assembler.on_stdout_streamed(bytes);
    if (piece.ec)
        return piece.ec;
    if (piece.head_complete) {
        st.head_delivered = true;
        // A copy: closing the connection from on_head drops the op, which owns the sink.
        auto sink = s.op->req.stdout_sink.share();
        bool failed = bool(call_user("response sink's on_head()", error::sink_failed, why,
                                     [&] { return sink->on_head(s.assembler.head(), why); }));
        if (!s.op || !s.op->handler)
            return {};  // the sink closed the connection: the op and `st` may be gone
        if (failed)
            return error::sink_failed;
    }
    st.sink_pending.append(piece.body);
    return {};
}

void connection_impl::start_sink_writes() {
    for (auto& s : slots_) {
        if (s.op && s.op->handler && s.op->stream && !s.op->stream->sink_busy &&
            !s.op->stream->sink_pending.empty())
            write_sink(s);
    }
}

void connection_impl::write_sink(slot& s) {
    auto& st = *s.op->stream;
    // Swap rather than copy: the sink consumes one buffer while the reader fills the other.
    st.sink_inflight.swap(st.sink_pending);
    st.sink_pending.clear();
    st.sink_busy = true;
    auto index = index_of(s);
    auto sink = s.op->req.stdout_sink.share();  // a sink that closes the connection drops the op
    std::string why;
    auto ec = call_user("response sink's async_write()", error::sink_failed, why, [&] {
        sink->async_write(
            st.sink_inflight, ex_,
            [self = shared_from_this(), index, serial = s.op->serial](std::error_code ec2) {
                auto& ex = self->ex_;
                asio::post(ex, [self = std::move(self), index, serial, ec2] {
                    self->on_sink_written(index, serial, ec2);
                });
            });
        return std::error_code();
    });
    if (ec && s.op && s.op->handler && s.op->stream) {
        s.op->stream->sink_busy = false;
        abandon(s, ec, why + "; " + describe(s));
    }
}

void connection_impl::on_sink_written(std::uint16_t index, std::uint64_t serial,
                                      std::error_code ec) {
    slot& s = slots_[index];
    if (!s.op || s.op->serial != serial || !s.op->stream)
        return;
    auto& st = *s.op->stream;
    st.sink_busy = false;
    st.sink_delivered += st.sink_inflight.size();
    st.sink_inflight.clear();
    if (!s.op->handler) {
        // Completed meanwhile (failed, cancelled): nothing more goes to the sink.
        if (!s.in_use) {
            drop_op_if_unused(s);
            free_list_.push_back(index);
            pump_waiting();
            notify();  // the slot was busy when its release was announced
        }
        resume_reading();
        return;
    }
    if (ec) {
        std::string text = s.op->req.stdout_sink.get()->failure_text();
        abandon(s, error::sink_failed,
                "response sink failed after " + std::to_string(st.sink_delivered) +
                    " bytes of body: " + ec.message() + (text.empty() ? "" : " (" + text + ")") +
                    "; " + describe(s));
        return;
    }
    if (!st.sink_pending.empty())
        write_sink(s);
    else if (st.ended)
        finish_stream(s);
    resume_reading();
}

void connection_impl::finish_stream(slot& s) {
    complete_stream(s);
    release(s);
    if (state_ == connection_state::open)
        pump_waiting();
    notify();
}

void connection_impl::complete_stream(slot& s) {
    auto& st = *s.op->stream;
    response r = std::move(st.end_response);
    std::error_code ec;
    std::string why;
    auto sink =
        s.op->req.stdout_sink.share();  // a finish() that closes the connection drops the op
    bool failed = bool(call_user("response sink's finish()", error::sink_failed, why,
                                 [&] { return sink->finish(why); }));
    if (!s.op || !s.op->handler)
        return;  // the sink closed the connection, which completed the request
    if (failed) {
        // The body went to the sink, so what is left of the response is its STDERR.
        ec = error::sink_failed;
        response failed_r;
        failed_r.stderr_text = std::move(r.stderr_text);
        failed_r.diagnostics = why + "; " + describe(s);
        r = std::move(failed_r);
    }
    complete(s, ec, std::move(r));
}

bool connection_impl::sink_buffer_full() const noexcept {
    for (const auto& s : slots_)
        // An empty buffer is never full, or a limit of 0 would stop reading for good.
        if (s.op && s.op->stream && s.op->handler && !s.op->stream->sink_pending.empty() &&
            s.op->stream->sink_pending.size() >= opts_.sink_buffer_size)
            return true;
    return false;
}

void connection_impl::resume_reading() {
    if (paused_ && state_ == connection_state::open && !sink_buffer_full()) {
        paused_ = false;
        start_read();
    }
}

}  // namespace fcgi::detail
