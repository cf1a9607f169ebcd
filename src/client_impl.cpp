#include "fcgi/detail/client_impl.hpp"

#include <algorithm>
#include <asio/bind_cancellation_slot.hpp>
#include <optional>
#include <string_view>
#include <utility>

#include "fcgi/detail/capped_duration.hpp"
#include "fcgi/detail/probe_verdict.hpp"
#include "fcgi/detail/retry_decision.hpp"
#include "fcgi/error.hpp"
#include "fcgi/get_values.hpp"

namespace fcgi::detail {

using clock = std::chrono::steady_clock;

// Why a request failed with request_timeout before any connection took it.
constexpr std::string_view expired_in_queue = "deadline passed while waiting for a connection";

// With several endpoints, a connect pending this long no longer holds a request back from
// another endpoint (Happy Eyeballs' connection attempt delay, RFC 8305): a host that drops SYNs
// would otherwise keep it for the whole connect_timeout.
constexpr std::chrono::milliseconds connect_race_delay{250};

struct client_impl::pending_op {
    pending_op(request&& r, request_handler h, std::uint64_t s)
        : req(std::in_place, std::move(r)), handler(std::move(h)), serial(s) {}
    pending_op(prepared_request&& p, request_handler h, std::uint64_t s)
        : prepared(std::move(p)), is_prepared(true), handler(std::move(h)), serial(s) {}

    /// The request as it can be sent (again), or null: handed to a connection and not back.
    const request* sendable() const noexcept {
        if (is_prepared)
            return prepared ? &prepared.get() : nullptr;
        return req ? &*req : nullptr;
    }

