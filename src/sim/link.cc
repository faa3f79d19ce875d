// The simulated logging channel (see link.h).
#include "sim/link.h"

#include <algorithm>

namespace ftvm::sim {

Link::Link(EventQueue& events, Rng rng, LinkFaults faults)
    : events_(events), rng_(rng), faults_(faults) {}

void Link::connect(int side) {
  if (open_) reset(conn_);
  const uint64_t conn = ++conn_;
  if (partitioned()) {
    events_.after(faults_.connect_timeout, [this, side] {
      if (ends_[side].on_closed) ends_[side].on_closed(0);
    });
    return;
  }
  open_ = true;
  connected_at_ = events_.now() + faults_.connect_delay;
  side_open_ = {false, false};
  last_arrival_ = {0, 0};
  for (int s = 0; s < 2; ++s) {
    events_.after(faults_.connect_delay, [this, s, conn] {
      if (conn != conn_ || !open_) return;
      side_open_[s] = true;
      if (ends_[s].on_connected) ends_[s].on_connected(conn);
    });
  }
}

bool Link::send(int side, uint64_t conn, std::vector<uint8_t> message) {
  if (!open(conn)) return false;
  const Time now = events_.now();
  Time at = now + (calm_ ? faults_.min_delay : rng_.range(faults_.min_delay, faults_.max_delay));
  at = std::max({at, last_arrival_[side], stall_until_[side], partition_until_,
                 connected_at_});  // not before the peer is connected
  last_arrival_[side] = at;
  const int peer = 1 - side;
  events_.at(at, [this, peer, conn, m = std::move(message)] {
    if (conn != conn_ || !open_ || !side_open_[peer]) return;
    ++delivered_;
    if (ends_[peer].on_message) ends_[peer].on_message(conn, m);
  });
  return true;
}

void Link::reset(uint64_t conn) {
  if (conn == 0 || conn != conn_ || !open_) return;
  open_ = false;
  ++resets_;
  for (int s = 0; s < 2; ++s) {
    side_open_[s] = false;
    const Time delay = calm_ ? 0 : rng_.range(0, faults_.reset_delay_max);
    events_.after(delay, [this, s, conn] {
      if (ends_[s].on_closed) ends_[s].on_closed(conn);
    });
  }
}

void Link::partition(Time duration) {
  if (calm_) return;
  partition_until_ = std::max(partition_until_, events_.now() + duration);
  if (duration >= faults_.reset_after && open_) {
    const uint64_t conn = conn_;
    events_.after(faults_.reset_after, [this, conn] { reset(conn); });
  }
}

void Link::stall(int side, Time duration) {
  if (calm_) return;
  stall_until_[side] = std::max(stall_until_[side], events_.now() + duration);
}

}  // namespace ftvm::sim
