// Host terminal handling (see terminal.h).
#include "hostio/terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace ftvm::hostio {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  cfmakeraw(&raw);
  raw.c_oflag |= OPOST | ONLCR;  // keep host-side newline translation for our own messages
  if (tcsetattr(fd, TCSANOW, &raw) == 0) active_ = true;
}

RawTerminal::~RawTerminal() {
  if (active_) tcsetattr(fd_, TCSANOW, &saved_);
}

bool read_available(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return true;
    if (p.revents & (POLLERR | POLLNVAL)) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buf) return true;
  }
}

bool wait_readable(int fd, std::chrono::nanoseconds timeout) {
  return wait_any_readable(std::span<const int>(&fd, 1), timeout);
}

bool wait_any_readable(std::span<const int> fds, std::chrono::nanoseconds timeout) {
  pollfd p[8];
  size_t n = 0;
  for (int fd : fds) {
    if (n < std::size(p)) p[n++] = pollfd{fd, POLLIN, 0};
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  const int r = poll(p, n, static_cast<int>(ms < 0 ? 0 : ms > 1000 ? 1000 : ms));
  return r > 0;
}

void write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace ftvm::hostio
