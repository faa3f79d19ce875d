// Bounds-checked access to guest RAM for devices that do DMA.
//
// Devices read and write guest memory only through a GuestMemory: every
// access names a guest-physical range, and the range is checked against RAM
// (without overflow, for any 64-bit address and length a hostile guest may
// write into a descriptor) before a single host byte is touched. A range that
// is not entirely RAM is refused and nothing is read or written.
//
// Every write, and every range handed out by writable(), is reported to the
// write observer before the bytes change. The machine uses it to invalidate
// the hart's decoded code for those pages (and, later, to mark pages dirty);
// a device write that bypassed it could leave stale decoded instructions.
//
// Guest memory is little-endian, as RV64 is; so is every host ftvm runs on.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <utility>

#include "vm/bus.h"

namespace ftvm::vm {

static_assert(std::endian::native == std::endian::little,
              "guest memory accessors assume a little-endian host");

// A guest-physical byte range.
struct GuestRange {
  uint64_t addr = 0;
  uint64_t len = 0;
  bool operator==(const GuestRange&) const = default;
};

class GuestMemory {
 public:
  // Called with (pa, len) before device bytes land in [pa, pa+len).
  using WriteObserver = std::function<void(uint64_t pa, uint64_t len)>;

  // `ram` is the host copy of guest RAM [ram_base, ram_base+ram_size); it
  // must stay valid (and at the same address) as long as this object and
  // its copies are used.
  GuestMemory(uint8_t* ram, uint64_t ram_base, uint64_t ram_size, WriteObserver on_write = {})
      : ram_(ram), base_(ram_base), size_(ram_size), on_write_(std::move(on_write)) {}

  // The RAM of `bus`; the bus must outlive this object.
  static GuestMemory of(Bus& bus, WriteObserver on_write = {}) {
    return GuestMemory(bus.ram(), bus.ram_base(), bus.ram_size(), std::move(on_write));
  }

  uint64_t ram_base() const { return base_; }
  uint64_t ram_size() const { return size_; }

  // True if [pa, pa+len) lies entirely in RAM. An empty range is contained
  // if pa is inside RAM or exactly at its end.
  bool contains(uint64_t pa, uint64_t len) const {
    return pa >= base_ && pa - base_ <= size_ && len <= size_ - (pa - base_);
  }

  // Host pointers to a checked range, or nullptr if it is not all RAM.
  // writable() reports the whole range to the write observer first: the
  // caller may then write any of its bytes until it next runs guest code.
  const uint8_t* readable(uint64_t pa, uint64_t len) const {
    return contains(pa, len) ? ram_ + (pa - base_) : nullptr;
  }
  uint8_t* writable(uint64_t pa, uint64_t len) {
    if (!contains(pa, len)) return nullptr;
    if (on_write_ && len != 0) on_write_(pa, len);
    return ram_ + (pa - base_);
  }

  [[nodiscard]] bool read(uint64_t pa, std::span<uint8_t> out) const {
    const uint8_t* p = readable(pa, out.size());
    if (p == nullptr) return false;
    if (!out.empty()) std::memcpy(out.data(), p, out.size());
    return true;
  }
  [[nodiscard]] bool write(uint64_t pa, std::span<const uint8_t> in) {
    uint8_t* p = writable(pa, in.size());
    if (p == nullptr) return false;
    if (!in.empty()) std::memcpy(p, in.data(), in.size());
    return true;
  }

  std::optional<uint16_t> read_u16(uint64_t pa) const { return read_le<uint16_t>(pa); }
  std::optional<uint32_t> read_u32(uint64_t pa) const { return read_le<uint32_t>(pa); }
  std::optional<uint64_t> read_u64(uint64_t pa) const { return read_le<uint64_t>(pa); }
  [[nodiscard]] bool write_u16(uint64_t pa, uint16_t v) { return write_le(pa, v); }
  [[nodiscard]] bool write_u32(uint64_t pa, uint32_t v) { return write_le(pa, v); }

 private:
  template <typename T>
  std::optional<T> read_le(uint64_t pa) const {
    const uint8_t* p = readable(pa, sizeof(T));
    if (p == nullptr) return std::nullopt;
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  template <typename T>
  bool write_le(uint64_t pa, T v) {
    uint8_t* p = writable(pa, sizeof(T));
    if (p == nullptr) return false;
    std::memcpy(p, &v, sizeof(T));
    return true;
  }

  uint8_t* ram_;
  uint64_t base_;
  uint64_t size_;
  WriteObserver on_write_;
};

}  // namespace ftvm::vm
