// RISC-V's integer operations whose results C++ does not give directly:
// sign extension of 32-bit results, and division and remainder with the
// ISA's answers for a zero divisor and for signed overflow. Shared by the
// interpreter and the translator (which calls them from generated code).
#pragma once

#include <cstdint>

namespace ftvm::vm::int_ops {

inline uint64_t sext32(uint64_t v) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)));
}
inline uint64_t div(uint64_t ua, uint64_t ub) {
  const int64_t a = static_cast<int64_t>(ua), b = static_cast<int64_t>(ub);
  return b == 0 ? ~0ull : (a == INT64_MIN && b == -1) ? ua : static_cast<uint64_t>(a / b);
}
inline uint64_t divu(uint64_t a, uint64_t b) { return b == 0 ? ~0ull : a / b; }
inline uint64_t rem(uint64_t ua, uint64_t ub) {
  const int64_t a = static_cast<int64_t>(ua), b = static_cast<int64_t>(ub);
  return b == 0 ? ua : (a == INT64_MIN && b == -1) ? 0 : static_cast<uint64_t>(a % b);
}
inline uint64_t remu(uint64_t a, uint64_t b) { return b == 0 ? a : a % b; }
inline uint64_t divw(uint64_t ua, uint64_t ub) {
  const int32_t a = static_cast<int32_t>(ua), b = static_cast<int32_t>(ub);
  return b == 0 ? ~0ull
                : (a == INT32_MIN && b == -1) ? sext32(static_cast<uint32_t>(a))
                                              : sext32(static_cast<uint32_t>(a / b));
}
inline uint64_t divuw(uint64_t ua, uint64_t ub) {
  const uint32_t a = static_cast<uint32_t>(ua), b = static_cast<uint32_t>(ub);
  return b == 0 ? ~0ull : sext32(a / b);
}
inline uint64_t remw(uint64_t ua, uint64_t ub) {
  const int32_t a = static_cast<int32_t>(ua), b = static_cast<int32_t>(ub);
  return b == 0 ? sext32(static_cast<uint32_t>(a))
                : (a == INT32_MIN && b == -1) ? 0 : sext32(static_cast<uint32_t>(a % b));
}
inline uint64_t remuw(uint64_t ua, uint64_t ub) {
  const uint32_t a = static_cast<uint32_t>(ua), b = static_cast<uint32_t>(ub);
  return b == 0 ? sext32(a) : sext32(a % b);
}

}  // namespace ftvm::vm::int_ops
