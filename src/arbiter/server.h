// The embedded arbiter's TCP server (docs/arbiter.md "Protocol").
//
// One request per line, `CLAIM <vm> <epoch> <claimant>` or `LATEST <vm>`,
// plain or (when the server holds the pair's secret) authenticated with a
// sequence number and an HMAC; the reply is `GRANTED`, `DENIED`, `LATEST` or
// `ERROR` (protocol.h). The server is a single-threaded poll loop over at
// most `max_connections` connections (more are closed as soon as accepted);
// a connection that completes no request within the idle timeout is closed.
// When the process runs out of file descriptors, a connection waiting to be
// accepted is accepted on a reserved descriptor and closed at once, so the
// loop never spins. One line per decision and per rejected request goes to
// stderr.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arbiter/arbiter_store.h"
#include "arbiter/tcp.h"
#include "auth/secret.h"
#include "util/result.h"

namespace ftvm::arbiter {

// Answers request lines: checks authentication and sequence numbers, then
// applies the claim to the store. `store` and `secret` (null: requests are
// not authenticated, and authenticated ones are refused) must outlive it.
// handle() is called from one thread at a time; the counters may be read
// from any thread.
class RequestHandler {
 public:
  RequestHandler(ArbiterStore* store, const auth::Secret* secret)
      : store_(store), secret_(secret) {}

  // Handles one request line (without its newline) from `peer` (for the log)
  // and returns the reply line (without its newline).
  std::string handle(const std::string& line, const std::string& peer = "-");

  // Requests rejected for a missing or bad MAC, and for a sequence number not
  // above the last one accepted from the same claimant. Kept in memory only.
  uint64_t forged() const { return forged_.load(); }
  uint64_t replayed() const { return replayed_.load(); }

 private:
  std::string reject_forged(const std::string& peer, const std::string& why);
  std::string decide(const std::string& vm, uint64_t epoch, const std::string& claimant,
                     const std::string& request_line, uint64_t seq, const std::string& peer);
  std::string tally() const;

  ArbiterStore* store_;
  const auth::Secret* secret_;
  std::map<std::string, uint64_t> last_seq_;  // claimant -> last accepted sequence number
  std::atomic<uint64_t> forged_{0};
  std::atomic<uint64_t> replayed_{0};
};

class Server {
 public:
  static constexpr size_t kDefaultMaxConnections = 128;

  // Binds and listens on `listen`. `store` and `secret` (may be null: no
  // authentication) must outlive the Server.
  static Result<std::unique_ptr<Server>> bind(
      const std::string& listen, ArbiterStore* store, const auth::Secret* secret,
      std::chrono::milliseconds idle_timeout = std::chrono::seconds(10),
      size_t max_connections = kDefaultMaxConnections);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_; }
  const RequestHandler& handler() const { return handler_; }

  // Serves until stop() is called (or `extra_stop_fd`, if >= 0, becomes
  // readable). Called from one thread.
  Status run(int extra_stop_fd = -1);

  // Connections closed at once: over the cap, or accepted on the reserved
  // descriptor because the process had no other. Read from the run() thread
  // or after it returned.
  uint64_t refused() const { return refused_; }
  // Makes run() return soon. Safe to call from any thread, any number of times.
  void stop();

 private:
  Server(int listen_fd, int wake_r, int wake_w, int spare_fd, uint16_t port, ArbiterStore* store,
         const auth::Secret* secret, std::chrono::milliseconds idle, size_t max_connections)
      : listen_fd_(listen_fd),
        wake_r_(wake_r),
        wake_w_(wake_w),
        spare_fd_(spare_fd),
        port_(port),
        handler_(store, secret),
        idle_(idle),
        max_connections_(max_connections) {}
  // Accepts what waits on the listening socket, as far as the cap allows.
  // Returns false when the process is out of descriptors even after
  // refusing one connection on the spare (the caller then pauses accepting).
  struct Conn;
  bool accept_pending(std::vector<Conn>& conns);

  int listen_fd_;
  int wake_r_, wake_w_;  // self-pipe for stop()
  int spare_fd_;         // /dev/null, given up to accept-and-close when out of descriptors
  uint16_t port_;
  RequestHandler handler_;
  std::chrono::milliseconds idle_;
  size_t max_connections_;
  uint64_t refused_ = 0;
};

// `ftvm arbiter`: opens the store in `data_dir` -- or with `init` makes a new
// one there, an error if one exists -- and serves on `listen` until SIGINT or
// SIGTERM. With `secret` (may be null) every request must be authenticated
// with it; without, only the plain form is accepted.
Status serve(const std::string& listen, const std::string& data_dir, const auth::Secret* secret,
             bool init);

}  // namespace ftvm::arbiter
