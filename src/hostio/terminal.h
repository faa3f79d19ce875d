// The host terminal as the guest's serial console: raw mode while the guest
// runs, non-blocking reads of what the user types, and waiting for input
// with a deadline.
#pragma once

#include <termios.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace ftvm::hostio {

// Puts a terminal file descriptor in raw mode for its lifetime and restores
// the previous mode on destruction (also on normal exit paths via the
// destructor; callers must not _exit with it alive).
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

// Reads what is available on `fd` without blocking, appending to `out`.
// Returns false once `fd` reached end of file or failed.
bool read_available(int fd, std::string& out);

// Waits until `fd` is readable or `timeout` passes (at most one second per
// call). Returns true if readable.
bool wait_readable(int fd, std::chrono::nanoseconds timeout);
// The same for any of `fds` (none: just waits).
bool wait_any_readable(std::span<const int> fds, std::chrono::nanoseconds timeout);

// Writes all of `data` to `fd`, retrying on short writes and EINTR.
void write_all(int fd, const std::string& data);

}  // namespace ftvm::hostio
