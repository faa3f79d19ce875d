// Test-finisher decoding; see power.h.
#include "vm/power.h"

#include <utility>

namespace ftvm::vm {

PowerDevice::PowerDevice(std::function<void(PowerAction, uint32_t)> on_request)
    : on_request_(std::move(on_request)) {}

bool PowerDevice::read(uint64_t offset, unsigned size, uint64_t& value) {
  if (size != 2 && size != 4) return false;
  value = 0;
  return true;
}

bool PowerDevice::write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 2 && size != 4) return false;
  if (offset != 0 || !on_request_) return true;
  const auto word = static_cast<uint32_t>(value);
  const uint32_t command = word & 0xffff;
  const uint32_t code = word >> 16;
  if (command == kPass) {
    on_request_(PowerAction::kPowerOff, 0);
  } else if (command == kFail) {
    on_request_(PowerAction::kPowerOff, code);
  } else if (command == kReset) {
    on_request_(PowerAction::kReset, 0);
  }
  return true;
}

}  // namespace ftvm::vm
