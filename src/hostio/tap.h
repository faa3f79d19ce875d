// A Linux TAP device: the host end of the guest's Ethernet link.
//
// Tap::open attaches to the TAP interface of that name in the calling
// thread's network namespace (creating it if it does not exist, as a
// non-persistent device that disappears with the descriptor), with
// IFF_TAP | IFF_NO_PI: every read returns one whole Ethernet frame without
// FCS, and every write sends one. The descriptor is non-blocking; the
// machine's run loop polls fd() for input and calls read_frames() when it
// is readable. The interface is brought up at open if it is down.
//
// ftvm's own layout creates a persistent tap0 on a bridge inside a network
// namespace (scripts/netns.sh, docs/networking.md); ftvm then runs in that
// namespace and opens tap0.
//
// Needs CAP_NET_ADMIN, or ownership of a persistent device made for this
// user. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace ftvm::hostio {

using Bytes = std::vector<uint8_t>;

class Tap {
 public:
  // Reads never return more than this: a 65535-byte MTU plus an Ethernet
  // header and a VLAN tag (vm::VirtioNet::kMaxFrameBytes).
  static constexpr size_t kMaxFrameBytes = 65535 + 14 + 4;

  // Attaches to (or creates) TAP interface `name` (at most 15 bytes) and
  // brings it up. Fails with a message naming the interface and what to do:
  // no /dev/net/tun, no permission, a name taken by a TUN or another kind of
  // device, or a TAP another process holds.
  static Result<std::unique_ptr<Tap>> open(const std::string& name);
  ~Tap();
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;

  // Appends every frame waiting on the device to `out`, at most
  // `max_frames` of them, and says how many it appended; 0 when none is
  // waiting (never blocks). An error (the interface went away) leaves the
  // frames read before it in `out`.
  Result<size_t> read_frames(std::vector<Bytes>& out, size_t max_frames = 64);
  // Sends one Ethernet frame. The kernel takes it whole or not at all; an
  // error (the frame is malformed, the interface is down) means it was not
  // sent, which the network may do to any frame: callers count it and go on.
  Status write_frame(std::span<const uint8_t> frame);

  // For poll(2): readable when a frame is waiting. Owned by the Tap.
  int fd() const { return fd_; }
  // The interface's name as the kernel has it.
  const std::string& name() const { return name_; }

 private:
  Tap(int fd, std::string name) : fd_(fd), name_(std::move(name)), buf_(kMaxFrameBytes) {}

  int fd_;
  std::string name_;
  Bytes buf_;  // one read's worth
};

}  // namespace ftvm::hostio
