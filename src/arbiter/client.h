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

// Host ids are valid_name()s without '#', short enough for a claimant.
inline constexpr size_t kNonceHexDigits = 16;
inline constexpr size_t kMaxHostIdLength = kMaxNameLength - 1 - kNonceHexDigits;
bool valid_host_id(const std::string& host_id);
// The error message for a host id that is not valid_host_id().
std::string bad_host_id(const std::string& host_id);

// Every Client draws a random nonce when it is made (OpenSSL RAND_bytes), and
// claims for host `host_id` under the identity `<host_id>#<nonce>`
// (claimant()): unique per client, so per process run. The arbiter tells a
// claimant it won a grant again only when that very identity holds the vm's
// latest epoch -- a restarted process never inherits its predecessor's grant.
//
// Implementations are thread-safe: claim() and latest() may run on several threads at once.
class Client {
 public:
  virtual ~Client() = default;
  // One attempt to claim (vm, epoch) for claimant(host_id). An error when the arbiter cannot be
  // reached or does not answer within `timeout`, answers unauthenticated/garbled, or host_id is
  // not valid_host_id(). A refusal is a Grant with won == false naming the vm's latest grant
  // (held_epoch, holder).
  virtual Result<Grant> claim(const std::string& vm, uint64_t epoch, const std::string& host_id,
                              std::chrono::milliseconds timeout) = 0;
  // One attempt to read the vm's latest grant (epoch 0 when none); errors as claim().
  virtual Result<LatestGrant> latest(const std::string& vm, std::chrono::milliseconds timeout) = 0;
  virtual std::string describe() const = 0;  // the URL, for log lines

  // The identity this client claims under for `host_id`: "<host_id>#<nonce>".
  std::string claimant(const std::string& host_id) const { return host_id + "#" + nonce_; }
  // The host part of a claimant identity ("host-a" of "host-a#5f3a9c1e0b7d4e21").
  static std::string host_of(const std::string& claimant);

 protected:
  Client();

 private:
  std::string nonce_;  // kNonceHexDigits lowercase hex digits
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
