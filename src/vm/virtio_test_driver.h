// Test support for the virtio devices: a small guest RAM, and a driver that
// programs a VirtioMmio through its registers in the order Linux's
// drivers/virtio/virtio_mmio.c does, building split virtqueues by hand.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "vm/guest_memory.h"
#include "vm/virtio_mmio.h"

namespace ftvm::vm::testing {

// Register offsets, spelled as Linux's virtio_mmio.h does.
inline constexpr uint64_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendor = 0x00c,
                          kDevFeatures = 0x010, kDevFeaturesSel = 0x014,
                          kDrvFeatures = 0x020, kDrvFeaturesSel = 0x024, kQueueSel = 0x030,
                          kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044,
                          kQueueNotify = 0x050, kIntStatus = 0x060, kIntAck = 0x064,
                          kStatus = 0x070, kDescLow = 0x080, kDescHigh = 0x084,
                          kAvailLow = 0x090, kAvailHigh = 0x094, kUsedLow = 0x0a0,
                          kUsedHigh = 0x0a4, kConfigGen = 0x0fc, kConfig = 0x100;

inline constexpr uint64_t kRamBase = 0x8000'0000;
inline constexpr uint64_t kRamSize = 1 << 20;
// Where the driver puts queue q's rings, and where buffers go.
inline constexpr uint64_t kRingArea = kRamBase + 0x1000;
inline constexpr uint64_t kRingStride = 0x4000;
inline constexpr uint64_t kBufArea = kRamBase + 0x40000;

struct FakeLine final : IrqLine {
  void set_level(bool high) override { level = high; }
  bool level = true;  // the constructor must drive it low
};

// Guest RAM; records every range reported to the write observer.
struct TestRam {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kRamSize);
  std::vector<GuestRange> observed;
  GuestMemory memory() {
    return GuestMemory(bytes.data(), kRamBase, kRamSize,
                       [this](uint64_t pa, uint64_t len) { observed.push_back({pa, len}); });
  }
  uint8_t* at(uint64_t pa) { return bytes.data() + (pa - kRamBase); }
  void put(uint64_t pa, const void* p, size_t n) { std::memcpy(at(pa), p, n); }
  template <typename T>
  void put_le(uint64_t pa, T v) {
    std::memcpy(at(pa), &v, sizeof v);
  }
  template <typename T>
  T get_le(uint64_t pa) {
    T v;
    std::memcpy(&v, at(pa), sizeof v);
    return v;
  }
  std::vector<uint8_t> get(uint64_t pa, size_t n) {
    return std::vector<uint8_t>(at(pa), at(pa) + n);
  }
};

// One buffer of a chain: guest address, length, device-writable or not.
struct Buf {
  uint64_t addr;
  uint32_t len;
  bool write;
};

// A split virtqueue the test lays out in TestRam, as Linux's virtio_ring.c.
struct TestQueue {
  uint64_t desc = 0, avail = 0, used = 0;
  uint16_t num = 0;
  uint16_t avail_idx = 0;  // the driver's next avail index
  uint16_t next_desc = 0;  // next free descriptor slot (round robin)
  uint16_t used_seen = 0;  // used entries consumed by the test

  void write_desc(TestRam& ram, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next) {
    const uint64_t d = desc + 16ull * i;
    ram.put_le<uint64_t>(d, addr);
    ram.put_le<uint32_t>(d + 8, len);
    ram.put_le<uint16_t>(d + 12, flags);
    ram.put_le<uint16_t>(d + 14, next);
  }
  // Publishes `head` in the avail ring and bumps avail->idx.
  void publish(TestRam& ram, uint16_t head) {
    ram.put_le<uint16_t>(avail + 4 + 2ull * (avail_idx % num), head);
    ++avail_idx;
    ram.put_le<uint16_t>(avail + 2, avail_idx);
  }
  // Writes a chain into consecutive free descriptors and publishes it.
  uint16_t add(TestRam& ram, const std::vector<Buf>& bufs) {
    const uint16_t head = next_desc;
    for (size_t k = 0; k < bufs.size(); ++k) {
      const uint16_t i = static_cast<uint16_t>((head + k) % num);
      const bool last = k + 1 == bufs.size();
      const uint16_t flags = static_cast<uint16_t>((last ? 0 : kVirtqDescFNext) |
                                                   (bufs[k].write ? kVirtqDescFWrite : 0));
      write_desc(ram, i, bufs[k].addr, bufs[k].len, flags,
                 static_cast<uint16_t>((i + 1) % num));
    }
    next_desc = static_cast<uint16_t>((head + bufs.size()) % num);
    publish(ram, head);
    return head;
  }
  uint16_t used_idx(TestRam& ram) { return ram.get_le<uint16_t>(used + 2); }
  // The used element at free-running index `k`: {id, len}.
  std::pair<uint32_t, uint32_t> used_elem(TestRam& ram, uint16_t k) {
    const uint64_t e = used + 4 + 8ull * (k % num);
    return {ram.get_le<uint32_t>(e), ram.get_le<uint32_t>(e + 4)};
  }
};

