// STAND-IN NODE: the simulator's first node, from before the event-driven
// FT core existed; worlds now run the core (ft_node.h) unless asked for
// this one (`--nodes standin`, and the deliberate bugs).
//
// A single node that runs the KV guest live with no backup, no log and no
// output gate: it claims epoch `epoch` at the arbiter (retrying while the
// arbiter does not answer), and once granted it feeds every frame for the
// guest's MAC to its GuestRunner and releases the guest's outputs on the
// LAN at once. It exists so that the clients, LAN, arbiter, checkers and
// invariants can be tested on their own, with a node whose behaviour is
// simple enough to break on purpose; it supports the process faults that keep its guest's state (freeze)
// and, for the simulator's own tests, deliberate bugs (World's Bug).
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/guest_runner.h"
#include "sim/lan.h"
#include "sim/sim_node.h"
#include "sim/world.h"

namespace ftvm::sim {

class StandInNode final : public SimNode {
 public:
  // `ignore_denial`: a broken node that serves even when the arbiter denies
  // its claim (Bug::kSplitBrain).
  StandInNode(World& world, int id, uint64_t epoch, bool ignore_denial = false);

  void start() override;
  void freeze(Time duration) override;
  // The stand-in keeps no replica, so a crash loses the guest: restart()
  // boots the pre-booted guest again and claims the next epoch. Only the
  // deliberately broken worlds (Bug::kLoseWrites) do this.
  void crash() override;
  void restart() override;
  bool alive() const override { return alive_; }
  bool serving() const override { return alive_ && live_; }
  std::string describe() const override;
  uint64_t guest_instructions() const override { return instructions_ + (guest_ ? guest_->instructions() : 0); }

 private:
  void claim();
  void on_frame(const Frame& frame);
  void handle(const std::vector<uint8_t>& bytes);
  void release(uint64_t index, std::vector<uint8_t> bytes, Time at);
  void guest_failed(const std::string& why);

  World& world_;
  int id_;
  uint64_t epoch_;
  bool ignore_denial_;
  std::string claimant_;
  int port_ = -1;
  bool alive_ = false;
  bool live_ = false;  // granted (or, broken, not) and serving
  Time frozen_until_ = 0;
  uint64_t incarnation_ = 0;  // bumped by crash: events of a dead process do nothing
  std::unique_ptr<GuestRunner> guest_;
  std::deque<std::vector<uint8_t>> tap_queue_;  // frames that arrived while frozen
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> outputs_;  // produced, not yet released
  Time busy_until_ = 0;
  uint64_t instructions_ = 0;  // by earlier incarnations' guests  // the guest's last output leaves at this time
};

}  // namespace ftvm::sim
