// Expansion of RV64GC compressed instructions to their 32-bit equivalents.
//
// One switch on the quadrant and funct3 (24 cases); each case gathers the
// scattered immediate bits and re-encodes them in the base format. Field
// layouts are those of the RISC-V unprivileged specification, chapter "C"
// (RVC instruction set listings), for RV64.
#include "vm/rvc.h"

#include <cstdint>

namespace ftvm::vm {
namespace {

constexpr uint32_t kLoad = 0x03;
constexpr uint32_t kLoadFp = 0x07;
constexpr uint32_t kOpImm = 0x13;
constexpr uint32_t kOpImm32 = 0x1b;
constexpr uint32_t kStore = 0x23;
constexpr uint32_t kStoreFp = 0x27;
constexpr uint32_t kOp = 0x33;
constexpr uint32_t kLui = 0x37;
constexpr uint32_t kOp32 = 0x3b;
constexpr uint32_t kBranch = 0x63;
constexpr uint32_t kJalr = 0x67;
constexpr uint32_t kJal = 0x6f;
constexpr uint32_t kEbreak = 0x00100073;

constexpr uint32_t kSp = 2;
constexpr uint32_t kRa = 1;

// Bits [hi:lo] of x, shifted down to bit 0.
constexpr uint32_t bits(uint32_t x, int hi, int lo) { return (x >> lo) & ((1u << (hi - lo + 1)) - 1); }
// Bit `pos` of x moved to bit `to`.
constexpr uint32_t bit(uint32_t x, int pos, int to) { return ((x >> pos) & 1) << to; }
// Sign-extends the low `width` bits of x.
constexpr uint32_t sext(uint32_t x, int width) {
  return static_cast<uint32_t>(static_cast<int32_t>(x << (32 - width)) >> (32 - width));
}

constexpr uint32_t i_type(uint32_t imm, uint32_t rs1, uint32_t funct3, uint32_t rd, uint32_t opcode) {
  return (imm << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode;
}
constexpr uint32_t s_type(uint32_t imm, uint32_t rs2, uint32_t rs1, uint32_t funct3, uint32_t opcode) {
  return (bits(imm, 11, 5) << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) |
         (bits(imm, 4, 0) << 7) | opcode;
}
constexpr uint32_t r_type(uint32_t funct7, uint32_t rs2, uint32_t rs1, uint32_t funct3, uint32_t rd,
                          uint32_t opcode) {
  return (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode;
}
constexpr uint32_t b_type(uint32_t imm, uint32_t rs2, uint32_t rs1, uint32_t funct3) {
  return (bit(imm, 12, 31)) | (bits(imm, 10, 5) << 25) | (rs2 << 20) | (rs1 << 15) |
         (funct3 << 12) | (bits(imm, 4, 1) << 8) | (bit(imm, 11, 7)) | kBranch;
}
constexpr uint32_t j_type(uint32_t imm, uint32_t rd) {
  return (bit(imm, 20, 31)) | (bits(imm, 10, 1) << 21) | (bit(imm, 11, 20)) |
         (bits(imm, 19, 12) << 12) | (rd << 7) | kJal;
}

// The 3-bit register fields name x8..x15 (or f8..f15).
constexpr uint32_t reg_prime(uint32_t x, int lo) { return bits(x, lo + 2, lo) + 8; }

// Immediates of the formats that share a layout.
constexpr uint32_t ci_imm6(uint32_t x) { return sext(bit(x, 12, 5) | bits(x, 6, 2), 6); }
constexpr uint32_t ci_shamt(uint32_t x) { return bit(x, 12, 5) | bits(x, 6, 2); }
// c.ld/c.sd/c.fld/c.fsd: uimm[5:3] = [12:10], uimm[7:6] = [6:5].
constexpr uint32_t cl_uimm_d(uint32_t x) { return (bits(x, 12, 10) << 3) | (bits(x, 6, 5) << 6); }
// c.lw/c.sw: uimm[5:3] = [12:10], uimm[2] = [6], uimm[6] = [5].
constexpr uint32_t cl_uimm_w(uint32_t x) {
  return (bits(x, 12, 10) << 3) | bit(x, 6, 2) | bit(x, 5, 6);
}
// c.j: offset[11|4|9:8|10|6|7|3:1|5] = [12|11|10:9|8|7|6|5:3|2].
constexpr uint32_t cj_offset(uint32_t x) {
  return sext(bit(x, 12, 11) | bit(x, 11, 4) | (bits(x, 10, 9) << 8) | bit(x, 8, 10) |
                  bit(x, 7, 6) | bit(x, 6, 7) | (bits(x, 5, 3) << 1) | bit(x, 2, 5),
              12);
}
// c.beqz/c.bnez: offset[8|4:3] = [12|11:10], offset[7:6|2:1|5] = [6:5|4:3|2].
constexpr uint32_t cb_offset(uint32_t x) {
  return sext(bit(x, 12, 8) | (bits(x, 11, 10) << 3) | (bits(x, 6, 5) << 6) |
                  (bits(x, 4, 3) << 1) | bit(x, 2, 5),
              9);
}

}  // namespace

uint32_t expand_compressed(uint16_t insn) {
  const uint32_t x = insn;
  const uint32_t rd = bits(x, 11, 7);  // also rs1 in CI/CR formats
  const uint32_t rs2 = bits(x, 6, 2);
  switch ((bits(x, 1, 0) << 3) | bits(x, 15, 13)) {
    // Quadrant 0.
    case 0b00'000: {  // c.addi4spn: nzuimm[5:4|9:6|2|3] = [12:11|10:7|6|5]
      const uint32_t imm =
          (bits(x, 12, 11) << 4) | (bits(x, 10, 7) << 6) | bit(x, 6, 2) | bit(x, 5, 3);
      if (imm == 0) return 0;  // reserved, including the all-zero instruction
      return i_type(imm, kSp, 0, reg_prime(x, 2), kOpImm);
    }
    case 0b00'001:  // c.fld
      return i_type(cl_uimm_d(x), reg_prime(x, 7), 3, reg_prime(x, 2), kLoadFp);
    case 0b00'010:  // c.lw
      return i_type(cl_uimm_w(x), reg_prime(x, 7), 2, reg_prime(x, 2), kLoad);
    case 0b00'011:  // c.ld
      return i_type(cl_uimm_d(x), reg_prime(x, 7), 3, reg_prime(x, 2), kLoad);
    case 0b00'100:  // reserved
      return 0;
    case 0b00'101:  // c.fsd
      return s_type(cl_uimm_d(x), reg_prime(x, 2), reg_prime(x, 7), 3, kStoreFp);
    case 0b00'110:  // c.sw
      return s_type(cl_uimm_w(x), reg_prime(x, 2), reg_prime(x, 7), 2, kStore);
    case 0b00'111:  // c.sd
      return s_type(cl_uimm_d(x), reg_prime(x, 2), reg_prime(x, 7), 3, kStore);

    // Quadrant 1.
    case 0b01'000:  // c.addi (c.nop, and HINTs for rd = 0 or imm = 0)
      return i_type(ci_imm6(x) & 0xfff, rd, 0, rd, kOpImm);
    case 0b01'001:  // c.addiw
      if (rd == 0) return 0;
      return i_type(ci_imm6(x) & 0xfff, rd, 0, rd, kOpImm32);
    case 0b01'010:  // c.li (HINT for rd = 0)
      return i_type(ci_imm6(x) & 0xfff, 0, 0, rd, kOpImm);
    case 0b01'011: {
      if (rd == kSp) {  // c.addi16sp: nzimm[9|4|6|8:7|5] = [12|6|5|4:3|2]
        const uint32_t imm = sext(bit(x, 12, 9) | bit(x, 6, 4) | bit(x, 5, 6) |
                                      (bits(x, 4, 3) << 7) | bit(x, 2, 5),
                                  10);
        if (imm == 0) return 0;
        return i_type(imm & 0xfff, kSp, 0, kSp, kOpImm);
      }
      // c.lui: nzimm[17|16:12] = [12|6:2] (HINT for rd = 0)
      const uint32_t imm = ci_imm6(x);
      if (imm == 0) return 0;
      return (imm << 12) | (rd << 7) | kLui;
    }
    case 0b01'100: {
      const uint32_t r = reg_prime(x, 7);
      switch (bits(x, 11, 10)) {
        case 0b00:  // c.srli (shamt = 0 is a HINT)
          return i_type(ci_shamt(x), r, 5, r, kOpImm);
        case 0b01:  // c.srai (shamt = 0 is a HINT)
          return i_type(ci_shamt(x) | 0x400, r, 5, r, kOpImm);
        case 0b10:  // c.andi
          return i_type(ci_imm6(x) & 0xfff, r, 7, r, kOpImm);
        default: {
          const uint32_t r2 = reg_prime(x, 2);
          switch (bit(x, 12, 2) | bits(x, 6, 5)) {
            case 0b000: return r_type(0x20, r2, r, 0, r, kOp);    // c.sub
            case 0b001: return r_type(0, r2, r, 4, r, kOp);       // c.xor
            case 0b010: return r_type(0, r2, r, 6, r, kOp);       // c.or
            case 0b011: return r_type(0, r2, r, 7, r, kOp);       // c.and
            case 0b100: return r_type(0x20, r2, r, 0, r, kOp32);  // c.subw
            case 0b101: return r_type(0, r2, r, 0, r, kOp32);     // c.addw
            default: return 0;                                    // reserved
          }
        }
      }
    }
    case 0b01'101:  // c.j
      return j_type(cj_offset(x), 0);
    case 0b01'110:  // c.beqz
      return b_type(cb_offset(x), 0, reg_prime(x, 7), 0);
    case 0b01'111:  // c.bnez
      return b_type(cb_offset(x), 0, reg_prime(x, 7), 1);

