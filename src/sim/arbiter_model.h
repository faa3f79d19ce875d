// The simulated arbiter: the durable test-and-set of (vm, epoch) that
// decides who may be primary (DESIGN.md §5, docs/arbiter.md), on a network
// that can lose it.
//
// The rules (issue 8, hole a), the same as src/arbiter's store: a claim for
// an epoch above the highest granted for the VM is granted to its claimant;
// a claim at or below it is denied (the answer names the holder of the
// highest epoch), to anyone, repeat claims included -- except that the
// claimant of the latest grant asking again for exactly that epoch is told
// it won (an idempotent retry). The real ArbiterStore appends to a file and
// fdatasyncs each grant, which a simulator running thousands of seeds a
// minute cannot afford, so this is a faithful in-memory model of it; an
// audit of every answer (GrantAudit) checks the rules independently.
//
// The network: a claim reaches the arbiter after a delay and the answer
// comes back after another; while the arbiter is down (an outage) a claim
// gets no answer, and the claimant sees a timeout. A restart keeps every
// grant (the store is durable).
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
#include "sim/random.h"

namespace ftvm::sim {

struct ArbiterAnswer {
  bool won = false;
  uint64_t epoch = 0;       // the epoch claimed
  uint64_t held_epoch = 0;  // the highest epoch granted for the VM, after this claim
  std::string holder;       // its holder
};

// Checks every answer the arbiter gives against the rules; `fail` is
// called with the invariant's name and a description at the first breach.
class GrantAudit {
 public:
  explicit GrantAudit(std::function<void(const std::string&, const std::string&)> fail)
      : fail_(std::move(fail)) {}
  void answered(const std::string& vm, uint64_t epoch, const std::string& claimant,
                const ArbiterAnswer& answer);

 private:
  std::function<void(const std::string&, const std::string&)> fail_;
  std::map<std::string, std::pair<uint64_t, std::string>> latest_;  // vm -> (epoch, holder)
};

class ArbiterModel {
 public:
  using Callback = std::function<void(std::optional<ArbiterAnswer>)>;

  ArbiterModel(EventQueue& events, Rng rng, GrantAudit* audit);

  // The decision alone, at once (the store's claim()).
  ArbiterAnswer decide(const std::string& vm, uint64_t epoch, const std::string& claimant);

  // A claim over the network: `done` runs once, with the answer or, after
  // `timeout`, with nullopt if none came (arbiter down, or the answer was
  // lost to an outage).
  void claim(const std::string& vm, uint64_t epoch, const std::string& claimant, Time timeout,
             Callback done);

  void set_up(bool up) { up_ = up; }
  bool up() const { return up_; }
  void calm() { calm_ = true; }
  uint64_t latest(const std::string& vm) const;
  size_t grants() const { return grants_.size(); }

  // For tests of the audit: a broken arbiter that forgets grants on restart.
  void forget_everything() {
    grants_.clear();
    latest_.clear();
  }

 private:
  EventQueue& events_;
  Rng rng_;
  GrantAudit* audit_;
  bool up_ = true;
  bool calm_ = false;
  std::map<std::pair<std::string, uint64_t>, std::string> grants_;
  std::map<std::string, uint64_t> latest_;
};

}  // namespace ftvm::sim
