// Applying an event log to a machine, record by record, with proof.
//
// The Replayer is the heart of both `ftvm replay` (records from a file) and
// the backup (records from the logging channel): for each record it runs
// the machine to exactly the record's instret, then applies the input or
// checks the checkpoint. The first difference from the recorded execution
// is a divergence, reported as an error naming the instret and the record.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "ft/disk_faults.h"
#include "log/digest.h"
#include "log/record.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::ft {

// Hands the guest logged entropy, checking it is asked for at the instret
// and in the amount the recording saw. When `fallback` is set and nothing
// is staged, it serves from the fallback instead (a backup gone live).
class ReplayEntropy final : public vm::EntropySource {
 public:
  explicit ReplayEntropy(const vm::Machine& machine) : machine_(machine) {}
  void stage(uint64_t instret, log::Bytes bytes) { staged_.push_back({instret, std::move(bytes)}); }
  bool idle() const { return staged_.empty(); }
  const std::string& divergence() const { return divergence_; }
  void set_fallback(vm::EntropySource* fallback) { fallback_ = fallback; }
  void fill(std::span<uint8_t> out) override;

 private:
  const vm::Machine& machine_;
  std::deque<std::pair<uint64_t, log::Bytes>> staged_;
  std::string divergence_;
  vm::EntropySource* fallback_ = nullptr;
};

class Replayer {
 public:
  // `machine` and `entropy` (may be null: no entropy device) must outlive
  // the Replayer. The caller's output sinks should feed outputs() so that
  // OutputDigest records can be checked; `check_outputs` false skips them
  // (a replay that starts from a snapshot has not seen earlier outputs).
  Replayer(vm::Machine& machine, ReplayEntropy* entropy, bool check_outputs)
      : machine_(machine), entropy_(entropy), check_outputs_(check_outputs) {}
  // Where disk-error records go (the machine's DiskFaults); must outlive
  // the Replayer. Without it a disk-error record is refused.
  void set_disk_faults(ReplayDiskFaults* faults) { disk_faults_ = faults; }
  // Whether the last error of apply() was this host's disk failing rather
  // than a divergence of the execution (ReplayDiskFaults::host_failure()).
  bool host_disk_failed() const { return disk_faults_ && !disk_faults_->host_failure().empty(); }

  // Runs to `record`'s instret and applies it. An error is a divergence
  // (or a record that cannot follow the previous ones); the machine is then
  // in an unspecified state.
  Status apply(const log::Record& record);

  bool ended() const { return ended_; }
  int32_t exit_status() const { return exit_status_; }
  uint64_t records() const { return records_; }
  uint64_t checkpoints() const { return checkpoints_; }
  uint64_t state_hashes() const { return state_hashes_; }
  // The instret of the last state hash that matched (0: none yet).
  uint64_t last_matched_hash_instret() const { return last_hash_instret_; }
  log::OutputDigester& outputs() { return outputs_; }
  vm::RunStatus last_status() const { return last_; }

 private:
  Status run_to(uint64_t instret, const log::Record& record);

  vm::Machine& machine_;
  ReplayEntropy* entropy_;
  ReplayDiskFaults* disk_faults_ = nullptr;
  bool check_outputs_;
  log::OutputDigester outputs_;
  vm::RunStatus last_ = vm::RunStatus::kBudget;
  bool ended_ = false;
  int32_t exit_status_ = 0;
  uint64_t records_ = 0;
  uint64_t checkpoints_ = 0;
  uint64_t state_hashes_ = 0;
  uint64_t last_hash_instret_ = 0;
};

}  // namespace ftvm::ft
