// virtio-mmio registers and split virtqueues; see virtio_mmio.h for the model.
#include "vm/virtio_mmio.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "util/result.h"

namespace ftvm::vm {
namespace {

// Register offsets (virtio 1.1 §4.2.2; Linux include/uapi/linux/virtio_mmio.h).
constexpr uint64_t kMagicValue = 0x000;
constexpr uint64_t kVersionReg = 0x004;
constexpr uint64_t kDeviceId = 0x008;
constexpr uint64_t kVendorIdReg = 0x00c;
constexpr uint64_t kDeviceFeatures = 0x010;
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNumMax = 0x034;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kQueueNotify = 0x050;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDescHigh = 0x084;
constexpr uint64_t kQueueAvailLow = 0x090;
constexpr uint64_t kQueueAvailHigh = 0x094;
constexpr uint64_t kQueueUsedLow = 0x0a0;
constexpr uint64_t kQueueUsedHigh = 0x0a4;
constexpr uint64_t kShmLenLow = 0x0b0;
constexpr uint64_t kShmLenHigh = 0x0b4;
constexpr uint64_t kConfigGeneration = 0x0fc;

// Split-ring layout (§2.6): 16-byte descriptors; avail = flags, idx,
// ring[num] of u16; used = flags, idx, ring[num] of {u32 id, u32 len}.
constexpr uint64_t kDescSize = 16;
constexpr uint64_t kRingHeader = 4;
constexpr uint64_t kUsedElemSize = 8;

void set_low(uint64_t& v, uint32_t low) { v = (v & ~0xffff'ffffull) | low; }
void set_high(uint64_t& v, uint32_t high) { v = (v & 0xffff'ffffull) | (uint64_t{high} << 32); }

bool valid_queue_size(uint16_t num) {
  return num != 0 && num <= VirtioMmio::kQueueMaxSize && (num & (num - 1)) == 0;
}

}  // namespace

std::vector<GuestRange> slice_ranges(std::span<const GuestRange> ranges, uint64_t offset,
                                     uint64_t len) {
  std::vector<GuestRange> out;
  for (const GuestRange& r : ranges) {
    if (len == 0) break;
    if (offset >= r.len) {
      offset -= r.len;
      continue;
    }
    const uint64_t n = std::min(r.len - offset, len);
    out.push_back(GuestRange{r.addr + offset, n});
    offset = 0;
    len -= n;
  }
  return out;
}

// ---- Virtqueue ----

uint16_t Virtqueue::size() const { return t_.s_.queues[index_].num; }

uint64_t Virtqueue::driver_features() const { return t_.s_.driver_features; }

GuestMemory& Virtqueue::memory() { return t_.mem_; }

void Virtqueue::fail(std::string why) {
  t_.fail(fmt::format("queue {}: {}", index_, why));
}

std::optional<DescriptorChain> Virtqueue::pop() {
  if (!t_.queue_live(index_)) return std::nullopt;
  VirtioMmio::QueueState& q = t_.s_.queues[index_];
  GuestMemory& mem = t_.mem_;
  const uint16_t num = q.num;
  if (!valid_queue_size(num)) {
    fail(fmt::format("queue size {} is not a power of two in 1..{}", num,
                     VirtioMmio::kQueueMaxSize));
    return std::nullopt;
  }
  if (!mem.contains(q.desc, kDescSize * num) ||
      !mem.contains(q.avail, kRingHeader + 2 * uint64_t{num}) ||
      !mem.contains(q.used, kRingHeader + kUsedElemSize * num)) {
    fail(fmt::format("rings (desc {:#x}, avail {:#x}, used {:#x}, size {}) are not all in RAM",
                     q.desc, q.avail, q.used, num));
    return std::nullopt;
  }
  const uint16_t avail_idx = *mem.read_u16(q.avail + 2);
  const uint16_t pending = static_cast<uint16_t>(avail_idx - q.last_avail);
  if (pending == 0) return std::nullopt;
  if (pending > num) {
    fail(fmt::format("avail index moved from {} to {}, more than the queue size {}",
                     q.last_avail, avail_idx, num));
    return std::nullopt;
  }
  const uint16_t head = *mem.read_u16(q.avail + kRingHeader + 2 * static_cast<uint64_t>(q.last_avail % num));
  DescriptorChain chain;
  chain.head = head;
  uint16_t i = head;
  for (unsigned count = 0;; ++count) {
    if (i >= num) {
      fail(fmt::format("descriptor index {} is outside the queue of {}", i, num));
      return std::nullopt;
    }
    if (count == num) {
      fail(fmt::format("descriptor chain from head {} is longer than the queue ({}): a loop",
                       head, num));
      return std::nullopt;
    }
    const uint64_t d = q.desc + kDescSize * i;
    const uint64_t addr = *mem.read_u64(d);
    const uint32_t len = *mem.read_u32(d + 8);
    const uint16_t flags = *mem.read_u16(d + 12);
    const uint16_t next = *mem.read_u16(d + 14);
    if (flags & kVirtqDescFIndirect) {
      fail(fmt::format("descriptor {} is indirect, which was not offered", i));
      return std::nullopt;
    }
    if (!mem.contains(addr, len)) {
      fail(fmt::format("descriptor {} buffer [{:#x}, +{:#x}) is not in RAM", i, addr, len));
      return std::nullopt;
    }
    if (flags & kVirtqDescFWrite) {
      chain.writable.push_back(GuestRange{addr, len});
      chain.writable_len += len;
    } else {
      if (!chain.writable.empty()) {
        fail(fmt::format("descriptor {} is device-readable but follows a writable one", i));
        return std::nullopt;
      }
      chain.readable.push_back(GuestRange{addr, len});
      chain.readable_len += len;
    }
    if (!(flags & kVirtqDescFNext)) break;
    i = next;
  }
  ++q.last_avail;
  return chain;
}

void Virtqueue::push(const DescriptorChain& chain, uint32_t written) {
  VirtioMmio::QueueState& q = t_.s_.queues[index_];
  GuestMemory& mem = t_.mem_;
  // pop() checked the used ring is in RAM for this size; a restore or a
  // register write since may have changed that, so check again.
  if (!valid_queue_size(q.num) || !mem.contains(q.used, kRingHeader + kUsedElemSize * q.num)) {
    fail("the used ring is no longer valid");
    return;
  }
  const uint64_t elem = q.used + kRingHeader + kUsedElemSize * (q.used_idx % q.num);
  FTVM_CHECK(mem.write_u32(elem, chain.head) && mem.write_u32(elem + 4, written) &&
             mem.write_u16(q.used + 2, static_cast<uint16_t>(q.used_idx + 1)));
  ++q.used_idx;
  used_ = true;
}

bool Virtqueue::read(const DescriptorChain& chain, uint64_t offset, std::span<uint8_t> out) {
  if (offset > chain.readable_len || out.size() > chain.readable_len - offset) return false;
  size_t done = 0;
  for (const GuestRange& r : slice_ranges(chain.readable, offset, out.size())) {
    if (!t_.mem_.read(r.addr, out.subspan(done, r.len))) return false;
    done += r.len;
  }
  return true;
}

bool Virtqueue::write(const DescriptorChain& chain, uint64_t offset,
                      std::span<const uint8_t> in) {
  if (offset > chain.writable_len || in.size() > chain.writable_len - offset) return false;
  const std::vector<GuestRange> ranges = slice_ranges(chain.writable, offset, in.size());
  for (const GuestRange& r : ranges) {
    if (!t_.mem_.contains(r.addr, r.len)) return false;
  }
  size_t done = 0;
  for (const GuestRange& r : ranges) {
    FTVM_CHECK(t_.mem_.write(r.addr, in.subspan(done, r.len)));
    done += r.len;
  }
  return true;
}

// ---- VirtioMmio ----

VirtioMmio::VirtioMmio(GuestMemory memory, IrqLine* irq, VirtioDeviceBackend* backend)
    : mem_(std::move(memory)),
      irq_(irq),
      backend_(backend),
      num_queues_(backend != nullptr ? backend->num_queues() : 0) {
  FTVM_CHECK(num_queues_ <= kMaxQueues);
  FTVM_CHECK(backend == nullptr || num_queues_ >= 1);
  update_irq();
}

uint64_t VirtioMmio::device_features() const {
  if (backend_ == nullptr) return 0;
  return (backend_->device_features() & ~kVirtioTransportFeatureMask) |
         (1ull << kVirtioFVersion1);
}

bool VirtioMmio::read(uint64_t offset, unsigned size, uint64_t& value) {
  value = 0;
  if (offset >= kConfigOffset) {
    const uint32_t config_size = backend_ != nullptr ? backend_->config_size() : 0;
    const uint64_t off = offset - kConfigOffset;
    if (off + size > config_size) {
      value = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
      return true;
    }
    uint8_t bytes[8] = {};
    backend_->read_config(static_cast<uint32_t>(off), std::span<uint8_t>(bytes, size));
    for (unsigned i = 0; i < size; ++i) value |= uint64_t{bytes[i]} << (8 * i);
    return true;
  }
  if (size == 4) value = read_reg(offset);
  return true;
}

bool VirtioMmio::write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset >= kConfigOffset) {
    const uint32_t config_size = backend_ != nullptr ? backend_->config_size() : 0;
    const uint64_t off = offset - kConfigOffset;
    if (off + size > config_size) return true;
    uint8_t bytes[8];
    for (unsigned i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
    backend_->write_config(static_cast<uint32_t>(off), std::span<const uint8_t>(bytes, size));
    return true;
  }
  if (size == 4) write_reg(offset, static_cast<uint32_t>(value));
  return true;
}

uint32_t VirtioMmio::read_reg(uint64_t offset) const {
  const bool have_queue = s_.queue_sel < num_queues_;
  const QueueState* q = have_queue ? &s_.queues[s_.queue_sel] : nullptr;
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersionReg:
      return kVersion;
    case kDeviceId:
      return backend_ != nullptr ? backend_->device_id() : 0;
    case kVendorIdReg:
      return kVendorId;
    case kDeviceFeatures:
      return s_.device_features_sel < 2
                 ? static_cast<uint32_t>(device_features() >> (32 * s_.device_features_sel))
                 : 0;
    case kQueueNumMax:
      return have_queue ? kQueueMaxSize : 0;
    case kQueueReady:
      return q != nullptr && q->ready ? 1 : 0;
    case kInterruptStatus:
      return s_.interrupt_status;
    case kStatus:
      return s_.status;
    case kQueueDescLow:
      return q != nullptr ? static_cast<uint32_t>(q->desc) : 0;
    case kQueueDescHigh:
      return q != nullptr ? static_cast<uint32_t>(q->desc >> 32) : 0;
    case kQueueAvailLow:
      return q != nullptr ? static_cast<uint32_t>(q->avail) : 0;
    case kQueueAvailHigh:
      return q != nullptr ? static_cast<uint32_t>(q->avail >> 32) : 0;
    case kQueueUsedLow:
      return q != nullptr ? static_cast<uint32_t>(q->used) : 0;
    case kQueueUsedHigh:
      return q != nullptr ? static_cast<uint32_t>(q->used >> 32) : 0;
    case kShmLenLow:
    case kShmLenHigh:
      return 0xffff'ffff;  // no shared memory regions
    case kConfigGeneration:
      return s_.config_generation;
    default:
      return 0;  // write-only and unknown registers
  }
}

VirtioMmio::QueueState* VirtioMmio::selected_queue() {
  return s_.queue_sel < num_queues_ ? &s_.queues[s_.queue_sel] : nullptr;
}

void VirtioMmio::write_reg(uint64_t offset, uint32_t value) {
  if (backend_ == nullptr) return;  // an empty slot has nothing to set up
  QueueState* q = selected_queue();
  switch (offset) {
    case kDeviceFeaturesSel:
      s_.device_features_sel = value;
      break;
    case kDriverFeatures:
      // Features are fixed once FEATURES_OK is accepted.
      if (s_.status & kVirtioStatusFeaturesOk) break;
      if (s_.driver_features_sel == 0) set_low(s_.driver_features, value);
      if (s_.driver_features_sel == 1) set_high(s_.driver_features, value);
      break;
    case kDriverFeaturesSel:
      s_.driver_features_sel = value;
      break;
    case kQueueSel:
      s_.queue_sel = value;
      break;
    case kQueueNum:
      if (q != nullptr) q->num = static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff));
      break;
    case kQueueReady:
      if (q != nullptr) q->ready = (value & 1) != 0;
      break;
    case kQueueNotify:
      notify(value & 0xffff);
      break;
    case kInterruptAck:
      s_.interrupt_status &= ~value;
      update_irq();
      break;
    case kStatus:
      write_status(value & 0xff);
      break;
    case kQueueDescLow:
      if (q != nullptr) set_low(q->desc, value);
      break;
    case kQueueDescHigh:
      if (q != nullptr) set_high(q->desc, value);
      break;
    case kQueueAvailLow:
      if (q != nullptr) set_low(q->avail, value);
      break;
    case kQueueAvailHigh:
      if (q != nullptr) set_high(q->avail, value);
      break;
    case kQueueUsedLow:
      if (q != nullptr) set_low(q->used, value);
      break;
    case kQueueUsedHigh:
      if (q != nullptr) set_high(q->used, value);
      break;
    default:
      break;  // read-only and unknown registers
  }
}

void VirtioMmio::write_status(uint32_t value) {
  if (value == 0) {
    reset();
    return;
  }
  const uint32_t old = s_.status;
  if ((value & kVirtioStatusFeaturesOk) && !(old & kVirtioStatusFeaturesOk)) {
    // Accept the driver's features only if they are a subset of the offer
    // and include VERSION_1; otherwise FEATURES_OK stays clear, which the
    // driver reads back as a refusal.
    const uint64_t offered = device_features();
    const bool ok = (s_.driver_features & ~offered) == 0 &&
                    (s_.driver_features & (1ull << kVirtioFVersion1)) != 0;
    if (!ok) value &= ~kVirtioStatusFeaturesOk;
  }
  // NEEDS_RESET is the device's to set; the driver cannot clear it either.
  s_.status = (value & ~kVirtioStatusNeedsReset) | (old & kVirtioStatusNeedsReset);
  if ((s_.status & kVirtioStatusDriverOk) && !(old & kVirtioStatusDriverOk)) {
    // Buffers made available before DRIVER_OK were not processed then.
    for (unsigned i = 0; i < num_queues_; ++i) notify(i);
  }
}

void VirtioMmio::reset() {
  const uint32_t generation = s_.config_generation;
  s_ = State{};
  s_.config_generation = generation;
  if (backend_ != nullptr) backend_->reset();
  update_irq();
}

bool VirtioMmio::queue_live(unsigned q) const {
  return backend_ != nullptr && q < num_queues_ && s_.queues[q].ready &&
         (s_.status & kVirtioStatusDriverOk) && !(s_.status & kVirtioStatusNeedsReset);
}

void VirtioMmio::notify(unsigned q) {
  process_queue(q, [this](Virtqueue& vq) { backend_->on_notify(vq); });
}

bool VirtioMmio::process_queue(unsigned q, const std::function<void(Virtqueue&)>& fn) {
  if (!queue_live(q)) return false;
  Virtqueue vq(*this, q);
  fn(vq);
  if (vq.used_) signal_used(q);
  return true;
}

void VirtioMmio::signal_used(unsigned q) {
  // Without VIRTIO_F_EVENT_IDX the driver may ask for no interrupts through
  // avail->flags; it is a hint the device honours.
  const std::optional<uint16_t> flags = mem_.read_u16(s_.queues[q].avail);
  if (flags && (*flags & kVirtqAvailFNoInterrupt)) return;
  s_.interrupt_status |= kVirtioIntUsedBuffer;
  update_irq();
}

void VirtioMmio::config_changed() {
  ++s_.config_generation;
  if (s_.status & kVirtioStatusDriverOk) {
    s_.interrupt_status |= kVirtioIntConfigChange;
    update_irq();
  }
}

void VirtioMmio::fail(std::string why) {
  if (needs_reset()) return;
  failure_ = std::move(why);
  s_.status |= kVirtioStatusNeedsReset;
  if (s_.status & kVirtioStatusDriverOk) {
    s_.interrupt_status |= kVirtioIntConfigChange;
    update_irq();
  }
}

void VirtioMmio::restore(const State& state) {
  s_ = state;
  update_irq();
}

void VirtioMmio::update_irq() {
  if (irq_ != nullptr) irq_->set_level(irq_level());
}

}  // namespace ftvm::vm
