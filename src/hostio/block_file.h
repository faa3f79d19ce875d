// A raw disk image file (or host block device) as a virtio-blk disk.
//
// Reads and writes are pread/pwrite at the guest's byte offsets, straight
// through the host page cache. Durability follows the guest's flushes:
// VirtioBlk offers VIRTIO_BLK_F_FLUSH, so Linux treats the disk as having a
// volatile write cache and sends a flush whenever it needs data on stable
// storage (fsync, journal commits); flush() is fdatasync(2), and the flush
// request completes only after it returns. Writes the guest never flushed
// may be lost if the host crashes, as with a real disk's write cache.
//
// The image size is taken once, at open; capacity is that size in 512-byte
// sectors, rounded down. The file is not locked: running two writable
// machines on one image corrupts it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "util/result.h"
#include "vm/virtio_blk.h"

namespace ftvm::hostio {

class FileBlockBackend final : public vm::BlockBackend {
 public:
  // Opens `path` for reading and writing, or only for reading if
  // `read_only`. Fails with a message naming the path and the reason.
  static Result<std::unique_ptr<FileBlockBackend>> open(const std::string& path, bool read_only);
  ~FileBlockBackend() override;
  FileBlockBackend(const FileBlockBackend&) = delete;
  FileBlockBackend& operator=(const FileBlockBackend&) = delete;

  uint64_t size() const override { return size_; }
  bool read_only() const override { return read_only_; }
  Status read(uint64_t offset, std::span<uint8_t> out) override;
  Status write(uint64_t offset, std::span<const uint8_t> data) override;
  Status flush() override;

 private:
  FileBlockBackend(int fd, std::string path, uint64_t size, bool read_only)
      : fd_(fd), path_(std::move(path)), size_(size), read_only_(read_only) {}

  int fd_;
  std::string path_;
  uint64_t size_;
  bool read_only_;
};

}  // namespace ftvm::hostio
