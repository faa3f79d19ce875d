// The FT pair from the command line: `ftvm primary`, `ftvm backup` (one
// node each), and `ftvm up`, `status`, `kill`, `down` (a whole pair on one
// machine, in network namespaces made by scripts/ftnet.sh).
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace ftvm::cli {

// Flags shared by `ftvm primary` and `ftvm backup`.
struct NodeCli {
  std::string kernel, initrd, append, disk;
  bool disk_read_only = false;
  std::string memory = "256";
  std::string entropy = "host";  // primary: parsed by hostio::parse_entropy_choice
  std::string tap, mac, guest_ip;
  std::string vm, host_id, arbiter, secret;
  std::string listen, primary;
  uint64_t epoch = 1;
  uint64_t heartbeat_ms = 50, timeout_ms = 300, join_timeout_s = 120;
  uint64_t max_lag_ms = 100, max_lag_bytes = uint64_t{32} << 20;
  double transfer_mbps = 0;
  uint64_t hash_interval = uint64_t{1} << 27;
  std::string control, history;
  std::string engine;  // --engine (empty: the default)
};

void add_node_options(CLI::App* app, NodeCli& o, bool primary);
int node_command(const NodeCli& o, bool primary);

struct UpOptions {
  std::string name = "ft";
  std::string arbiter = "ftvm";  // ftvm | etcd
  std::string memory = "256";
  uint64_t heartbeat_ms = 50, timeout_ms = 300, max_lag_ms = 100;
  uint64_t hash_interval = uint64_t{1} << 27;
  uint64_t ready_timeout_s = 300;
  std::string append;  // extra kernel command-line words
  std::string entropy = "host";  // the primary's --entropy
  bool fresh = false;  // discard the hosts' disk copies (never the arbiter's grants)
  bool no_reprotect = false;  // no supervisor: a survivor runs alone
  std::string engine;         // the nodes' --engine (empty: the default)
  std::string engine_b;       // host b's node's --engine (empty: as --engine)
  double transfer_mbps = 0;   // the nodes' --transfer-mbps
};

// The directory holding a pair's pids, sockets, logs and secret:
// $FTVM_RUN_DIR/NAME, by default /run/ftvm/NAME.
std::string pair_dir(const std::string& name);

// Where a pair's arbiter keeps what must survive its runs and reboots (the
// embedded arbiter's grant file, or etcd's data in etcd/):
// $FTVM_STATE_DIR/NAME, by default /var/lib/ftvm/NAME. Never deleted by ftvm.
std::string state_dir(const std::string& name);

// Starts the pair at the vm's next epoch (the arbiter's latest grant + 1);
// makes the arbiter's store (`--init`) only when state_dir(name) has none.
// Each host has its own copy of the guest's data disk in state_dir(name)
// (a/data.img, b/data.img): made from the guest image's disk the first time
// (or with --fresh), otherwise kept, the most advanced copy (the host that
// held the highest epoch in the history) copied over the other so both
// start equal.
int up_command(const UpOptions& o);
int down_command(const std::string& name);
// `ftvm supervise` (started by `ftvm up`, stopped by `ftvm down`): while
// one host's node is gone and the other runs alone as primary, starts a new
// backup on the first (the command in RUN_DIR/H.backup.json), which joins
// the primary by state transfer. Exits when both nodes are gone or the run
// directory is removed.
int supervise_command(const std::string& name, const std::string& run_dir);
// `ftvm migrate`: a planned move of the primary role to the backup's host.
// The primary (paired) stops its guest, its backup replays every record and
// takes the next epoch at once (no failure timeout), and the supervisor
// starts a new backup where the primary was. Waits until the pair is
// protected again (or, without a supervisor, until the backup is primary);
// 1 if it is not within `timeout_s` or the pair is not protected now.
int migrate_command(const std::string& name, int timeout_s);
int status_command(const std::string& name, bool json);
// `which`: primary, backup, arbiter (the role the node has now).
int kill_command(const std::string& name, const std::string& which, const std::string& signal);

}  // namespace ftvm::cli
