// The simulated logging channel between two nodes: a reliable, ordered
// stream of messages, as TCP gives, with the faults TCP shows.
//
// One connection at a time. Either side connect()s; after the connect delay
// both sides see on_connected with the connection's id (unless a partition
// is in force: then the attempt fails after connect_timeout and only the
// caller sees on_closed). Messages sent on an open connection arrive whole,
// once, in order, after a delay drawn per message (never before an earlier
// message of the same direction). A partition or a one-way stall holds
// messages until it ends; a partition that outlasts `reset_after` resets the
// connection, as TCP's retransmission timeout would. A reset (fault or
// close()) ends the connection on both sides, each after its own delay:
// messages not delivered by the time a side learns of the reset are lost to
// it, and nothing sent after the reset arrives.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/event_queue.h"
#include "sim/random.h"

namespace ftvm::sim {

struct LinkFaults {
  Time min_delay = 50 * kMicrosecond;
  Time max_delay = 50 * kMicrosecond;
  Time connect_delay = 200 * kMicrosecond;
  Time connect_timeout = 100 * kMillisecond;
  Time reset_delay_max = 5 * kMillisecond;  // how late each side learns of a reset
  Time reset_after = 500 * kMillisecond;    // a partition this long resets the connection
};

class Link {
 public:
  struct Endpoint {
    std::function<void(uint64_t conn)> on_connected;
    std::function<void(uint64_t conn, const std::vector<uint8_t>& message)> on_message;
    std::function<void(uint64_t conn)> on_closed;  // also for a failed connect (conn 0)
  };

  Link(EventQueue& events, Rng rng, LinkFaults faults);
  void set_endpoint(int side, Endpoint endpoint) { ends_[side] = std::move(endpoint); }

  // Opens a connection (resetting any open one first).
  void connect(int side);
  // Queues `message` from `side` on connection `conn`; false (and nothing
  // sent) if that connection is not open.
  bool send(int side, uint64_t conn, std::vector<uint8_t> message);
  // Ends connection `conn` (no-op if not the open one).
  void close(uint64_t conn) { reset(conn); }
  bool open(uint64_t conn) const { return conn != 0 && conn == conn_ && open_; }
  uint64_t connection() const { return open_ ? conn_ : 0; }

  // ---- faults ----
  // Nothing crosses for `duration`; see reset_after.
  void partition(Time duration);
  // Messages from `side` are held for `duration`.
  void stall(int side, Time duration);
  // Resets the open connection, if any.
  void reset_now() { reset(conn_); }
  bool partitioned() const { return events_.now() < partition_until_; }
  // Faults stop: no more partitions or stalls take effect, delays are minimal.
  void calm() { calm_ = true; }

  uint64_t delivered() const { return delivered_; }
  uint64_t resets() const { return resets_; }

 private:
  void reset(uint64_t conn);

  EventQueue& events_;
  Rng rng_;
  LinkFaults faults_;
  std::array<Endpoint, 2> ends_;
  uint64_t conn_ = 0;  // the newest connection's id
  bool open_ = false;
  std::array<bool, 2> side_open_{};  // whether each side still thinks conn_ is open
  std::array<Time, 2> last_arrival_{};  // per direction (by sending side)
  std::array<Time, 2> stall_until_{};
  Time partition_until_ = 0;
  Time connected_at_ = 0;  // when both sides of the open connection are connected
  bool calm_ = false;
  uint64_t delivered_ = 0, resets_ = 0;
};

}  // namespace ftvm::sim
