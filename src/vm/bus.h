// The physical address space: RAM plus memory-mapped device windows.
//
// RAM is one contiguous host allocation at `ram_base`. Devices are looked up
// by address on every MMIO access (MMIO is never cached in a TLB). The bus
// owns RAM; devices are owned by the Machine and must outlive the bus.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "vm/device.h"

namespace ftvm::vm {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

class Bus {
 public:
  Bus(uint64_t ram_base, uint64_t ram_size);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Maps `dev` at [base, base+size). Windows must not overlap RAM or each other.
  void map(uint64_t base, uint64_t size, Device* dev, std::string name);

  uint64_t ram_base() const { return ram_base_; }
  uint64_t ram_size() const { return ram_size_; }
  uint8_t* ram() { return ram_; }
  const uint8_t* ram() const { return ram_; }

  bool in_ram(uint64_t pa, uint64_t len) const {
    return pa >= ram_base_ && pa - ram_base_ <= ram_size_ && len <= ram_size_ - (pa - ram_base_);
  }
  // Host pointer for RAM at `pa`, or nullptr if [pa, pa+len) is not all RAM.
  uint8_t* ram_ptr(uint64_t pa, uint64_t len) {
    return in_ram(pa, len) ? ram_ + (pa - ram_base_) : nullptr;
  }

  // Pages of RAM written since each of their two readers last looked:
  // whoever writes RAM other than through a hart write-TLB entry marks the
  // pages (the hart marks a page when it installs such an entry, and a
  // reader drops those entries when it clears its flags). One byte a page,
  // a flag per reader: kDirtyForHash for the machine's state digest,
  // kDirtyForTransfer for a live state transfer's rounds. All pages start
  // dirty for both.
  static constexpr uint8_t kDirtyForHash = 1;
  static constexpr uint8_t kDirtyForTransfer = 2;
  static constexpr uint8_t kDirtyAll = kDirtyForHash | kDirtyForTransfer;
  void mark_dirty(uint64_t pa, uint64_t len) {
    if (len == 0 || !in_ram(pa, len)) return;
    const uint64_t first = (pa - ram_base_) >> kPageShift;
    const uint64_t last = (pa - ram_base_ + len - 1) >> kPageShift;
    for (uint64_t p = first; p <= last; ++p) dirty_[p] = kDirtyAll;
  }
  void mark_all_dirty() { std::fill(dirty_.begin(), dirty_.end(), kDirtyAll); }
  // The flags, one byte a page. The hash is a cache of RAM, so this is
  // writable through a const Bus.
  std::vector<uint8_t>& dirty_pages() const { return dirty_; }

  // MMIO access of 1, 2, 4 or 8 bytes. Returns false (an access fault) when no
  // device claims the address or the device refuses the access.
  [[nodiscard]] bool mmio_read(uint64_t pa, unsigned size, uint64_t& value);
  [[nodiscard]] bool mmio_write(uint64_t pa, unsigned size, uint64_t value);

 private:
  struct Window {
    uint64_t base;
    uint64_t size;
    Device* dev;
    std::string name;
  };
  const Window* find(uint64_t pa, unsigned size) const;

  uint64_t ram_base_;
  uint64_t ram_size_;
  uint8_t* ram_;
  mutable std::vector<uint8_t> dirty_;
  std::vector<Window> windows_;
};

}  // namespace ftvm::vm
