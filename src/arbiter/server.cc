// The arbiter's poll loop, its line protocol, and the client.
#include "arbiter/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

namespace ftvm::arbiter {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxLine = 1024;

std::string errno_text() { return std::strerror(errno); }

int ms_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

struct Conn {
  int fd;
  std::string in, out;
  Clock::time_point deadline;
  bool closing = false;  // close once `out` is sent
};

std::string reply_for(const Grant& g, const std::string& claimant) {
  if (g.won) return fmt::format("GRANTED {} {} {}", g.vm_id, g.epoch, claimant);
  return fmt::format("DENIED {} {} {}", g.vm_id, g.epoch, g.holder);
}

}  // namespace

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

std::string handle_request(ArbiterStore& store, const std::string& line) {
  std::istringstream in(line);
  std::string verb, vm, epoch_text, claimant, extra;
  in >> verb >> vm >> epoch_text >> claimant;
  if (verb != "CLAIM") return "ERROR unknown request (expected CLAIM <vm> <epoch> <claimant>)";
  if (claimant.empty() || (in >> extra)) return "ERROR expected CLAIM <vm> <epoch> <claimant>";
  if (epoch_text.empty() || epoch_text.size() > 20 ||
      epoch_text.find_first_not_of("0123456789") != std::string::npos) {
    return "ERROR epoch must be a decimal number";
  }
  uint64_t epoch = 0;
  try {
    epoch = std::stoull(epoch_text);
  } catch (const std::exception&) {
    return "ERROR epoch out of range";
  }
  Result<Grant> g = store.claim(vm, epoch, claimant);
  if (!g) return "ERROR " + g.error();
  return reply_for(*g, claimant);
}

Result<std::unique_ptr<Server>> Server::bind(const std::string& listen, ArbiterStore* store,
                                             std::chrono::milliseconds idle_timeout) {
  Result<Endpoint> ep = parse_endpoint(listen);
  if (!ep) return make_error(ep.error());
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(fmt::format("cannot create a socket: {}", errno_text()));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(ep->port);
  ::inet_pton(AF_INET, ep->host.c_str(), &sa.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 64) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    return make_error(fmt::format("cannot listen on {}: {}", listen, why));
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    return make_error(fmt::format("cannot create a pipe: {}", errno_text()));
  }
  return std::unique_ptr<Server>(
      new Server(fd, pipefd[0], pipefd[1], ntohs(sa.sin_port), store, idle_timeout));
}

Server::~Server() {
  ::close(listen_fd_);
  ::close(wake_r_);
  ::close(wake_w_);
}

void Server::stop() {
  const char c = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_w_, &c, 1);
}

Status Server::run(int extra_stop_fd) {
  std::vector<Conn> conns;
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({wake_r_, POLLIN, 0});
    fds.push_back({extra_stop_fd, POLLIN, 0});  // ignored by poll when negative
    Clock::time_point next = Clock::now() + std::chrono::hours(1);
    for (const Conn& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
      if (c.deadline < next) next = c.deadline;
    }
    const int n = ::poll(fds.data(), fds.size(), ms_until(next));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(fmt::format("poll failed: {}", errno_text()));
    }
    if (fds[1].revents || (extra_stop_fd >= 0 && fds[2].revents)) break;
    const auto now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const short re = fds[3 + i].revents;
      if (re & (POLLERR | POLLNVAL)) {
        c.closing = true;
        c.out.clear();
      } else if (!c.out.empty() && (re & (POLLOUT | POLLHUP))) {
        const ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
          c.closing = true;
          c.out.clear();
        } else if (w > 0) {
          c.out.erase(0, static_cast<size_t>(w));
          c.deadline = now + idle_;
        }
      } else if (re & (POLLIN | POLLHUP)) {
        char buf[4096];
        const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          c.closing = true;
          c.out.clear();
        } else if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          c.deadline = now + idle_;
          size_t nl;
          while ((nl = c.in.find('\n')) != std::string::npos) {
            std::string line = c.in.substr(0, nl);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            c.in.erase(0, nl + 1);
            c.out += handle_request(*store_, line) + "\n";
          }
          if (c.in.size() > kMaxLine) {
            c.out += "ERROR request line too long\n";
            c.closing = true;
          }
        }
      }
      if (now >= c.deadline) {
        c.closing = true;
        c.out.clear();  // past its deadline: drop whatever is unsent
      }
    }
    for (size_t i = 0; i < conns.size();) {
      if (conns[i].closing && conns[i].out.empty()) {
        ::close(conns[i].fd);
        conns.erase(conns.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        const int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) break;
        conns.push_back({cfd, "", "", Clock::now() + idle_});
      }
    }
  }
  for (Conn& c : conns) ::close(c.fd);
  return {};
}

