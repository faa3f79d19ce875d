// A copy-on-write overlay in memory over a read-only disk (block_overlay.h).
#include "vm/block_overlay.h"

#include <algorithm>
#include <cstring>

namespace ftvm::vm {

uint64_t OverlayBlockBackend::block_len(uint64_t block) const {
  return std::min<uint64_t>(kBlockBytes, size() - block * kBlockBytes);
}

template <typename Fn>
Status OverlayBlockBackend::for_each_block(uint64_t offset, size_t len, Fn&& fn) {
  FTVM_CHECK(offset <= size() && len <= size() - offset);
  size_t done = 0;
  while (done < len) {
    const uint64_t at = offset + done;
    const uint64_t in = at % kBlockBytes;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len - done, kBlockBytes - in));
    if (Status s = fn(at / kBlockBytes, in, done, n); !s) return s;
    done += n;
  }
  return {};
}

Status OverlayBlockBackend::read(uint64_t offset, std::span<uint8_t> out) {
  return for_each_block(offset, out.size(), [&](uint64_t block, uint64_t in, size_t done, size_t n) {
    if (auto it = blocks_.find(block); it != blocks_.end()) {
      std::memcpy(out.data() + done, it->second->data() + in, n);
      return Status{};
    }
    return base_->read(offset + done, out.subspan(done, n));
  });
}

Status OverlayBlockBackend::write(uint64_t offset, std::span<const uint8_t> data) {
  return for_each_block(offset, data.size(), [&](uint64_t block, uint64_t in, size_t done, size_t n) {
    auto it = blocks_.find(block);
    if (it == blocks_.end()) {
      // First write to this block: start from the base's bytes.
      auto b = std::make_unique<Block>();
      b->fill(0);
      if (Status s = base_->read(block * kBlockBytes,
                                 std::span<uint8_t>(b->data(), block_len(block)));
          !s) {
        return s;
      }
      it = blocks_.emplace(block, std::move(b)).first;
    }
    std::memcpy(it->second->data() + in, data.data() + done, n);
    return Status{};
  });
}

}  // namespace ftvm::vm
