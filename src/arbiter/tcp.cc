// Deadline-bounded TCP for the arbiter's clients.
#include "arbiter/tcp.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ftvm::arbiter {

Result<Endpoint> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return make_error(fmt::format("bad address '{}' (use ADDR:PORT)", text));
  Endpoint e;
  e.host = text.substr(0, colon);
  in_addr a;
  if (::inet_pton(AF_INET, e.host.c_str(), &a) != 1) {
    return make_error(
        fmt::format("bad address '{}' (use an IPv4 address such as 127.0.0.1:7000)", text));
  }
  const std::string p = text.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    return make_error(fmt::format("bad port in '{}' (use 0-65535)", text));
  }
  e.port = static_cast<uint16_t>(std::stoul(p));
  return e;
}

namespace internal {

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Result<TcpStream> TcpStream::connect(const Endpoint& ep, Clock::time_point deadline,
                                     std::string peer, std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(fmt::format("cannot create a socket: {}", std::strerror(errno)));
  TcpStream s(fd, deadline, std::move(peer), timeout);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(ep.port);
  if (::inet_pton(AF_INET, ep.host.c_str(), &sa.sin_addr) != 1)
    return make_error(fmt::format("bad IPv4 address '{}' for {}", ep.host, s.peer_));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS)
      return make_error(fmt::format("cannot connect to {}: {}", s.peer_, std::strerror(errno)));
    if (Status w = s.wait_for(POLLOUT); !w) return make_error(w.error());
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return make_error(fmt::format("cannot connect to {}: {}", s.peer_, std::strerror(err)));
  }
  return s;
}

TcpStream::TcpStream(TcpStream&& o) noexcept
    : fd_(o.fd_), deadline_(o.deadline_), peer_(std::move(o.peer_)), timeout_(o.timeout_) {
  o.fd_ = -1;
}

TcpStream::~TcpStream() {
  if (fd_ >= 0) ::close(fd_);
}

Status TcpStream::wait_for(short events) {
  for (;;) {
    pollfd p{fd_, events, 0};
    const int n = ::poll(&p, 1, ms_until(deadline_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("poll failed: {}", std::strerror(errno)));
    if (n == 0)
      return make_error(fmt::format("no answer from {} within {} ms", peer_, timeout_.count()));
    return {};
  }
}

Status TcpStream::write_all(std::string_view data) {
  while (!data.empty()) {
    if (Status s = wait_for(POLLOUT); !s) return s;
    const ssize_t w = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return make_error(fmt::format("cannot send to {}: {}", peer_, std::strerror(errno)));
    if (w > 0) data.remove_prefix(static_cast<size_t>(w));
  }
  return {};
}

Result<size_t> TcpStream::read_some(std::string& out) {
  for (;;) {
    if (Status s = wait_for(POLLIN); !s) return make_error(s.error());
    char buf[4096];
    const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0)
      return make_error(fmt::format("cannot read from {}: {}", peer_, std::strerror(errno)));
    out.append(buf, static_cast<size_t>(r));
    return static_cast<size_t>(r);
  }
}

}  // namespace internal
}  // namespace ftvm::arbiter
