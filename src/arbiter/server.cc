// The arbiter's poll loop and the checks every request passes before the
// store sees it.
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

#include "arbiter/protocol.h"

namespace ftvm::arbiter {

namespace {

using internal::Clock;
using internal::ms_until;

std::string errno_text() { return std::strerror(errno); }

struct Conn {
  int fd;
  std::string peer;  // "ADDR:PORT", for the log
  std::string in, out;
  Clock::time_point deadline;
  bool closing = false;  // close once `out` is sent
};

std::string peer_text(const sockaddr_in& sa) {
  char buf[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
  return fmt::format("{}:{}", buf, ntohs(sa.sin_port));
}

std::vector<std::string> split(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string t; in >> t;) out.push_back(std::move(t));
  return out;
}

// A name from an unauthenticated line, safe to print.
std::string printable(const std::string& s) {
  std::string out = s.substr(0, 64);
  for (char& c : out) {
    if (c <= ' ' || c > '~') c = '?';
  }
  return s.size() > 64 ? out + "..." : out;
}

}  // namespace

std::string RequestHandler::tally() const {
  return fmt::format("[forged {}, replayed {}]", forged_.load(), replayed_.load());
}

std::string RequestHandler::reject_forged(const std::string& peer, const std::string& why) {
  forged_.fetch_add(1);
  std::fprintf(stderr, "ftvm arbiter: %s: rejected a forged request: %s %s\n", peer.c_str(),
               why.c_str(), tally().c_str());
  return "ERROR authentication failed: " + why;
}

std::string RequestHandler::decide(const std::string& vm, uint64_t epoch,
                                   const std::string& claimant, const std::string& request_line,
                                   uint64_t seq, const std::string& peer) {
  Result<Grant> g = store_->claim(vm, epoch, claimant);
  if (!g) {
    std::fprintf(stderr, "ftvm arbiter: %s claimant %s vm %s epoch %llu: error: %s %s\n",
                 peer.c_str(), printable(claimant).c_str(), printable(vm).c_str(),
                 static_cast<unsigned long long>(epoch), g.error().c_str(), tally().c_str());
    return "ERROR " + g.error();
  }
  const std::string result =
      g->won ? std::string("granted")
             : fmt::format("denied (held by {} at epoch {})", g->holder, g->held_epoch);
  std::fprintf(stderr, "ftvm arbiter: %s claimant %s vm %s epoch %llu: %s %s\n", peer.c_str(),
               claimant.c_str(), vm.c_str(), static_cast<unsigned long long>(epoch),
               result.c_str(), tally().c_str());
  return encode_reply(secret_, request_line, seq, *g);
}

std::string RequestHandler::handle(const std::string& line, const std::string& peer) {
  const std::vector<std::string> t = split(line);
  if (secret_ != nullptr) {
    // The MAC is checked before anything else in the line is believed.
    constexpr size_t kHex = 2 * auth::kMacSize;
    if (t.size() < 2 || line.size() <= kHex || line[line.size() - kHex - 1] != ' ' ||
        !internal::parse_mac_hex(line.substr(line.size() - kHex))) {
      return reject_forged(peer, "missing MAC (this arbiter requires authenticated requests: "
                                 "give the client the pair's secret)");
    }
    const std::string body = line.substr(0, line.size() - kHex - 1);
    if (!internal::verify_request_mac(*secret_, body,
                                      *internal::parse_mac_hex(line.substr(line.size() - kHex)))) {
      return reject_forged(peer, "bad MAC (a forged request, or the client has another secret)");
    }
    const std::vector<std::string> b = split(body);
    if (b.size() != 5 || b[0] != "CLAIM")
      return "ERROR expected CLAIM <vm> <epoch> <claimant> <seq> <mac>";
    const auto epoch = internal::parse_u64(b[2]);
    const auto seq = internal::parse_u64(b[4]);
    if (!epoch) return "ERROR epoch must be a decimal number below 2^64";
    if (!seq) return "ERROR seq must be a decimal number below 2^64";
    const std::string& claimant = b[3];
    auto [it, fresh] = last_seq_.try_emplace(claimant, *seq);
    if (!fresh) {
      if (*seq <= it->second) {
        replayed_.fetch_add(1);
        std::fprintf(stderr,
                     "ftvm arbiter: %s claimant %s vm %s epoch %llu: rejected a replayed request "
                     "(seq %llu, last %llu) %s\n",
                     peer.c_str(), printable(claimant).c_str(), printable(b[1]).c_str(),
                     static_cast<unsigned long long>(*epoch), static_cast<unsigned long long>(*seq),
                     static_cast<unsigned long long>(it->second), tally().c_str());
        return fmt::format("ERROR replayed request: seq {} is not above {}, the last one from {}",
                           *seq, it->second, claimant);
      }
      it->second = *seq;
    }
    return decide(b[1], *epoch, claimant, line, *seq, peer);
  }
  if (t.size() == 6 && t[0] == "CLAIM" && internal::parse_mac_hex(t[5])) {
    return "ERROR this arbiter runs without a secret and cannot check authenticated requests "
           "(start it with --secret FILE, or give the client no secret)";
  }
  if (t.empty() || t[0] != "CLAIM")
    return "ERROR unknown request (expected CLAIM <vm> <epoch> <claimant>)";
  if (t.size() != 4) return "ERROR expected CLAIM <vm> <epoch> <claimant>";
  const auto epoch = internal::parse_u64(t[2]);
  if (!epoch) return "ERROR epoch must be a decimal number below 2^64";
  return decide(t[1], *epoch, t[3], line, 0, peer);
}

Result<std::unique_ptr<Server>> Server::bind(const std::string& listen, ArbiterStore* store,
                                             const auth::Secret* secret,
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
      new Server(fd, pipefd[0], pipefd[1], ntohs(sa.sin_port), store, secret, idle_timeout));
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
            c.out += handler_.handle(line, c.peer) + "\n";
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
        sockaddr_in peer{};
        socklen_t peer_len = sizeof peer;
        const int cfd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                                  SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) break;
        conns.push_back({cfd, peer_text(peer), "", "", Clock::now() + idle_});
      }
    }
  }
  for (Conn& c : conns) ::close(c.fd);
  return {};
}

Status serve(const std::string& listen, const std::string& data_dir,
             const auth::Secret* secret) {
  Result<std::unique_ptr<ArbiterStore>> store = ArbiterStore::open(data_dir);
  if (!store) return make_error(store.error());
  Result<std::unique_ptr<Server>> server = Server::bind(listen, store->get(), secret);
  if (!server) return make_error(server.error());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return make_error("cannot block signals");
  const int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) return make_error(fmt::format("cannot create a signalfd: {}", errno_text()));
  std::fprintf(stderr, "ftvm arbiter: listening on port %u, %zu grants in '%s', %s\n",
               static_cast<unsigned>((*server)->port()), (*store)->grant_count(), data_dir.c_str(),
               secret != nullptr ? "requests must be authenticated with the secret"
                                 : "no secret: unauthenticated requests are accepted");
  Status s = (*server)->run(sfd);
  ::close(sfd);
  const RequestHandler& h = (*server)->handler();
  std::fprintf(stderr, "ftvm arbiter: stopped [forged %llu, replayed %llu]\n",
               static_cast<unsigned long long>(h.forged()),
               static_cast<unsigned long long>(h.replayed()));
  return s;
}

}  // namespace ftvm::arbiter
