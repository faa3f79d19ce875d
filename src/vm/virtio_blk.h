// virtio block device (virtio-blk, device id 2, virtio 1.1 §5.2) and the
// BlockBackend seam through which it reaches a disk.
//
// One queue ("requestq"). A request is a 16-byte header in the chain's
// readable bytes (u32 type, u32 reserved, u64 sector), data (readable for
// writes, writable for reads and GET_ID), and a status byte, the last
// writable byte. Buffers may be split or merged across descriptors in any
// way; the device treats the readable and writable buffers as two byte
// streams. Requests complete synchronously, inside the notifying register
// write, in the order the driver made them available.
//
//   VIRTIO_BLK_T_IN (0)      read data at `sector` into the writable bytes
//   VIRTIO_BLK_T_OUT (1)     write the readable bytes after the header at
//                            `sector`; IOERR, writing nothing, on a
//                            read-only disk
//   VIRTIO_BLK_T_FLUSH (4)   BlockBackend::flush() (fdatasync for image
//                            files) before the request completes
//   VIRTIO_BLK_T_GET_ID (8)  the serial, up to 20 bytes, NUL-padded
//   anything else            UNSUPP
//
// Data lengths of reads and writes must be whole 512-byte sectors and lie
// within the capacity, checked without overflow; otherwise IOERR and no data
// moves. A host I/O error also completes the request with IOERR (a read's
// data bytes all zeroed, however far it got); it is counted in host_errors()
// and described in last_host_error(). Since the guest then saw something
// another host's copy would not give it, a replicated machine needs
// DiskFaults (below): the live side logs each failure, a replica completes
// the same request the same way.
//
// A writable disk's contents are guest state: the device marks every
// kTrackBlockBytes block a write touches (dirty_blocks(), one byte a block,
// set before the write so a write that fails half-way is covered too), and
// the machine's state digest rehashes exactly those blocks.
//
// A request the device cannot parse (fewer than 16 readable bytes, no
// writable byte for the status) puts the device in DEVICE_NEEDS_RESET, as
// QEMU does.
//
// Features: VIRTIO_BLK_F_SEG_MAX (seg_max = queue size - 2, the header and
// status taking the other two descriptors), VIRTIO_BLK_F_BLK_SIZE (512),
// VIRTIO_BLK_F_FLUSH, and VIRTIO_BLK_F_RO for read-only disks. Capacity is
// the disk size in 512-byte sectors, rounded down; a partial last sector is
// not reachable.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"
#include "vm/virtio_mmio.h"

namespace ftvm::vm {

// A disk, addressed in bytes. Callers keep every access within size().
class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  // Bytes; fixed for the backend's lifetime.
  virtual uint64_t size() const = 0;
  virtual bool read_only() const = 0;
  [[nodiscard]] virtual Status read(uint64_t offset, std::span<uint8_t> out) = 0;
  // Never called on a read-only backend by VirtioBlk.
  [[nodiscard]] virtual Status write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Makes every write that returned before it durable.
  [[nodiscard]] virtual Status flush() = 0;
};

// A disk held in memory: for tests, and for disks whose contents are part
// of the machine state.
class MemoryBlockBackend final : public BlockBackend {
 public:
  explicit MemoryBlockBackend(std::vector<uint8_t> bytes, bool read_only = false)
      : bytes_(std::move(bytes)), read_only_(read_only) {}

  uint64_t size() const override { return bytes_.size(); }
  bool read_only() const override { return read_only_; }
  Status read(uint64_t offset, std::span<uint8_t> out) override;
  Status write(uint64_t offset, std::span<const uint8_t> data) override;
  Status flush() override;

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  unsigned flush_count() const { return flushes_; }
  // While set, every operation fails as a host I/O error would.
  void set_failing(bool failing) { failing_ = failing; }

 private:
  std::vector<uint8_t> bytes_;
  bool read_only_;
  bool failing_ = false;
  unsigned flushes_ = 0;
};

// One virtio-blk request, as DiskFaults sees it.
struct DiskRequest {
  uint32_t type = 0;    // VirtioBlk::kTypeIn, kTypeOut or kTypeFlush
  uint64_t sector = 0;  // 0 for a flush
  uint64_t length = 0;  // data bytes (0 for a flush)
  bool operator==(const DiskRequest&) const = default;
};

// How host I/O failures of a disk become the same guest-visible outcome on
// every copy of a machine (ft:: logs them on the live side and replays them
// on a replica). Called from inside the notifying register write, at the
// machine's current instret.
class DiskFaults {
 public:
  virtual ~DiskFaults() = default;
  // What the recording did with a request before this host performs it.
  struct Recorded {
    bool failed = false;  // complete with IOERR without performing it
    // A failed write: the recording host's contents over the request's
    // range after its failure, for this copy to take (nullopt: none; the
    // disk is left alone).
    std::optional<std::vector<uint8_t>> after;
  };
  virtual Recorded recorded(const DiskRequest& request) = 0;
  // `request` failed on this host (and recorded() had not said it would).
  // For a write, `after` is this host's contents over the request's range,
  // read back after the failure (nullopt: unreadable too).
  virtual void failed(const DiskRequest& request, const std::optional<std::vector<uint8_t>>& after,
                      const std::string& why) = 0;
};

