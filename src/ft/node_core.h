// A node of an FT pair as one single-threaded, step-driven core
// (DESIGN.md §5 "The core as a state machine", docs/ft-protocol.md).
//
// The core owns the protocol: the role state machine (role.h), the Output
// gate (output_gate.h), the log stream (log_stream.h) and, through the
// channel endpoint (channel_endpoint.h), failure detection. It runs the
// guest in slices and decides everything; it never blocks and never reads
// a clock, a socket or a TAP itself. Everything outside comes through
// CoreEnv (clock, NIC, console, arbiter, log lines) and, once paired, a
// Link and its ChannelEndpoint. So the same code runs in `ftvm primary` /
// `ftvm backup` (node.cc: real sockets, a channel thread, poll) and in the
// deterministic simulator (src/sim: simulated time, links and arbiter).
//
// Driving it: call step() until it returns kExit; after kWait, call it
// again at `until` or earlier when input may have arrived (a frame on the
// NIC, a message on the channel). A primary in kWaitingForBackup is paired
// by the driver with pair(); a backup starts paired (join()).
//
// Not thread-safe: one thread calls everything (the endpoint itself may be
// fed by the link's thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "arbiter/client.h"
#include "ft/channel.h"
#include "ft/channel_endpoint.h"
#include "ft/disk_faults.h"
#include "ft/live_input.h"
#include "ft/log_stream.h"
#include "ft/node_status.h"
#include "ft/output_gate.h"
#include "ft/replayer.h"
#include "ft/role.h"
#include "log/digest.h"
#include "vm/machine.h"

namespace ftvm::ft {

using CoreTime = std::chrono::nanoseconds;  // a monotonic clock's reading

// The world as a core sees it.
class CoreEnv {
 public:
  virtual ~CoreEnv() = default;
  virtual CoreTime now() = 0;        // monotonic (real or simulated)
  virtual uint64_t unix_ms() = 0;    // for status timestamps only
  virtual void log(std::string_view line) = 0;
  // The guest's NIC on this host: frames received since the last call
  // (never blocks), and sending one. Without a NIC both do nothing.
  virtual void read_frames(std::vector<std::vector<uint8_t>>& out) = 0;
  virtual bool write_frame(std::span<const uint8_t> frame) = 0;
  virtual void write_console(std::string_view bytes) = 0;
  // One claim attempt with its own deadline; may block in a real node.
  virtual arbiter::Client& arbiter() = 0;
};

// The transport under a paired channel: sends, never blocks.
class Link {
 public:
  virtual ~Link() = default;
  // Queues a message; an error means the link has failed.
  virtual Status send(MsgType type, const std::string& payload) = 0;
  struct Stats {
    uint64_t bytes_sent = 0, bytes_received = 0, queued_bytes = 0;
    uint64_t forged = 0, replayed = 0, stale_epoch = 0, wrong_direction = 0, timed_out = 0;
  };
  virtual Stats stats() const = 0;
};

struct CoreOptions {
  std::string vm;
  std::string host_id;   // this node's claimant name
  uint64_t epoch = 1;    // primary: the epoch it claims at start
  std::chrono::milliseconds heartbeat{50};
  std::chrono::milliseconds timeout{300};  // as `ftvm up`, `primary` and `backup` default to
  uint64_t max_lag_ms = 100;                      // guest milliseconds
  uint64_t max_lag_bytes = uint64_t{32} << 20;
  uint64_t hash_interval = uint64_t{1} << 27;     // instructions between state-hash checks
  uint64_t slice_instructions = 2'000'000;
  // Announced (gratuitous ARP) when a backup goes live; no announcement
  // when either is missing.
  std::optional<vm::MacAddress> mac;
  std::string guest_ip;
  // Backup: records applied per step at most (bounds a step's length).
  size_t records_per_step = 4096;
};

struct Step {
  enum class Kind : uint8_t { kContinue, kWait, kExit };
  Kind kind = Kind::kContinue;
  CoreTime until{0};  // kWait: call again by then (or on input)
  int exit_code = 0;  // kExit
};

class NodeCore {
 public:
  NodeCore(Role role, const CoreOptions& options, CoreEnv& env);
  ~NodeCore();
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  // The entropy device the machine must be built with when it has one: it
  // serves from the live source (and logs what it gave) or, on a backup,
  // from the log.
  vm::EntropySource* entropy_device();
  // Hands the core its machine. `live_entropy` (may be null) is where a
  // live guest's randomness comes from; it must outlive the core.
  void attach_machine(vm::Machine* machine, vm::EntropySource* live_entropy);

