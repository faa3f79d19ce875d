// A writable disk over a read-only one, with every write kept in memory:
// what `ftvm replay` gives a guest whose recording had a writable disk, so
// the replay writes exactly as the recorded guest did and never touches the
// recorded starting contents (or any other file).
//
// Written data is kept in 4 KiB blocks; a read sees the overlay's blocks
// where there are some and the base elsewhere. Memory grows with the blocks
// written, at most the disk's size. flush() has nothing to make durable.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "vm/virtio_blk.h"

namespace ftvm::vm {

class OverlayBlockBackend final : public BlockBackend {
 public:
  static constexpr uint64_t kBlockBytes = 4096;

  // `base` is read, never written; it must outlive the overlay.
  explicit OverlayBlockBackend(BlockBackend* base) : base_(base) {}

  uint64_t size() const override { return base_->size(); }
  bool read_only() const override { return false; }
  Status read(uint64_t offset, std::span<uint8_t> out) override;
  Status write(uint64_t offset, std::span<const uint8_t> data) override;
  Status flush() override { return {}; }

  size_t blocks_written() const { return blocks_.size(); }

 private:
  using Block = std::array<uint8_t, kBlockBytes>;
  // The block's bytes within the disk (the last block may be partial).
  uint64_t block_len(uint64_t block) const;
  // Calls fn(block, offset in block, bytes done, bytes in this block) for
  // each block [offset, offset+len) touches, stopping at the first error.
  template <typename Fn>
  Status for_each_block(uint64_t offset, size_t len, Fn&& fn);

  BlockBackend* base_;
  std::unordered_map<uint64_t, std::unique_ptr<Block>> blocks_;
};

}  // namespace ftvm::vm
