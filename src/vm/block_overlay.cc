// A copy-on-write overlay in memory over a read-only disk (block_overlay.h).
#include "vm/block_overlay.h"

#include <algorithm>
#include <cstring>

namespace ftvm::vm {

uint64_t OverlayBlockBackend::block_len(uint64_t block) const {
  return std::min<uint64_t>(kBlockBytes, size() - block * kBlockBytes);
}

Status OverlayBlockBackend::read(uint64_t offset, std::span<uint8_t> out) {
  FTVM_CHECK(offset <= size() && out.size() <= size() - offset);
  size_t done = 0;
  while (done < out.size()) {
    const uint64_t at = offset + done;
    const uint64_t block = at / kBlockBytes, in = at % kBlockBytes;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size() - done, kBlockBytes - in));
    if (auto it = blocks_.find(block); it != blocks_.end()) {
      std::memcpy(out.data() + done, it->second->data() + in, n);
    } else if (Status s = base_->read(at, out.subspan(done, n)); !s) {
      return s;
    }
    done += n;
  }
  return {};
}

Status OverlayBlockBackend::write(uint64_t offset, std::span<const uint8_t> data) {
  FTVM_CHECK(offset <= size() && data.size() <= size() - offset);
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t at = offset + done;
    const uint64_t block = at / kBlockBytes, in = at % kBlockBytes;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size() - done, kBlockBytes - in));
    auto it = blocks_.find(block);
    if (it == blocks_.end()) {
      // First write to this block: start from the base's bytes.
      auto b = std::make_unique<Block>();
      b->fill(0);
      if (Status s = base_->read(block * kBlockBytes, std::span<uint8_t>(b->data(), block_len(block)));
          !s) {
        return s;
      }
      it = blocks_.emplace(block, std::move(b)).first;
    }
    std::memcpy(it->second->data() + in, data.data() + done, n);
    done += n;
  }
  return {};
}

}  // namespace ftvm::vm
