// The core-local interruptor (SiFive CLINT) of the single hart: the software
// interrupt bit (msip) and the machine timer compare register (mtimecmp),
// with mtime readable for the guest.
//
// The CLINT keeps no clock of its own. mtime is whatever the machine's `now`
// function returns (a pure function of instret and logged time events), and
// guest writes to mtime are ignored. The CLINT does not drive interrupt lines
// either: the machine derives MTIP (mtime >= mtimecmp) and MSIP from
// mtimecmp() and msip(), and is told through `on_change` after every write
// that either may have changed.
#pragma once

#include <cstdint>
#include <functional>

#include "vm/device.h"

namespace ftvm::vm {

class Clint final : public Device {
 public:
  static constexpr uint64_t kBase = 0x200'0000;
  static constexpr uint64_t kSize = 0x1'0000;
  static constexpr uint64_t kMsipOffset = 0x0;
  static constexpr uint64_t kMtimecmpOffset = 0x4000;
  static constexpr uint64_t kMtimeOffset = 0xbff8;

  // Everything the CLINT holds; plain data, so snapshots can copy it.
  struct State {
    bool msip = false;
    uint64_t mtimecmp = ~uint64_t{0};  // reset: never fires
    bool operator==(const State&) const = default;
  };

  // `now` returns the machine's current mtime; `on_change` is invoked after
  // every accepted write and after restore(). Neither may call back into
  // the CLINT's read or write.
  Clint(std::function<uint64_t()> now, std::function<void()> on_change);

  // 4- and 8-byte accesses: msip (4 bytes; bit 0 writable, the rest read 0),
  // mtimecmp (8 bytes, or 4 bytes at either half), mtime (likewise; writes
  // ignored). Other offsets in the window read 0 and ignore writes. 1- and
  // 2-byte accesses are refused.
  [[nodiscard]] bool read(uint64_t offset, unsigned size, uint64_t& value) override;
  [[nodiscard]] bool write(uint64_t offset, unsigned size, uint64_t value) override;

  uint64_t mtimecmp() const { return s_.mtimecmp; }
  bool msip() const { return s_.msip; }

  State state() const { return s_; }
  void restore(const State& state);

 private:
  std::function<uint64_t()> now_;
  std::function<void()> on_change_;
  State s_;
};

}  // namespace ftvm::vm
