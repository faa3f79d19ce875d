// The test finisher ("sifive,test0"): the guest powers the machine off or
// resets it by writing one word, as Linux's syscon-poweroff and syscon-reboot
// drivers do on QEMU's virt machine.
//
// A write of 0x5555 to offset 0 asks for power-off with status 0;
// (code << 16) | 0x3333 for power-off with status `code`; 0x7777 for a reset.
// The device only reports the request; the machine decides what happens.
// Other values, and other offsets, are ignored. Reads return 0.
#pragma once

#include <cstdint>
#include <functional>

#include "vm/device.h"

namespace ftvm::vm {

enum class PowerAction { kPowerOff, kReset };

class PowerDevice final : public Device {
 public:
  static constexpr uint64_t kBase = 0x10'0000;
  static constexpr uint64_t kSize = 0x1000;
  static constexpr uint32_t kPass = 0x5555;
  static constexpr uint32_t kFail = 0x3333;
  static constexpr uint32_t kReset = 0x7777;

  // The device holds no state; the struct exists so every device snapshots
  // alike.
  struct State {
    bool operator==(const State&) const = default;
  };

  // `on_request` is called during the guest's write, with the status (0 for
  // a reset). It may stop the machine but must not call back into the device.
  explicit PowerDevice(std::function<void(PowerAction, uint32_t status)> on_request);

  // 2- and 4-byte accesses, as QEMU takes; 1- and 8-byte accesses are refused.
  [[nodiscard]] bool read(uint64_t offset, unsigned size, uint64_t& value) override;
  [[nodiscard]] bool write(uint64_t offset, unsigned size, uint64_t value) override;

  State state() const { return {}; }
  void restore(const State&) {}

 private:
  std::function<void(PowerAction, uint32_t)> on_request_;
};

}  // namespace ftvm::vm
