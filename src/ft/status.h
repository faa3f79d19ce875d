// What a running node says about itself: a status board the engine fills
// in, and a control socket (a Unix stream socket) that hands it out as one
// line of JSON per connection (docs/ft-protocol.md "Status").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "util/result.h"

namespace ftvm::ft {

// Thread-safe holder of the latest status document.
class StatusBoard {
 public:
  void publish(nlohmann::json status);
  std::string text() const;

 private:
  mutable std::mutex mu_;
  std::string text_ = "{}";
};

// Serves `board` on a Unix socket at `path` from its own thread until
// destroyed; the socket file is removed then.
class ControlServer {
 public:
  static Result<std::unique_ptr<ControlServer>> start(const std::string& path,
                                                      const StatusBoard* board);
  ~ControlServer();

 private:
  ControlServer(int fd, int stop_r, int stop_w, std::string path, const StatusBoard* board);
  void serve();
  int fd_, stop_r_, stop_w_;
  std::string path_;
  ino_t inode_ = 0;  // of the socket file this server bound
  const StatusBoard* board_;
  std::thread thread_;
};

// Asks the node behind the control socket at `path` for its status.
Result<nlohmann::json> query_status(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace ftvm::ft
