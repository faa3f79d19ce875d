// The real FT core in the simulator: up to three hosts, each an
// ft::NodeCore (src/ft/node_core.h) driven in simulated time, as node.cc
// drives it for real (docs/sim.md "The FT pair").
//
// FtNode is one host's ftvm process: a CoreEnv whose clock is the event
// queue, whose NIC is a LAN port presenting the guest's MAC, and whose
// arbiter client asks the ArbiterModel (synchronously, charging the
// claim's round trip or its timeout to the node's simulated time). Its
// guest is a vm::Machine restored from the pre-booted GuestImage, or, for a
// backup that joins a running primary, filled by live state transfer
// (ft/transfer.h). Steps are events: kContinue runs again after the
// simulated time the step's instructions took (1 ns each), kWait at
// `until` or as soon as input arrives (a frame, a channel message).
//
// A backup process (the initial backup, or one `ftvm supervise` starts on
// a host whose process is gone) is a *joiner* until a primary takes it:
// FtPair connects it to a primary waiting for its first backup (the guest
// boots from the image on both) or to a primary running alone (state
// transfer while the primary's guest runs, then log streaming from the
// pause's instret: NodeCore::reprotect on the primary, join on the backup).
// A joiner whose join fails (the primary died or abandoned the transfer,
// the primary was busy with another joiner for too long) exits 2 without
// ever holding a usable copy or claiming anything.
//
// FtPair wires the channel: one connection at a time on the Link, side 0
// the primary's end and side 1 the joiner's; once both ends are up it makes
// the two ChannelEndpoints and ft::Links (FtChannelLink). Messages go
// through the Link model (delays, stalls, partitions, resets); ticks run
// every heartbeat/2; a reset reaches each end's endpoint as on_link_failed.
// A frozen node neither steps nor hears its channel (messages wait, as in
// its socket). With supervision on (three seeds in four, as `ftvm up`
// does by default), FtPair also plays `ftvm supervise`: a host whose
// process is gone gets a new joiner, after a backoff that doubles after
// each join that failed.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ft/node_core.h"
#include "ft/transfer.h"
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
  // A fresh process on the same host started with its original command
  // line: as a primary of epoch 1, which the arbiter must refuse (exit 4,
  // it never goes live); on a host first started as a backup, a joiner.
  void restart() override;
  bool alive() const override { return alive_; }
  // A backup process not yet joined (or still receiving the transfer)
  // holds no usable copy of the VM.
  bool holds_vm() const override { return alive_ && core_ != nullptr && !joining_; }
  bool serving() const override;
  std::string describe() const override;
  uint64_t guest_instructions() const override;

  int id() const { return id_; }
  bool frozen() const;
  ft::NodeCore* core() { return core_.get(); }
  const ft::NodeCore* core() const { return core_.get(); }
  // A new backup process on this host (what `ftvm supervise` starts): a
  // joiner that gives up (exit 2) when no primary took it within
  // `patience`.
  void start_joiner(Time patience);
  // A backup process waiting for a primary to take it.
  bool waiting_to_join() const { return alive_ && core_ == nullptr; }
  // Receiving a running primary's state.
  bool joining() const { return alive_ && joining_; }
  // A live primary that a joiner may connect to now: waiting for its
  // first backup, or running alone and not already sending a transfer.
  bool takes_joiner() const;
  bool sending_transfer() const { return sender_ != nullptr; }
  // Whether this process held the VM (started as a primary, or joined):
  // the supervisor backs off only after joins that failed.
  bool joined_once() const { return joined_once_; }
  uint64_t instret() const;
  // ---- called by FtPair once a connection is up ----
  // This (backup) process pairs with a primary that waited for it.
  void join(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
            std::unique_ptr<ft::Link> link);
  // Primary running alone: copy this machine to the joiner on `link`.
  void begin_transfer(uint64_t conn, std::unique_ptr<ft::ChannelEndpoint> endpoint,
                      std::unique_ptr<ft::Link> link);
  // Joiner: receive a running primary's state, then replay its log.
  void join_running(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
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
  void blank_machine();
  void new_core(ft::Role role);
  // One step of the primary's transfer; true when it sent something.
  bool transfer_step();
  void abandon_transfer(const std::string& why);
  // One step of the joiner's side of a transfer.
  void join_step();
  // The joiner gives up: exit 2, nothing claimed.
  void give_up(const std::string& why);
  // The process is gone (crash or exit); `reset`: its connections reset.
  void gone(bool reset);
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
  Time busy_until_ = 0;  // the current step's end: the next one starts no earlier
  Time charge_ = 0;  // simulated time the current step has taken beyond its instructions
  std::deque<std::vector<uint8_t>> rx_;     // the TAP queue
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> tx_;  // written this step: (epoch, bytes)
  uint64_t instructions_ = 0;  // by earlier machines
  Rng rng_;
  // ---- state transfer ----
  bool joining_ = false;
  bool joined_once_ = false;
  uint64_t join_epoch_ = 0;
  std::unique_ptr<ft::TransferSender> sender_;
  std::unique_ptr<ft::TransferReceiver> receiver_;
  std::unique_ptr<ft::ChannelEndpoint> xfer_endpoint_;
  std::unique_ptr<ft::Link> xfer_link_;
  uint64_t xfer_conn_ = 0;
  std::deque<std::string> xfer_in_;
  uint64_t base_instret_ = 0;  // the machine's instret when this process got it
  Time apply_ns_per_page_ = 0;  // the joiner's cost of applying a page or block
};

