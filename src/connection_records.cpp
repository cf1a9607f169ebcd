// The connection's wire: writing the queued requests' records in one gathered write, and the
// read loop that routes each record read to its request by ID.
#include "fcgi/detail/connection_impl.hpp"

#include <algorithm>
#include <asio/write.hpp>
#include <span>
#include <utility>

#include "exception_text.hpp"
#include "fcgi/detail/ascii.hpp"
#include "fcgi/detail/record_route.hpp"
#include "fcgi/error.hpp"
#include "stream_socket.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

namespace {

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

// Why a response failed while its records came in (`ec` from the assembler), naming the limit
// it ran into, and where to set it.
std::string response_error_text(std::error_code ec, proto::record_type type,
                                const response_assembler& assembler,
                                const connection_options& opts) {
    if (ec == error::response_too_large && type == proto::record_type::stderr_)
        return "STDERR exceeded connection_options::max_stderr_size (" +
               std::to_string(opts.max_stderr_size) + " bytes" + in_a_client + ")";
    if (ec == error::response_too_large)
        return "STDOUT exceeded connection_options::max_stdout_size (" +
               std::to_string(opts.max_stdout_size) + " bytes" + in_a_client + ")";
    if (ec == error::response_head_too_large)
        return "the CGI response head did not end within connection_options::max_head_size (" +
               std::to_string(opts.max_head_size) + " bytes" + in_a_client + ")";
    if (ec == error::bad_response_head)
        return bad_head_line(assembler.bad_head_line());
    return ec.message();
}

}  // namespace

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
    // writing_ stays set until the slots just written are accounted for: a source read from
    // here may queue records (an ABORT_REQUEST when it throws, a request it starts inline),
    // and a write started now would refill writing_slots_ under the loops below, whose clear()
    // would then lose the new write's slots (their uploads stalled for good) and the abort
    // records it is still sending. What they queue goes out in pump_waiting() at the end.
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
        if (refused_whole && !s.written)
            --stats_.requests_started;  // counted when queued: not one byte of it went out
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
    writing_ = false;
    if (state_ != connection_state::open)
        return;
    if (ec) {
        // The reader usually sees the reset first; either way every request on it is lost.
        close(map_stream_error(ec),
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
        close(map_stream_error(ec));
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
        close_here("an exception was thrown while reading from " + endpoint_.to_string());
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
    if (in_use_ == 0 && !decoder_.at_record_boundary()) {
        // Part of a record with no request to answer (a whole one closes in handle_piece, unless
        // it is an aborted request's): left in the decoder, it would be read as the start of the
        // next request's response. Nothing is in flight to fail.
        auto under_way = decoder_.record_under_way();
        if (!under_way || !ids_.quarantined(under_way->request_id)) {
            close(error::unexpected_record,
                  "the start of a record from " + endpoint_.to_string() +
                      " with no request in flight: the stream is out of step");
            return false;
        }
    }
    return state_ == connection_state::open;
}

bool connection_impl::handle_piece(const proto::record_piece& piece, bool input_left) {
    const auto& h = piece.header;
    routed_request to;
    slot* target = nullptr;  // the slot the ID maps to; none for request 0
    if (h.request_id != proto::management_id) {
        target = &slots_[ids_.slot_of(h.request_id)];
        to.in_flight = target->in_use && target->id == h.request_id;
        to.quarantined = !to.in_flight && ids_.quarantined(h.request_id);
        to.sent = target->written || target->writing;
        to.ended = target->op && target->op->stream && target->op->stream->ended;
    }
    auto verdict = route_record(piece, to, endpoint_);
    if (verdict.route == record_route::fail) {
        close(verdict.ec, verdict.why);
        return false;
    }
    if (verdict.route == record_route::drop)
        return true;
    slot& s = *target;  // routed to a request in flight
    if (verdict.route == record_route::end_request) {
        on_end_request(s, piece.content, input_left);
        return state_ == connection_state::open;
    }
    std::error_code ec;
    std::string why;
    if (s.abandoned)
        return true;  // its records are dropped until its END_REQUEST
    if (verdict.route == record_route::stderr_)
        ec = s.assembler.on_stderr(piece.content);
    else if (s.op->req.stdout_sink)
        ec = on_streamed_stdout(s, piece.content, why);
    else
        ec = s.assembler.on_stdout(piece.content);
    if (ec) {
        // As after a timeout: a multiplexed connection aborts this request alone and drops the
        // rest of its records; otherwise closing is the only way to stop the script (php-fpm).
        // Named as a client user sets them too, through client_options::connection.
        if (ec != error::sink_failed)
            why = response_error_text(ec, h.type, s.assembler, opts_);
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
    s.end_counted = true;
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
        ids_.quarantine(s.id);
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
    if ((input_left || !decoder_.at_record_boundary()) && !others()) {
        close_here("closed by this client: bytes followed the END_REQUEST of request " +
                   std::to_string(s.id) + " from " + endpoint_.to_string() +
                   " with no other request in flight, so the stream is out of step");
        return;
    }
    if (body_unsent && slots_.size() == 1) {
        close_here("closed by this client: request " + std::to_string(s.id) +
                   " was answered before its body was sent in full, and the rest would reach " +
                   endpoint_.to_string() + " as the next request's");
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

}  // namespace fcgi::detail
