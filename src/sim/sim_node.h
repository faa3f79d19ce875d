// What the world needs of a simulated node, whatever protocol it runs.
//
// A node is one ftvm process on one host: it owns a GuestRunner, a LAN
// port (presenting the guest's MAC), its side of the logging channel and a
// claimant identity at the arbiter. The world injects process faults
// through this interface; everything else reaches the node as events it
// scheduled itself or as frames and messages.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <string>

#include "sim/event_queue.h"

namespace ftvm::sim {

class SimNode {
 public:
  virtual ~SimNode() = default;
  // The process starts (at world time now).
  virtual void start() = 0;
  // The process is stopped (SIGSTOP) for `duration`: it handles nothing;
  // frames for it wait in its TAP queue.
  virtual void freeze(Time duration) = 0;
  // The process dies (SIGKILL); restart() starts a fresh one on the host.
  virtual void crash() = 0;
  virtual void restart() = 0;
  virtual bool alive() const = 0;
  // Up and holding a copy of the VM it could serve from (the liveness
  // invariant asks this of at least one node).
  virtual bool holds_vm() const { return alive(); }
  // The network between this host and the arbiter is cut for `duration`.
  virtual void partition_arbiter(Time duration) {}
  // Serving clients as the primary, as far as the node itself knows.
  virtual bool serving() const = 0;
  virtual std::string describe() const = 0;
  // Guest instructions executed so far (for the cost report).
  virtual uint64_t guest_instructions() const = 0;
};

}  // namespace ftvm::sim
