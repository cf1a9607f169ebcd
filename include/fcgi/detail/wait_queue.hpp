#ifndef FCGI_DETAIL_WAIT_QUEUE_HPP
#define FCGI_DETAIL_WAIT_QUEUE_HPP

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

namespace fcgi::detail {

/// The requests waiting for a connection, oldest call first: ordered by `Op::serial`, which
/// numbers the calls. A retry goes back among them by its serial, so retries keep the order
/// they were called in, ahead of the calls that came after them.
/// Taking one out by serial (its deadline passed, its caller cancelled) is O(log n) and leaves
/// a gap the ends skip, so that neither a queue of 100,000 nor its removal in any order costs
/// a scan per request. The serials are kept beside the ops: the search reads no op.
template <class Op>
class wait_queue {
  public:
    wait_queue() = default;
    wait_queue(const wait_queue&) = delete;  // take_all() moves the requests out
    wait_queue& operator=(const wait_queue&) = delete;

    /// True when no request waits.
    bool empty() const noexcept { return live_ == 0; }
    /// How many requests wait.
    std::size_t size() const noexcept { return live_; }
    /// The oldest waiting request. Precondition: !empty().
    Op& front() noexcept {
        assert(live_ > 0);
        return *entries_.front().op;
    }
    /// Removes and returns the oldest waiting request. Precondition: !empty().
    std::unique_ptr<Op> pop_front() {
        assert(live_ > 0);
        auto op = std::move(entries_.front().op);
        entries_.pop_front();
        removed();
        return op;
    }
    /// Adds `op` in serial order: at the back for a new call (O(1)), among the others for a
    /// retry or a call that arrived late from another thread.
    void insert(std::unique_ptr<Op> op) {
        const std::uint64_t serial = op->serial;
        if (entries_.empty() || entries_.back().serial < serial) {
            entries_.push_back(entry{serial, std::move(op)});
        } else {
            auto it = lower_bound(serial);
            if (it != entries_.end() && it->serial == serial && !it->op)
                it->op = std::move(op);  // its own gap: the place it had
            else
                entries_.insert(it, entry{serial, std::move(op)});
        }
        ++live_;
    }
    /// The waiting request `serial`, or null.
    Op* find(std::uint64_t serial) noexcept {
        auto it = lower_bound(serial);
        return it != entries_.end() && it->serial == serial ? it->op.get() : nullptr;
    }
    /// Removes and returns the waiting request `serial`, or null when none waits.
    std::unique_ptr<Op> take(std::uint64_t serial) {
        auto it = lower_bound(serial);
        if (it == entries_.end() || it->serial != serial || !it->op)
            return nullptr;
        return take_at(static_cast<std::size_t>(it - entries_.begin()));
    }
    /// Removes and returns every waiting request, oldest first.
    std::deque<std::unique_ptr<Op>> take_all() {
        std::deque<std::unique_ptr<Op>> all;
        for (auto& e : entries_)
            if (e.op)
                all.push_back(std::move(e.op));
        entries_.clear();
        live_ = 0;
        return all;
    }

    /// Positions for a walk from the front: at(i) for i < span() is the request there, or null
    /// for a gap. Valid until the queue changes.
    std::size_t span() const noexcept { return entries_.size(); }
    /// See span().
    Op* at(std::size_t i) noexcept { return entries_[i].op.get(); }
    /// Removes and returns the request at position `i` (see span()). Precondition: at(i).
    std::unique_ptr<Op> take_at(std::size_t i) {
        assert(entries_[i].op);
        auto op = std::move(entries_[i].op);
        removed();
        return op;
    }

  private:
    struct entry {
        std::uint64_t serial;
        std::unique_ptr<Op> op;  // null: a gap left by take()
    };

    typename std::deque<entry>::iterator lower_bound(std::uint64_t serial) {
        return std::lower_bound(entries_.begin(), entries_.end(), serial,
                                [](const entry& e, std::uint64_t s) { return e.serial < s; });
    }
    // The ends are always requests, so front() and the search at the back need no skipping.
    // Gaps behind a front that stays (a retry waiting for a fresh connection while those
    // behind it go) would make each walk longer: squeezed out once they outnumber the
    // requests, which keeps a removal O(1) amortized.
    void removed() {
        --live_;
        while (!entries_.empty() && !entries_.front().op)
            entries_.pop_front();
        while (!entries_.empty() && !entries_.back().op)
            entries_.pop_back();
        if (entries_.size() > 2 * live_ + 64)
            std::erase_if(entries_, [](const entry& e) { return !e.op; });
    }

    std::deque<entry> entries_;
    std::size_t live_ = 0;
};

}  // namespace fcgi::detail

#endif
