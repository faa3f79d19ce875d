// `ftvm run`: boot a guest (or a bare-metal ELF) and drive it from the host:
// console in and out, pacing of idle time against the wall clock, limits,
// statistics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hostio/entropy.h"
#include "vm/jit.h"

namespace ftvm::cli {

struct RunOptions {
  std::string kernel;             // empty: the default guest image
  std::string initrd;             // empty: the default guest image's
  std::string append;             // extra kernel command-line words
  std::string elf;                // bare-metal program instead of Linux
  uint64_t memory_mib = 256;
  std::optional<uint64_t> max_instructions;
  bool stats = false;
  vm::Engine engine = vm::default_engine();  // --engine
  bool state_hash = false;           // print the machine state's SHA-256 at exit
  std::string disk;                  // raw disk image for virtio-blk (vda)
  bool disk_read_only = false;
  hostio::EntropyChoice entropy;     // rng-seed and virtio-rng: host (default), none, seed:N
  std::string record;                // write the event log here
  std::optional<uint64_t> snapshot_at;  // save a snapshot when instret reaches this
  std::string snapshot_file = "ftvm.snap";
  std::string restore;               // resume from this snapshot instead of booting
  std::string tap;                   // attach a virtio-net NIC to this TAP
  bool net = false;                  // set up (or reuse) the guest LAN and attach to it
  std::string lan = "ftvm";          // the LAN's name (scripts/netns.sh)
  std::string mac;                   // the NIC's MAC (default 52:54:00:77:00:0f)
  uint64_t hash_interval = 1ull << 27;  // instructions between logged state hashes
  std::vector<std::string> command;  // run this in the guest, then power off
};

// Exit codes of `ftvm run` besides the guest's own status.
// The value of --engine: empty for the default; an error a user can act on
// for an unknown name, or for jit where this host cannot run it.
Result<vm::Engine> engine_from_option(const std::string& text);

inline constexpr int kExitBadInput = 2;          // a file or option is unusable
inline constexpr int kExitMaxInstructions = 124; // --max-instructions reached
inline constexpr int kExitMachineError = 125;    // the machine could not continue

// Where the guest image recipe puts the image it built last.
std::string default_guest_dir();

int run_command(const RunOptions& options);

struct ReplayCommandOptions {
  std::string log;
  std::string kernel, initrd, disk;  // overrides of the paths the log names
  std::string from;                  // start from this snapshot
  vm::Engine engine = vm::default_engine();
};
// Exit codes of `ftvm replay`: 0 the replay matched; kExitBadInput the log or
// images are unusable; kExitDiverged the execution differed.
inline constexpr int kExitDiverged = 3;
int replay_command(const ReplayCommandOptions& options);

}  // namespace ftvm::cli
