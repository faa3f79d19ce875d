// The invariant registry of one simulated world, and the output audit the
// nodes feed.
//
// Invariants come in two kinds: step checks, registered with add(), which
// run after every simulated event; and breaches reported directly with
// fail() by the component that sees them (the output audit, the arbiter's
// grant audit, the checkers at the end of a run). The first breach is kept
// and stops the event queue: a run reports one seed and one invariant.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/event_queue.h"

namespace ftvm::sim {

struct Breach {
  std::string invariant;
  std::string detail;
  Time at = 0;
};

class Invariants {
 public:
  // A step check returns a description of the breach, or nullopt.
  using Check = std::function<std::optional<std::string>()>;

  explicit Invariants(EventQueue& events) : events_(events) {}

  void add(std::string name, Check check) { checks_.push_back({std::move(name), std::move(check)}); }
  // Runs every step check (the world calls it after each event).
  void check_step();
  void fail(const std::string& invariant, const std::string& detail);

  bool ok() const { return !breach_; }
  Time now() const { return events_.now(); }
  const std::optional<Breach>& breach() const { return breach_; }

 private:
  EventQueue& events_;
  std::vector<std::pair<std::string, Check>> checks_;
  std::optional<Breach> breach_;
};

// Audits every guest output a node produces and every frame a client
// receives from a node:
//  - "single-emitter": at most one node releases guest output at any moment:
//    two nodes never release output in the same epoch;
//  - "stale-epoch-output": no node of an older epoch releases output after
//    a newer epoch's first output;
//  - "output-reproduced": the guest output with number i is the same bytes
//    on every node that produces it (released or held back while
//    replaying) as on the frame a client received with that number.
class OutputAudit {
 public:
  explicit OutputAudit(Invariants& invariants) : inv_(invariants) {}

  // Node `node` in `epoch` produced guest output number `index` (counted
  // from 1 since the pre-booted snapshot); `released` when it leaves on the
  // LAN now, false when held (a backup replaying, an output gate holding).
  void produced(int node, uint64_t epoch, uint64_t index, const std::vector<uint8_t>& bytes,
                bool released);
  // A client received a frame a node released.
  void received(int node, uint64_t epoch, uint64_t index, const std::vector<uint8_t>& bytes);

  uint64_t released() const { return released_; }
  Time last_release() const { return last_release_; }
  uint64_t newest_epoch() const { return newest_epoch_; }

 private:
  void match(uint64_t index, const std::vector<uint8_t>& bytes, const std::string& who);

  Invariants& inv_;
  std::map<uint64_t, int> emitter_;  // epoch -> the node that released output in it
  uint64_t newest_epoch_ = 0;
  std::map<uint64_t, std::vector<uint8_t>> seen_;  // output index -> bytes a client received
  uint64_t released_ = 0;
  Time last_release_ = -1;
};

}  // namespace ftvm::sim