    // Empty while the connection has it; a connection hands a failed request back
    // (request_op::hand_back), which is what makes a retry possible without a copy.
    std::optional<request> req;
    // A prepared request stays here while sent: a copy shares its state.
    prepared_request prepared;
    bool is_prepared = false;
    request_handler handler;
    std::uint64_t serial;
    clock::time_point deadline = clock::time_point::max();
    // When it last went into the queue (a retry: again); set only with a deadline.
    clock::time_point queued_at{};
    // The deadline while queued; found again by serial. Only made for requests with a deadline:
    // a timer per request is measurable at benchmark rates.
    std::optional<asio::steady_timer> timer;
    std::size_t in_flight_index = 0;  // position in in_flight_ while dispatched
    int attempts = 0;
    unsigned sent = 0;  // attempts that wrote to a server before this one (response::times_sent)
    bool cancelled = false;  // cancelled while dispatched: never sent again
    // A retry after a stale kept-alive connection: not on a connection that sat idle (see
    // endpoint_pool::find_usable()).
    bool fresh_only = false;
    // A retry: the endpoint its first attempt failed on, which it goes back to only when every
    // other endpoint is down (a stopping php-fpm still accepts connections, then resets them;
    // one that fails over closes the next connection too).
    const endpoint_pool* avoid = nullptr;
    // When it was handed to its connection: a close soon after is a stale kept-alive connection
    // or a stopping server, a later one a script that ran (see stale_close_window).
    clock::time_point sent_at{};
    std::weak_ptr<connection_impl> conn;  // while dispatched
    // Whether its connection had read nothing when it completed the request (request_op::
    // silent_connection); unset when the request never reached a connection's slot.
    std::optional<bool> silent_connection;
    std::uint64_t conn_serial = 0;
};

client_impl::client_impl(asio::any_io_executor ex, client_options opts)
    : ex_(ex),
      opts_(std::move(opts)),
      retry_timer_(ex),
      idle_timer_(ex),
      relief_timer_(ex),
      jitter_(std::random_device{}()),
      hold_timer_(ex) {
    opts_.max_connections_per_endpoint =
        std::max<std::size_t>(opts_.max_connections_per_endpoint, 1);
    opts_.max_requests_per_connection =
        std::clamp<std::uint16_t>(opts_.max_requests_per_connection, 1, max_in_flight_limit);
    // A zero backoff would never mark a refusing endpoint down: every queued request would
    // reconnect at once, again and again, instead of failing with no_endpoint.
    // max_backoff is the promise (a server that comes back is found at most this late): an
    // initial_backoff beyond it is cut to it.
    opts_.max_backoff = std::clamp(opts_.max_backoff, std::chrono::milliseconds(1), forever);
    opts_.initial_backoff =
        std::clamp(opts_.initial_backoff, std::chrono::milliseconds(1), opts_.max_backoff);
    opts_.idle_timeout = capped(opts_.idle_timeout);
    opts_.backlog_relief = capped(opts_.backlog_relief);
    // Zero would mean no deadline to async_get_values: a server that never answers a lone
    // GET_VALUES (libfcgi) would keep its endpoint unused for good.
    if (opts_.probe_timeout.count() <= 0)
        opts_.probe_timeout = client_options{}.probe_timeout;
    pools_.reserve(opts_.endpoints.size());  // pointers into pools_ are kept: never grows
    for (std::size_t i = 0; i < opts_.endpoints.size() && bad_endpoint_.empty(); ++i)
        if (std::string why; validate(opts_.endpoints[i], why))
            bad_endpoint_ = "client_options::endpoints[" + std::to_string(i) +
                            "] cannot be connected to: " + why;
    for (auto& e : opts_.endpoints) {
        auto& p = pools_.emplace_back();
        p.where = e;
        p.max_in_flight = opts_.mode == multiplexing::on ? opts_.max_requests_per_connection : 1;
        p.probe_state = opts_.mode == multiplexing::auto_detect ? endpoint_pool::probe::needed
                                                                : endpoint_pool::probe::done;
    }
}

std::shared_ptr<client_impl> client_impl::create(asio::any_io_executor ex, client_options opts) {
    auto c = std::make_shared<client_impl>(std::move(ex), std::move(opts));
    register_for_shutdown(c->ex_, c->weak_from_this());
    return c;
}

void client_impl::on_context_shutdown() {
    stopped_ = true;
    // Moved out first, destroyed last: their destructors may reach this client again (a
    // frame's fcgi::client posts its stop), which must find it settled. Nothing is called:
    // see connection_impl::on_context_shutdown().
    auto queue = queue_.take_all();
    auto shutdown_handlers = std::move(shutdown_handlers_);
    shutdown_handlers_.clear();
    in_flight_.clear();  // owned by the connections' handlers
    std::vector<std::shared_ptr<connection_impl>> conns;
    for (auto& p : pools_) {
        for (auto& pc : p.conns) {
            pc->conn->set_event_callback(nullptr);
            conns.push_back(std::move(pc->conn));
        }
        p.clear();
        p.in_flight = 0;
    }
    for (auto& c : conns)
        c->on_context_shutdown();  // also registered: whichever comes first does it
}

client_impl::~client_impl() {
    halt();  // usually done already (stop()); what a pool still holds closes here
}

void client_impl::start_request(request&& req, request_handler h, std::uint64_t serial,
                                clock::time_point called) {
    enqueue(std::make_unique<pending_op>(std::move(req), std::move(h), serial), called);
}

void client_impl::start_request(prepared_request&& req, request_handler h, std::uint64_t serial,
                                clock::time_point called) {
    enqueue(std::make_unique<pending_op>(std::move(req), std::move(h), serial), called);
}

void client_impl::enqueue(std::unique_ptr<pending_op> op, clock::time_point called) {
    if (stopped_ || shutting_down_) {
        fail(std::move(op), error::client_stopped,
             stopped_ ? "the client was stopped" : "the client is shutting down");
        return;
    }
    // Checked before it waits, so a bad request says so at once: queued, it would fail with
    // whatever happened to the pool meanwhile (a deadline, no_endpoint), or open a connection
    // for nothing. The connection does not check it again.
    std::string why;
    if (auto invalid = op->is_prepared ? validate(op->prepared, why) : validate(*op->req, why)) {
        fail(std::move(op), invalid, std::move(why));
        return;
    }
    if (pools_.empty()) {
        fail(std::move(op), error::invalid_endpoint,
             "the client has no endpoint configured (client_options::endpoints is empty)");
        return;
    }
    if (!bad_endpoint_.empty()) {
        // A configuration mistake fails every request, loudly: taken for a server that refuses
        // connections, it would back off and fail as no_endpoint, or wait under wait_when_down.
        fail(std::move(op), error::invalid_endpoint, bad_endpoint_);
        return;
    }
    auto own = op->sendable()->timeout;
    if (own.count() < 0) {
        fail(std::move(op), error::request_timeout, expired_before_the_call(own));
        return;
    }
    auto timeout = own.count() > 0 ? own : opts_.connection.request_timeout;
    if (timeout.count() > 0) {
        // Only a request with a deadline reads when it was queued (wait_deadline()): one
        // clock reading, and none for the rest.
        op->queued_at = called == clock::time_point{} ? clock::now() : called;
        op->deadline = op->queued_at + capped(timeout);
    }
    const std::uint64_t serial = op->serial;
    queue_.insert(std::move(op));
    pump();
    // Still queued means still waiting (usually not: a free connection took it, and it needs
    // no timer).
    pending_op* raw = queue_.find(serial);
    if (!raw)
        return;
    if (queue_.size() > opts_.max_pending) {
        std::size_t waiting = waiting_beyond_connecting();
        if (waiting > opts_.max_pending) {
            auto rejected = queue_.take(serial);
            ++rejected_;
            std::string reason;
            if (opts_.max_pending == 0) {
                // Down endpoints and nothing open (wait_when_down): "busy" would mislead.
                const std::string down = down_reason();
                const bool none_open =
                    std::all_of(pools_.begin(), pools_.end(),
                                [](const endpoint_pool& p) { return p.conns.empty(); });
                const bool probing =
                    std::any_of(pools_.begin(), pools_.end(), [](const endpoint_pool& p) {
                        return p.probe_state == endpoint_pool::probe::running;
                    });
                reason = std::string(!down.empty() && none_open ? "no connection is open"
                                     : probing && none_open
                                         ? "no connection is open yet (the auto_detect probe "
                                           "is still running, and the requests it opens "
                                           "connections for are taken)"
                                         : "every connection is busy") +
                         ", and with max_pending 0 no request may wait for one" + down;
            } else {
                // More than max_pending when requests were let in for connections being opened
                // that then failed (an endpoint down under wait_when_down) or took fewer than
                // counted on (CANT_MPX_CONN), or retries came back: a down endpoint follows.
                reason = std::to_string(waiting - 1) +
                         " requests already wait for a connection (max_pending " +
                         std::to_string(opts_.max_pending) +
                         (waiting - 1 > opts_.max_pending
                              ? "; more were let in earlier, for connections being opened or "
                                "back for a retry"
                              : "") +
                         ")" + down_reason();
            }
            fail(std::move(rejected), error::pool_exhausted, std::move(reason));
            return;
        }
    }
    wait_deadline(*raw);
}

std::size_t client_impl::waiting_beyond_connecting() const {
    std::size_t connecting = 0;
    for (const auto& p : pools_) {
        // A connection that retires after `lifetime` requests takes no more than that.
        const auto lifetime = opts_.max_requests_per_connection_lifetime;
        const std::size_t places =
            lifetime > 0 ? std::min<std::uint64_t>(p.max_in_flight, lifetime) : p.max_in_flight;
        for (const auto& pc : p.conns)
            connecting += pc->connected ? 0u : places;
        // Probing (auto_detect): its connections open when the answer comes, each taking one
        // request at least.
        if (p.probe_state != endpoint_pool::probe::done)
            connecting += opts_.max_connections_per_endpoint -
                          std::min(opts_.max_connections_per_endpoint, p.conns.size());
    }
    return queue_.size() - std::min(queue_.size(), connecting);
}

void client_impl::wait_deadline(pending_op& op) {
    if (op.deadline == clock::time_point::max())
        return;
    if (!op.timer)
        op.timer.emplace(ex_);
    op.timer->expires_at(op.deadline);
    op.timer->async_wait([w = weak_from_this(), serial = op.serial](std::error_code ec) {
        auto self = w.lock();
        if (ec || !self)
            return;
        if (auto expired = self->take_queued(serial)) {
            // A connect opened in the last half of the wait (another request's connection closed
            // a moment ago) is not what the request waited for.
            const auto waited = clock::now() - expired->queued_at;
            std::string why = self->down_reason() + self->pending_connects(waited / 2);
            if (why.empty())
                why = self->waited_for(*expired);
            self->fail(std::move(expired), error::request_timeout,
                       std::string(expired_in_queue) + why);
            self->check_shutdown_done();
        }
    });
}

std::unique_ptr<client_impl::pending_op> client_impl::take_queued(std::uint64_t serial) {
    return queue_.take(serial);
}

void client_impl::fail(std::unique_ptr<pending_op> op, std::error_code ec, std::string why) {
    ++failed_;
    response r;
    r.diagnostics = std::move(why);
    r.times_sent = op->sent;
    if (op->timer)
        op->timer->cancel();
    op->handler.post_holding(handler_watch(), ec, std::move(r));
}

std::shared_ptr<void> client_impl::handler_watch() {
    if (shutdown_handlers_.empty())
        return nullptr;
    // Released where the handler ran, on any thread: it only hops back to the executor. It
    // does not keep the pool alive: the client, or hold_for_shutdown() once it is stopped, does
    // that from the pool's own io_context, so a handler left in another context that outlives
    // that one finds the pool gone instead of posting into a destroyed context.
    struct watch {
        explicit watch(std::weak_ptr<client_impl> c) : client(std::move(c)) {}
        watch(const watch&) = delete;  // each counts one handler back in, once
        watch& operator=(const watch&) = delete;
        std::weak_ptr<client_impl> client;
        ~watch() {
            if (auto self = client.lock()) {
                auto ex = self->ex_;  // before the move below: argument order is unspecified
                asio::post(ex, [self = std::move(self)] {
                    --self->handlers_out_;
                    self->check_shutdown_done();
                });
            }
        }
    };
    ++handlers_out_;
    return std::make_shared<watch>(weak_from_this());
}

namespace {

// Before probing again an endpoint whose backlog was full.
constexpr std::chrono::milliseconds probe_pause{10};

}  // namespace

endpoint_pool* client_impl::pick_endpoint(bool fresh, lazy_now& now, const endpoint_pool* avoid) {
    endpoint_pool* best = nullptr;
    bool best_free = false;
    // A retry waits for another endpoint that is up, even when it is busy now, rather than go
    // back to the one that failed it: that one only when all others are down.
    if (avoid && std::none_of(pools_.begin(), pools_.end(), [&](const endpoint_pool& p) {
            return &p != avoid && p.probe_state == endpoint_pool::probe::done &&
                   !p.hold.holding_requests(now) && !p.hold.down(now);
        }))
        avoid = nullptr;
    // The scan starts one endpoint further after each new connection, so that a full tie (an
    // idle pool) does not always go to the first endpoint.
    for (std::size_t k = 0; k < pools_.size(); ++k) {
        auto& p = pools_[(tie_start_ + k) % pools_.size()];
        if (&p == avoid || p.probe_state != endpoint_pool::probe::done ||
            p.hold.holding_requests(now))
            continue;
        // A refused connect stops the endpoint growing, not its open connections serving.
        bool free = find_usable(p, fresh) != nullptr;
        bool can_grow =
            p.hold.may_connect(now) && (p.conns.size() < opts_.max_connections_per_endpoint ||
                                        (fresh && p.find_idle() != nullptr));
        if (!free && !can_grow)
            continue;
        // Ties go to fewer connections, so a burst of new ones spreads over the endpoints.
        if (!best || (free && !best_free) ||
            (free == best_free &&
             (p.in_flight < best->in_flight ||
              (p.in_flight == best->in_flight && p.conns.size() < best->conns.size())))) {
            best = &p;
            best_free = free;
        }
    }
    return best;
}

void client_impl::mark_down(endpoint_pool& ep, std::error_code ec) {
    ep.backlog_full_connects = 0;  // refused otherwise now: the full backlog is no longer news
    ep.last_error = ec;
    back_off(ep, false);
}

void client_impl::back_off(endpoint_pool& ep, bool failed_over) {
    std::uniform_real_distribution<double> share(0.8, 1.0);
    if (failed_over)
        ep.hold.failed_over(clock::now(), opts_.initial_backoff, opts_.max_backoff, share(jitter_));
    else
        ep.hold.refused(clock::now(), opts_.initial_backoff, opts_.max_backoff, share(jitter_));
}

void client_impl::reset_backoff() {
    for (auto& p : pools_)
        p.hold.reset();
    pump();
}

connection_options client_impl::connection_options_for(const endpoint_pool& ep) const {
    connection_options o = opts_.connection;
    o.max_in_flight = ep.max_in_flight;
    return o;
}

void client_impl::start_probe(endpoint_pool& ep) {
    ep.probe_state = endpoint_pool::probe::running;
    ep.probe_started = clock::now();
    get_values_options gv;
    gv.connect_timeout = opts_.connection.connect_timeout;
    gv.connect_attempt_delay = opts_.connection.connect_attempt_delay;
    gv.timeout = opts_.probe_timeout;
    auto stop = std::make_shared<asio::cancellation_signal>();
    ep.probe_stopper = stop;
    async_get_values(
        ex_, ep.where, gv,
        asio::bind_cancellation_slot(
            stop->slot(), [w = weak_from_this(), epp = &ep, stop](std::error_code ec,
                                                                  protocol::get_values_result r) {
                auto self = w.lock();
                if (!self)
                    return;
                epp->probe_state = endpoint_pool::probe::done;
                const auto verdict = judge_probe(epp->where, ec, self->opts_.probe_timeout,
                                                 self->opts_.connection.connect_timeout);
                if (verdict == probe_verdict::ask_again_soon) {
                    // Transient, the server is up: probe again after a short pause. Counted for
                    // a queued request's timeout text, as the pool's own connects are.
                    epp->probe_state = endpoint_pool::probe::needed;
                    const auto now = clock::now();
                    epp->note_backlog_full(now);
                    epp->hold.pause_growth(now + probe_pause);
                } else if (verdict == probe_verdict::down) {
                    // Refused: probe again when the backoff ends.
                    epp->probe_state = endpoint_pool::probe::needed;
                    self->mark_down(*epp, ec);
                } else {
                    // Not known to be down (probe_verdict::settled); one that does not answer
                    // GET_VALUES in time is not trusted to multiplex.
                    bool mpx = !ec && r.mpxs_conns.value_or(false);
                    epp->probed = ec    ? probe_result::no_answer
                                  : mpx ? probe_result::multiplexes
                                        : probe_result::declined;
                    epp->probe_error = ec;
                    std::uint32_t n = mpx ? self->opts_.max_requests_per_connection : 1;
                    // FCGI_MAX_REQS, when reported, caps what one connection is given.
                    if (mpx && r.max_reqs && *r.max_reqs > 0)
                        n = std::min(n, *r.max_reqs);
                    epp->max_in_flight = static_cast<std::uint16_t>(n);
                }
                self->pump();
            }));
}

void client_impl::pump() {
    if (stopped_) {
        check_shutdown_done();  // stop() during a shutdown: done once the last request is
        return;
    }
    lazy_now now;
    for (auto& p : pools_) {
        p.remove_closed();
        p.hold.expire(now);
        if (!queue_.empty() && p.probe_state == endpoint_pool::probe::needed &&
            p.hold.may_connect(now))
            start_probe(p);
    }
    while (!queue_.empty()) {
        bool fresh = queue_.front().fresh_only;
        endpoint_pool* ep = pick_endpoint(fresh, now, queue_.front().avoid);
        pooled_connection* pc = ep ? find_usable(*ep, fresh) : nullptr;
        if (pc) {
            dispatch(*ep, *pc, queue_.pop_front());
            continue;
        }
        if (ep && open_for(*ep, fresh, now))
            continue;
        // A retry waiting for a connection of its own kind (a new one, one on another endpoint)
        // must not hold up requests behind it that could go now.
        if ((fresh || queue_.front().avoid) && dispatch_behind(now))
            continue;
        break;
    }
    // Every endpoint down: fail fast with the reason, unless requests are to wait for one to
    // come back (a php-fpm restart), their deadlines running. Down means refusing connects: an
    // endpoint held after failing over accepts them (its requests timed out or were closed on,
    // perhaps only slow scripts), so requests wait for its hold to end rather than fail with
    // no_endpoint.
    bool all_down = !pools_.empty() && std::all_of(pools_.begin(), pools_.end(), [&](auto& p) {
        return p.conns.empty() && p.hold.refusing(now);
    });
    if ((!all_down || opts_.wait_when_down) && !queue_.empty())
        arm_retry_timer(now);
    if (all_down && !opts_.wait_when_down) {
        std::string why = "no endpoint accepts connections: ";
        for (const auto& p : pools_)
            why += (&p == &pools_.front() ? "" : "; ") + p.where.to_string() + ": " +
                   connect_error_text(p.where, p.last_error);
        while (!queue_.empty())
            fail(queue_.pop_front(), error::no_endpoint, why);
    }
    check_shutdown_done();
}

bool client_impl::open_for(endpoint_pool& ep, bool fresh, lazy_now& now) {
    std::size_t connecting = 0, connecting_here = 0;
    for (const auto& p : pools_)
        for (const auto& c : p.conns) {
            if (c->connected)
                continue;
            connecting_here += &p == &ep;
            // One pending for connect_race_delay on another endpoint is not counted on: it may
            // hang for the whole connect_timeout (a host that drops SYNs), and this endpoint can
            // take the request now.
            connecting += &p == &ep || now.get() - c->opened < connect_race_delay;
        }
    // A request opens one more connection unless enough are already connecting for the queue;
    // a retry that needs a fresh one, unless one is connecting there already (it will take it,
    // being ahead of the requests called after it).
    if (fresh ? connecting_here > 0 : connecting >= queue_.size())
        return false;
    if (ep.conns.size() >= opts_.max_connections_per_endpoint) {
        // Only a retry that needs a fresh connection gets here (pick_endpoint): retire an idle
        // used one for it. Giving that one to a request behind instead would starve the retry
        // for as long as requests keep coming.
        pooled_connection* idle = ep.find_idle();
        if (!idle)
            return false;
        ep.close_now(*idle, asio::error::operation_aborted);
    }
    open_connection(ep);
    return true;
}

bool client_impl::dispatch_behind(lazy_now& now) {
    // Retries at the head wait for what the requests behind them do not need. Past them, the
    // first request without such a wait goes if it can; if it cannot, neither can those behind
    // it, so the scan stops there.
    for (std::size_t i = 1; i < queue_.span(); ++i) {
        pending_op* at = queue_.at(i);
        if (!at)
            continue;  // a gap left by a request taken out
        pending_op& op = *at;
        endpoint_pool* ep = pick_endpoint(op.fresh_only, now, op.avoid);
        if (pooled_connection* pc = ep ? find_usable(*ep, op.fresh_only) : nullptr) {
            dispatch(*ep, *pc, queue_.take_at(i));
            return true;
        }
        if (ep && open_for(*ep, op.fresh_only, now))
            return true;
        if (!op.fresh_only && !op.avoid)
            return false;
    }
    return false;
}

std::string client_impl::waited_for(const pending_op& op) const {
    if (op.fresh_only)
        return "; as a retry after a kept-alive connection closed under it, it waited for a new "
               "connection";
    if (op.avoid && pools_.size() > 1)
        return "; as a retry, it waited for an endpoint other than " + op.avoid->where.to_string() +
               ", where it failed";
    std::size_t open = 0;
    for (const auto& p : pools_)
        for (const auto& pc : p.conns)
            open += pc->connected;
    if (open == 0)
        return {};
    return "; every connection was busy with other requests (" + std::to_string(open) +
           " open, max_connections_per_endpoint " +
           std::to_string(opts_.max_connections_per_endpoint) + ")";
}

std::string client_impl::pending_connects(clock::duration at_least) const {
    const auto now = clock::now();
    auto ms_since = [&](clock::time_point t) {
        return std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count());
    };
    std::string why;
    for (const auto& p : pools_) {
        if (p.probe_state == endpoint_pool::probe::running)
            // multiplexing::auto_detect: the pool opens no connection there before the answer.
            why += "; the GET_VALUES probe of " + p.where.to_string() +
                   " (multiplexing::auto_detect) has been unanswered for " +
                   ms_since(p.probe_started) + " ms (probe_timeout " +
                   std::to_string(opts_.probe_timeout.count()) + " ms)";
        if (p.hold.holding_until() > now)
            // A connection may sit idle meanwhile: "waiting for a connection" alone misleads.
            why += "; " + p.where.to_string() +
                   " answered OVERLOADED: no request goes to it for another " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      p.hold.holding_until() - now)
                                      .count()) +
                   " ms (the backoff, at least client_options::initial_backoff " +
                   std::to_string(opts_.initial_backoff.count()) + " ms)";
        if (p.backlog_full_connects > 0)
            why +=
                "; " + p.where.to_string() + " refused " + std::to_string(p.backlog_full_connects) +
                " connects for a full listen backlog, the last " + ms_since(p.last_backlog_full) +
                " ms ago (every php-fpm worker busy, listen.backlog connections waiting)";
        auto oldest = clock::time_point::max();
        for (const auto& c : p.conns)
            if (!c->connected)
                oldest = std::min(oldest, c->opened);
        // One opened just now (a connection closed under the request a moment ago) was not
        // what it waited for: every connection was busy.
        if (oldest != clock::time_point::max() && now - oldest >= at_least)
            why += "; a connect to " + p.where.to_string() + " has been pending for " +
                   ms_since(oldest) + " ms (connect_timeout " +
                   (opts_.connection.connect_timeout.count() > 0
                        ? std::to_string(opts_.connection.connect_timeout.count()) + " ms)"
                        : std::string("0: no limit but the system's)"));
    }
    return why;
}

