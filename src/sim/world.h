// One simulated world, run for one seed: the event queue, the LAN, the
// logging channel, the arbiter, the clients, the nodes, and the invariants
// that judge them (docs/sim.md).
//
// A run has three phases:
//   [0, fault_end)         nodes start, clients issue requests, faults drawn
//                          from the seed happen (LAN loss, duplication,
//                          delay and reordering; arbiter outages and cuts;
//                          node freezes, crashes and restarts; channel
//                          partitions, stalls and resets);
//   [fault_end, +traffic)  faults stop, the arbiter is up; clients go on;
//   then                   once every client is idle, an audit client reads
//                          every key, and the run ends when it has.
// Liveness: from fault_end, with the arbiter and a node up, a primary must
// serve (the audit must finish) within liveness_window.
// At the end the history must be linearizable and every acknowledged write
// present in the final read.
//
// Not thread-safe: one world per thread (worlds share only the GuestImage).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/arbiter_model.h"
#include "sim/client.h"
#include "sim/event_queue.h"
#include "sim/guest_image.h"
#include "sim/history.h"
#include "sim/invariants.h"
#include "sim/lan.h"
#include "sim/link.h"
#include "sim/random.h"

namespace ftvm::sim {

// Deliberate bugs, for the simulator's own tests (a world with one of these
// must break an invariant).
enum class Bug : uint8_t {
  kNone,
  kLoseWrites,      // the stand-in restarts from the pre-booted guest mid-run
  kSplitBrain,      // a second stand-in ignores the arbiter's denial and serves
  kForgetfulArbiter // the arbiter loses its grants and a node claims again
};
std::optional<Bug> parse_bug(const std::string& name);
std::string to_string(Bug bug);

class World;
class SimNode;

// Builds a world's nodes (in `world`'s constructor); they are started at
// time 0 unless `start_later` says otherwise. The default builds one
// StandInNode (and the extra nodes the deliberate bugs need).
struct NodeSet {
  std::vector<std::unique_ptr<SimNode>> nodes;
  std::vector<bool> start_later;  // per node; missing entries: start at 0
  std::shared_ptr<void> keep;     // what the nodes share (kept until they are gone)
  // Once faults stopped: what keeps the nodes from being protected again
  // (a primary without its backup), or nullopt. The run goes on after the
  // final read until it returns nullopt, within the liveness window.
  std::function<std::optional<std::string>()> unprotected;
};
using NodeFactory = std::function<NodeSet(World&)>;

// Which nodes a world runs.
enum class NodeKind : uint8_t {
  kFtPair,   // the FT core: a primary and a backup (ft_node.h)
  kStandIn,  // one stand-in node (standin_node.h); the deliberate bugs use it
};

struct WorldOptions {
  uint64_t seed = 0;
  Time fault_end = 1 * kSecond;
  Time calm_traffic = 200 * kMillisecond;
  Time liveness_window = 2 * kSecond;
  int clients = 3;
  bool verbose = false;
  bool trace_steps = false;  // with verbose: every step of every FT node
  Bug bug = Bug::kNone;
  NodeKind nodes = NodeKind::kFtPair;  // kStandIn whenever `bug` is set
  NodeFactory make_nodes;  // overrides `nodes` (tests)
  // FT pair: whether a host whose process is gone gets a new backup that
  // joins the running primary (`ftvm up`'s supervisor), and how many hosts
  // there are (2, or 3: a third host's backup competes to join). Unset:
  // drawn from the seed (on in three seeds of four; 3 hosts in one of four).
  std::optional<bool> reprotect;
  std::optional<int> hosts;
  // false: no faults drawn from the seed at all (no LAN faults, no fault
  // points, no scheduled faults): the test's `setup` is the whole schedule.
  bool faults = true;
  // The joiners' cost of applying each page or disk block of a transfer
  // (unset: drawn per join: 0, or 4-16 ms in one join of four).
  std::optional<Time> joiner_apply_ns_per_page;
  // The primary's transfer window, in messages sent and not yet applied
  // (unset: the real default). With 1 and a slow joiner, a transfer lasts
  // a while on the primary's side too.
  std::optional<uint32_t> transfer_window;
  // Called when the run starts, after the seed's faults are scheduled: tests
  // schedule faults of their own here.
  std::function<void(World&)> setup;
};

struct RunStats {
  uint64_t events = 0;
  uint64_t operations = 0;
  uint64_t completed = 0;
  uint64_t retransmissions = 0;
  uint64_t frames = 0;
  uint64_t frames_lost = 0;
  uint64_t guest_instructions = 0;
  uint64_t outputs_released = 0;
  uint64_t newest_epoch = 0;  // of any output released (above 1: a failover served)
  uint64_t reprotections = 0;  // joins of a running primary that completed
  uint64_t transfers = 0;      // joins of a running primary that started
  Time end = 0;
};

struct RunOutcome {
  uint64_t seed = 0;
  std::optional<Breach> breach;  // nullopt: every invariant held
  RunStats stats;
  // A digest of everything observable in the run (history, outputs,
  // events): two runs of one seed must agree on it.
  uint64_t fingerprint = 0;
  bool ok() const { return !breach; }
};

class World {
 public:
  World(const GuestImage& image, WorldOptions options);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  RunOutcome run();

