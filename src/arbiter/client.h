// Claiming (vm, epoch) from an arbiter, whichever kind it is: the embedded
// one (`ftvm arbiter`, docs/arbiter.md "Protocol") or etcd v3 (docs/arbiter.md
// "etcd"). Both give the same answers for the same history of claims.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "arbiter/arbiter_store.h"
#include "auth/secret.h"
#include "util/result.h"

namespace ftvm::arbiter {

// Implementations are thread-safe: claim() may run on several threads at once.
class Client {
 public:
  virtual ~Client() = default;
  // One attempt to claim (vm, epoch) for `claimant`. An error when the arbiter cannot be reached
  // or does not answer within `timeout`, or answers unauthenticated/garbled. A denial is a Grant
  // with won == false.
  virtual Result<Grant> claim(const std::string& vm, uint64_t epoch, const std::string& claimant,
                              std::chrono::milliseconds timeout) = 0;
  virtual std::string describe() const = 0;  // the URL, for log lines
};

// url: "ADDR:PORT" or "ftvm://ADDR:PORT" (embedded arbiter, IPv4), or "etcd://HOST:PORT" (etcd v3,
// plain HTTP gateway; HOST is an IPv4 address or "localhost"). `secret` may be null (embedded
// arbiter without auth); etcd does not use it. Errors name the bad URL. Nothing is sent until
// claim().
Result<std::unique_ptr<Client>> connect_arbiter(const std::string& url,
                                                std::shared_ptr<const auth::Secret> secret);

namespace internal {
// The next request sequence number of this process: CLOCK_REALTIME in
// nanoseconds, or one above the previous number if that is larger, so
// numbers increase within a process and (as long as the clock is not set back)
// across restarts. Thread-safe.
uint64_t next_seq();
}  // namespace internal

}  // namespace ftvm::arbiter
