// Host disk failures, logged on the live side and replayed on a replica,
// so every copy of a machine completes a failed request the same way
// (vm::DiskFaults; the record is log::DiskError, docs/log-format.md).
//
// Live (a primary, a recording run): a request that fails on this host
// completes with IOERR and becomes disk-error records at the instret of the
// notifying write; a failed write's records carry this host's contents over
// the request's range, read back after the failure, in chunks.
//
// Replica (a backup, `ftvm replay`): the records are staged as the log is
// applied; when the guest makes the matching request at that instret, it
// completes with IOERR without touching the disk, after the recorded
// contents are written into this copy. A recorded failure the replay never
// meets is a divergence. A failure of this host's own disk that the
// recording did not have means this copy can no longer follow: host_failure().
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "log/record.h"
#include "vm/machine.h"

namespace ftvm::ft {

// The records that describe `request`'s failure (one, or one per chunk of
// a failed write's contents), in log order.
std::vector<log::DiskError> disk_error_records(const vm::DiskRequest& request,
                                               const std::optional<std::vector<uint8_t>>& after);

// The live side: hands each failure's records to `sink` (which logs them at
// the machine's current instret) and keeps a count for status.
class LiveDiskFaults final : public vm::DiskFaults {
 public:
  using Sink = std::function<void(log::DiskError)>;
  explicit LiveDiskFaults(Sink sink) : sink_(std::move(sink)) {}
  Recorded recorded(const vm::DiskRequest&) override { return {}; }
  void failed(const vm::DiskRequest& request, const std::optional<std::vector<uint8_t>>& after,
              const std::string& why) override;
  uint64_t failures() const { return failures_; }
  const std::string& last_failure() const { return last_; }

 private:
  Sink sink_;
  uint64_t failures_ = 0;
  std::string last_;
};

class ReplayDiskFaults final : public vm::DiskFaults {
 public:
  explicit ReplayDiskFaults(const vm::Machine& machine) : machine_(machine) {}
  void stage(uint64_t instret, log::DiskError record);
  bool idle() const { return staged_.empty(); }
  // After running to `instret`: a staged failure below it was never met.
  void check_passed(uint64_t instret);
  const std::string& divergence() const { return divergence_; }
  // This host's copy cannot follow the recording (its own disk failed, or
  // the recording host's contents were unreadable).
  const std::string& host_failure() const { return host_failure_; }
  // A replica gone live: what is still staged is consumed as before, and
  // new failures of this host go to `live` instead of host_failure().
  void set_live(vm::DiskFaults* live) { live_ = live; }

  Recorded recorded(const vm::DiskRequest& request) override;
  void failed(const vm::DiskRequest& request, const std::optional<std::vector<uint8_t>>& after,
              const std::string& why) override;

 private:
  const vm::Machine& machine_;
  std::deque<std::pair<uint64_t, log::DiskError>> staged_;
  std::string divergence_;
  std::string host_failure_;
  vm::DiskFaults* live_ = nullptr;
};

}  // namespace ftvm::ft