std::string client_impl::down_reason() const {
    // Said when a request waited out its deadline for endpoints in backoff (wait_when_down):
    // also one whose hold has just ended, its next connect not done yet.
    lazy_now now;
    std::string why;
    for (const auto& p : pools_)
        if ((p.hold.down(now) || p.hold.failing()) && p.last_error)
            why += (why.empty() ? "; endpoints down: " : "; ") + p.where.to_string() + ": " +
                   (p.hold.held_over()
                        // Not "failed over": with one endpoint the request waits for it again.
                        ? "held after a request on a new connection there ended without a byte "
                          "back (" +
                              p.last_error.message() + ")"
                        : connect_error_text(p.where, p.last_error));
    return why;
}

void client_impl::arm_retry_timer(lazy_now& now) {
    // Requests wait for an endpoint in backoff (OVERLOADED, refused): wake up when the first
    // backoff ends, since no connection event may come before. `now` is the instant pump()
    // judged the endpoints by: a fresh reading could find a backoff over that pump() still saw
    // running, arm nothing, and leave the queue to wait for an event that never comes.
    auto earliest = clock::time_point::max();
    for (const auto& p : pools_) {
        earliest = std::min(earliest, p.hold.next_end(now));
        // Once a connect has been pending for connect_race_delay, another endpoint may take
        // what waits for it (open_for()).
        if (pools_.size() > 1)
            for (const auto& c : p.conns)
                if (!c->connected && c->opened + connect_race_delay > now.get())
                    earliest = std::min(earliest, c->opened + connect_race_delay);
    }
    if (earliest == clock::time_point::max() || (retry_armed_ && retry_at_ <= earliest))
        return;
    retry_armed_ = true;
    retry_at_ = earliest;
    retry_timer_.expires_at(earliest);
    retry_timer_.async_wait([w = weak_from_this()](std::error_code ec) {
        auto self = w.lock();
        if (!self || ec)
            return;
        self->retry_armed_ = false;
        self->pump();
    });
}

