// CLINT register decoding; see clint.h for the model.
#include "vm/clint.h"

#include <utility>

namespace ftvm::vm {
namespace {

// Reads `size` bytes at byte `shift` of a 64-bit register.
uint64_t extract(uint64_t reg, unsigned shift, unsigned size) {
  return size == 8 ? reg : (reg >> (8 * shift)) & 0xffff'ffffu;
}

// Replaces `size` bytes at byte `shift` of a 64-bit register.
uint64_t insert(uint64_t reg, unsigned shift, unsigned size, uint64_t value) {
  if (size == 8) return value;
  const uint64_t mask = uint64_t{0xffff'ffff} << (8 * shift);
  return (reg & ~mask) | ((value << (8 * shift)) & mask);
}

}  // namespace

Clint::Clint(std::function<uint64_t()> now, std::function<void()> on_change)
    : now_(std::move(now)), on_change_(std::move(on_change)) {}

bool Clint::read(uint64_t offset, unsigned size, uint64_t& value) {
  if (size != 4 && size != 8) return false;
  value = 0;
  if (offset == kMsipOffset) {
    value = s_.msip ? 1 : 0;
  } else if (offset >= kMtimecmpOffset && offset < kMtimecmpOffset + 8) {
    value = extract(s_.mtimecmp, static_cast<unsigned>(offset - kMtimecmpOffset), size);
  } else if (offset >= kMtimeOffset && offset < kMtimeOffset + 8) {
    value = extract(now_(), static_cast<unsigned>(offset - kMtimeOffset), size);
  }
  return true;
}

bool Clint::write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 4 && size != 8) return false;
  if (offset == kMsipOffset) {
    s_.msip = value & 1;
  } else if (offset >= kMtimecmpOffset && offset < kMtimecmpOffset + 8) {
    s_.mtimecmp =
        insert(s_.mtimecmp, static_cast<unsigned>(offset - kMtimecmpOffset), size, value);
  }
  if (on_change_) on_change_();
  return true;
}

void Clint::restore(const State& state) {
  s_ = state;
  if (on_change_) on_change_();
}

}  // namespace ftvm::vm
