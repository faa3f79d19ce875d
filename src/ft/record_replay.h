// Recording a live run into an event log, and replaying a log with proof.
//
// A recording holds every input that reached the machine from outside, each
// at the exact instret where it was applied (console bytes, time skips,
// entropy), plus state-hash and output-digest checkpoints and a final End
// record. Replay rebuilds the same machine from the header (refusing images
// whose content hashes differ), applies the inputs at the same instret,
// and checks every checkpoint: the first difference is reported with its
// instret and record. The format is docs/log-format.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "hostio/block_file.h"
#include "hostio/entropy.h"
#include "log/digest.h"
#include "log/header.h"
#include "log/log_writer.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::ft {

// What it takes to build a machine again; written into the log's header.
struct MachineSpec {
  std::string kernel_path;
  std::string initrd_path;  // may be empty
  // May be empty. A read-only disk is attached read-only everywhere. A
  // writable one (disk_writable) is the recording's copy of the disk's
  // starting contents: a replay attaches it under an in-memory
  // copy-on-write overlay, so the guest writes as it did and the copy
  // never changes.
  std::string disk_path;
  bool disk_writable = false;
  uint64_t ram_size = vm::kDefaultRamSize;
  std::string cmdline;
  bool entropy = false;  // a virtio-rng device is attached
  std::string net_mac;   // a virtio-net NIC with this MAC (empty: none)
  // The device tree's /chosen/rng-seed (empty: none). On a live run it comes
  // from the run's EntropyChoice (set_live_entropy); the header carries it,
  // so a replay and a backup boot with the same bytes.
  std::vector<uint8_t> rng_seed;
};

// Gives a live run's spec what `choice` decides: the entropy device (for
// every mode but none) and a fresh rng-seed (hostio::rng_seed_for). The
// device's source is hostio::entropy_source_for(choice).
void set_live_entropy(MachineSpec& spec, const hostio::EntropyChoice& choice);

// Hashes the spec's files and builds the log header. The machine-defining
// fields that are not images (the entropy device, the NIC's MAC, the
// rng-seed) go into metadata keys (docs/log-format.md "Metadata").
Result<log::Header> make_header(const MachineSpec& spec);

// The machine a header describes, built on this host: RAM size, command
// line, entropy device, NIC and rng-seed from `header`; the images' paths
// from `local` (this host's copies; a path is cleared when the header says
// the machine has no such image). The inverse of make_header for everything
// but the paths: make_header(result) describes the same machine as
// `header`, and a replay or backup booted from it runs the recorded boot.
// Fails when `local` lacks the path of an image the header has (saying
// which option gives it), or the header's rng-seed is not even-length hex
// of at most kMaxRngSeedBytes bytes.
inline constexpr size_t kMaxRngSeedBytes = 4096;
Result<MachineSpec> spec_from_header(const log::Header& header, MachineSpec local);

// The images a spec names, read (kernel, initrd) and opened (the disk,
// read-only: a replayed or replicated machine must see the recorded
// contents), with the machine configuration for them (RAM, disk, NIC,
// rng-seed). The entropy device is left to the caller, which knows its source. `config`
// points into `disk`: keep them together.
struct LoadedImages {
  std::vector<uint8_t> kernel;
  std::vector<uint8_t> initrd;
  std::unique_ptr<hostio::FileBlockBackend> disk_file;
  std::unique_ptr<vm::BlockBackend> disk_overlay;  // over disk_file, when writable and replayed
  vm::MachineConfig config;
};
// `disk_in_place`: a writable disk is this host's own copy, opened for
// writing and written as the guest writes (a node of an FT pair), rather
// than a recording's starting contents under an overlay (a replay).
Result<LoadedImages> load_images(const MachineSpec& spec, bool disk_in_place = false);

// Writes the event log of one live run. The caller reports every input at
// the machine's instret when it applies it, and every console output byte.
// Not thread-safe; errors are sticky (the first failure is kept and every
// later call returns it).
class Recorder {
 public:
  // `hash_interval`: write a state-hash and output-digest checkpoint at the
  // first event boundary after every this many instructions (0: only at
  // the end). A checkpoint rehashes the RAM pages written since the last.
  static Result<std::unique_ptr<Recorder>> create(const std::string& path,
                                                  const log::Header& header,
                                                  uint64_t hash_interval);

  Status console_input(uint64_t instret, std::span<const uint8_t> bytes);
  Status time_skip(uint64_t instret, uint64_t target_mtime);
  Status entropy(uint64_t instret, std::span<const uint8_t> bytes);
  Status net_frame(uint64_t instret, std::span<const uint8_t> frame);
  Status disk_error(uint64_t instret, log::DiskError error);
  void console_output(uint8_t byte) { outputs_.add_console({&byte, 1}); }
  void frame_output(std::span<const uint8_t> frame) { outputs_.add_frame(frame); }
  // Writes a checkpoint if the interval has passed since the last one.
  Status maybe_checkpoint(const vm::Machine& machine);
  Status flush() { return status_ ? (status_ = writer_.flush()) : status_; }
  // Final checkpoint and the End record; flushes and syncs the file.
  Status finish(const vm::Machine& machine, int exit_status);
  const Status& status() const { return status_; }
  uint64_t bytes_written() const { return writer_.size(); }
  // Records written so far: a snapshot taken now stores this, so a replay
  // can start from the snapshot at exactly the next record.
  uint64_t records_written() const { return records_; }

 private:
  Recorder(log::LogWriter writer, uint64_t hash_interval)
      : writer_(std::move(writer)), hash_interval_(hash_interval) {}
  Status append(log::Record record);
  Status checkpoint(const vm::Machine& machine);

  log::LogWriter writer_;
  log::OutputDigester outputs_;
  uint64_t hash_interval_;
  uint64_t last_checkpoint_ = 0;
  uint64_t records_ = 0;
  Status status_;
};

// Metadata keys a snapshot taken during a recording carries.
inline constexpr const char* kSnapshotLogRecordsKey = "log.records";

// An entropy source that records, at the machine's current instret, every
// byte another source hands the guest.
class RecordingEntropy final : public vm::EntropySource {
 public:
  RecordingEntropy(vm::EntropySource& inner, Recorder& recorder, const vm::Machine& machine)
      : inner_(inner), recorder_(recorder), machine_(machine) {}
  void fill(std::span<uint8_t> out) override;

 private:
  vm::EntropySource& inner_;
  Recorder& recorder_;
  const vm::Machine& machine_;
};

struct ReplayOptions {
  // Override where the images are found (their hashes must still match).
  std::string kernel_path;
  std::string initrd_path;
  std::string disk_path;
  // Start from this snapshot, taken while the log was being recorded,
  // instead of booting: the records before it are skipped, and output
  // digests (which cover everything since boot) are not checked.
  std::string from_snapshot;
  // The engine to replay on (not named by the log: any engine replays any log).
  vm::Engine engine = vm::Engine::kInterp;
};

struct ReplayReport {
  bool ok = false;
  uint64_t instret = 0;      // where replay stopped
  uint64_t records = 0;      // records applied or checked
  uint64_t checkpoints = 0;  // state hashes and output digests that matched
  int exit_status = 0;       // the guest's, at the End record
  std::string divergence;    // when !ok: what differed, where
};

// Replays the log at `path`. An error Result means the log or the images
// could not be used (unreadable, corrupt, mismatched); a report with
// ok == false means the execution diverged from the recording.
Result<ReplayReport> replay(const std::string& path, const ReplayOptions& options);

}  // namespace ftvm::ft
