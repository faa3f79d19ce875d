// IPv4 endpoints and a TCP stream whose every operation ends by a deadline,
// for the arbiter's clients (the embedded protocol and etcd's HTTP gateway).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.h"

namespace ftvm::arbiter {

// Parses "A.B.C.D:PORT" (IPv4; port 0 means any free port).
struct Endpoint {
  std::string host;
  uint16_t port = 0;
};
Result<Endpoint> parse_endpoint(const std::string& text);

namespace internal {

using Clock = std::chrono::steady_clock;

// Milliseconds from now until `deadline`, at least 0, for poll().
int ms_until(Clock::time_point deadline);

// A connected, non-blocking TCP socket. Every call gives up with an error at
// the deadline given to connect(). Errors name `peer` (e.g. "the arbiter at
// ftvm://127.0.0.1:7000"). Not thread-safe; move-only.
class TcpStream {
 public:
  static Result<TcpStream> connect(const Endpoint& ep, Clock::time_point deadline,
                                   std::string peer, std::chrono::milliseconds timeout);
  TcpStream(TcpStream&& o) noexcept;
  TcpStream& operator=(TcpStream&&) = delete;
  TcpStream(const TcpStream&) = delete;
  ~TcpStream();

  Status write_all(std::string_view data);
  // Appends what arrives to `out` (waiting for at least one byte); returns
  // the number of bytes read, 0 at end of stream.
  Result<size_t> read_some(std::string& out);

 private:
  TcpStream(int fd, Clock::time_point deadline, std::string peer,
            std::chrono::milliseconds timeout)
      : fd_(fd), deadline_(deadline), peer_(std::move(peer)), timeout_(timeout) {}
  Status wait_for(short events);

  int fd_;
  Clock::time_point deadline_;
  std::string peer_;
  std::chrono::milliseconds timeout_;
};

}  // namespace internal
}  // namespace ftvm::arbiter
