// Memory-mapped devices of the machine and the interrupt wiring between them.
//
// A Device answers loads and stores inside its window of the physical address
// space. Devices are deterministic: what they return and do may depend only on
// their own state, on what the guest wrote, on the machine's virtual time and
// on events the machine applies between instructions — never on the host.
#pragma once

#include <cstdint>

namespace ftvm::vm {

class Device {
 public:
  virtual ~Device() = default;

  // `offset` is relative to the device's base; `size` is 1, 2, 4 or 8 and the
  // access is naturally aligned. Return false for an access the device does
  // not support; the hart turns that into an access-fault trap.
  [[nodiscard]] virtual bool read(uint64_t offset, unsigned size, uint64_t& value) = 0;
  [[nodiscard]] virtual bool write(uint64_t offset, unsigned size, uint64_t value) = 0;
};

// A level-triggered interrupt input (a PLIC source, a hart's external line).
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void set_level(bool high) = 0;
};

}  // namespace ftvm::vm