// Programs a VirtioMmio the way Linux's virtio_mmio driver and virtio core do.
class TestDriver {
 public:
  TestDriver(VirtioMmio& dev, TestRam& ram) : dev_(dev), ram_(ram) {}

  uint32_t rd(uint64_t off) {
    uint64_t v = 0xdeadbeef;
    EXPECT_TRUE(dev_.read(off, 4, v));
    return static_cast<uint32_t>(v);
  }
  void wr(uint64_t off, uint32_t v) { EXPECT_TRUE(dev_.write(off, 4, v)); }

  uint64_t device_features() {
    wr(kDevFeaturesSel, 1);
    uint64_t f = uint64_t{rd(kDevFeatures)} << 32;
    wr(kDevFeaturesSel, 0);
    return f | rd(kDevFeatures);
  }
  void set_driver_features(uint64_t f) {
    wr(kDrvFeaturesSel, 1);
    wr(kDrvFeatures, static_cast<uint32_t>(f >> 32));
    wr(kDrvFeaturesSel, 0);
    wr(kDrvFeatures, static_cast<uint32_t>(f));
  }

  // virtio_dev_probe up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, accept
  // `features` (all offered if ~0), FEATURES_OK. True if the device kept it.
  bool negotiate(uint64_t features = ~0ull) {
    wr(kStatus, 0);
    status_ = kVirtioStatusAcknowledge;
    wr(kStatus, status_);
    status_ |= kVirtioStatusDriver;
    wr(kStatus, status_);
    const uint64_t offered = device_features();
    set_driver_features(features == ~0ull ? offered : features);
    status_ |= kVirtioStatusFeaturesOk;
    wr(kStatus, status_);
    return (rd(kStatus) & kVirtioStatusFeaturesOk) != 0;
  }

  // vm_setup_vq: select, check not ready, read max, set size and addresses,
  // ready. `num` 0 means QueueNumMax.
  TestQueue setup_queue(unsigned index, uint16_t num = 0) {
    wr(kQueueSel, index);
    EXPECT_EQ(rd(kQueueReady), 0u);
    const uint32_t max = rd(kQueueNumMax);
    EXPECT_NE(max, 0u);
    TestQueue q;
    q.num = num != 0 ? num : static_cast<uint16_t>(max);
    q.desc = kRingArea + kRingStride * index;
    q.avail = q.desc + 16ull * q.num;
    q.used = (q.avail + 6 + 2ull * q.num + 0xfff) & ~0xfffull;  // VIRTIO_MMIO_VRING_ALIGN
    wr(kQueueNum, q.num);
    wr(kDescLow, static_cast<uint32_t>(q.desc));
    wr(kDescHigh, static_cast<uint32_t>(q.desc >> 32));
    wr(kAvailLow, static_cast<uint32_t>(q.avail));
    wr(kAvailHigh, static_cast<uint32_t>(q.avail >> 32));
    wr(kUsedLow, static_cast<uint32_t>(q.used));
    wr(kUsedHigh, static_cast<uint32_t>(q.used >> 32));
    wr(kQueueReady, 1);
    EXPECT_EQ(rd(kQueueReady), 1u);
    return q;
  }

  void driver_ok() {
    status_ |= kVirtioStatusDriverOk;
    wr(kStatus, status_);
  }
  void notify(unsigned q) { wr(kQueueNotify, q); }

  // vm_interrupt: read InterruptStatus, acknowledge what was read.
  uint32_t take_interrupt() {
    const uint32_t s = rd(kIntStatus);
    wr(kIntAck, s);
    return s;
  }

 private:
  VirtioMmio& dev_;
  TestRam& ram_;
  uint32_t status_ = 0;
};

}  // namespace ftvm::vm::testing