void client_impl::open_connection(endpoint_pool& ep) {
    auto pc = std::make_unique<pooled_connection>(pooled_connection{
        connection_impl::create(ex_, connection_options_for(ep)), ++connection_ids_});
    pooled_connection* raw = pc.get();
    endpoint_pool* epp = &ep;
    std::uint64_t id = pc->id;
    // Every path that drops a connection from the pool clears this first: `raw` and `epp`
    // outlive the callback.
    raw->conn->set_event_callback([w = weak_from_this(), epp, raw] {
        if (auto self = w.lock()) {
            epp->note_event(*raw);
            self->on_connection_event();
        }
    });
    raw->opened = clock::now();
    ++ep.connects;
    ++tie_start_;
    ep.add(std::move(pc));
    raw->conn->start_connect(ep.where, error_handler(
                                           [w = weak_from_this(), epp, id](std::error_code ec) {
                                               if (auto self = w.lock())
                                                   self->on_connected(epp, id, ec);
                                           },
                                           ex_));
}

void client_impl::on_connected(endpoint_pool* ep, std::uint64_t id, std::error_code ec) {
    auto it = std::find_if(ep->conns.begin(), ep->conns.end(),
                           [&](const auto& p) { return p->id == id; });
    if (it == ep->conns.end())
        return;  // stopped, or retired while connecting
    if (ec) {
        ep->erase_unconnected(**it);
        ++ep->connect_failures;  // the pool's own: the auto_detect question's are not
        if (backlog_full(ep->where, ec)) {
            // The listen backlog is full: transient, the server is up. Retry soon.
            const auto now = clock::now();
            ep->note_backlog_full(now);
            ep->hold.backlog_full(now);
        } else {
            mark_down(*ep, ec);
        }
        pump();
        return;
    }
    ep->note_connected(**it);
    ep->backlog_full_connects = 0;
    ep->hold.connected();
    pump();
    // Its request may have gone meanwhile (cancelled, timed out, served elsewhere): nothing
    // else would start its idle clock.
    watch_idle();
}