  // Primary in kWaitingForBackup: a backup completed the handshake.
  void pair(std::unique_ptr<ChannelEndpoint> endpoint, std::unique_ptr<Link> link);
  // Solo primary: a new backup holds this machine's state as of now (a
  // state transfer's final pause, transfer.h); the log starts again from
  // record 0 at this instret and the Output Rule holds again.
  void reprotect(std::unique_ptr<ChannelEndpoint> endpoint, std::unique_ptr<Link> link);
  // Whether a new backup may join now: a live primary running alone.
  bool can_reprotect() const {
    return rm_.role() == Role::kPrimary && rm_.state() == NodeState::kSolo && !finishing_ &&
           link_ == nullptr && !hold_live_outputs_until_;
  }
  // Primary, paired: hand the guest over to the backup (a planned
  // migration). The guest stops for good here; once the backup holds every
  // record (and so every output has been released) it is told to take over
  // at once. When the channel then closes, this node waits a while for the
  // backup's claim before claiming the next epoch itself: losing it means
  // the handover worked (exit 0); winning it means the backup failed
  // first, and this node runs on alone. An error: not paired.
  Status request_handover();
  // This node went live because its primary handed over (not a failure).
  bool took_over_by_handover() const { return took_over_by_handover_; }
  // Backup: paired with a primary holding `epoch`.
  void join(uint64_t epoch, std::unique_ptr<ChannelEndpoint> endpoint, std::unique_ptr<Link> link);

  Step step();

  const RoleMachine& role() const { return rm_; }
  bool paired() const { return link_ != nullptr; }
  bool waiting_for_backup() const { return rm_.state() == NodeState::kWaitingForBackup; }
  // The main loop wants its guest to advance (failure_detector.h).
  bool should_run() const { return should_run_; }
  NodeStatus status() const;
  const vm::Machine& machine() const { return *machine_; }
  // Outputs the node released to the world (frames and console bytes), in
  // order; the simulator's invariants read them.
  uint64_t released_frames() const { return released_frames_; }
  const Replayer* replayer() const { return replayer_.get(); }

 private:
  template <typename... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    env_.log(fmt::format("{} e{}: {}", role_name(rm_.role()), rm_.epoch(),
                         fmt::format(f, std::forward<Args>(args)...)));
  }
  struct EntropyDevice final : vm::EntropySource {
    NodeCore* core;
    explicit EntropyDevice(NodeCore* c) : core(c) {}
    void fill(std::span<uint8_t> out) override;
  };

  // ---- steps by state ----
  Step claim_step();
  Step live_step();
  Step backup_step();
  Step replay_tail_step();
  Step finishing_step();
  Step on_claim_won(const arbiter::Grant& g);
  Step halt(const arbiter::Grant& g);
  Step exit(int code) { return {Step::Kind::kExit, CoreTime{0}, code}; }
  Step wait_until(CoreTime t) { return {Step::Kind::kWait, t, 0}; }

  // ---- log stream and outputs ----
  void append(const log::Record& record);
  void flush_batch();
  // Marks the current instret as logged (a Progress record, unless a record
  // is already there) and sends the batch.
  void send_progress();
  // The guest went idle with no input fed and nothing held: its records
  // (timer wake-ups) may wait up to idle_flush_delay() before they are sent.
  // Returns true when they were left waiting.
  bool defer_idle_records(CoreTime now);
  CoreTime idle_flush_delay() const;
  void checkpoint_maybe();
  void check_stall();
  // Just before an output leaves: true if this node has run recently; if it
  // was frozen since the last check, fences (check_stall) and returns false.
  bool fresh_before_send();
  void emit(bool frame, std::span<const uint8_t> bytes);
  void send_output(const HeldOutput& out);
  void remember_replayed_frame(std::span<const uint8_t> bytes);
  uint64_t timeout_ticks() const;  // the failure timeout in guest time
  // A backup: the frames its replay produced (and dropped) in the last
  // failure timeout of guest time, by mtime; sent again when it goes live.
  static constexpr uint64_t kMaxReplayedBytes = uint64_t{16} << 20;
  std::deque<std::pair<uint64_t, std::vector<uint8_t>>> replayed_frames_;
  uint64_t replayed_bytes_ = 0;
  // A backup gone live after a connection reset: outputs wait until the old
  // primary can release nothing more (see on_claim_won), then these frames
  // go first.
  std::optional<CoreTime> hold_live_outputs_until_;
  std::vector<std::vector<uint8_t>> resend_;
  void release_live_outputs();
  void release_acked();
  void release_now();  // release_acked without its fault point
  void flush_console();
  void unpair();
  void report_progress(bool checkpointing = false);
  void finish(int exit_code);
  Status apply_queued(int* exit_code, size_t max_records);
  // This node leads the log (a primary, or once was and halted).
  bool primary_side() const {
    return rm_.role() == Role::kPrimary ||
           (rm_.role() == Role::kHalted && initial_role_ == Role::kPrimary);
  }

