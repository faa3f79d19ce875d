// The real FT core in the simulator: two nodes, each an ft::NodeCore
// (src/ft/node_core.h) driven in simulated time, as node.cc drives it for
// real (docs/sim.md "The FT pair").
//
// FtNode is one host's ftvm process: a CoreEnv whose clock is the event
// queue, whose NIC is a LAN port presenting the guest's MAC, and whose
// arbiter client asks the ArbiterModel (synchronously, charging the
// claim's round trip or its timeout to the node's simulated time). Its
// guest is a vm::Machine restored from the pre-booted GuestImage. Steps are
// events: kContinue runs again after the simulated time the step's
// instructions took (1 ns each), kWait at `until` or as soon as input
// arrives (a frame, a channel message).
//
// FtPair wires the channel: when the primary waits for a backup, it opens a
// connection on the Link; once both ends are up it makes the two
// ChannelEndpoints and ft::Links (FtChannelLink) and calls pair() on the
// primary and join() on a new backup core. Messages go through the Link
// model (delays, stalls, partitions, resets); ticks run every heartbeat/2;
// a reset reaches each end's endpoint as on_link_failed. A frozen node
// neither steps nor hears its channel (messages wait, as in its socket).
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ft/node_core.h"
#include "sim/sim_node.h"
#include "sim/world.h"

namespace ftvm::sim {

class FtPair;

class FtNode final : public SimNode, public ft::CoreEnv {
 public:
  // `role`: what the process is started as (a backup waits to be joined).
  FtNode(World& world, FtPair& pair, int id, ft::Role role);
  ~FtNode() override;

  // ---- SimNode ----
  void start() override;
  void freeze(Time duration) override;
  void crash() override;
  // A fresh process on the same host started as a primary with the
  // original epoch: the arbiter must refuse it (exit 4), it never goes live.
  void restart() override;
  bool alive() const override { return alive_; }
  // A backup process that was never joined holds no copy of the VM.
  bool holds_vm() const override { return alive_ && core_ != nullptr; }
  bool serving() const override;
  std::string describe() const override;
  uint64_t guest_instructions() const override;

  int id() const { return id_; }
  bool frozen() const;
  ft::NodeCore* core() { return core_.get(); }
  // Called by FtPair: this (backup) node's process joins the pair.
  void join(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
            std::unique_ptr<ft::Link> link);
  // Input may have arrived: step as soon as possible.
  void wake();
  void partition_arbiter(Time duration) override;

 private:
  // ---- CoreEnv ----
  ft::CoreTime now() override;
  uint64_t unix_ms() override;
  void log(std::string_view line) override;
  void read_frames(std::vector<std::vector<uint8_t>>& out) override;
  bool write_frame(std::span<const uint8_t> frame) override;
  void write_console(std::string_view) override {}
  arbiter::Client& arbiter() override;

  class ArbiterClient;
  void boot_machine();
  void new_core(ft::Role role);
  void schedule_step(Time at);
  void run_step();
  void exited(int code);
  void on_frame(const Frame& frame);

  World& world_;
  FtPair& pair_;
  int id_;
  ft::Role start_role_;
  std::string host_;
  int port_ = -1;
  bool alive_ = false;
  uint64_t incarnation_ = 0;
  Time frozen_until_ = 0;
  Time arbiter_cut_until_ = 0;
  std::unique_ptr<vm::Machine> machine_;
  std::unique_ptr<ArbiterClient> arbiter_;
  std::unique_ptr<ft::NodeCore> core_;
  std::optional<uint64_t> step_event_;
  Time step_at_ = 0;
  Time charge_ = 0;  // simulated time the current step has taken beyond its instructions
  std::deque<std::vector<uint8_t>> rx_;     // the TAP queue
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> tx_;  // written this step: (epoch, bytes)
  uint64_t instructions_ = 0;  // by earlier machines
  Rng rng_;
};

// The channel between the two nodes of a world.
class FtPair {
 public:
  explicit FtPair(World& world);
  ~FtPair();
  void set_nodes(FtNode* primary, FtNode* backup);
  // The primary waits for a backup: connect (again) unless already doing so.
  void primary_waiting();
  // A node crashed: its end of the channel is gone; `reset`: the peer's
  // kernel sees the connection reset (else it hears nothing).
  void node_crashed(FtNode* node, bool reset);
  // A node thawed: deliver what waited in its socket.
  void node_thawed(FtNode* node);
  bool paired() const { return paired_; }

  // One end, as the ft::Link the core owns sees it.
  struct Side {
    FtNode* node = nullptr;
    ft::ChannelEndpoint* endpoint = nullptr;  // null once the core dropped its link
    uint64_t conn = 0;
    uint64_t next_seq = 1;
    std::deque<std::vector<uint8_t>> waiting;  // arrived while the node was frozen
    uint64_t bytes_sent = 0, bytes_received = 0;
  };

 private:
  friend class FtChannelLink;
  void connected(uint64_t conn);
  void deliver(int side, const std::vector<uint8_t>& message);
  void send(int side, ft::MsgType type, const std::string& payload);
  void tick(int side, uint64_t conn);

  World& world_;
  Side sides_[2];
  bool connecting_ = false;
  bool paired_ = false;
  uint64_t pair_epoch_ = 0;
  int connected_ends_ = 0;
  uint64_t connecting_conn_ = 0;
};

// The default NodeFactory once the core is wired: a primary and a backup.
NodeSet ft_pair_nodes(World& world);

}  // namespace ftvm::sim