void client_impl::dispatch(endpoint_pool& ep, pooled_connection& pc,
                           std::unique_ptr<pending_op> op) {
    auto left = std::chrono::milliseconds::max();
    clock::time_point now{};
    if (op->deadline != clock::time_point::max()) {
        // Its deadline timer may be due but not run yet (a stalled loop, a retry): sending it
        // would occupy the connection, and a php-fpm worker, for a reply nobody waits for.
        now = clock::now();
        if (op->deadline <= now) {
            fail(std::move(op), error::request_timeout, std::string(expired_in_queue));
            return;
        }
        // Rounded up: truncating would fire the deadline up to a millisecond early.
        left = std::chrono::ceil<std::chrono::milliseconds>(op->deadline - now);
    }
    if (op->timer)
        op->timer->cancel();
    std::unique_ptr<request_op> rop;
    if (op->is_prepared) {
        rop = std::make_unique<request_op>(op->prepared, request_handler(), 0);
    } else {
        rop = std::make_unique<request_op>(std::move(*op->req), request_handler(), 0);
        op->req.reset();
        rop->hand_back = &op->req;  // stable: the op lives on the heap, inside rop's handler
    }
    if (left != std::chrono::milliseconds::max())
        rop->timeout = left;
    op->silent_connection.reset();                    // a retry's answer is its own connection's
    rop->silent_connection = &op->silent_connection;  // stable, as hand_back
    rop->checked = true;
    ++pc.dispatched;
    bool reused = pc.conn->stats().requests_completed > 0;
    op->sent_at = now == clock::time_point{} ? clock::now() : now;
    bool first = pc.first_dispatch == clock::time_point{};
    if (first)
        pc.first_dispatch = clock::now();
    auto conn = pc.conn;
    op->conn = conn;
    op->conn_serial = conn->next_serial();
    rop->serial = op->conn_serial;
    ++ep.in_flight;
    op->in_flight_index = in_flight_.size();
    in_flight_.push_back(op.get());
    rop->handler = request_handler(
        [w = weak_from_this(), op = std::move(op), epp = &ep, pcp = &pc, reused](
            std::error_code ec, response&& r) mutable {
            if (auto self = w.lock()) {
                self->on_request_done(std::move(op), {epp, pcp}, reused, ec, std::move(r));
                return;
            }
            // The client is gone, so nothing is retried; a response that had come in full
            // (the connection's read delivered it with others) is still the answer.
            r.times_sent += op->sent;
            op->handler.post(ec ? std::error_code(error::client_stopped) : ec, std::move(r));
        },
        ex_);
    conn->start_request(std::move(rop));
    if (first)
        relieve_backlog();  // arms the check for this connection
}

