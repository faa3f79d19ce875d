// The virtio-mmio transport (virtio 1.1 §4.2, register layout version 2) and
// the interface virtio device types plug into it.
//
// VirtioMmio is the register window of one slot: magic, version, device and
// vendor ids, feature negotiation (VIRTIO_F_VERSION_1 is offered and
// required), the status byte, split virtqueues at guest-physical addresses,
// interrupt status and acknowledgement, and the configuration generation.
// What a device *is* — its id, its feature bits, its configuration space
// and what it does with buffers — is a VirtioDeviceBackend (virtio_rng.h,
// virtio_blk.h). With no backend the slot is an empty placeholder (device id
// 0), which Linux skips, as QEMU leaves unused virt slots.
//
// Determinism: a driver's QueueNotify write processes that queue to
// completion before the write returns, so every request completes at the
// instret of the notifying store and the interrupt line is driven at that
// moment. Nothing here reads host time or runs on another thread; bytes from
// the host enter only through the backends' own explicit interfaces.
//
// Hostile guests: every descriptor, ring and buffer address is checked
// against RAM by GuestMemory before use. A malformed ring or chain (an
// address outside RAM, a next index out of range, a chain longer than the
// queue, which is how a loop shows, the avail index moving by more than the
// queue size, an indirect descriptor, which is not offered, a readable
// buffer after a writable one, an invalid queue size) sets
// DEVICE_NEEDS_RESET and raises the configuration-change interrupt, as QEMU's
// virtio_error() does; the device then processes nothing until the driver
// resets it by writing 0 to Status.
//
// Register access: common registers (offsets below 0x100) take 4-byte
// accesses; other sizes read 0 and ignore writes, as do unknown offsets and
// write-only registers when read (QEMU's behaviour). The configuration space
// at 0x100 takes 1, 2, 4 and 8-byte accesses; bytes past its end read as
// ones and ignore writes. No access faults.
//
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vm/device.h"
#include "vm/guest_memory.h"

namespace ftvm::vm {

// Device ids (virtio 1.1 §5).
inline constexpr uint32_t kVirtioIdNet = 1;
inline constexpr uint32_t kVirtioIdBlock = 2;
inline constexpr uint32_t kVirtioIdEntropy = 4;

// Device status bits (§2.1).
inline constexpr uint32_t kVirtioStatusAcknowledge = 0x01;
inline constexpr uint32_t kVirtioStatusDriver = 0x02;
inline constexpr uint32_t kVirtioStatusDriverOk = 0x04;
inline constexpr uint32_t kVirtioStatusFeaturesOk = 0x08;
inline constexpr uint32_t kVirtioStatusNeedsReset = 0x40;
inline constexpr uint32_t kVirtioStatusFailed = 0x80;

// Interrupt status bits (InterruptStatus, InterruptACK).
inline constexpr uint32_t kVirtioIntUsedBuffer = 0x1;
inline constexpr uint32_t kVirtioIntConfigChange = 0x2;

// Feature bits 24..40 belong to the transport; of them only VERSION_1 is
// offered (no indirect descriptors, no event index, no packed rings).
inline constexpr unsigned kVirtioFVersion1 = 32;
inline constexpr uint64_t kVirtioTransportFeatureMask = ((1ull << 41) - 1) & ~((1ull << 24) - 1);

// Split-virtqueue descriptor flags (§2.6.5).
inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
// avail->flags: the driver asks not to be interrupted (§2.6.7).
inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;

// One request as the driver laid it out: the head descriptor's index and
// the chain's buffers, device-readable ones first (the driver must put them
// first; a chain that does not is malformed). Every range lies in RAM.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<GuestRange> readable;
  std::vector<GuestRange> writable;
  uint64_t readable_len = 0;  // sum of the readable ranges' lengths
  uint64_t writable_len = 0;
};

// The pieces of `ranges`, taken as one byte stream, that cover
// [offset, offset+len); fewer bytes if the stream ends first.
std::vector<GuestRange> slice_ranges(std::span<const GuestRange> ranges, uint64_t offset,
                                     uint64_t len);

