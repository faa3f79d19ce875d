// The arbiter's TCP server and client (docs/arbiter.md "Protocol").
//
// One request per line: `CLAIM <vm> <epoch> <claimant>`, answered with
// `GRANTED <vm> <epoch> <claimant>`, `DENIED <vm> <epoch> <holder>` or
// `ERROR <message>`. The server is a single-threaded poll loop over many
// connections; each connection is closed when idle past its deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "arbiter/arbiter_store.h"
#include "util/result.h"

namespace ftvm::arbiter {

// Parses "A.B.C.D:PORT" (IPv4; port 0 means any free port).
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
Result<Endpoint> parse_endpoint(const std::string& text);

class Server {
 public:
  // Binds and listens on `listen`. `store` must outlive the Server.
  static Result<std::unique_ptr<Server>> bind(
      const std::string& listen, ArbiterStore* store,
      std::chrono::milliseconds idle_timeout = std::chrono::seconds(10));
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_; }

  // Serves until stop() is called (or `extra_stop_fd`, if >= 0, becomes
  // readable). Called from one thread.
  Status run(int extra_stop_fd = -1);
  // Makes run() return soon. Safe to call from any thread, any number of times.
  void stop();

 private:
  Server(int listen_fd, int wake_r, int wake_w, uint16_t port, ArbiterStore* store,
         std::chrono::milliseconds idle)
      : listen_fd_(listen_fd),
        wake_r_(wake_r),
        wake_w_(wake_w),
        port_(port),
        store_(store),
        idle_(idle) {}

  int listen_fd_;
  int wake_r_, wake_w_;  // self-pipe for stop()
  uint16_t port_;
  ArbiterStore* store_;
  std::chrono::milliseconds idle_;
};

// Handles one request line (without the newline) and returns the reply line
// (without the newline).
std::string handle_request(ArbiterStore& store, const std::string& line);

// Claims (vm, epoch) for `claimant` from the arbiter at `addr`, giving up
// with an error after `timeout`. A denial is a Grant with won == false.
Result<Grant> claim_remote(const std::string& addr, const std::string& vm, uint64_t epoch,
                           const std::string& claimant, std::chrono::milliseconds timeout);

// `ftvm arbiter`: opens the store in `data_dir` and serves on `listen` until
// SIGINT or SIGTERM.
Status serve(const std::string& listen, const std::string& data_dir);

}  // namespace ftvm::arbiter