void client_impl::on_request_done(std::unique_ptr<pending_op> op, sent_on on, bool reused,
                                  std::error_code ec, response&& r) {
    endpoint_pool* ep = on.ep;
    --ep->in_flight;
    // Swap with the last: O(1) with thousands in flight.
    pending_op* last = in_flight_.back();
    in_flight_[op->in_flight_index] = last;
    last->in_flight_index = op->in_flight_index;
    in_flight_.pop_back();
    auto conn = op->conn.lock();
    op->conn.reset();
    if (stopped_ && ec == error::not_connected) {
        // Not sent because the client stopped and closed its connections, not because a
        // connection failed: nothing is to be retried.
        ec = error::client_stopped;
        r.diagnostics = "the client was stopped before the request was sent";
    }
    if (!ec || r.bytes_received > 0)
        ep->hold.served();
    // The server is out of resources whether or not this request goes again.
    if (ec == server_error::overloaded)
        ep->hold.overloaded(clock::now(), opts_.initial_backoff);
    // The connection that was refused drops to one request at a time by itself; the endpoint's
    // other connections, and the ones it opens later, must too, or each would lose a request
    // to learn it again.
    if (ec == server_error::cant_mpx_conn && ep->max_in_flight > 1) {
        ep->max_in_flight = 1;
        for (auto& pc : ep->conns)
            pc->conn->stop_multiplexing();
    }
    const request* again = op->sendable();
    // The clock is read only when the diagnostics may give the time.
    const auto after =
        lost_unanswered(ec, r.bytes_received)
            // Rounded up: truncated, a close 0.9 ms after a 0 ms window's send was "at once".
            ? std::chrono::ceil<std::chrono::milliseconds>(clock::now() - op->sent_at)
            : std::chrono::milliseconds::max();
    const retry_decision d = decide_retry({
        .ec = ec,
        .bytes_received = r.bytes_received,
        .reused = reused,
        // Said by the connection when it completed the request: it may be gone by now (closed
        // and dropped from the pool before this posted completion ran). Otherwise (it never
        // reached a slot) as the connection says now, or, gone, whether it carried it alone.
        .silent_connection = op->silent_connection ? *op->silent_connection
                             : conn                ? conn->stats().bytes_read == 0
                                                   : ep->max_in_flight == 1,
        .after = after,
        .endpoints = pools_.size(),
        .wait_when_down = opts_.wait_when_down,
        .stale_close_window = opts_.stale_close_window,
        .recycling = opts_.max_requests_per_connection_lifetime > 0,
        .sendable = again != nullptr,
        .idempotent = ec && again && again->is_idempotent(),
        .restartable = ec && again && again->stdin_source.restartable(),
        .attempts = op->attempts,
        .stopped = stopped_,
        .cancelled = op->cancelled,
    });
    if (d.back_off) {
        ep->last_error = ec;
        back_off(*ep, true);
    }
    if (d.retry) {
        ++retries_;
        op->attempts += d.counted;
        op->sent += r.times_sent;
        op->avoid = ep;
        if (d.fresh_only)
            op->fresh_only = true;
        pending_op& queued = *op;
        queued.queued_at = clock::now();
        queue_.insert(std::move(op));  // among the others by when it was called
        wait_deadline(queued);         // the deadline still counts from the first call
        after_request(on, conn);
        return;
    }
    r.diagnostics += d.diagnostics;
    if (ec) {
        ++ep->failed;
        ++ep->failed_by_reason[ec];
        ++failed_;
    } else {
        ++ep->completed;
        ++completed_;
    }
    // A shutdown that this request ends completes after its handler has run, as documented,
    // wherever it runs: counted out before after_request() can find the pool drained.
    auto watch = handler_watch();
    after_request(on, conn);
    // Last, and inline when already on its executor: this runs from a completion of the
    // connection (never inside the initiating call), the pool's state is settled, and a handler
    // that sends the next request does so in the same turn of the event loop, without a trip
    // through the scheduler.
    r.times_sent += op->sent;
    auto handler = std::move(op->handler);
    op.reset();
    handler.dispatch_holding(std::move(watch), ec, std::move(r));
}

