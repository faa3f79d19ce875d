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
#include <algorithm>
#include <cstring>
#include <vector>

#include "arbiter/protocol.h"

namespace ftvm::arbiter {

namespace {

using internal::Clock;
using internal::ms_until;

std::string errno_text() { return std::strerror(errno); }

std::string peer_text(const sockaddr_in& sa) {
  char buf[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof buf);
  return fmt::format("{}:{}", buf, ntohs(sa.sin_port));
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

struct Server::Conn {
  int fd;
  std::string peer;  // "ADDR:PORT", for the log
  std::string in, out;
  Clock::time_point deadline;  // set at accept and after each complete request
  bool closing = false;        // close once `out` is sent
};

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
  std::string result;
  if (g->won) {
    result = "granted";
  } else if (g->held_epoch > epoch) {
    result = fmt::format("refused: vm {} has moved on to epoch {} (held by {})", vm, g->held_epoch,
                         g->holder);
  } else {
    result = fmt::format("refused: held by {}", g->holder);
  }
  std::fprintf(stderr, "ftvm arbiter: %s claimant %s vm %s epoch %llu: %s %s\n", peer.c_str(),
               claimant.c_str(), vm.c_str(), static_cast<unsigned long long>(epoch),
               result.c_str(), tally().c_str());
  return encode_reply(secret_, request_line, seq, *g);
}

std::string RequestHandler::handle(const std::string& line, const std::string& peer) {
  const DecodedRequest d = decode_request(secret_, line);
  if (!d.request) {
    if (d.forged) return reject_forged(peer, d.error);
    return "ERROR " + d.error;
  }
  const Request& r = *d.request;
  if (r.kind == RequestKind::kLatest) {
    const LatestGrant latest = store_->latest(r.vm);
    std::fprintf(stderr, "ftvm arbiter: %s vm %s: latest epoch %llu (%s)\n", peer.c_str(),
                 r.vm.c_str(), static_cast<unsigned long long>(latest.epoch),
                 latest.epoch == 0 ? "none granted" : latest.holder.c_str());
    return encode_latest_reply(secret_, line, r.seq, latest);
  }
  if (secret_ != nullptr) {
    auto [it, fresh] = last_seq_.try_emplace(r.claimant, r.seq);
    if (!fresh) {
      if (r.seq <= it->second) {
        replayed_.fetch_add(1);
        std::fprintf(stderr,
                     "ftvm arbiter: %s claimant %s vm %s epoch %llu: rejected a replayed request "
                     "(seq %llu, last %llu) %s\n",
                     peer.c_str(), r.claimant.c_str(), r.vm.c_str(),
                     static_cast<unsigned long long>(r.epoch), static_cast<unsigned long long>(r.seq),
                     static_cast<unsigned long long>(it->second), tally().c_str());
        return fmt::format("ERROR replayed request: seq {} is not above {}, the last one from {}",
                           r.seq, it->second, r.claimant);
      }
      it->second = r.seq;
    }
  }
  return decide(r.vm, r.epoch, r.claimant, line, r.seq, peer);
}

Result<std::unique_ptr<Server>> Server::bind(const std::string& listen, ArbiterStore* store,
                                             const auth::Secret* secret,
                                             std::chrono::milliseconds idle_timeout,
                                             size_t max_connections) {
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
  const int spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (spare < 0) {
    const std::string why = errno_text();
    ::close(fd);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    return make_error(fmt::format("cannot open /dev/null: {}", why));
  }
  return std::unique_ptr<Server>(new Server(fd, pipefd[0], pipefd[1], spare, ntohs(sa.sin_port),
                                            store, secret, idle_timeout,
                                            std::max<size_t>(1, max_connections)));
}

Server::~Server() {
  ::close(listen_fd_);
  ::close(wake_r_);
  ::close(wake_w_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

bool Server::accept_pending(std::vector<Conn>& conns) {
  for (;;) {
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    const int cfd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                              SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd >= 0) {
      if (conns.size() >= max_connections_) {
        // Over the cap: refused at once (a best-effort reason, then close).
        static constexpr char kFull[] = "ERROR too many connections; try again\n";
        [[maybe_unused]] ssize_t n = ::send(cfd, kFull, sizeof kFull - 1, MSG_NOSIGNAL);
        ::close(cfd);
        ++refused_;
        continue;
      }
      conns.push_back({cfd, peer_text(peer), "", "", Clock::now() + idle_});
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS && errno != ENOMEM) return true;
    // Out of descriptors: the waiting connection would keep the listening
    // socket readable forever. Give up the spare to accept it and close it.
    if (spare_fd_ >= 0) {
      ::close(spare_fd_);
      spare_fd_ = -1;
      const int victim = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (victim >= 0) {
        ::close(victim);
        ++refused_;
      }
      spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (victim >= 0 && spare_fd_ >= 0) {
        std::fprintf(stderr,
                     "ftvm arbiter: out of file descriptors (%s): refused a connection\n",
                     std::strerror(EMFILE));
        continue;
      }
    }
    return false;
  }
}

void Server::stop() {
  const char c = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_w_, &c, 1);
}

Status Server::run(int extra_stop_fd) {
  std::vector<Conn> conns;
  // While the process has no descriptor to spare, accepting pauses until a
  // connection closes or this time passes (never a busy loop).
  Clock::time_point accept_paused_until{};
  for (;;) {
    const auto before = Clock::now();
    const bool accepting = before >= accept_paused_until;
    std::vector<pollfd> fds;
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    fds.push_back({wake_r_, POLLIN, 0});
    fds.push_back({extra_stop_fd, POLLIN, 0});  // ignored by poll when negative
    Clock::time_point next = before + std::chrono::hours(1);
    if (!accepting) next = accept_paused_until;
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
        }
      } else if (re & (POLLIN | POLLHUP)) {
        char buf[4096];
        const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          c.closing = true;
          c.out.clear();
        } else if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          size_t nl;
          while (!c.closing && (nl = c.in.find('\n')) != std::string::npos) {
            std::string line = c.in.substr(0, nl);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            c.in.erase(0, nl + 1);
            if (line.size() > kMaxLine) {
              c.out += "ERROR request line too long\n";
              c.closing = true;
              break;
            }
            c.out += handler_.handle(line, c.peer) + "\n";
            // Only a complete request earns more time: a peer trickling
            // bytes without a newline is closed at its deadline.
            c.deadline = now + idle_;
          }
          if (!c.closing && c.in.size() > kMaxLine) {
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
        accept_paused_until = {};  // a descriptor is free again
      } else {
        ++i;
      }
    }
    if (accepting && (fds[0].revents & POLLIN) && !accept_pending(conns)) {
      accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
    }
  }
  for (Conn& c : conns) ::close(c.fd);
  return {};
}

Status serve(const std::string& listen, const std::string& data_dir, const auth::Secret* secret,
             bool init) {
  Result<std::unique_ptr<ArbiterStore>> store =
      init ? ArbiterStore::create(data_dir) : ArbiterStore::open(data_dir);
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
  std::fprintf(stderr, "ftvm arbiter: listening on port %u, %zu grants in %s'%s', %s\n",
               static_cast<unsigned>((*server)->port()), (*store)->grant_count(),
               init ? "the new store " : "", data_dir.c_str(),
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
