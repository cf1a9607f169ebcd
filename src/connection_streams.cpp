// The connection's streamed bodies: a request body read from a source chunk by chunk as the
// socket takes it, and a response's STDOUT handed to a sink, the reader pausing while the sink
// is behind.
#include "fcgi/detail/connection_impl.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <utility>

#include "exception_text.hpp"
#include "fcgi/error.hpp"

namespace fcgi::detail {

namespace proto = fcgi::protocol;

namespace {

// What a body source or sink that failed with `ec` says of it, `text` being its own account
// (failure_text()). The coroutine adapters fail with `own` (source_failed, sink_failed) on a
// throw: then their words say it all.
std::string failure_cause(std::error_code ec, std::error_code own, const std::string& text) {
    if (text.empty())
        return ec.message();
    if (ec == own)
        return text;
    return ec.message() + " (" + text + ")";
}

}  // namespace

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
    auto read = ++st.source_reads;
    auto index = index_of(s);
    // The source may complete inline or on another thread: hop onto the executor either way,
    // which also keeps a fast source from recursing through write and read.
    auto source =
        s.op->req.stdin_source.share();  // a source that closes the connection drops the op
    std::string why;
    auto ec = call_user("request body source's async_read_some()", error::source_failed, why, [&] {
        source->async_read_some(asio::buffer(st.chunk.data(), n), ex_,
                                [self = shared_from_this(), index, serial = s.op->serial, read](
                                    std::error_code ec2, std::size_t m) {
                                    auto& ex = self->ex_;
                                    asio::post(
                                        ex, [self = std::move(self), index, serial, read, ec2, m] {
                                            self->on_source_read(index, serial, read, ec2, m);
                                        });
                                });
        return std::error_code();
    });
    if (ec && s.op && s.op->handler && s.op->stream) {
        s.op->stream->source_busy = false;
        abandon(s, ec, why + "; " + describe(s));
    }
}

void connection_impl::on_source_read(std::uint16_t index, std::uint64_t serial, std::uint64_t read,
                                     std::error_code ec, std::size_t n) {
    slot& s = slots_[index];
    if (!s.op || s.op->serial != serial || !s.op->stream)
        return;
    auto& st = *s.op->stream;
    if (!st.source_busy || read != st.source_reads) {
        // `done` called again for a read already answered: its bytes may be the next read's
        // half-filled chunk, and the slot may already be free. Never send them; fail the request
        // if it is still going (a read in progress keeps the slot until its own `done`).
        if (s.in_use && !s.abandoned && s.op->handler && !st.ended &&
            state_ == connection_state::open)
            abandon(s, error::source_failed,
                    "request body source called done twice for one read; " + describe(s));
        return;
    }
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
        } else if (s.abandoned) {
            let_go_of_streams(s);
        }
        return;
    }
    std::uint64_t total = s.op->req.body_size();
    std::uint64_t asked = std::min<std::uint64_t>(st.chunk.size(), st.upload_left);
    if (ec || n == 0 || n > asked) {
        std::string sent =
            std::to_string(total - st.upload_left) + " of " + std::to_string(total) + " bytes";
        std::string text = ec ? s.op->req.stdin_source.get()->failure_text() : std::string();
        std::string what = ec ? "request body source failed after " + sent + ": " +
                                    failure_cause(ec, error::source_failed, text)
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
    auto write = ++st.sink_writes;
    auto index = index_of(s);
    auto sink = s.op->req.stdout_sink.share();  // a sink that closes the connection drops the op
    std::string why;
    auto ec = call_user("response sink's async_write()", error::sink_failed, why, [&] {
        sink->async_write(
            st.sink_inflight, ex_,
            [self = shared_from_this(), index, serial = s.op->serial, write](std::error_code ec2) {
                auto& ex = self->ex_;
                asio::post(ex, [self = std::move(self), index, serial, write, ec2] {
                    self->on_sink_written(index, serial, write, ec2);
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
                                      std::uint64_t write, std::error_code ec) {
    slot& s = slots_[index];
    if (!s.op || s.op->serial != serial || !s.op->stream)
        return;
    auto& st = *s.op->stream;
    if (!st.sink_busy || write != st.sink_writes) {
        // `done` called again for a write already answered: the sink may be reading the next
        // chunk, which must stay as it is until that write's own `done`, and the slot may already
        // be free. Fail the request if it is still going.
        if (s.in_use && !s.abandoned && s.op->handler && state_ == connection_state::open)
            abandon(s, error::sink_failed,
                    "response sink called done twice for one write; " + describe(s));
        return;
    }
    st.sink_busy = false;
    if (!ec)
        st.sink_delivered += st.sink_inflight.size();  // a failed write took none, as far as known
    st.sink_inflight.clear();
    if (!s.op->handler) {
        // Completed meanwhile (failed, cancelled): nothing more goes to the sink.
        if (!s.in_use) {
            drop_op_if_unused(s);
            free_list_.push_back(index);
            pump_waiting();
            notify();  // the slot was busy when its release was announced
        } else if (s.abandoned) {
            let_go_of_streams(s);
        }
        resume_reading();
        return;
    }
    if (ec) {
        std::string text = s.op->req.stdout_sink.get()->failure_text();
        abandon(s, error::sink_failed,
                "response sink failed after " + std::to_string(st.sink_delivered) +
                    " bytes of body: " + failure_cause(ec, error::sink_failed, text) + "; " +
                    describe(s));
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
    auto failed = call_user("response sink's finish()", error::sink_failed, why,
                            [&] { return sink->finish(why); });
    if (!s.op || !s.op->handler)
        return;  // the sink closed the connection, which completed the request
    if (failed) {
        // The body went to the sink, so what is left of the response is its STDERR.
        ec = error::sink_failed;
        response failed_r;
        failed_r.stderr_text = std::move(r.stderr_text);
        failed_r.stderr_dropped = r.stderr_dropped;
        if (why.empty())  // a sink of the user's that returned an error and no words
            why = "response sink's finish() failed after " +
                  std::to_string(s.op->stream->sink_delivered) +
                  " bytes of body: " + failed.message();
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
