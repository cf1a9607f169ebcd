// When the pool may use an endpoint again after it refused, overflowed or said OVERLOADED: the
// timing half of the pool's per-endpoint state, kept apart so that it can be tested without a
// socket or a clock.
#pragma once

#include <chrono>

namespace fcgi::detail {

/// The clock, read once and only when a comparison needs it: the pool judges every endpoint
/// twice per request, and usually has nothing to compare but holds that were never set.
class lazy_now {
  public:
    using clock = std::chrono::steady_clock;

    lazy_now() = default;
    /// Fixed at `t` (tests, and callers that have just read the clock).
    explicit lazy_now(clock::time_point t) : now_(t), read_(true) {}

    clock::time_point get() {
        if (!read_) {
            now_ = clock::now();
            read_ = true;
        }
        return now_;
    }
    /// True while `t` (a hold's end, {} when unset) lies ahead.
    bool before(clock::time_point t) { return t != clock::time_point{} && t > get(); }

  private:
    clock::time_point now_{};
    bool read_ = false;
};

/// Three independent holds on one endpoint, each an end time ({} when unset):
/// - down: connects were refused; no new connection before its end, while the open ones still
///   serve. The backoff doubles per failed round, from `initial` up to `max`.
/// - overloaded: the server answered OVERLOADED; no request at all before its end. Kept apart
///   from down, since the server accepts connections and a connect must not end it.
/// - growth: the listen backlog was full (a unix socket refusing for a moment); no new
///   connection before its end, without counting the endpoint as down.
class endpoint_backoff {
  public:
    using clock = std::chrono::steady_clock;
    using ms = std::chrono::milliseconds;

    /// A connect was refused at `now`. The connects opened together fail together: only the
    /// first failure of a round (one that comes when not down) moves the backoff on, since one
    /// doubling per failed connect took 4 connections from 100 ms to 800 ms in a single round.
    /// The hold lasts `share` of the backoff (at least 1 ms): the pool draws it at random
    /// between 0.8 and 1, so that clients that lost one server together do not all come back
    /// to it in the same instant.
    void refused(clock::time_point now, ms initial, ms max, double share = 1.0) noexcept;
    /// As refused(), for an endpoint that accepted a connection and then closed it, or never
    /// answered on it, without a byte back (failover): its backoff grows across connects, which
    /// prove nothing here, until served().
    void failed_over(clock::time_point now, ms initial, ms max, double share = 1.0) noexcept;
    /// A connect succeeded: the down hold ends and both connect backoffs start over, unless
    /// the endpoint failed over (then only a response restarts the backoff).
    void connected() noexcept;
    /// The endpoint answered a request: a failover's backoff starts over.
    void served() noexcept {
        if (failing_) {
            failing_ = false;
            backoff_ = {};
        }
    }
    /// A connect found the listen backlog full at `now`: retry soon, 2 ms doubling to 100 ms.
    void backlog_full(clock::time_point now) noexcept;
    /// No new connection before `until` (a probe that found the backlog full).
    void pause_growth(clock::time_point until) noexcept { grow_after_ = until; }
    /// The server answered OVERLOADED at `now`: hold every request for the current backoff,
    /// at least `initial`.
    void overloaded(clock::time_point now, ms initial) noexcept;
    /// Ends every hold and starts every backoff over (the caller knows the server is back).
    void reset() noexcept { *this = endpoint_backoff(); }

    /// Connects were refused, or it failed over, and the backoff has not ended.
    bool down(lazy_now& now) const { return now.before(down_until_); }
    /// Down because its last round of connects failed: it does not accept connections. An
    /// endpoint held after failing over does, so requests may wait for it.
    bool refusing(lazy_now& now) const { return !held_over_ && down(now); }
    /// The current or last down hold was a failover's.
    bool held_over() const noexcept { return held_over_; }
    /// Its last round of connects failed, or it failed over, and nothing has proved it back
    /// since (a connect; after a failover, a response): down, or between a backoff's end and
    /// the next connect's outcome.
    bool failing() const noexcept { return backoff_.count() != 0; }
    /// Requests are held after OVERLOADED.
    bool holding_requests(lazy_now& now) const { return now.before(overloaded_until_); }
    /// When the hold after OVERLOADED ends ({} when none was set).
    clock::time_point holding_until() const noexcept { return overloaded_until_; }
    /// A new connection may be opened (neither down nor paused).
    bool may_connect(lazy_now& now) const {
        return !now.before(down_until_) && !now.before(grow_after_);
    }
    /// Unsets the holds that have ended, so that later checks need not read the clock.
    void expire(lazy_now& now) noexcept;
    /// The earliest end of a hold still running, or clock::time_point::max() when none is.
    clock::time_point next_end(lazy_now& now) const;

  private:
    clock::time_point down_until_{};
    ms backoff_{0};
    clock::time_point overloaded_until_{};
    clock::time_point grow_after_{};
    ms transient_backoff_{0};
    bool failing_ = false;    // see failed_over()
    bool held_over_ = false;  // the down hold came from failed_over(), not a refused connect
};

}  // namespace fcgi::detail
