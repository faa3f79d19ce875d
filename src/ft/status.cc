// The status board and the control socket (see status.h).
#include "ft/status.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ftvm::ft {

void StatusBoard::publish(nlohmann::json status) {
  std::string text = status.dump();
  std::lock_guard<std::mutex> lock(mu_);
  text_ = std::move(text);
}

std::string StatusBoard::text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return text_;
}

namespace {

Result<sockaddr_un> unix_addr(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    return make_error(fmt::format("control socket path '{}' is longer than {} bytes", path,
                                  sizeof sa.sun_path - 1));
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& path,
                                                            const StatusBoard* board) {
  Result<sockaddr_un> sa = unix_addr(path);
  if (!sa) return make_error(sa.error());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      close(fd);
      return make_error(fmt::format("{} exists and is not a socket; choose another --control path",
                                    path));
    }
    // A socket nobody accepts on is a dead node's: replace it. One a
    // process still serves is a running node's: never take it over.
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool served =
        probe >= 0 && connect(probe, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) == 0;
    if (probe >= 0) close(probe);
    if (served) {
      close(fd);
      return make_error(fmt::format("{} is the control socket of a running node (another ftvm "
                                    "process on this host?): stop that one first, or choose "
                                    "another --control path",
                                    path));
    }
    unlink(path.c_str());  // the socket of a node that died
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0 || listen(fd, 8) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return make_error(fmt::format("cannot serve the control socket {}: {}", path, why));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    close(fd);
    return make_error("pipe failed");
  }
  struct stat mine {};
  (void)lstat(path.c_str(), &mine);
  auto server = std::unique_ptr<ControlServer>(new ControlServer(fd, p[0], p[1], path, board));
  server->inode_ = mine.st_ino;
  return server;
}

ControlServer::ControlServer(int fd, int stop_r, int stop_w, std::string path,
                             const StatusBoard* board)
    : fd_(fd), stop_r_(stop_r), stop_w_(stop_w), path_(std::move(path)), board_(board) {
  thread_ = std::thread([this] { serve(); });
}

ControlServer::~ControlServer() {
  const char c = 'x';
  (void)!write(stop_w_, &c, 1);
  thread_.join();
  close(fd_);
  close(stop_r_);
  close(stop_w_);
  // Only our own socket: a node started after this one may have replaced it.
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) unlink(path_.c_str());
}

void ControlServer::serve() {
  for (;;) {
    pollfd pfds[2] = {{fd_, POLLIN, 0}, {stop_r_, POLLIN, 0}};
    if (poll(pfds, 2, -1) < 0 && errno != EINTR) return;
    if (pfds[1].revents != 0) return;
    if ((pfds[0].revents & POLLIN) == 0) continue;
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    // Any request gets the status; the reply is small enough for one write.
    const std::string reply = board_->text() + "\n";
    timeval tv{1, 0};
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    (void)!send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    close(c);
  }
}

Result<nlohmann::json> query_status(const std::string& path, std::chrono::milliseconds timeout) {
  Result<sockaddr_un> sa = unix_addr(path);
  if (!sa) return make_error(sa.error());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return make_error(fmt::format("no node answers on {}: {}", path, why));
  }
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
      close(fd);
      return make_error(fmt::format("the node on {} did not answer within {} ms", path,
                                    timeout.count()));
    }
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(fmt::format("the node on {} sent unreadable status", path));
  return j;
}

}  // namespace ftvm::ft
