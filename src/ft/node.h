// A node of an FT pair: `ftvm primary` and `ftvm backup` (DESIGN.md §5,
// docs/ft-protocol.md).
//
// The primary runs the guest live, turns every input into a log record,
// streams the log to the backup over the logging channel and holds every
// output until the backup has acknowledged the log up to the point where
// the output was produced (the Output Rule). The backup executes only as far
// as the log it holds allows and drops its own outputs. Either side that
// hears nothing from the other for the failure timeout claims (vm,
// epoch + 1) on the arbiter: the winner carries on alone (a backup first
// replays everything it received, then goes live and announces the guest's
// MAC); the loser halts for good and never emits another output. While the
// arbiter cannot be reached nobody goes live and nothing held is released.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "auth/secret.h"
#include "hostio/entropy.h"
#include "ft/record_replay.h"
#include "ft/role.h"  // the exit statuses

namespace ftvm::ft {

struct NodeOptions {
  // Primary: the machine (set_live_entropy(spec, entropy) gave its device
  // and rng-seed). A backup takes its image paths; the rest comes from the
  // primary's header.
  MachineSpec spec;
  hostio::EntropyChoice entropy;  // primary: the guest's randomness (default host)
  std::string tap;             // the guest NIC's TAP device on this host (empty: no NIC)
  std::string guest_ip;        // announced after go-live (default: from ftvm.net= in cmdline)
  std::string vm;              // the pair's id at the arbiter
  std::string host_id;         // this node's name as a claimant
  std::string arbiter;         // arbiter URL (see arbiter/client.h)
  std::shared_ptr<const auth::Secret> secret;
  std::string listen;          // the channel's ADDR:PORT (a backup: once it is primary)
  std::string primary;         // backup: the primary's channel ADDR:PORT
  uint64_t epoch = 1;          // primary: the epoch it claims at start
  std::chrono::milliseconds heartbeat{50};
  std::chrono::milliseconds timeout{300};  // silence that counts as failure
  std::chrono::milliseconds join_timeout{120'000};
  uint64_t max_lag_ms = 100;              // guest milliseconds
  uint64_t max_lag_bytes = uint64_t{32} << 20;
  // A state transfer to a joining backup: at most this many MB/s (0: no limit).
  double transfer_mbps = 0;
  uint64_t hash_interval = uint64_t{1} << 27;  // instructions between state-hash checks
  std::string control;         // control socket path (empty: none)
  std::string history;         // the pair's history file (ft/pair_view.h; empty: none)
  // How the machine executes; not in the log header: either engine replays
  // the other's log, so a pair may mix them.
  vm::Engine engine = vm::Engine::kInterp;
};

// Each returns the process exit status.
int run_primary(const NodeOptions& options);
int run_backup(const NodeOptions& options);

}  // namespace ftvm::ft