void client_impl::after_request(sent_on on, const std::shared_ptr<connection_impl>& conn) {
    // Still open, it is still in the pool (endpoint_pool::conns), so `on.pc` is too.
    if (conn && conn->state() == connection_state::open) {
        if (conn->is_idle() && retiring(*on.pc))
            conn->close(error::connection_lost);
        else
            on.ep->note_request_done(*on.pc);
    }
    // Under a steady queue no connection ever sits idle for the relief: the one that just
    // finished frees its worker for a waiting connection before pump() hands it the next
    // request (php-fpm's ondemand starts one worker for a burst of connects, and the rest wait).
    if (relief_waiting_ && conn && conn->is_idle())
        relieve_backlog();
    pump();
    if (conn && conn->is_idle()) {
        watch_idle();
        if (relief_waiting_)
            relieve_backlog();  // this idle connection may free a worker for a waiting one
    }
}

void client_impl::on_connection_event() {
    // Called from inside the connection: defer, so the pool never re-enters it. Events in a row
    // share one trip.
    if (event_posted_)
        return;
    event_posted_ = true;
    asio::post(ex_, [w = weak_from_this()] {
        auto self = w.lock();
        if (!self)
            return;
        self->event_posted_ = false;
        self->pump();
        self->watch_idle();  // finds the connections left idle, if any
        if (self->relief_waiting_)
            self->relieve_backlog();
    });
}

void client_impl::watch_idle() {
    // One timer for the whole pool, armed while some connection is idle: per connection and
    // request it would cost a timer wait and a cancellation each time a connection is reused.
    if (idle_armed_ || stopped_ || opts_.idle_timeout.count() <= 0)
        return;
    auto due = clock::time_point::max();
    for (auto& p : pools_)
        for (auto& pc : p.conns)
            if (pc->connected && pc->conn->is_idle())
                due = std::min(due, pc->conn->idle_since() + opts_.idle_timeout);
    if (due == clock::time_point::max())
        return;
    wait_then(idle_timer_, &client_impl::idle_armed_, due, &client_impl::close_idle);
}

