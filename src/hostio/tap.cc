// TAP devices through /dev/net/tun; see tap.h.
#include "hostio/tap.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ftvm::hostio {
namespace {

// Brings interface `name` up if it is down, through an ioctl socket of the
// calling thread's network namespace.
Status bring_up(const std::string& name) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return make_error(fmt::format("cannot bring TAP interface {} up: socket: {}", name,
                                  std::strerror(errno)));
  }
  struct ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  Status result;
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    result = make_error(fmt::format("cannot read the flags of TAP interface {}: {}", name,
                                    std::strerror(errno)));
  } else if (!(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
      result = make_error(fmt::format("TAP interface {} is down and cannot be brought up: {}; "
                                      "bring it up with: ip link set {} up",
                                      name, std::strerror(errno), name));
    }
  }
  ::close(s);
  return result;
}

}  // namespace

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return make_error(fmt::format("bad TAP interface name '{}': it must have 1 to {} bytes",
                                  name, IFNAMSIZ - 1));
  }
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return make_error(fmt::format("cannot open /dev/net/tun for TAP interface {}: {}{}", name,
                                  std::strerror(err),
                                  err == ENOENT || err == ENODEV
                                      ? "; load the tun module (modprobe tun)"
                                      : err == EACCES ? "; run as root" : ""));
  }
  struct ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    const int err = errno;
    ::close(fd);
    std::string hint;
    switch (err) {
      case EPERM:
        hint = fmt::format("; run as root, or create it for your user first: "
                           "ip tuntap add dev {} mode tap user $USER",
                           name);
        break;
      case EBUSY:
        hint = "; another process has it open (is another ftvm running on it?)";
        break;
      case EINVAL:
        hint = "; an interface of that name exists and is not a single-queue TAP device";
        break;
      default:
        break;
    }
    return make_error(
        fmt::format("cannot attach to TAP interface {}: {}{}", name, std::strerror(err), hint));
  }
  std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if (Status s = bring_up(actual); !s) {
    ::close(fd);
    return make_error(s.error());
  }
  return std::unique_ptr<Tap>(new Tap(fd, std::move(actual)));
}

Tap::~Tap() { ::close(fd_); }

Result<size_t> Tap::read_frames(std::vector<Bytes>& out, size_t max_frames) {
  size_t n = 0;
  while (n < max_frames) {
    const ssize_t got = ::read(fd_, buf_.data(), buf_.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return make_error(
          fmt::format("reading from TAP interface {}: {}", name_, std::strerror(errno)));
    }
    out.emplace_back(buf_.begin(), buf_.begin() + got);
    ++n;
  }
  return n;
}

Status Tap::write_frame(std::span<const uint8_t> frame) {
  for (;;) {
    const ssize_t put = ::write(fd_, frame.data(), frame.size());
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) {
      return make_error(fmt::format("sending a {}-byte frame on TAP interface {}: {}",
                                    frame.size(), name_, std::strerror(errno)));
    }
    if (static_cast<size_t>(put) != frame.size()) {
      return make_error(fmt::format("TAP interface {} took {} of a {}-byte frame", name_, put,
                                    frame.size()));
    }
    return {};
  }
}

}  // namespace ftvm::hostio
