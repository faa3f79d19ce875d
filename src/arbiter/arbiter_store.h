// ArbiterStore: the arbiter's durable test-and-set (DESIGN.md §5).
//
// Grants each (vm, epoch) to exactly one claimant, once, and remembers it
// across restarts: every grant is appended to `<dir>/grants.log`
// (docs/arbiter.md "Grant file") and fdatasync'd before claim() returns it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "util/result.h"

namespace ftvm::arbiter {

// The answer to a claim. `holder` owns (vm_id, epoch) -- or, when the claim
// was for an epoch at or below one already granted, the newer epoch
// `held_epoch` -- and `won` says whether that is the claimant.
struct Grant {
  std::string vm_id;
  uint64_t epoch = 0;
  std::string holder;
  uint64_t held_epoch = 0;
  bool won = false;
};

// Names (vm ids, claimants) are 1..kMaxNameLength printable ASCII bytes
// without spaces, so they fit the line protocol.
inline constexpr size_t kMaxNameLength = 255;
bool valid_name(const std::string& name);

// Not thread-safe: one owner calls claim() at a time.
class ArbiterStore {
 public:
  // Opens (creating if needed) the store in `dir` and replays its grants.
  // A torn last record is dropped with a warning on stderr; any other
  // corruption is an error naming the byte offset.
  static Result<std::unique_ptr<ArbiterStore>> open(const std::string& dir);
  ~ArbiterStore();
  ArbiterStore(const ArbiterStore&) = delete;
  ArbiterStore& operator=(const ArbiterStore&) = delete;

  // Test-and-set. Grants (vm_id, epoch) to `claimant` iff nobody holds it
  // and no epoch >= `epoch` was granted for vm_id. Repeating a won claim
  // returns the same grant. Errors: invalid names, or the grant could not be
  // made durable (then nothing is granted; the store refuses further claims).
  Result<Grant> claim(const std::string& vm_id, uint64_t epoch, const std::string& claimant);

  size_t grant_count() const { return grants_.size(); }

 private:
  ArbiterStore(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Status replay();

  int fd_;
  std::string path_;
  bool failed_ = false;  // a write or sync failed; the file's tail is unknown
  std::map<std::pair<std::string, uint64_t>, std::string> grants_;
  std::map<std::string, uint64_t> latest_;  // vm -> highest granted epoch
};

}  // namespace ftvm::arbiter