  // ---- for nodes ----
  EventQueue& events() { return events_; }
  Lan& lan() { return *lan_; }
  Link& link() { return *link_; }
  ArbiterModel& arbiter() { return *arbiter_; }
  Invariants& invariants() { return invariants_; }
  OutputAudit& audit() { return audit_; }
  const GuestImage& image() const { return image_; }
  const WorldOptions& options() const { return options_; }
  Rng fork_rng() { return rng_.fork(); }
  bool verbose() const { return options_.verbose; }
  void trace(const std::string& line);
  // Mixes `v` into the run's fingerprint.
  void note(uint64_t v);
  static constexpr const char* kVmId = "sim-vm";
  size_t node_count() const { return nodes_.size(); }
  SimNode& node(size_t i) { return *nodes_[i]; }
  // Faults have stopped.
  bool calm() const { return calm_; }
  // A new backup joined a running primary.
  void count_reprotection() { ++reprotections_; }
  uint64_t reprotections() const { return reprotections_; }
  void count_transfer() { ++transfers_; }

 private:
  void schedule_faults();
  void begin_calm();
  // After the final read: waits for the nodes to be protected again.
  void await_protected();
  void finish_traffic();
  void final_audit(std::map<uint32_t, int64_t> values);
  // The FTVM_BUGGIFY source of this world (util/buggify.h), installed on
  // the thread that builds it.
  static bool buggify_fires(void* context, const char* site, double p);

  const GuestImage& image_;
  WorldOptions options_;
  Rng rng_;
  EventQueue events_;
  Invariants invariants_;
  OutputAudit audit_;
  GrantAudit grant_audit_;
  std::unique_ptr<Lan> lan_;
  std::unique_ptr<Link> link_;
  std::unique_ptr<ArbiterModel> arbiter_;
  History history_;
  std::vector<std::unique_ptr<KvClient>> clients_;
  std::unique_ptr<KvClient> auditor_;
  std::shared_ptr<void> keep_;  // before nodes_: outlives them
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<bool> start_later_;
  std::function<std::optional<std::string>()> unprotected_;
  uint64_t reprotections_ = 0;
  uint64_t transfers_ = 0;
  std::vector<uint32_t> counter_keys_, register_keys_;
  Rng buggify_rng_{0};
  std::map<std::string, bool> buggify_sites_;
  bool calm_ = false;
  bool finished_ = false;
  uint64_t fingerprint_ = 0xcbf29ce484222325ull;
};

// The stand-in's nodes (see standin_node.h).
NodeSet stand_in_nodes(World& world);

// Runs one seed.
RunOutcome run_seed(const GuestImage& image, const WorldOptions& options);

}  // namespace ftvm::sim
