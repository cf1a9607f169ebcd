// Which request ID each of a connection's slots uses next, and which IDs are kept out of use
// after an abort: the connection's ID bookkeeping, apart from its sockets so that tests can
// drive it with numbers alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fcgi::detail {

/// Request IDs for a connection with `slots` slots. Slot i uses the IDs i+1, i+1+n, i+1+2n...
/// (n slots) in turn, wrapping back to i+1 past 65535: a record finds its slot in O(1), and an
/// ID comes back only after the slot's other IDs. A record that arrives for a request after its
/// END_REQUEST (a server's duplicate, or Go's answer to an ABORT_REQUEST followed by the
/// handler's own output and END_REQUEST) then meets no live request, instead of being taken for
/// the next request's response.
class request_ids {
  public:
    /// At most this many aborted IDs are kept out of use; the oldest is let go first.
    static constexpr std::size_t max_quarantined = 64;

    /// `slots` is at least 1 (0 is taken as 1).
    explicit request_ids(std::uint16_t slots) noexcept : slots_(slots == 0 ? 1 : slots) {}

    /// The number of slots.
    std::uint16_t slots() const noexcept { return static_cast<std::uint16_t>(slots_); }
    /// The slot whose requests use `id` (not 0: that is the management ID).
    std::size_t slot_of(std::uint16_t id) const noexcept { return (id - 1u) % slots_; }
    /// The ID slot `index`'s next request gets, its last one being `last` (0 before any): the
    /// slot's next ID that is not quarantined (one of them anyway when all of them are, which
    /// only a slot with at most max_quarantined IDs can see).
    std::uint16_t next(std::size_t index, std::uint16_t last) const noexcept;
    /// Keeps `id` out of use: an aborted request whose END_REQUEST came may still have records
    /// on the way, which are dropped (quarantined()) instead of going to a new request.
    void quarantine(std::uint16_t id);
    /// True when `id` is among the last max_quarantined IDs quarantined.
    bool quarantined(std::uint16_t id) const noexcept;
    /// How many IDs are quarantined now (for tests).
    std::size_t quarantined_count() const noexcept { return quarantined_.size(); }

  private:
    std::uint32_t slots_;
    std::vector<std::uint16_t> quarantined_;  // oldest first
};

}  // namespace fcgi::detail