Result<Grant> claim_remote(const std::string& addr, const std::string& vm, uint64_t epoch,
                           const std::string& claimant, std::chrono::milliseconds timeout) {
  if (!valid_name(vm) || !valid_name(claimant)) {
    return make_error("bad vm id or claimant (1-255 printable characters, no spaces)");
  }
  Result<Endpoint> ep = parse_endpoint(addr);
  if (!ep) return make_error(ep.error());
  const auto deadline = Clock::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(fmt::format("cannot create a socket: {}", errno_text()));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(ep->port);
  ::inet_pton(AF_INET, ep->host.c_str(), &sa.sin_addr);
  auto wait_for = [&](short events) -> Status {
    for (;;) {
      pollfd p{fd, events, 0};
      const int n = ::poll(&p, 1, ms_until(deadline));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return make_error(errno_text());
      if (n == 0)
        return make_error(
            fmt::format("no answer from the arbiter at {} within {} ms", addr, timeout.count()));
      return {};
    }
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS)
      return make_error(fmt::format("cannot connect to the arbiter at {}: {}", addr, errno_text()));
    if (Status s = wait_for(POLLOUT); !s) return make_error(s.error());
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return make_error(
          fmt::format("cannot connect to the arbiter at {}: {}", addr, std::strerror(err)));
  }
  std::string out = fmt::format("CLAIM {} {} {}\n", vm, epoch, claimant);
  while (!out.empty()) {
    if (Status s = wait_for(POLLOUT); !s) return make_error(s.error());
    const ssize_t w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return make_error(fmt::format("cannot send to the arbiter at {}: {}", addr, errno_text()));
    if (w > 0) out.erase(0, static_cast<size_t>(w));
  }
  std::string in;
  while (in.find('\n') == std::string::npos) {
    if (in.size() > kMaxLine)
      return make_error(fmt::format("the arbiter at {} sent an overlong reply", addr));
    if (Status s = wait_for(POLLIN); !s) return make_error(s.error());
    char buf[1024];
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0)
      return make_error(
          fmt::format("the arbiter at {} closed the connection without an answer", addr));
    if (r < 0 && errno != EAGAIN && errno != EINTR)
      return make_error(fmt::format("cannot read from the arbiter at {}: {}", addr, errno_text()));
    if (r > 0) in.append(buf, static_cast<size_t>(r));
  }
  const std::string line = in.substr(0, in.find('\n'));
  std::istringstream ls(line);
  std::string verb, r_vm, r_epoch, who;
  ls >> verb;
  if (verb == "ERROR")
    return make_error(fmt::format("the arbiter at {} refused: {}", addr, line.substr(6)));
  ls >> r_vm >> r_epoch >> who;
  if ((verb != "GRANTED" && verb != "DENIED") || r_vm != vm || r_epoch != std::to_string(epoch) ||
      who.empty()) {
    return make_error(fmt::format("unexpected reply from the arbiter at {}: '{}'", addr, line));
  }
  Grant g{vm, epoch, who, epoch, verb == "GRANTED"};
  if (g.won && who != claimant)
    return make_error(fmt::format("unexpected reply from the arbiter at {}: '{}'", addr, line));
  return g;
}

Status serve(const std::string& listen, const std::string& data_dir) {
  Result<std::unique_ptr<ArbiterStore>> store = ArbiterStore::open(data_dir);
  if (!store) return make_error(store.error());
  Result<std::unique_ptr<Server>> server = Server::bind(listen, store->get());
  if (!server) return make_error(server.error());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return make_error("cannot block signals");
  const int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) return make_error(fmt::format("cannot create a signalfd: {}", errno_text()));
  std::fprintf(stderr, "ftvm arbiter: listening on port %u, %zu grants in '%s'\n",
               static_cast<unsigned>((*server)->port()), (*store)->grant_count(), data_dir.c_str());
  Status s = (*server)->run(sfd);
  ::close(sfd);
  return s;
}

}  // namespace ftvm::arbiter