class VirtioMmio;

// One split virtqueue as a backend sees it while processing it: a
// short-lived view that VirtioMmio hands to the backend; not to be kept.
class Virtqueue {
 public:
  unsigned index() const { return index_; }
  uint16_t size() const;
  uint64_t driver_features() const;
  GuestMemory& memory();

  // The next chain the driver made available, or nullopt when there is none
  // or the ring or the chain is malformed. In the second case the device is
  // now in DEVICE_NEEDS_RESET and every later pop returns nullopt.
  std::optional<DescriptorChain> pop();
  // Hands `chain` back to the driver (used ring), saying the device wrote
  // `written` bytes into its writable buffers. The interrupt follows when
  // processing ends (see VirtioMmio::process_queue).
  void push(const DescriptorChain& chain, uint32_t written);

  // Copies between host bytes and the chain's readable or writable buffers
  // taken as one byte stream, starting `offset` bytes in. False, copying
  // nothing, if the range runs past the end of that stream.
  [[nodiscard]] bool read(const DescriptorChain& chain, uint64_t offset, std::span<uint8_t> out);
  [[nodiscard]] bool write(const DescriptorChain& chain, uint64_t offset,
                           std::span<const uint8_t> in);

  // Declares the device broken because of a request it cannot make sense of
  // (DEVICE_NEEDS_RESET plus a configuration-change interrupt). `why` is kept
  // for diagnostics (VirtioMmio::failure()).
  void fail(std::string why);

 private:
  friend class VirtioMmio;
  Virtqueue(VirtioMmio& transport, unsigned index) : t_(transport), index_(index) {}
  VirtioMmio& t_;
  unsigned index_;
  bool used_ = false;  // push() was called
};

// What a virtio device type implements. Called only by its VirtioMmio, from
// inside the guest's register accesses (or process_queue).
class VirtioDeviceBackend {
 public:
  virtual ~VirtioDeviceBackend() = default;

  virtual uint32_t device_id() const = 0;
  // The device-type feature bits offered (bits 0..23 and 41..63); transport
  // bits 24..40 are ignored here, the transport decides those.
  virtual uint64_t device_features() const = 0;
  // Number of virtqueues, 1..VirtioMmio::kMaxQueues.
  virtual unsigned num_queues() const = 0;

  // The device configuration space: config_size() bytes. read_config fills
  // `out` with bytes [offset, offset+out.size()), always inside the space.
  virtual uint32_t config_size() const = 0;
  virtual void read_config(uint32_t offset, std::span<uint8_t> out) const = 0;
  // A driver write to [offset, offset+in.size()), inside the space. Ignored
  // unless the device has writable configuration fields.
  virtual void write_config(uint32_t offset, std::span<const uint8_t> in) {}

  // The driver reset the device (Status 0). The transport has already
  // forgotten features and queues.
  virtual void reset() {}

  // The driver notified `queue`: take available chains with queue.pop(),
  // return them with queue.push(). Called only while the driver has set
  // DRIVER_OK, the queue is ready and the device does not need a reset.
  virtual void on_notify(Virtqueue& queue) = 0;
};

class VirtioMmio final : public Device {
 public:
  static constexpr uint64_t kSize = 0x1000;  // one slot's window
  static constexpr uint32_t kMagic = 0x7472'6976;  // "virt"
  static constexpr uint32_t kVersion = 2;
  static constexpr uint32_t kVendorId = 0x554d'4551;  // "QEMU", as QEMU's virt machine reports
  static constexpr unsigned kMaxQueues = 8;
  static constexpr uint16_t kQueueMaxSize = 256;  // QueueNumMax of every queue
  static constexpr uint64_t kConfigOffset = 0x100;

  // One virtqueue's registers and the device's position in it.
  struct QueueState {
    uint16_t num = kQueueMaxSize;  // QueueNum; must be a power of two <= kQueueMaxSize when used
    bool ready = false;            // QueueReady
    uint64_t desc = 0;             // QueueDesc, QueueDriver (avail), QueueDevice (used)
    uint64_t avail = 0;
    uint64_t used = 0;
    uint16_t last_avail = 0;  // free-running index of the next avail entry to take
    uint16_t used_idx = 0;    // free-running used->idx the device last wrote
    bool operator==(const QueueState&) const = default;
  };