    // Quadrant 2.
    case 0b10'000:  // c.slli (HINT for rd = 0 or shamt = 0)
      return i_type(ci_shamt(x), rd, 1, rd, kOpImm);
    case 0b10'001:  // c.fldsp: uimm[5|4:3|8:6] = [12|6:5|4:2]
      return i_type(bit(x, 12, 5) | (bits(x, 6, 5) << 3) | (bits(x, 4, 2) << 6), kSp, 3, rd,
                    kLoadFp);
    case 0b10'010:  // c.lwsp: uimm[5|4:2|7:6] = [12|6:4|3:2]
      if (rd == 0) return 0;
      return i_type(bit(x, 12, 5) | (bits(x, 6, 4) << 2) | (bits(x, 3, 2) << 6), kSp, 2, rd, kLoad);
    case 0b10'011:  // c.ldsp
      if (rd == 0) return 0;
      return i_type(bit(x, 12, 5) | (bits(x, 6, 5) << 3) | (bits(x, 4, 2) << 6), kSp, 3, rd, kLoad);
    case 0b10'100:
      if (!bit(x, 12, 0)) {
        if (rs2 == 0) {  // c.jr
          if (rd == 0) return 0;
          return i_type(0, rd, 0, 0, kJalr);
        }
        return r_type(0, rs2, 0, 0, rd, kOp);  // c.mv (HINT for rd = 0)
      }
      if (rs2 == 0) {
        if (rd == 0) return kEbreak;         // c.ebreak
        return i_type(0, rd, 0, kRa, kJalr);  // c.jalr
      }
      return r_type(0, rs2, rd, 0, rd, kOp);  // c.add (HINT for rd = 0)
    case 0b10'101:  // c.fsdsp: uimm[5:3|8:6] = [12:10|9:7]
      return s_type((bits(x, 12, 10) << 3) | (bits(x, 9, 7) << 6), rs2, kSp, 3, kStoreFp);
    case 0b10'110:  // c.swsp: uimm[5:2|7:6] = [12:9|8:7]
      return s_type((bits(x, 12, 9) << 2) | (bits(x, 8, 7) << 6), rs2, kSp, 2, kStore);
    case 0b10'111:  // c.sdsp
      return s_type((bits(x, 12, 10) << 3) | (bits(x, 9, 7) << 6), rs2, kSp, 3, kStore);

    default:  // the low bits are 0b11: not a compressed instruction
      return 0;
  }
}

}  // namespace ftvm::vm
