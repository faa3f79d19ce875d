// What a node reports about itself (`ftvm status`, docs/ft-protocol.md
// "Status"): one typed struct, serialised in one place (to_json). Field
// names and units are part of the status contract; node_status_test.cc
// pins them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ft/role.h"

namespace ftvm::ft {

struct PrimaryLag {
  uint64_t instructions = 0;
  double guest_ms = 0;
  uint64_t bytes = 0;
  uint64_t unacked_records = 0;
  uint64_t max_guest_ms = 0;
  uint64_t max_bytes = 0;
  bool throttled = false;
  uint64_t throttle_episodes = 0;
  double throttled_ms = 0;
};

struct BackupLag {
  uint64_t queued_records = 0;
  uint64_t received_records = 0;
  uint64_t executed_records = 0;
  uint64_t queue_length = 0;
  uint64_t primary_instret_at_last_heartbeat = 0;
  uint64_t bytes = 0;
};

struct Failover {
  uint64_t at_unix_ms = 0;
  std::string kind;  // "took over (primary lost)" | "went solo (backup lost)"
  uint64_t from_epoch = 0, to_epoch = 0;
  std::string reason;
  double claim_ms = 0;
  uint64_t instret = 0;
  // A backup that took over:
  std::optional<double> silence_ms;
  std::optional<uint64_t> replayed_records;
  std::optional<uint64_t> resent_frames;  // replayed frames sent again on going live
  // After a connection reset: how long outputs waited after going live,
  // until the old primary could release nothing more (0 after silence).
  std::optional<double> outputs_held_ms;
  std::optional<double> replay_ms;
  std::optional<double> detect_to_live_ms;
  std::optional<uint64_t> state_hashes_matched;
  std::optional<uint64_t> last_matched_hash_instret;
};

struct NodeStatus {
  Role role = Role::kPrimary;
  NodeState state = NodeState::kStarting;
  std::string vm, host, claimant, arbiter;
  uint64_t epoch = 0;
  int64_t pid = 0;
  std::optional<std::string> arbiter_unreachable;
  uint64_t instret = 0;
  double guest_seconds = 0, uptime_seconds = 0;
  bool should_run = false;  // the main loop's own view: the guest has work
  std::optional<PrimaryLag> primary_lag;
  std::optional<BackupLag> backup_lag;
  struct Log {
    uint64_t records = 0, acked_records = 0, bytes = 0, channel_bytes = 0, queued_bytes = 0;
    double mbit_per_s = 0;
  } log;
  struct Held {
    uint64_t outputs = 0, bytes = 0, max_outputs = 0, stalls = 0, stale_acks = 0;
    bool fenced = false;
  } held;
  struct Released {
    uint64_t frames = 0, console_bytes = 0, tx_errors = 0, rx_dropped = 0;
  } released;
  struct Rejected {
    uint64_t forged = 0, replayed = 0, stale_epoch = 0, wrong_direction = 0, timed_out = 0,
             unexpected_connection = 0;
  } rejected;
  struct Checks {
    uint64_t state_hashes_matched = 0, last_matched_instret = 0, checkpoints_matched = 0;
  };
  std::optional<Checks> checks;
  struct Peer {
    bool connected = false;
    double last_heard_ms_ago = -1;
    double stuck_ms = 0;  // the peer's guest should run but has not advanced
    double longest_silence_ms = 0;  // the longest gap between its messages, this pairing
  } peer;
  std::optional<Failover> last_failover;
  std::optional<std::string> halted_because;
  // The guest's disk on this host, when it has one.
  struct Disk {
    std::string path;
    bool writable = false;
    uint64_t host_failures = 0;  // requests that failed on this host's copy
    std::string last_failure;
  };
  std::optional<Disk> disk;
  // How this node's machine executes, and the translator's code buffer.
  struct Engine {
    std::string name;  // "interp" or "jit"
    uint64_t jit_blocks = 0, jit_code_bytes = 0, jit_code_capacity = 0, jit_flushes = 0;
    uint64_t jit_interpreted = 0;  // instructions the interpreter ran between blocks
  };
  std::optional<Engine> engine;
};

nlohmann::json to_json(const NodeStatus& s);

}  // namespace ftvm::ft
