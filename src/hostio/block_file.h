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
// A replica (the backup of an FT pair) may make its flushes lazy: each
// returns at once without syncing; once the last real sync is at least the
// interval old, a flush starts one on a background thread (an fdatasync can
// take tens of milliseconds, which a replaying backup must not spend: the
// primary waits for it when it falls behind), and a failure of that sync is
// the result of the next flush. sync_now() waits for a background sync and
// makes everything written durable. The guest
// sees the same completions either way (the recording decides them); what
// changes is only how far behind its host's stable storage may be, which
// matters once the replica goes live, and then it syncs.
//
// The image size is taken once, at open; capacity is that size in 512-byte
// sectors, rounded down. A writable open takes an exclusive lock on the file
// (flock, held until the backend is destroyed, i.e. until the process
// exits): a second writer, in this process or another (two ftvm processes
// on one host's copy of a pair's disk), is refused with an error that says
// so. Read-only opens take no lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

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

  // Lazy flushes (see above) with at most `interval` between real syncs;
  // nullopt: every flush syncs (the default).
  void set_lazy_flush(std::optional<std::chrono::milliseconds> interval);
  bool lazy_flush() const { return lazy_.has_value(); }
  // fdatasync now, whatever the mode (after a background sync in progress).
  Status sync_now();
  // Real syncs begun (a background one counts from when it starts).
  uint64_t syncs() const { return syncs_; }

 private:
  FileBlockBackend(int fd, std::string path, uint64_t size, bool read_only)
      : fd_(fd), path_(std::move(path)), size_(size), read_only_(read_only) {}

  int fd_;
  std::string path_;
  uint64_t size_;
  bool read_only_;
  // Joins a background sync, if one was started; returns its failure.
  Status join_background();

  std::optional<std::chrono::milliseconds> lazy_;
  std::chrono::steady_clock::time_point last_sync_ = std::chrono::steady_clock::now();
  std::atomic<uint64_t> syncs_{0};
  std::thread background_;
  std::atomic<bool> background_done_{false};
  std::mutex background_mu_;
  std::optional<std::string> background_error_;  // guarded by background_mu_
};

}  // namespace ftvm::hostio