class VirtioBlk final : public VirtioDeviceBackend {
 public:
  static constexpr uint64_t kSectorSize = 512;
  static constexpr size_t kIdBytes = 20;  // VIRTIO_BLK_ID_BYTES

  // Request types and status values.
  static constexpr uint32_t kTypeIn = 0;
  static constexpr uint32_t kTypeOut = 1;
  static constexpr uint32_t kTypeFlush = 4;
  static constexpr uint32_t kTypeGetId = 8;
  static constexpr uint8_t kStatusOk = 0;
  static constexpr uint8_t kStatusIoErr = 1;
  static constexpr uint8_t kStatusUnsupp = 2;

  // Feature bits.
  static constexpr unsigned kFSegMax = 2;
  static constexpr unsigned kFRo = 5;
  static constexpr unsigned kFBlkSize = 6;
  static constexpr unsigned kFFlush = 9;

  // Configuration space: struct virtio_blk_config up to the write-zeroes
  // fields (virtio 1.1); only capacity, seg_max and blk_size are non-zero.
  static constexpr uint32_t kConfigSize = 60;

  // The device keeps no state of its own (all of it is the transport's and
  // the disk's); State exists so snapshot code can treat every device alike.
  struct State {
    bool operator==(const State&) const = default;
    template <typename F>
    void for_each_field(F&&) const {}
  };

  // `disk` must outlive the device. `serial` is what GET_ID returns (Linux
  // shows it in /sys/block/vdX/serial); only its first 20 bytes are used.
  VirtioBlk(BlockBackend* disk, std::string serial);

  uint32_t device_id() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override;
  unsigned num_queues() const override { return 1; }
  uint32_t config_size() const override { return kConfigSize; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override;
  void on_notify(Virtqueue& queue) override;

  uint64_t capacity_sectors() const { return disk_->size() / kSectorSize; }
  BlockBackend* disk() const { return disk_; }

  // Blocks written since their flag was last cleared (by whoever hashes
  // them); all set at first, since nothing has hashed them yet.
  static constexpr uint64_t kTrackBlockBytes = 4096;
  // A failed write longer than this is reported as unreadable rather than
  // read back into memory.
  static constexpr uint64_t kMaxReadBack = uint64_t{64} << 20;
  // One flag per reader, as the bus does for RAM pages: kBlockDirtyForHash
  // for the state digest; kBlockDirtyForTransfer, once start_transfer_tracking()
  // has run, for a live state transfer's rounds.
  static constexpr uint8_t kBlockDirtyForHash = 1;
  static constexpr uint8_t kBlockDirtyForTransfer = 2;
  std::vector<uint8_t>& dirty_blocks() { return dirty_; }
  void mark_all_dirty() {
    for (uint8_t& d : dirty_) d |= kBlockDirtyForHash;
  }
  // Marks every block for the transfer; from now on writes mark them again.
  void start_transfer_tracking() {
    transfer_tracking_ = true;
    for (uint8_t& d : dirty_) d |= kBlockDirtyForTransfer;
  }
  void stop_transfer_tracking() {
    transfer_tracking_ = false;
    for (uint8_t& d : dirty_) d &= static_cast<uint8_t>(~kBlockDirtyForTransfer);
  }
  // The blocks marked for the transfer (ascending), their marks cleared.
  std::vector<uint32_t> take_transfer_dirty_blocks();
  uint64_t host_errors() const { return host_errors_; }
  const std::string& last_host_error() const { return last_host_error_; }
  // May be null (the default): failures only complete with IOERR. Must
  // outlive the device.
  void set_faults(DiskFaults* faults) { faults_ = faults; }

  State state() const { return {}; }
  void restore(const State&) {}

 private:
  // Handles one request; false if it was malformed (the device failed).
  bool handle(Virtqueue& queue, const DescriptorChain& chain);
  uint8_t do_read(Virtqueue& queue, const DescriptorChain& chain, uint64_t sector,
                  uint64_t len);
  uint8_t do_write(Virtqueue& queue, const DescriptorChain& chain, uint64_t sector,
                   uint64_t len);
  bool in_range(uint64_t sector, uint64_t len) const;
  void host_error(const std::string& what, const Status& status);
  void mark_dirty(uint64_t off, uint64_t len);
  void zero_data(Virtqueue& queue, const DescriptorChain& chain, uint64_t len);
  // A failed request: counts it and tells faults_ (reading a write's range back).
  void report_failure(const DiskRequest& request);
  // A request the recording saw fail: takes its recorded contents; IOERR.
  uint8_t replay_failure(Virtqueue& queue, const DescriptorChain& chain,
                         const DiskRequest& request, DiskFaults::Recorded recorded);

  BlockBackend* disk_;
  DiskFaults* faults_ = nullptr;
  std::string serial_;
  std::vector<uint8_t> dirty_;
  bool transfer_tracking_ = false;
  uint64_t host_errors_ = 0;
  std::string last_host_error_;
};

}  // namespace ftvm::vm