void client_impl::wait_then(asio::steady_timer& timer, bool client_impl::*armed,
                            clock::time_point at, void (client_impl::*then)()) {
    this->*armed = true;
    timer.expires_at(at);
    timer.async_wait([w = weak_from_this(), armed, then](std::error_code ec) {
        auto self = w.lock();
        if (!self)
            return;
        (*self).*armed = false;
        if (!ec)
            ((*self).*then)();
    });
}

void client_impl::close_idle() {
    auto now = clock::now();
    for (auto& p : pools_)
        for (auto& pc : p.conns)
            if (pc->connected && pc->conn->is_idle() &&
                pc->conn->idle_since() + opts_.idle_timeout <= now)
                pc->conn->close(asio::error::operation_aborted);
    watch_idle();  // for the connections idle for less than the timeout
}

void client_impl::relieve_backlog() {
    // PROTOCOL.md item 2: php-fpm keeps a worker per kept-alive connection, and a connection
    // beyond pm.max_children waits in its backlog until some worker lets its connection go.
    // An idle connection of ours holding one is the only one that ever will.
    relief_waiting_ = false;
    if (stopped_ || opts_.backlog_relief.count() <= 0)
        return;
    auto now = clock::now();
    auto next = clock::time_point::max();
    for (auto& p : pools_) {
        for (auto& pc : p.conns) {
            if (pc->relieved || !pc->unserved())
                continue;
            auto due = pc->first_dispatch + opts_.backlog_relief;
            if (due > now) {
                next = std::min(next, due);
                continue;
            }
            pooled_connection* idle = p.longest_idle();
            if (!idle) {
                relief_waiting_ = true;  // checked again when a connection goes idle
                continue;
            }
            pc->relieved = true;
            ++p.backlog_reliefs;
            idle->conn->close(asio::error::operation_aborted);
        }
    }
    // Due times only grow (first dispatch + a constant): an armed timer is never too late.
    if (next == clock::time_point::max() || relief_armed_)
        return;
    wait_then(relief_timer_, &client_impl::relief_armed_, next, &client_impl::relieve_backlog);
}

void client_impl::cancel(std::uint64_t serial, asio::cancellation_type type) {
    if (auto op = take_queued(serial)) {
        fail(std::move(op), asio::error::operation_aborted, "cancelled while queued");
        check_shutdown_done();
        return;
    }
    for (auto* op : in_flight_) {
        if (op->serial == serial) {
            // Partial cancellation may close the request's connection: the pool, the object
            // the caller sees, stays usable. Total only while nothing was written.
            using ct = asio::cancellation_type;
            const bool total_only = (type & (ct::terminal | ct::partial)) == ct::none;
            auto conn = op->conn.lock();
            if (conn && !conn->cancel(op->conn_serial, total_only ? ct::total : ct::terminal))
                return;
            // Its failure may be on its way already (the connection no longer knows it): then
            // it must not go again.
            op->cancelled = true;
            return;
        }
    }
}

void client_impl::stop() {
    if (stopped_)
        return;
    stopped_by_call_ = true;
    while (!queue_.empty())
        fail(queue_.pop_front(), error::client_stopped, "the client was stopped");
    halt();
    hold_for_shutdown();
    check_shutdown_done();
}

void client_impl::hold_for_shutdown() {
    // The requests in flight complete through this object, after the connections' failures,
    // and handlers handed out report back to it (handler_watch()): a shutdown waiting for them
    // completes then, even when the client is being destroyed.
    if (stopped_ && !shutdown_handlers_.empty() && (!in_flight_.empty() || handlers_out_ > 0)) {
        hold_timer_.expires_at(clock::time_point::max());
        hold_timer_.async_wait([self = shared_from_this()](std::error_code) {});
    }
}

void client_impl::halt() {
    stopped_ = true;
    retry_timer_.cancel();
    idle_timer_.cancel();
    relief_timer_.cancel();
    for (auto& p : pools_) {
        for (auto& pc : p.conns) {
            pc->conn->set_event_callback(nullptr);
            pc->conn->close(error::client_stopped, "the client was stopped");
        }
        p.clear();
        stop_probe(p);
    }
}

void client_impl::stop_probe(endpoint_pool& ep) {
    // Its connection would stay open (a php-fpm worker held, the io_context kept running)
    // until probe_timeout; its handler finds the pool stopped or gone.
    if (auto stop = ep.probe_stopper.lock())
        stop->emit(asio::cancellation_type::terminal);
}

void client_impl::start_shutdown(error_handler h) {
    shutting_down_ = true;
    shutdown_handlers_.push_back(std::move(h));
    hold_for_shutdown();  // stopped already (cancel()): the client may go before its requests
    check_shutdown_done();
}

void client_impl::check_shutdown_done() {
    if (handlers_out_ > 0 || shutdown_handlers_.empty() || !queue_.empty() || !in_flight_.empty())
        return;
    if (!stopped_)
        halt();
    std::error_code ec =
        stopped_by_call_ ? std::error_code(error::client_stopped) : std::error_code();
    for (auto& h : std::exchange(shutdown_handlers_, {}))
        h.post(ec);
    hold_timer_.cancel();  // the pool goes (if nothing else holds it) from the event loop
}

client_stats client_impl::stats() const {
    client_stats s;
    s.queued = queue_.size();
    s.completed = completed_;
    s.failed = failed_;
    s.retries = retries_;
    s.rejected = rejected_;
    lazy_now now;
    for (const auto& p : pools_)
        s.endpoints.push_back(p.stats(p.hold.down(now) || p.hold.holding_requests(now)));
    return s;
}

}  // namespace fcgi::detail
