// virtio network device (virtio-net, device id 1, virtio 1.1 §5.1): the
// guest's Ethernet NIC.
//
// Two queues, no control queue: 0 is receiveq, 1 is transmitq. Offered
// features: VIRTIO_NET_F_MAC (the configuration space holds the MAC),
// VIRTIO_NET_F_STATUS (the configuration space holds the link state) and,
// from the transport, VIRTIO_F_VERSION_1. No checksum or segmentation
// offload and no mergeable receive buffers, so every frame in either
// direction is a whole Ethernet frame (no FCS) behind the 12-byte
// virtio_net_hdr_v1, which is all zero apart from num_buffers = 1 on
// receive. Linux's virtio_net driver then posts receive buffers of
// 12 + 1518 bytes, one descriptor each.
//
// Transmit is synchronous: the guest's QueueNotify of queue 1 takes every
// available chain, strips the header from its device-readable bytes and hands
// the frame to the FrameSink before the store retires, so each frame leaves
// at an instret fixed by guest execution. A chain with fewer readable bytes
// than the header is malformed (DEVICE_NEEDS_RESET, as QEMU does); a frame
// shorter than an Ethernet header or longer than kMaxFrameBytes is dropped
// and counted. The transmit header's fields are ignored: no offload was
// negotiated. Transmitted chains are returned with used length 0.
//
// Receive is an event: deliver() puts one frame into the next receive chain
// the driver made available and raises the interrupt. It is called by the
// machine between two instructions, never from inside a register access,
// so a received frame changes machine state only at an instret the
// recorder logs. When no buffer is posted (or the driver is not up) the
// frame is not taken and deliver() returns false; the caller keeps it and
// tries again later. A frame too large for the chain at the head of the
// ring is dropped and counted, and that chain stays posted, as QEMU does.
//
// Nothing here reads host time or does host I/O: frames enter only through
// deliver() and leave only through the FrameSink.
//
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vm/virtio_mmio.h"

namespace ftvm::vm {

using MacAddress = std::array<uint8_t, 6>;

// The guest's MAC when none is given: locally administered, in QEMU's
// 52:54:00 range, ending in 0x0f like the guest's 10.77.0.15
// (docs/networking.md).
inline constexpr MacAddress kDefaultGuestMac = {0x52, 0x54, 0x00, 0x77, 0x00, 0x0f};

// "52:54:00:77:00:0f" <-> bytes. parse_mac accepts exactly six two-digit
// hex fields separated by ':' (either case); nullopt otherwise.
std::optional<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);

class VirtioNet final : public VirtioDeviceBackend {
 public:
  // Receives each transmitted frame (virtio header stripped). The span is
  // valid only during the call; the sink must copy what it keeps. It runs
  // inside the guest's QueueNotify store and must not call back into the
  // machine.
  using FrameSink = std::function<void(std::span<const uint8_t> frame)>;

  static constexpr unsigned kRxQueue = 0;
  static constexpr unsigned kTxQueue = 1;

  // struct virtio_net_hdr_v1 (flags, gso_type, hdr_len, gso_size,
  // csum_start, csum_offset, num_buffers).
  static constexpr uint32_t kHeaderBytes = 12;
  static constexpr uint32_t kEthHeaderBytes = 14;
  // Largest frame transmitted: Linux's largest MTU (65535) plus an Ethernet
  // header and one VLAN tag. Bounds what a hostile transmit chain makes the
  // host copy.
  static constexpr uint32_t kMaxFrameBytes = 65535 + 14 + 4;

  // Feature bits.
  static constexpr unsigned kFMac = 5;
  static constexpr unsigned kFStatus = 16;
  // Configuration space: mac[6], le16 status. Bit 0 of status is
  // VIRTIO_NET_S_LINK_UP.
  static constexpr uint32_t kConfigSize = 8;
  static constexpr uint16_t kStatusLinkUp = 1;

  // Everything the device holds apart from the transport: plain data for
  // snapshots and the state hash.
  struct State {
    MacAddress mac{};
    bool link_up = true;
    uint64_t rx_frames = 0;   // delivered into the guest
    uint64_t rx_bytes = 0;    // frame bytes delivered, headers not counted
    uint64_t rx_dropped = 0;  // taken by deliver() but too large for the buffer
    uint64_t tx_frames = 0;   // handed to the sink
    uint64_t tx_bytes = 0;
    uint64_t tx_dropped = 0;  // shorter than an Ethernet header or over kMaxFrameBytes
    bool operator==(const State&) const = default;

    // Calls f(uint64_t) once per field in a fixed order (the MAC as one
    // 48-bit big-endian number).
    template <typename F>
    void for_each_field(F&& f) const {
      uint64_t m = 0;
      for (uint8_t b : mac) m = m << 8 | b;
      for (uint64_t v : {m, uint64_t{link_up}, rx_frames, rx_bytes, rx_dropped, tx_frames,
                         tx_bytes, tx_dropped}) {
        f(v);
      }
    }
  };

  // An empty `sink` discards transmitted frames (they are still counted).
  explicit VirtioNet(const MacAddress& mac, FrameSink sink = {});

  // The transport this device sits behind; deliver(), can_receive() and
  // set_link_up() need it. Call once, after constructing the VirtioMmio
  // with this device as its backend; `transport` must outlive the device's
  // use.
  void attach(VirtioMmio* transport);
  void set_frame_sink(FrameSink sink) { sink_ = std::move(sink); }

  // ---- events, applied by the machine between two instructions ----

  // Puts `frame` (an Ethernet frame without FCS) into the next receive
  // chain and raises the used-buffer interrupt unless the driver suppressed
  // it. True if the frame was taken: delivered, or dropped and counted in
  // rx_dropped because it does not fit the chain at the head of the ring,
  // which stays posted. False, changing nothing, if the driver is
  // not up, the receive queue is not ready, the device needs a reset, or no
  // buffer is posted; also false if the ring turns out to be malformed,
  // which puts the device in DEVICE_NEEDS_RESET.
  bool deliver(std::span<const uint8_t> frame);
  // True if deliver() would take a frame now: the receive queue is live and
  // the driver has made at least one chain available. Reads guest memory
  // but changes nothing.
  bool can_receive() const;
  // Sets the link state the guest sees (VIRTIO_NET_S_LINK_UP) and, if it
  // changed, raises the configuration-change interrupt. Up at construction.
  void set_link_up(bool up);

  // ---- VirtioDeviceBackend ----
  uint32_t device_id() const override { return kVirtioIdNet; }
  uint64_t device_features() const override { return (1ull << kFMac) | (1ull << kFStatus); }
  unsigned num_queues() const override { return 2; }
  uint32_t config_size() const override { return kConfigSize; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override;
  // The MAC is read-only in virtio 1.x (Linux changes it only through the
  // control queue, which is not offered); writes are ignored.
  void on_notify(Virtqueue& queue) override;

  const MacAddress& mac() const { return s_.mac; }
  bool link_up() const { return s_.link_up; }

  State state() const { return s_; }
  // The transport's state is restored separately (VirtioMmio::restore).
  void restore(const State& state) { s_ = state; }

 private:
  void transmit(Virtqueue& queue, const DescriptorChain& chain);

  VirtioMmio* transport_ = nullptr;
  FrameSink sink_;
  State s_;
  std::vector<uint8_t> tx_buf_;  // scratch for one outgoing frame
};

}  // namespace ftvm::vm
