// ArbiterStore: the arbiter's durable test-and-set (DESIGN.md §5).
//
// Grants each (vm, epoch) to exactly one claimant, once, never an epoch at or
// below the vm's latest grant, and remembers it across restarts: every grant
// is appended to `<dir>/grants.log` (docs/arbiter.md "Grant file") and
// fdatasync'd before claim() returns it. A store is made once, explicitly
// (create()); open() never makes a missing grant file, because an empty one
// in its place would grant old epochs a second time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "util/result.h"

namespace ftvm::arbiter {

// The answer to a claim of (vm_id, epoch). Won: `holder` is the claimant and
// `held_epoch` == `epoch`. Refused: `held_epoch` is the highest epoch granted
// for vm_id (at or above `epoch`) and `holder` its holder -- "vm_id has moved
// on to epoch held_epoch (held by holder)".
struct Grant {
  std::string vm_id;
  uint64_t epoch = 0;
  std::string holder;
  uint64_t held_epoch = 0;
  bool won = false;
};

// A vm's highest granted epoch and its holder: epoch 0 and holder "" when
// nothing was ever granted for it.
struct LatestGrant {
  std::string vm_id;
  uint64_t epoch = 0;
  std::string holder;
};

// Names (vm ids, claimants) are 1..kMaxNameLength printable ASCII bytes
// without spaces, so they fit the line protocol.
inline constexpr size_t kMaxNameLength = 255;
bool valid_name(const std::string& name);

// Not thread-safe: one owner calls claim() at a time.
class ArbiterStore {
 public:
  // Opens the existing store in `dir` and replays its grants. A missing
  // `dir` or grant file is an error saying how to make a store (never made
  // here). A torn last record is dropped with a warning on stderr; any other
  // corruption is an error naming the byte offset.
  static Result<std::unique_ptr<ArbiterStore>> open(const std::string& dir);
  // Makes a new, empty store in `dir` (and the directories above it) and
  // opens it: `ftvm arbiter --init`. An error when `dir` already holds a
  // grant file.
  static Result<std::unique_ptr<ArbiterStore>> create(const std::string& dir);
  ~ArbiterStore();
  ArbiterStore(const ArbiterStore&) = delete;
  ArbiterStore& operator=(const ArbiterStore&) = delete;

  // Test-and-set. Grants (vm_id, epoch) to `claimant` iff no epoch >= `epoch`
  // was granted for vm_id. A claim at or below the vm's latest grant is
  // refused -- to anyone, the holder of an older grant included -- except
  // that the holder of the latest grant repeating its claim is told it won
  // again (an idempotent retry). Errors: invalid names, or the grant could
  // not be made durable (then nothing is granted; the store refuses further
  // claims).
  Result<Grant> claim(const std::string& vm_id, uint64_t epoch, const std::string& claimant);

  // The vm's latest grant (epoch 0 when none).
  LatestGrant latest(const std::string& vm_id) const;

  size_t grant_count() const { return grant_count_; }

 private:
  ArbiterStore(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status replay();

  int fd_;
  std::string path_;
  bool failed_ = false;  // a write or sync failed; the file's tail is unknown
  size_t grant_count_ = 0;
  std::map<std::string, LatestGrant> latest_;  // vm -> its highest grant
};

}  // namespace ftvm::arbiter