  // Everything the transport holds; plain data, so snapshots can copy it.
  struct State {
    uint32_t status = 0;
    uint32_t device_features_sel = 0;
    uint32_t driver_features_sel = 0;
    uint64_t driver_features = 0;
    uint32_t queue_sel = 0;
    uint32_t interrupt_status = 0;
    uint32_t config_generation = 0;
    std::array<QueueState, kMaxQueues> queues{};
    bool operator==(const State&) const = default;

    // Calls f(uint64_t) once per field in a fixed order, for hashing and
    // serialising without the structs' padding.
    template <typename F>
    void for_each_field(F&& f) const {
      for (uint64_t v : {uint64_t{status}, uint64_t{device_features_sel},
                         uint64_t{driver_features_sel}, driver_features, uint64_t{queue_sel},
                         uint64_t{interrupt_status}, uint64_t{config_generation}}) {
        f(v);
      }
      for (const QueueState& q : queues) {
        for (uint64_t v : {uint64_t{q.num}, uint64_t{q.ready}, q.desc, q.avail, q.used,
                           uint64_t{q.last_avail}, uint64_t{q.used_idx}}) {
          f(v);
        }
      }
    }
  };

  // `memory` is the RAM the device reads and writes; its write observer
  // must invalidate the hart's decoded code (see guest_memory.h). `irq` (may
  // be null: unconnected) is driven with the interrupt level (InterruptStatus
  // != 0) whenever it may have changed, and low by the constructor.
  // `backend` may be null for an empty slot (device id 0). `irq` and
  // `backend` must outlive the transport.
  VirtioMmio(GuestMemory memory, IrqLine* irq, VirtioDeviceBackend* backend);
  VirtioMmio(const VirtioMmio&) = delete;
  VirtioMmio& operator=(const VirtioMmio&) = delete;

  [[nodiscard]] bool read(uint64_t offset, unsigned size, uint64_t& value) override;
  [[nodiscard]] bool write(uint64_t offset, unsigned size, uint64_t value) override;

  // For backends that fill buffers on host events between instructions (a
  // received frame): runs `fn` on queue `q` if it is live (DRIVER_OK, the
  // queue ready, no reset needed), then raises the used-buffer interrupt if
  // `fn` pushed any chain and the driver has not suppressed interrupts.
  // Returns false, without calling `fn`, if the queue is not live.
  bool process_queue(unsigned q, const std::function<void(Virtqueue&)>& fn);

  // The device's configuration changed: bumps the generation and raises the
  // configuration-change interrupt (once the driver is up).
  void config_changed();

  bool irq_level() const { return s_.interrupt_status != 0; }
  bool needs_reset() const { return (s_.status & kVirtioStatusNeedsReset) != 0; }
  // Why the device last entered DEVICE_NEEDS_RESET (diagnostics only, not
  // part of State); empty if it has not since construction.
  const std::string& failure() const { return failure_; }
  // All feature bits offered: the backend's plus VIRTIO_F_VERSION_1.
  uint64_t device_features() const;

  State state() const { return s_; }
  // Replaces the whole state and drives `irq` to match. Queue sizes are
  // taken as they are: a bad one makes the queue fail on use, as if the
  // driver had written it.
  void restore(const State& state);

 private:
  friend class Virtqueue;

  uint32_t read_reg(uint64_t offset) const;
  void write_reg(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void reset();
  void notify(unsigned q);
  bool queue_live(unsigned q) const;
  QueueState* selected_queue();
  void signal_used(unsigned q);
  void fail(std::string why);
  void update_irq();

  GuestMemory mem_;
  IrqLine* irq_;
  VirtioDeviceBackend* backend_;
  unsigned num_queues_;
  State s_;
  std::string failure_;
};

}  // namespace ftvm::vm
