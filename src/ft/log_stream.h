// The primary's side of the log (DESIGN.md §4–5): numbers the records it
// appends, batches their encodings for the logging channel, tells the
// Output gate each record's number and instret, decides when a state-hash
// checkpoint is due, and measures how far behind the backup runs (flow
// control).
//
// No sockets: the caller takes a batch and sends it. Not thread-safe;
// deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ft/output_gate.h"
#include "log/record.h"

namespace ftvm::ft {

class LogStream {
 public:
  // `gate` (may be null) hears of every record appended.
  LogStream(OutputGate* gate, uint64_t hash_interval, size_t max_batch_bytes)
      : gate_(gate), hash_interval_(hash_interval), max_batch_bytes_(max_batch_bytes) {}

  // Starts streaming (records before this are not numbered): a primary
  // appends only while paired.
  void set_active(bool active) { active_ = active; }
  bool active() const { return active_; }

  // Appends a record (in nondecreasing instret order). Returns true when the
  // batch has grown to its limit and should be sent now.
  bool append(const log::Record& record);
  struct Batch {
    uint64_t first = 0;     // the number of its first record
    std::string encoded;    // records as log::append_record encodes them
  };
  // The records appended since the last take, or nullopt.
  std::optional<Batch> take_batch();

  // A state-hash checkpoint is due at `instret`: hash_interval instructions
  // have passed since the last one. Marks it taken.
  bool checkpoint_due(uint64_t instret);

  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t last_instret() const { return last_instret_; }

  // The guest time the stream starts at (a backup that joined a running
  // primary starts there; it is never behind it, whatever an
  // acknowledgement sent before its restore says).
  void set_base_mtime(uint64_t mtime) { base_mtime_ = mtime; }

  // Flow control: the backup has executed up to `exec_bytes` of the log and
  // guest time `exec_mtime`; true when it is further behind than allowed.
  bool over_lag(uint64_t mtime, uint64_t exec_mtime, uint64_t exec_bytes, uint64_t max_lag_ticks,
                uint64_t max_lag_bytes) const;

 private:
  OutputGate* gate_;
  uint64_t hash_interval_;
  size_t max_batch_bytes_;
  bool active_ = false;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  uint64_t last_instret_ = 0;
  uint64_t last_checkpoint_ = 0;
  uint64_t base_mtime_ = 0;
  std::string batch_;
  uint64_t batch_first_ = 0;
};

}  // namespace ftvm::ft