// The channel of a world's hosts, and their supervisor.
class FtPair {
 public:
  explicit FtPair(World& world);
  ~FtPair();
  void set_nodes(std::vector<FtNode*> nodes);
  // With `on`, a host whose process is gone gets a new joiner.
  void set_supervised(bool on) { supervised_ = on; }
  bool supervised() const { return supervised_; }
  // Something changed (a primary became joinable, a joiner started, a
  // connection attempt ended): connect a joiner to a primary if both wait.
  void poll();
  // A node's process is gone (crashed or exited): its end of the channel
  // is gone; `reset`: the peer's kernel sees the connection reset (else it
  // hears nothing).
  void node_crashed(FtNode* node, bool reset);
  // The primary abandoned the transfer on connection `conn`: it closes
  // (the joiner sees it reset).
  void close_connection(uint64_t conn);
  // A node thawed: deliver what waited in its socket.
  void node_thawed(FtNode* node);
  // A transfer began: the seed may crash or freeze either side mid-way.
  void transfer_started(FtNode* primary, FtNode* joiner);
  // What keeps the pair from counting as protected again once faults
  // stopped (with supervision on), or nullopt.
  std::optional<std::string> unprotected() const;
  uint64_t joins_completed() const { return joins_; }

  // One end, as the ft::Link the core owns sees it.
  struct Side {
    FtNode* node = nullptr;
    ft::ChannelEndpoint* endpoint = nullptr;  // null once the node dropped its link
    uint64_t conn = 0;
    uint64_t next_seq = 1;
    std::deque<std::vector<uint8_t>> waiting;  // arrived while the node was frozen
    uint64_t bytes_sent = 0, bytes_received = 0;
  };

 private:
  friend class FtChannelLink;
  // A connection's two ends: 0 the primary's, 1 the joiner's.
  struct Conn {
    Side sides[2];
    uint64_t epoch = 0;
  };
  Side* side(uint64_t conn, int side);
  void connected(uint64_t conn);
  void closed(int side, uint64_t conn);
  void deliver(uint64_t conn, int side, const std::vector<uint8_t>& message);
  void send(uint64_t conn, int side, ft::MsgType type, const std::string& payload);
  void tick(uint64_t conn, int side);
  void supervise();

  World& world_;
  Rng rng_;
  std::vector<FtNode*> nodes_;
  std::map<uint64_t, Conn> conns_;  // every connection that formed, by id
  bool connecting_ = false;
  FtNode* connecting_primary_ = nullptr;
  FtNode* connecting_joiner_ = nullptr;
  uint64_t pair_epoch_ = 0;
  int connected_ends_ = 0;
  uint64_t connecting_conn_ = 0;
  bool supervised_ = false;
  std::vector<Time> backoff_;      // per host: the supervisor's next delay
  std::vector<Time> restart_at_;   // per host: not before
  uint64_t joins_ = 0;
};

// The default NodeFactory once the core is wired: a primary and a backup,
// in one seed of four a third host whose joiner competes with the others,
// and supervision in three seeds of four.
NodeSet ft_pair_nodes(World& world);

}  // namespace ftvm::sim
