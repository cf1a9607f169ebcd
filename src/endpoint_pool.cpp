#include "fcgi/detail/endpoint_pool.hpp"

namespace fcgi::detail {

bool pooled_connection::unserved() const {
    return connected && !conn->is_idle() && conn->stats().requests_started > 0 &&
           conn->stats().bytes_read == 0;
}

pooled_connection& endpoint_pool::add(std::unique_ptr<pooled_connection> pc) {
    // Before the insertion: out of memory, the pool is as it was.
    hints.reserve(conns.size() + 1);
    conns.push_back(std::move(pc));
    return *conns.back();
}

void endpoint_pool::hint(pooled_connection& pc) noexcept {
    if (pc.hinted)
        return;
    hints.push_back(&pc);  // within capacity (add())
    pc.hinted = true;
}

void endpoint_pool::forget(pooled_connection& pc) noexcept {
    if (pc.hinted)
        std::erase(hints, &pc);
    pc.hinted = false;
}

void endpoint_pool::note_event(pooled_connection& pc) noexcept {
    if (pc.conn->state() == connection_state::closed)
        closed_pending = true;
    else
        hint(pc);
}

void endpoint_pool::note_connected(pooled_connection& pc) noexcept {
    pc.connected = true;
    // It may have closed before its connect's completion ran (the first read found the server
    // gone): its close event came while remove_closed() would skip it.
    if (pc.conn->state() == connection_state::closed)
        closed_pending = true;
}

void endpoint_pool::remove_closed() {
    if (!closed_pending)
        return;
    closed_pending = false;
    // One that never connected is client_impl::on_connected()'s to remove: it counts the
    // failure.
    std::erase_if(conns, [&](const std::unique_ptr<pooled_connection>& pc) {
        bool dead = pc->connected && pc->conn->state() == connection_state::closed;
        if (dead) {
            pc->conn->set_event_callback(nullptr);
            forget(*pc);
            ++closed;
        }
        return dead;
    });
}

void endpoint_pool::close_now(pooled_connection& pc, std::error_code ec) {
    pc.conn->set_event_callback(nullptr);
    pc.conn->close(ec);
    ++closed;
    erase(pc);
}

void endpoint_pool::erase_unconnected(pooled_connection& pc) {
    pc.conn->set_event_callback(nullptr);
    erase(pc);
}

void endpoint_pool::erase(pooled_connection& pc) {
    forget(pc);
    std::erase_if(conns,
                  [&](const std::unique_ptr<pooled_connection>& p) { return p.get() == &pc; });
}

namespace {

// A retry after a stale kept-alive connection (`fresh`) goes to a new connection, or to a
// multiplexed one with requests in flight: a server closes connections that sit idle, and one
// it is answering on is not one of those. Without the second, a multiplexed pool at its limit
// with no idle connection would hold the retry, and every request queued behind it.
bool usable(const pooled_connection& pc, bool fresh) {
    const connection_impl& c = *pc.conn;
    return pc.connected && c.has_free_slot() &&
           (!fresh || c.stats().requests_started == 0 || !c.is_idle());
}

}  // namespace

pooled_connection* endpoint_pool::find_usable(bool fresh, std::uint64_t lifetime) {
    // A retry that wants a fresh connection scans: the hints are mostly connections that sat
    // idle, which it does not take, and dropping those would lose them for everyone else.
    while (!fresh && !hints.empty()) {
        pooled_connection* pc = hints.back();
        if (usable(*pc, false) && !pc->retiring(lifetime))
            return pc;
        hints.pop_back();  // busy again; its next event brings it back
        pc->hinted = false;
    }
    for (auto& pc : conns)
        if (usable(*pc, fresh) && !pc->retiring(lifetime))
            return pc.get();
    return nullptr;
}

pooled_connection* endpoint_pool::find_idle() {
    for (auto& pc : conns)
        if (pc->connected && pc->conn->is_idle())
            return pc.get();
    return nullptr;
}

pooled_connection* endpoint_pool::longest_idle() {
    pooled_connection* idle = nullptr;
    for (auto& pc : conns)
        if (pc->connected && pc->conn->is_idle() &&
            (!idle || pc->conn->idle_since() < idle->conn->idle_since()))
            idle = pc.get();
    return idle;
}

endpoint_stats endpoint_pool::stats(bool down) const {
    endpoint_stats e;
    e.where = where;
    e.open = conns.size();
    for (const auto& pc : conns) {
        // Idle means ready: a slot still held by a finished request's source or sink is not.
        const bool ready = pc->connected && pc->conn->is_idle() && pc->conn->has_free_slot();
        e.idle += ready;
        e.busy += pc->connected && !ready;
        e.unserved += pc->unserved();
    }
    e.reconnects = closed;
    e.backlog_reliefs = backlog_reliefs;
    e.failed_by_reason = failed_by_reason;
    e.in_flight = in_flight;
    e.down = down;
    e.max_in_flight_per_connection = max_in_flight;
    e.probe = probed;
    e.probe_error = probe_error;
    e.last_down_error = last_error;
    e.connects = connects;
    e.connect_failures = connect_failures;
    e.completed = completed;
    e.failed = failed;
    return e;
}

}  // namespace fcgi::detail