  Role initial_role_;
  CoreOptions o_;
  CoreEnv& env_;
  RoleMachine rm_;
  OutputGate gate_;
  LogStream stream_;
  log::OutputDigester outputs_;
  EntropyDevice entropy_device_{this};

  vm::Machine* machine_ = nullptr;
  vm::EntropySource* live_entropy_ = nullptr;
  std::unique_ptr<ReplayEntropy> replay_entropy_;
  // A backup gone live draws (and logs, once paired again) fresh entropy.
  bool entropy_live_ = false;
  std::unique_ptr<Replayer> replayer_;
  // The disk's host failures: logged by a primary, replayed by a backup
  // (which hands new ones to live_disk_faults_ once it goes live).
  std::unique_ptr<LiveDiskFaults> live_disk_faults_;
  std::unique_ptr<ReplayDiskFaults> replay_disk_faults_;

  std::unique_ptr<ChannelEndpoint> endpoint_;
  std::unique_ptr<Link> link_;

  // The primary's live loop.
  RxQueue rx_;
  GuestPacer<CoreTime> pacer_;
  uint64_t pace_epoch_ = 0;
  std::optional<CoreTime> idle_until_;      // waiting for the guest's timer
  std::optional<uint64_t> idle_wake_at_;    // ... at this mtime (none: no timer armed)
  std::optional<CoreTime> deferred_since_;  // records of an idle guest not yet sent
  CoreTime last_alive_{0};
  std::deque<CoreTime> garp_at_;
  std::vector<uint8_t> garp_;
  bool throttled_ = false;
  uint64_t throttle_episodes_ = 0;
  CoreTime throttle_since_{0};
  double throttled_ms_ = 0;
  bool should_run_ = false;
  bool finishing_ = false;
  int finish_code_ = 0;
  CoreTime finish_deadline_{0};

  // The backup.
  std::deque<QueuedRecord> queue_;
  uint64_t executed_ = 0, executed_bytes_ = 0;
  uint64_t tail_records_ = 0;
  CoreTime tail_start_{0};
  double tail_replay_ms_ = 0;
  CoreTime detected_at_{0};
  double silence_ms_ = 0;

  // A planned migration (request_handover).
  enum class HandoverState : uint8_t { kNone, kRequested, kSent };
  HandoverState handover_ = HandoverState::kNone;
  CoreTime handover_claim_at_{0};
  bool took_over_by_handover_ = false;
  Step handover_step();

  // Claiming.
  CoreTime claim_start_{0};
  bool told_unreachable_ = false;
  std::string arbiter_wait_;
  uint64_t from_epoch_ = 0;

  // Outputs and status.
  std::string console_out_;
  uint64_t released_frames_ = 0, released_console_ = 0, tx_errors_ = 0;
  uint64_t stalls_ = 0;
  // Primary: the batches sent and not yet acknowledged (records in the log
  // after each, and when it was handed to the link), and when the newest
  // acknowledged one was sent (release_acked).
  struct SentBatch {
    uint64_t records_after = 0;  // records in the log once it was sent
    CoreTime sent{0};
    // The backup cannot have found this node's guest stuck for longer than
    // since this time once it has heard the batch (see release_now).
    CoreTime progress_shown{0};
  };
  std::deque<SentBatch> unacked_batches_;
  CoreTime acked_batch_sent_{0};
  CoreTime acked_progress_shown_{0};
  // When the guest's instret last changed (after a slice), and that time as
  // it stood when the newest record was appended (the record shows the
  // instret reached then); when this node last told the backup, in order
  // with its records, that its guest is not meant to run (flow control, a
  // handover).
  CoreTime instret_changed_at_{0};
  CoreTime appended_instret_since_{0};
  CoreTime idle_reported_at_{0};
  bool reported_not_running_ = false;
  void report_not_running(bool running);
  uint64_t stale_acks_ = 0;
  CoreTime stale_ack_noted_{0};
  std::optional<Failover> last_failover_;
  std::optional<std::string> halted_because_;
  CoreTime started_{0};
};

// The value of ftvm.net=ADDR/PREFIX[,GW] in a kernel command line.
std::string guest_ip_from_cmdline(const std::string& cmdline);
// A gratuitous ARP request announcing that `ip` is at `mac`.
std::vector<uint8_t> gratuitous_arp(const vm::MacAddress& mac, const std::string& ip);

}  // namespace ftvm::ft
