// virtio-blk request handling and the in-memory disk; see virtio_blk.h.
#include "vm/virtio_blk.h"

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace ftvm::vm {
namespace {

constexpr uint64_t kHeaderBytes = 16;

void put_le(std::array<uint8_t, VirtioBlk::kConfigSize>& c, size_t off, uint64_t v,
            size_t n) {
  for (size_t i = 0; i < n; ++i) c[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

// ---- MemoryBlockBackend ----

Status MemoryBlockBackend::read(uint64_t offset, std::span<uint8_t> out) {
  if (failing_) return make_error("in-memory disk: injected read failure");
  FTVM_CHECK(offset <= bytes_.size() && out.size() <= bytes_.size() - offset);
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + offset, out.size());
  return {};
}

Status MemoryBlockBackend::write(uint64_t offset, std::span<const uint8_t> data) {
  if (failing_) return make_error("in-memory disk: injected write failure");
  if (read_only_) return make_error("in-memory disk is read-only");
  FTVM_CHECK(offset <= bytes_.size() && data.size() <= bytes_.size() - offset);
  if (!data.empty()) std::memcpy(bytes_.data() + offset, data.data(), data.size());
  return {};
}

Status MemoryBlockBackend::flush() {
  if (failing_) return make_error("in-memory disk: injected flush failure");
  ++flushes_;
  return {};
}

// ---- VirtioBlk ----

VirtioBlk::VirtioBlk(BlockBackend* disk, std::string serial)
    : disk_(disk), serial_(std::move(serial)) {
  FTVM_CHECK(disk != nullptr);
  if (serial_.size() > kIdBytes) serial_.resize(kIdBytes);
  if (!disk_->read_only()) {
    dirty_.assign((disk_->size() + kTrackBlockBytes - 1) / kTrackBlockBytes, uint8_t{1});
  }
}

uint64_t VirtioBlk::device_features() const {
  uint64_t f = (1ull << kFSegMax) | (1ull << kFBlkSize) | (1ull << kFFlush);
  if (disk_->read_only()) f |= 1ull << kFRo;
  return f;
}

void VirtioBlk::read_config(uint32_t offset, std::span<uint8_t> out) const {
  std::array<uint8_t, kConfigSize> c{};
  put_le(c, 0, capacity_sectors(), 8);                    // capacity
  put_le(c, 12, VirtioMmio::kQueueMaxSize - 2, 4);        // seg_max
  put_le(c, 20, kSectorSize, 4);                          // blk_size
  FTVM_CHECK(offset <= kConfigSize && out.size() <= kConfigSize - offset);
  std::memcpy(out.data(), c.data() + offset, out.size());
}

void VirtioBlk::on_notify(Virtqueue& queue) {
  while (std::optional<DescriptorChain> chain = queue.pop()) {
    if (!handle(queue, *chain)) return;
  }
}

bool VirtioBlk::handle(Virtqueue& queue, const DescriptorChain& chain) {
  if (chain.readable_len < kHeaderBytes) {
    queue.fail(fmt::format("block request head {} has {} readable bytes, less than the "
                           "16-byte header",
                           chain.head, chain.readable_len));
    return false;
  }
  if (chain.writable_len < 1) {
    queue.fail(fmt::format("block request head {} has no writable byte for the status",
                           chain.head));
    return false;
  }
  std::array<uint8_t, kHeaderBytes> hdr;
  FTVM_CHECK(queue.read(chain, 0, hdr));
  uint32_t type;
  uint64_t sector;
  std::memcpy(&type, hdr.data(), 4);
  std::memcpy(&sector, hdr.data() + 8, 8);

  const uint64_t in_len = chain.writable_len - 1;  // writable bytes before the status
  const uint64_t out_len = chain.readable_len - kHeaderBytes;
  uint8_t status = kStatusUnsupp;
  uint64_t written = 0;  // data bytes written, before the status byte
  // A request that reaches the disk: if the recording says it failed, it
  // completes as recorded (replay_failure) and true is returned.
  auto replayed = [&](const DiskRequest& request) {
    if (faults_ == nullptr) return false;
    DiskFaults::Recorded r = faults_->recorded(request);
    if (!r.failed) return false;
    status = replay_failure(queue, chain, request, std::move(r));
    return true;
  };
  switch (type) {
    case kTypeIn: {
      if (!in_range(sector, in_len)) {
        status = kStatusIoErr;
        break;
      }
      const DiskRequest request{kTypeIn, sector, in_len};
      if (replayed(request)) break;
      status = do_read(queue, chain, sector, in_len);
      if (status == kStatusOk) {
        written = in_len;
      } else {
        zero_data(queue, chain, in_len);
        report_failure(request);
      }
      break;
    }
    case kTypeOut: {
      if (disk_->read_only() || !in_range(sector, out_len)) {
        status = kStatusIoErr;
        break;
      }
      const DiskRequest request{kTypeOut, sector, out_len};
      if (replayed(request)) break;
      status = do_write(queue, chain, sector, out_len);
      if (status != kStatusOk) report_failure(request);
      break;
    }
    case kTypeFlush: {
      const DiskRequest request{kTypeFlush, 0, 0};
      if (replayed(request)) break;
      if (Status s = disk_->flush(); s) {
        status = kStatusOk;
      } else {
        host_error("flush", s);
        report_failure(request);
        status = kStatusIoErr;
      }
      break;
    }
    case kTypeGetId: {
      std::array<uint8_t, kIdBytes> id{};
      std::memcpy(id.data(), serial_.data(), serial_.size());
      written = std::min<uint64_t>(kIdBytes, in_len);
      FTVM_CHECK(queue.write(chain, 0, std::span<const uint8_t>(id.data(), written)));
      status = kStatusOk;
      break;
    }
    default:
      break;
  }
  FTVM_CHECK(queue.write(chain, in_len, std::span<const uint8_t>(&status, 1)));
  // A used length counts bytes written; it fits 32 bits for any real chain,
  // and the driver only uses it as a hint.
  queue.push(chain, static_cast<uint32_t>(std::min<uint64_t>(written + 1, UINT32_MAX)));
  return true;
}

bool VirtioBlk::in_range(uint64_t sector, uint64_t len) const {
  const uint64_t cap = capacity_sectors();
  return len % kSectorSize == 0 && sector <= cap && len / kSectorSize <= cap - sector;
}

uint8_t VirtioBlk::do_read(Virtqueue& queue, const DescriptorChain& chain, uint64_t sector,
                           uint64_t len) {
  uint64_t off = sector * kSectorSize;
  for (const GuestRange& r : slice_ranges(chain.writable, 0, len)) {
    uint8_t* p = queue.memory().writable(r.addr, r.len);
    FTVM_CHECK(p != nullptr);  // pop() checked every buffer is RAM
    if (Status s = disk_->read(off, std::span<uint8_t>(p, r.len)); !s) {
      host_error(fmt::format("read of {} bytes at {}", r.len, off), s);
      return kStatusIoErr;
    }
    off += r.len;
  }
  return kStatusOk;
}

uint8_t VirtioBlk::do_write(Virtqueue& queue, const DescriptorChain& chain, uint64_t sector,
                            uint64_t len) {
  uint64_t off = sector * kSectorSize;
  mark_dirty(off, len);
  for (const GuestRange& r : slice_ranges(chain.readable, kHeaderBytes, len)) {
    const uint8_t* p = queue.memory().readable(r.addr, r.len);
    FTVM_CHECK(p != nullptr);
    if (Status s = disk_->write(off, std::span<const uint8_t>(p, r.len)); !s) {
      host_error(fmt::format("write of {} bytes at {}", r.len, off), s);
      return kStatusIoErr;
    }
    off += r.len;
  }
  return kStatusOk;
}

void VirtioBlk::mark_dirty(uint64_t off, uint64_t len) {
  if (len == 0) return;
  const uint64_t first = off / kTrackBlockBytes, last = (off + len - 1) / kTrackBlockBytes;
  const uint8_t mark =
      kBlockDirtyForHash | (transfer_tracking_ ? kBlockDirtyForTransfer : uint8_t{0});
  for (uint64_t b = first; b <= last; ++b) dirty_[b] |= mark;
}

std::vector<uint32_t> VirtioBlk::take_transfer_dirty_blocks() {
  std::vector<uint32_t> blocks;
  for (size_t b = 0; b < dirty_.size(); ++b) {
    if (dirty_[b] & kBlockDirtyForTransfer) {
      blocks.push_back(static_cast<uint32_t>(b));
      dirty_[b] &= static_cast<uint8_t>(~kBlockDirtyForTransfer);
    }
  }
  return blocks;
}

void VirtioBlk::zero_data(Virtqueue& queue, const DescriptorChain& chain, uint64_t len) {
  for (const GuestRange& r : slice_ranges(chain.writable, 0, len)) {
    uint8_t* p = queue.memory().writable(r.addr, r.len);
    FTVM_CHECK(p != nullptr);
    std::memset(p, 0, r.len);
  }
}

void VirtioBlk::report_failure(const DiskRequest& request) {
  if (faults_ == nullptr) return;
  std::optional<std::vector<uint8_t>> after;
  if (request.type == kTypeOut && request.length <= kMaxReadBack) {
    std::vector<uint8_t> bytes(request.length);
    if (disk_->read(request.sector * kSectorSize, bytes)) after = std::move(bytes);
  }
  faults_->failed(request, after, last_host_error_);
}

uint8_t VirtioBlk::replay_failure(Virtqueue& queue, const DescriptorChain& chain,
                                  const DiskRequest& request, DiskFaults::Recorded recorded) {
  if (request.type == kTypeIn) zero_data(queue, chain, request.length);
  if (request.type == kTypeOut && recorded.after) {
    FTVM_CHECK(recorded.after->size() == request.length);
    const uint64_t off = request.sector * kSectorSize;
    mark_dirty(off, request.length);
    if (Status s = disk_->write(off, *recorded.after); !s) {
      host_error(fmt::format("write of the recorded contents, {} bytes at {}", request.length, off),
                 s);
      faults_->failed(request, std::nullopt, last_host_error_);
    }
  }
  return kStatusIoErr;
}

void VirtioBlk::host_error(const std::string& what, const Status& status) {
  ++host_errors_;
  last_host_error_ = fmt::format("virtio-blk {}: {}", what, status.error());
}

}  // namespace ftvm::vm
