#include "support/fake_responder.hpp"

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <span>
#include <stdexcept>
#include <thread>

#include "fcgi/protocol/name_value.hpp"
#include "fcgi/protocol/record_bodies.hpp"
#include "fcgi/protocol/record_decoder.hpp"
#include "fcgi/protocol/record_header.hpp"

namespace fcgi::test {

namespace proto = fcgi::protocol;

std::optional<std::string> seen_request::param(std::string_view name) const {
    for (const auto& [n, v] : params)
        if (n == name)
            return v;
    return std::nullopt;
}

namespace act {

action stdout_(std::string bytes, std::size_t record_size) {
    action a;
    a.what = action::kind::stdout_;
    a.bytes = std::move(bytes);
    a.record_size = record_size;
    return a;
}

action stderr_(std::string bytes, std::size_t record_size) {
    action a = stdout_(std::move(bytes), record_size);
    a.what = action::kind::stderr_;
    return a;
}

action end(proto::protocol_status status, std::uint32_t app_status) {
    action a;
    a.what = action::kind::end_request;
    a.status = status;
    a.app_status = app_status;
    return a;
}

action raw(std::string bytes) {
    action a;
    a.what = action::kind::raw;
    a.bytes = std::move(bytes);
    return a;
}

action delay(std::chrono::milliseconds d) {
    action a;
    a.what = action::kind::delay;
    a.delay = d;
    return a;
}

action wait_until(std::function<bool()> ready) {
    action a;
    a.what = action::kind::wait_until;
    a.until = std::move(ready);
    return a;
}

action close() {
    action a;
    a.what = action::kind::close;
    return a;
}

action endless_stdout(std::size_t cap, std::size_t record_size, char fill) {
    action a;
    a.what = action::kind::endless_stdout;
    a.cap = cap;
    a.record_size = record_size;
    a.fill = fill;
    return a;
}

action endless_stderr(std::size_t cap, std::size_t record_size, char fill) {
    action a = endless_stdout(cap, record_size, fill);
    a.stream = proto::record_type::stderr_;
    return a;
}

action reset() {
    action a;
    a.what = action::kind::reset;
    return a;
}

}  // namespace act

std::string echo_body(const seen_request& r) {
    std::string body = "id=" + r.param("X_ID").value_or("");
    if (!r.stdin_data.empty())
        body += "\nstdin=" + r.stdin_data;
    return body;
}

script echo_script(const seen_request& r) {
    if (r.role != proto::role::responder)
        return {act::end(proto::protocol_status::unknown_role)};
    return {act::stdout_(std::string(echo_head)), act::stdout_(echo_body(r)), act::end()};
}

fake_responder_options one_live_request_options() {
    return {.script_for =
                [](const seen_request& r) {
                    auto s = echo_script(r);
                    s.insert(s.begin(), act::delay(std::chrono::milliseconds(50)));
                    return s;
                },
            .max_live_per_connection = 1};
}

std::string make_record(proto::record_type type, std::uint16_t id, std::string_view content,
                        std::uint8_t version) {
    if (content.size() > proto::max_content_length)
        throw std::length_error("make_record: content over 65535 bytes");
    std::string out(proto::header_size, '\0');
    auto pad = proto::padding_for(content.size());
    proto::encode_header(
        proto::record_header{version, type, id, static_cast<std::uint16_t>(content.size()), pad},
        std::span<char, proto::header_size>(out.data(), proto::header_size));
    out.append(content);
    out.append(pad, '\0');
    return out;
}

namespace {

using asio::awaitable;
using asio::use_awaitable;
using socket_t = asio::generic::stream_protocol::socket;
using steady = std::chrono::steady_clock;

// Appends `bytes` as records of `type` of at most `record_size` bytes; an empty record when
// `bytes` is empty (the end of a stream).
void append_stream(std::string& out, proto::record_type type, std::uint16_t id,
                   std::string_view bytes, std::size_t record_size) {
    record_size = std::clamp<std::size_t>(record_size, 1, proto::max_content_length);
    if (bytes.empty()) {
        out += make_record(type, id, {});
        return;
    }
    while (!bytes.empty()) {
        auto n = std::min(record_size, bytes.size());
        out += make_record(type, id, bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
}

template <std::size_t N>
std::string to_string(const std::array<char, N>& a) {
    return std::string(a.data(), a.size());
}

// A request from BEGIN_REQUEST until its END_REQUEST is queued (or the connection ends).
struct live_request {
    explicit live_request(asio::io_context& ctx) : timer(ctx) {}
    std::size_t seen_index = 0;  // in fake_snapshot::requests
    seen_request info;
    std::string params_record;  // the PARAMS record being read: pairs must not span records
    bool params_done = false;
    bool stdin_done = false;
    bool data_done = false;
    bool started = false;
    bool aborted = false;
    bool refused = false;      // got CANT_MPX_CONN; its remaining records are swallowed
    asio::steady_timer timer;  // delay actions; cancelled by ABORT_REQUEST
};

struct step {
    action a;
    std::shared_ptr<live_request> owner;
};

struct out_item {
    std::string bytes;
    bool close_after = false;  // shut the socket down once these bytes are written
};

struct conn_state {
    conn_state(asio::io_context& ctx, socket_t s, std::size_t n)
        : socket(std::move(s)),
          number(n),
          wake_writer(ctx, steady::time_point::max()),
          wake_senders(ctx, steady::time_point::max()),
          batch_timer(ctx) {}

    socket_t socket;
    std::size_t number;
    proto::record_decoder decoder;
    std::map<std::uint16_t, std::shared_ptr<live_request>> live;
    std::size_t begun = 0;  // BEGIN_REQUESTs seen
    std::size_t ended = 0;  // END_REQUESTs queued for live requests
    // Writes go through one writer coroutine so bytes of concurrent scripts never interleave
    // inside a record. The two timers never expire: cancel() is the wake-up signal.
    std::deque<out_item> queue;
    std::uint64_t queued = 0;
    std::uint64_t written = 0;
    asio::steady_timer wake_writer;
    asio::steady_timer wake_senders;
    bool closing = false;  // a close is queued or done: nothing more may be queued
    bool closed = false;   // the socket is closed
    bool peer_gone = false;
    bool refusing = false;  // refuse_after_requests reached: the close is a SHUT_RD
    std::vector<std::pair<std::shared_ptr<live_request>, script>> batch;
    asio::steady_timer batch_timer;
    std::mt19937 rng;
};

awaitable<void> wait_signal(asio::steady_timer& t) {
    std::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
}

std::size_t count_live(const conn_state& c) {
    return static_cast<std::size_t>(std::count_if(
        c.live.begin(), c.live.end(), [](const auto& kv) { return !kv.second->refused; }));
}

}  // namespace

struct fake_responder::impl {
    explicit impl(fake_responder_options o);
    ~impl();

    template <class F>
    void record(F&& f) {
        {
            std::lock_guard lk(mu);
            f(state);
        }
        cv.notify_all();
    }
    void violation(std::string what) {
        record([&](fake_snapshot& s) { s.violations.push_back(std::move(what)); });
    }

    template <class Acceptor>
    awaitable<void> accept_loop(Acceptor& acceptor, bool tcp);
    void start_connection(socket_t s, bool tcp);
    awaitable<void> reader(std::shared_ptr<conn_state> c);
    awaitable<void> writer(std::shared_ptr<conn_state> c);
    awaitable<std::error_code> write_out(std::shared_ptr<conn_state> c, std::string_view bytes);
    std::uint64_t enqueue(conn_state& c, std::string bytes, bool close_after);
    awaitable<bool> send(std::shared_ptr<conn_state> c, std::string bytes, bool close_after);
    void close_conn(conn_state& c);
    void note_peer_gone(conn_state& c);

    void on_piece(const std::shared_ptr<conn_state>& c, const proto::record_piece& p);
    void on_begin(const std::shared_ptr<conn_state>& c, std::uint16_t id, std::string_view body);
    void on_abort(const std::shared_ptr<conn_state>& c, std::uint16_t id);
    void on_stream(const std::shared_ptr<conn_state>& c, const std::shared_ptr<live_request>& lr,
                   const proto::record_piece& p);
    void answer_get_values(conn_state& c, std::string_view content);
    void maybe_start(const std::shared_ptr<conn_state>& c, const std::shared_ptr<live_request>& lr);
    void flush_batch(const std::shared_ptr<conn_state>& c);
    bool mark_ended(conn_state& c, std::uint16_t id, const live_request* owner);
    awaitable<void> run(std::shared_ptr<conn_state> c, std::vector<step> steps);

    fake_responder_options opts;
    asio::io_context ctx;
    asio::ip::tcp::acceptor tcp_acceptor{ctx};
    asio::local::stream_protocol::acceptor unix_acceptor{ctx};
    std::string dir;
    std::string socket_path;
    std::uint16_t port = 0;
    std::size_t next_conn = 0;  // responder thread only

    mutable std::mutex mu;
    mutable std::condition_variable cv;
    fake_snapshot state;  // guarded by mu

    std::thread thread;
};

fake_responder::impl::impl(fake_responder_options o) : opts(std::move(o)) {
    if (opts.tcp) {
        asio::ip::tcp::endpoint ep(asio::ip::make_address_v4("127.0.0.1"), 0);
        tcp_acceptor.open(ep.protocol());
        tcp_acceptor.set_option(asio::socket_base::reuse_address(true));
        tcp_acceptor.bind(ep);
        tcp_acceptor.listen();
        port = tcp_acceptor.local_endpoint().port();
        asio::co_spawn(ctx, accept_loop(tcp_acceptor, true), asio::detached);
    }
    if (opts.unix_socket) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "fcgi-fake-XXXXXX").string();
        if (!::mkdtemp(tmpl.data()))
            throw std::runtime_error("fake_responder: mkdtemp failed");
        dir = tmpl;
        socket_path = dir + "/fcgi.sock";
        asio::local::stream_protocol::endpoint ep(socket_path);
        unix_acceptor.open(ep.protocol());
        unix_acceptor.bind(ep);
        unix_acceptor.listen();
        asio::co_spawn(ctx, accept_loop(unix_acceptor, false), asio::detached);
    }
    thread = std::thread([this] { ctx.run(); });
}

fake_responder::impl::~impl() {
    // Stopping abandons the coroutines; the io_context's destructor frees their frames (and the
    // sockets they own) after the thread is gone.
    ctx.stop();
    if (thread.joinable())
        thread.join();
    std::error_code ignored;
    tcp_acceptor.close(ignored);
    unix_acceptor.close(ignored);
    if (!dir.empty())
        std::filesystem::remove_all(dir, ignored);
}

template <class Acceptor>
awaitable<void> fake_responder::impl::accept_loop(Acceptor& acceptor, bool tcp) {
    for (;;) {
        socket_t s(ctx);
        std::error_code ec;
        co_await acceptor.async_accept(s, asio::redirect_error(use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
            co_return;
        if (!ec)
            start_connection(std::move(s), tcp);
    }
}

void fake_responder::impl::start_connection(socket_t s, bool tcp) {
    auto c = std::make_shared<conn_state>(ctx, std::move(s), ++next_conn);
    c->rng.seed(opts.seed + static_cast<std::uint32_t>(c->number));
    if (tcp) {
        std::error_code ignored;
        c->socket.set_option(asio::ip::tcp::no_delay(true), ignored);  // fragments stay apart
    }
    record([](fake_snapshot& st) { ++st.connections_accepted; });
    asio::co_spawn(ctx, reader(c), asio::detached);
    asio::co_spawn(ctx, writer(c), asio::detached);
    if (!opts.silent && !opts.greeting.empty())
        enqueue(*c, opts.greeting, false);
    if (opts.close_on_accept)
        enqueue(*c, {}, true);
}

// ---------------------------------------------------------------------------------------------
// Output

std::uint64_t fake_responder::impl::enqueue(conn_state& c, std::string bytes, bool close_after) {
    if (c.closing)
        return 0;
    c.queue.push_back({std::move(bytes), close_after});
    c.closing = close_after;
    c.wake_writer.cancel();
    return ++c.queued;
}

// Queues bytes and waits until they are written: scripts get backpressure, and a failed write
// (the client went away) ends them.
awaitable<bool> fake_responder::impl::send(std::shared_ptr<conn_state> c, std::string bytes,
                                           bool close_after) {
    auto n = enqueue(*c, std::move(bytes), close_after);
    if (n == 0)
        co_return false;
    while (c->written < n && !c->closed)
        co_await wait_signal(c->wake_senders);
    co_return c->written >= n;
}

awaitable<void> fake_responder::impl::writer(std::shared_ptr<conn_state> c) {
    for (;;) {
        while (c->queue.empty() && !c->closed)
            co_await wait_signal(c->wake_writer);
        if (c->closed)
            co_return;
        out_item item = std::move(c->queue.front());
        c->queue.pop_front();
        if (item.close_after && c->refusing) {
            // Before the last END_REQUEST goes out: once the client has it, its next write
            // must already meet the shut receive side.
            std::error_code ignored;
            c->socket.shutdown(asio::socket_base::shutdown_receive, ignored);
        }
        if (auto ec = co_await write_out(c, item.bytes)) {
            if (ec == asio::error::broken_pipe || ec == asio::error::connection_reset)
                note_peer_gone(*c);
            close_conn(*c);
            co_return;
        }
        ++c->written;
        c->wake_senders.cancel();
        if (item.close_after) {
            // Half-close, then let the reader drain until the client closes too: closing with
            // unread input would send RST, which may discard what we wrote.
            std::error_code ignored;
            if (!c->refusing)
                c->socket.shutdown(asio::socket_base::shutdown_send, ignored);
            co_return;
        }
    }
}

awaitable<std::error_code> fake_responder::impl::write_out(std::shared_ptr<conn_state> c,
                                                           std::string_view bytes) {
    std::error_code ec;
    if (bytes.empty())
        co_return ec;
    if (opts.split == write_split::whole) {
        co_await asio::async_write(c->socket, asio::buffer(bytes),
                                   asio::redirect_error(use_awaitable, ec));
        co_return ec;
    }
    std::uniform_int_distribution<std::size_t> dist(
        1, std::max<std::size_t>(opts.random_max_fragment, 1));
    asio::steady_timer pause(ctx);
    while (!bytes.empty()) {
        std::size_t n = opts.split == write_split::every_byte ? 1 : dist(c->rng);
        n = std::min(n, bytes.size());
        co_await asio::async_write(c->socket, asio::buffer(bytes.data(), n),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec)
            co_return ec;
        bytes.remove_prefix(n);
        if (opts.fragment_delay.count() > 0 && !bytes.empty()) {
            pause.expires_after(opts.fragment_delay);
            co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
            ec.clear();
            if (c->closed)
                co_return asio::error::operation_aborted;
        }
    }
    co_return ec;
}

void fake_responder::impl::close_conn(conn_state& c) {
    if (c.closed)
        return;
    c.closed = true;
    c.closing = true;
    std::error_code ignored;
    c.socket.close(ignored);
    c.queue.clear();
    c.wake_writer.cancel();
    c.wake_senders.cancel();
    c.batch_timer.cancel();
    c.batch.clear();
    for (auto& [id, lr] : c.live)
        lr->timer.cancel();
}

void fake_responder::impl::note_peer_gone(conn_state& c) {
    if (c.peer_gone)
        return;
    c.peer_gone = true;
    record([](fake_snapshot& st) { ++st.connections_closed_by_peer; });
}

// ---------------------------------------------------------------------------------------------
// Input

awaitable<void> fake_responder::impl::reader(std::shared_ptr<conn_state> c) {
    std::vector<char> buf(std::max<std::size_t>(opts.read_size, 1));
    asio::steady_timer pause(ctx);
    for (bool first = true;; first = false) {
        std::error_code ec;
        if (opts.read_pause.count() > 0 && !first) {
            pause.expires_after(opts.read_pause);
            co_await wait_signal(pause);
        }
        std::size_t n = co_await c->socket.async_read_some(asio::buffer(buf),
                                                           asio::redirect_error(use_awaitable, ec));
        if (ec && c->refusing && !c->closed) {
            // Our own SHUT_RD: hold the connection open, silent, until the responder stops.
            asio::steady_timer hold(ctx, steady::time_point::max());
            co_await wait_signal(hold);
            co_return;
        }
        if (ec) {
            if (ec == asio::error::eof || ec == asio::error::connection_reset)
                note_peer_gone(*c);
            close_conn(*c);
            co_return;
        }
        std::string_view in(buf.data(), n);
        while (!in.empty() && !c->closed) {
            auto r = c->decoder.feed(in);
            in.remove_prefix(r.consumed);
            if (r.ec) {
                violation("undecodable bytes from the client: " + r.ec.message());
                close_conn(*c);
                co_return;
            }
            if (r.has_piece)
                on_piece(c, r.piece);
            else if (r.consumed == 0)
                break;
        }
    }
}

void fake_responder::impl::on_piece(const std::shared_ptr<conn_state>& c,
                                    const proto::record_piece& p) {
    const auto& h = p.header;
    if (h.request_id == proto::management_id) {
        if (!p.end_of_record)
            return;
        if (h.type == proto::record_type::get_values) {
            record([](fake_snapshot& st) { ++st.get_values; });
            if (!opts.silent)
                answer_get_values(*c, p.content);
            return;
        }
        violation("management record of type " + std::to_string(static_cast<int>(h.type)));
        if (!opts.silent)
            enqueue(*c, to_string(proto::encode_unknown_type(static_cast<std::uint8_t>(h.type))),
                    false);
        return;
    }
    switch (h.type) {
        case proto::record_type::begin_request:
            on_begin(c, h.request_id, p.content);
            return;
        case proto::record_type::abort_request:
            on_abort(c, h.request_id);
            return;
        case proto::record_type::params:
        case proto::record_type::stdin_:
        case proto::record_type::data: {
            auto it = c->live.find(h.request_id);
            if (it == c->live.end()) {
                if (p.end_of_record)
                    violation(std::string(proto::to_string(h.type)) + " for request " +
                              std::to_string(h.request_id) + ", which is not live");
                return;
            }
            on_stream(c, it->second, p);
            return;
        }
        default:
            if (p.end_of_record)
                violation("record of type " + std::to_string(static_cast<int>(h.type)) +
                          " from the client for request " + std::to_string(h.request_id));
            return;
    }
}

void fake_responder::impl::on_begin(const std::shared_ptr<conn_state>& c, std::uint16_t id,
                                    std::string_view body) {
    proto::begin_request_body b;
    if (auto ec = proto::parse_begin_request(body, b)) {
        violation("malformed BEGIN_REQUEST: " + ec.message());
        return;
    }
    if (auto it = c->live.find(id); it != c->live.end()) {
        if (!it->second->refused)
            violation("BEGIN_REQUEST for request " + std::to_string(id) + ", which is still live");
        c->live.erase(it);
    }
    auto lr = std::make_shared<live_request>(ctx);
    lr->info.connection = c->number;
    lr->info.index_on_conn = ++c->begun;
    lr->info.id = id;
    lr->info.role = b.r;
    lr->info.flags = b.flags;
    std::size_t live_now = count_live(*c);
    lr->refused = opts.max_live_per_connection != 0 && live_now >= opts.max_live_per_connection;
    lr->info.refused = lr->refused;
    record([&](fake_snapshot& st) {
        lr->seen_index = st.requests.size();
        st.requests.push_back(lr->info);
        if (!lr->refused)
            st.max_live = std::max(st.max_live, live_now + 1);
    });
    c->live[id] = lr;
    if (lr->refused && !opts.silent)
        enqueue(
            *c,
            to_string(proto::encode_end_request(id, {0, proto::protocol_status::cant_mpx_conn})),
            false);
}

void fake_responder::impl::on_abort(const std::shared_ptr<conn_state>& c, std::uint16_t id) {
    auto it = c->live.find(id);
    record([&](fake_snapshot& st) {
        st.aborts.emplace_back(c->number, id);
        if (it != c->live.end())
            st.requests[it->second->seen_index].aborted = true;
    });
    if (it == c->live.end())
        return;  // its END_REQUEST crossed the ABORT_REQUEST on the wire
    auto lr = it->second;
    lr->aborted = true;
    lr->info.aborted = true;
    lr->timer.cancel();
    if (lr->refused || !opts.answer_abort || opts.silent)
        return;
    // Spec 5.4: the application answers an abort with END_REQUEST, which frees the ID.
    bool close = mark_ended(*c, id, lr.get());
    enqueue(*c, to_string(proto::encode_end_request(id, {})), close);
}

void fake_responder::impl::on_stream(const std::shared_ptr<conn_state>& c,
                                     const std::shared_ptr<live_request>& lr,
                                     const proto::record_piece& p) {
    const auto& h = p.header;
    bool stream_end = p.end_of_record && h.content_length == 0;
    switch (h.type) {
        case proto::record_type::params:
            if (stream_end) {
                lr->params_done = true;
                break;
            }
            lr->params_record.append(p.content);
            if (p.end_of_record) {
                // php-fpm parses each PARAMS record alone (PROTOCOL.md item 4): check the client
                // never splits a pair across records.
                proto::name_value_reader r(lr->params_record);
                for (proto::name_value nv; r.next(nv);)
                    lr->info.params.emplace_back(nv.name, nv.value);
                if (r.error())
                    violation("PARAMS record of request " + std::to_string(h.request_id) +
                              " ends inside a name-value pair");
                lr->params_record.clear();
            }
            return;
        case proto::record_type::stdin_:
            lr->info.stdin_data.append(p.content);
            if (!stream_end)
                return;
            lr->stdin_done = true;
            break;
        case proto::record_type::data:
            lr->info.data.append(p.content);
            if (!stream_end)
                return;
            lr->data_done = true;
            break;
        default:
            return;
    }
    if (lr->refused) {
        bool filter = lr->info.role == proto::role::filter;
        if (lr->stdin_done && (!filter || lr->data_done))
            c->live.erase(lr->info.id);  // the client has finished with the refused ID
        return;
    }
    maybe_start(c, lr);
}

void fake_responder::impl::maybe_start(const std::shared_ptr<conn_state>& c,
                                       const std::shared_ptr<live_request>& lr) {
    bool filter = lr->info.role == proto::role::filter;
    if (lr->started || !lr->params_done ||
        (!opts.answer_at_params_end && (!lr->stdin_done || (filter && !lr->data_done))))
        return;
    lr->started = true;
    lr->info.complete = true;
    record([&](fake_snapshot& st) {
        auto& s = st.requests[lr->seen_index];
        s.params = lr->info.params;
        s.stdin_data = lr->info.stdin_data;
        s.data = lr->info.data;
        s.complete = true;
    });
    if (opts.silent)
        return;
    script sc = opts.script_for ? opts.script_for(lr->info) : echo_script(lr->info);
    if (opts.interleave > 1) {
        c->batch.emplace_back(lr, std::move(sc));
        if (c->batch.size() >= opts.interleave) {
            flush_batch(c);
        } else if (c->batch.size() == 1) {
            c->batch_timer.expires_after(opts.interleave_wait);
            c->batch_timer.async_wait([this, c](std::error_code ec) {
                if (!ec)
                    flush_batch(c);
            });
        }
        return;
    }
    std::vector<step> steps;
    for (auto& a : sc)
        steps.push_back({std::move(a), lr});
    asio::co_spawn(ctx, run(c, std::move(steps)), asio::detached);
}

// Answers the batch newest first, one action of each request in turn, so END_REQUESTs come in
// reverse order and records of different requests interleave.
void fake_responder::impl::flush_batch(const std::shared_ptr<conn_state>& c) {
    auto batch = std::move(c->batch);
    c->batch.clear();
    c->batch_timer.cancel();
    if (batch.empty() || c->closing)
        return;
    std::size_t longest = 0;
    for (const auto& b : batch)
        longest = std::max(longest, b.second.size());
    std::vector<step> steps;
    for (std::size_t i = 0; i < longest; ++i)
        for (auto it = batch.rbegin(); it != batch.rend(); ++it)
            if (i < it->second.size())
                steps.push_back({it->second[i], it->first});
    asio::co_spawn(ctx, run(c, std::move(steps)), asio::detached);
}

// Books END_REQUEST of live request `id`; true when the connection must close after it.
bool fake_responder::impl::mark_ended(conn_state& c, std::uint16_t id, const live_request* owner) {
    auto it = c.live.find(id);
    if (it == c.live.end() || it->second.get() != owner)
        return false;  // an END_REQUEST for a foreign or finished ID: a fault being injected
    c.live.erase(it);
    ++c.ended;
    record([](fake_snapshot& st) { ++st.ends_sent; });
    if (opts.refuse_after_requests != 0 && c.ended >= opts.refuse_after_requests)
        c.refusing = true;
    return c.refusing || (opts.close_after_requests != 0 && c.ended >= opts.close_after_requests);
}

awaitable<void> fake_responder::impl::run(std::shared_ptr<conn_state> c, std::vector<step> steps) {
    // Consecutive byte-producing actions go out in one write, as a real server's would; only
    // delays, closes and endless output flush earlier.
    std::string pending;
    for (auto& s : steps) {
        if (c->closing)
            co_return;
        live_request& lr = *s.owner;
        if (lr.aborted)
            continue;
        const action& a = s.a;
        std::uint16_t id = a.id.value_or(lr.info.id);
        switch (a.what) {
            case action::kind::stdout_:
                append_stream(pending, proto::record_type::stdout_, id, a.bytes, a.record_size);
                break;
            case action::kind::stderr_:
                append_stream(pending, proto::record_type::stderr_, id, a.bytes, a.record_size);
                break;
            case action::kind::raw:
                pending += a.bytes;
                break;
            case action::kind::end_request: {
                pending += to_string(proto::encode_end_request(id, {a.app_status, a.status}));
                if (mark_ended(*c, id, &lr)) {
                    co_await send(c, std::move(pending), true);
                    co_return;
                }
                break;
            }
            case action::kind::delay: {
                if (!pending.empty() && !co_await send(c, std::exchange(pending, {}), false))
                    co_return;
                std::error_code ec;
                lr.timer.expires_after(a.delay);
                co_await lr.timer.async_wait(asio::redirect_error(use_awaitable, ec));
                break;
            }
            case action::kind::wait_until: {
                if (!pending.empty() && !co_await send(c, std::exchange(pending, {}), false))
                    co_return;
                // Polled: the test's side has no handle on this thread's io_context.
                const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
                while (!a.until() && !lr.aborted && std::chrono::steady_clock::now() < give_up) {
                    std::error_code ec;
                    lr.timer.expires_after(std::chrono::milliseconds(1));
                    co_await lr.timer.async_wait(asio::redirect_error(use_awaitable, ec));
                    if (ec)
                        break;  // cancelled by ABORT_REQUEST or the responder's stop
                }
                break;
            }
            case action::kind::close:
                co_await send(c, std::exchange(pending, {}), true);
                co_return;
            case action::kind::reset: {
                if (!pending.empty() && !co_await send(c, std::exchange(pending, {}), false))
                    co_return;
                std::error_code ignored;
                c->socket.set_option(asio::socket_base::linger(true, 0), ignored);
                close_conn(*c);
                co_return;
            }
            case action::kind::endless_stdout: {
                if (!pending.empty() && !co_await send(c, std::exchange(pending, {}), false))
                    co_return;
                std::string chunk(
                    std::clamp<std::size_t>(a.record_size, 1, proto::max_content_length), a.fill);
                std::size_t sent = 0;
                while (sent < a.cap && !lr.aborted) {
                    std::size_t n = std::min(chunk.size(), a.cap - sent);
                    if (!co_await send(
                            c, make_record(a.stream, id, std::string_view(chunk).substr(0, n)),
                            false))
                        co_return;
                    sent += n;
                    record([n](fake_snapshot& st) { st.endless_bytes += n; });
                }
                break;
            }
        }
    }
    if (!pending.empty())
        co_await send(c, std::move(pending), false);
}

void fake_responder::impl::answer_get_values(conn_state& c, std::string_view content) {
    if (!opts.answer_get_values)
        return;
    if (opts.get_values_reply) {
        enqueue(c, *opts.get_values_reply, false);
        return;
    }
    std::vector<std::pair<std::string, std::string>> values;
    proto::name_value_reader r(content);
    for (proto::name_value nv; r.next(nv);) {
        const std::optional<std::string>* v = nullptr;
        if (nv.name == proto::mpxs_conns_name)
            v = &opts.mpxs_conns;
        else if (nv.name == proto::max_reqs_name)
            v = &opts.max_reqs;
        else if (nv.name == proto::max_conns_name)
            v = &opts.max_conns;
        if (v && *v)
            values.emplace_back(nv.name, **v);  // unknown names are omitted (spec 4.1)
    }
    if (r.error())
        violation("malformed GET_VALUES");
    std::vector<proto::name_value> nvs;
    for (const auto& [n, v] : values)
        nvs.push_back({n, v});
    enqueue(c, proto::encode_get_values_result(nvs), false);
}

// ---------------------------------------------------------------------------------------------

fake_responder::fake_responder(fake_responder_options options)
    : impl_(std::make_unique<impl>(std::move(options))) {}

fake_responder::~fake_responder() = default;

fcgi::endpoint fake_responder::tcp_endpoint() const {
    if (!impl_->opts.tcp)
        throw std::logic_error("fake_responder: TCP listener disabled");
    return fcgi::endpoint::tcp("127.0.0.1", impl_->port);
}

fcgi::endpoint fake_responder::unix_endpoint() const {
    if (!impl_->opts.unix_socket)
        throw std::logic_error("fake_responder: unix listener disabled");
    return fcgi::endpoint::unix_socket(impl_->socket_path);
}

fake_snapshot fake_responder::snapshot() const {
    std::lock_guard lk(impl_->mu);
    return impl_->state;
}

bool fake_responder::wait_for(const std::function<bool(const fake_snapshot&)>& pred,
                              std::chrono::milliseconds timeout) const {
    std::unique_lock lk(impl_->mu);
    return impl_->cv.wait_for(lk, timeout, [&] { return pred(impl_->state); });
}

fcgi::request tagged_request(const std::string& id, std::string body) {
    fcgi::request r;
    r.script = "/srv/www/fake.php";
    r.params = {{"X_ID", id}};
    r.body = std::move(body);
    return r;
}

std::string tagged_body(const std::string& id, const std::string& body) {
    seen_request r;
    r.params = {{"X_ID", id}};
    r.stdin_data = body;
    return echo_body(r);
}

}  // namespace fcgi::test
