// Encoders of the few RV64I instructions the machine-level unit tests put
// in RAM by hand (tests only).
#pragma once

#include <cstdint>

namespace ftvm::vm::testing {

inline uint32_t Addi(unsigned rd, unsigned rs1, int imm) {
  return (static_cast<uint32_t>(imm & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x13;
}
inline uint32_t Sd(unsigned rs2, unsigned rs1) {
  return (rs2 << 20) | (rs1 << 15) | (3u << 12) | 0x23;
}
inline uint32_t Slli(unsigned rd, unsigned rs1, unsigned shamt) {
  return ((shamt & 0x3f) << 20) | (rs1 << 15) | (1u << 12) | (rd << 7) | 0x13;
}
inline uint32_t Lui(unsigned rd, uint32_t imm20) { return (imm20 << 12) | (rd << 7) | 0x37; }
inline uint32_t Add(unsigned rd, unsigned rs1, unsigned rs2) {
  return (rs2 << 20) | (rs1 << 15) | (rd << 7) | 0x33;
}
inline uint32_t Sw(unsigned rs2, unsigned rs1) {
  return (rs2 << 20) | (rs1 << 15) | (2u << 12) | 0x23;
}
inline uint32_t Blt(unsigned rs1, unsigned rs2, int off) {
  const uint32_t u = static_cast<uint32_t>(off);
  return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
         (4u << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
inline uint32_t Jal0(int off) {
  const uint32_t i = static_cast<uint32_t>(off);
  return (((i >> 20) & 1) << 31) | (((i >> 1) & 0x3ff) << 21) | (((i >> 11) & 1) << 20) |
         (((i >> 12) & 0xff) << 12) | 0x6f;
}

}  // namespace ftvm::vm::testing
