// RV64GC instruction decoding into DecodedInsn (see decode.h).
#include "vm/decode.h"

#include "vm/rvc.h"

namespace ftvm::vm {
namespace {

const char* const kOpNames[] = {
#define FTVM_OP_NAME(name) #name,
    FTVM_OPS(FTVM_OP_NAME)
#undef FTVM_OP_NAME
};

int32_t imm_i(uint32_t x) { return static_cast<int32_t>(x) >> 20; }
int32_t imm_s(uint32_t x) {
  return ((static_cast<int32_t>(x) >> 25) << 5) | static_cast<int32_t>((x >> 7) & 0x1f);
}
int32_t imm_b(uint32_t x) {
  uint32_t v = ((x >> 31) & 1) << 12 | ((x >> 7) & 1) << 11 | ((x >> 25) & 0x3f) << 5 |
               ((x >> 8) & 0xf) << 1;
  return static_cast<int32_t>(v << 19) >> 19;
}
int32_t imm_u(uint32_t x) { return static_cast<int32_t>(x & 0xfffff000u); }
int32_t imm_j(uint32_t x) {
  uint32_t v = ((x >> 31) & 1) << 20 | ((x >> 12) & 0xff) << 12 | ((x >> 20) & 1) << 11 |
               ((x >> 21) & 0x3ff) << 1;
  return static_cast<int32_t>(v << 11) >> 11;
}

uint8_t int_rd(uint32_t x) {
  uint8_t rd = (x >> 7) & 0x1f;
  return rd == 0 ? kSinkReg : rd;
}

// Decodes a 32-bit instruction; returns false if it is illegal.
bool decode32(uint32_t x, DecodedInsn& d) {
  const uint32_t opcode = x & 0x7f;
  const uint32_t funct3 = (x >> 12) & 7;
  const uint32_t funct7 = x >> 25;
  const uint8_t rd = int_rd(x);
  d.rs1 = (x >> 15) & 0x1f;
  d.rs2 = (x >> 20) & 0x1f;
  d.rs3 = x >> 27;
  d.rm = funct3;
  d.rd = rd;
  auto set = [&](Op op, int32_t imm = 0) {
    d.op = op;
    d.imm = imm;
    return true;
  };
  switch (opcode) {
    case 0x37: return set(kLui, imm_u(x));
    case 0x17: return set(kAuipc, imm_u(x));
    case 0x6f: return set(kJal, imm_j(x));
    case 0x67: return funct3 == 0 && set(kJalr, imm_i(x));
    case 0x63: {
      static constexpr Op ops[8] = {kBeq, kBne, kIllegal, kIllegal, kBlt, kBge, kBltu, kBgeu};
      return ops[funct3] != kIllegal && set(ops[funct3], imm_b(x));
    }
    case 0x03: {
      static constexpr Op ops[8] = {kLb, kLh, kLw, kLd, kLbu, kLhu, kLwu, kIllegal};
      return ops[funct3] != kIllegal && set(ops[funct3], imm_i(x));
    }
    case 0x23: {
      static constexpr Op ops[8] = {kSb, kSh, kSw, kSd, kIllegal, kIllegal, kIllegal, kIllegal};
      return ops[funct3] != kIllegal && set(ops[funct3], imm_s(x));
    }
    case 0x13: {
      const int32_t imm = imm_i(x);
      const uint32_t funct6 = x >> 26;
      const int32_t shamt = (x >> 20) & 63;
      switch (funct3) {
        case 0: return set(kAddi, imm);
        case 2: return set(kSlti, imm);
        case 3: return set(kSltiu, imm);
        case 4: return set(kXori, imm);
        case 6: return set(kOri, imm);
        case 7: return set(kAndi, imm);
        case 1: return funct6 == 0 && set(kSlli, shamt);
        case 5:
          if (funct6 == 0) return set(kSrli, shamt);
          if (funct6 == 0x10) return set(kSrai, shamt);
          return false;
      }
      return false;
    }
    case 0x1b: {
      const int32_t shamt = (x >> 20) & 31;
      switch (funct3) {
        case 0: return set(kAddiw, imm_i(x));
        case 1: return funct7 == 0 && set(kSlliw, shamt);
        case 5:
          if (funct7 == 0) return set(kSrliw, shamt);
          if (funct7 == 0x20) return set(kSraiw, shamt);
          return false;
      }
      return false;
    }
    case 0x33: {
      if (funct7 == 0) {
        static constexpr Op ops[8] = {kAdd, kSll, kSlt, kSltu, kXor, kSrl, kOr, kAnd};
        return set(ops[funct3]);
      }
      if (funct7 == 0x20) {
        if (funct3 == 0) return set(kSub);
        if (funct3 == 5) return set(kSra);
        return false;
      }
      if (funct7 == 1) {
        static constexpr Op ops[8] = {kMul, kMulh, kMulhsu, kMulhu, kDiv, kDivu, kRem, kRemu};
        return set(ops[funct3]);
      }
      return false;
    }
    case 0x3b: {
      if (funct7 == 0) {
        if (funct3 == 0) return set(kAddw);
        if (funct3 == 1) return set(kSllw);
        if (funct3 == 5) return set(kSrlw);
        return false;
      }
      if (funct7 == 0x20) {
        if (funct3 == 0) return set(kSubw);
        if (funct3 == 5) return set(kSraw);
        return false;
      }
      if (funct7 == 1) {
        static constexpr Op ops[8] = {kMulw, kIllegal, kIllegal, kIllegal,
                                      kDivw, kDivuw,   kRemw,    kRemuw};
        return ops[funct3] != kIllegal && set(ops[funct3]);
      }
      return false;
    }
    case 0x0f:
      if (funct3 == 0) return set(kFence);
      if (funct3 == 1) return set(kFenceI);
      return false;
    case 0x73: {
      if (funct3 == 0) {
        if (x == 0x00000073) return set(kEcall);
        if (x == 0x00100073) return set(kEbreak);
        if (x == 0x30200073) return set(kMret);
        if (x == 0x10200073) return set(kSret);
        if (x == 0x10500073) return set(kWfi);
        if (funct7 == 0x09 && ((x >> 7) & 0x1f) == 0) return set(kSfenceVma);
        return false;
      }
      static constexpr Op ops[8] = {kIllegal, kCsrrw,  kCsrrs,  kCsrrc,
                                    kIllegal, kCsrrwi, kCsrrsi, kCsrrci};
      return ops[funct3] != kIllegal && set(ops[funct3], static_cast<int32_t>(x >> 20));
    }
    case 0x2f: {
      if (funct3 != 2 && funct3 != 3) return false;
      const bool w = funct3 == 2;
      switch (x >> 27) {
        case 0x02: return d.rs2 == 0 && set(w ? kLrW : kLrD);
        case 0x03: return set(w ? kScW : kScD);
        case 0x01: return set(w ? kAmoswapW : kAmoswapD);
        case 0x00: return set(w ? kAmoaddW : kAmoaddD);
        case 0x04: return set(w ? kAmoxorW : kAmoxorD);
        case 0x0c: return set(w ? kAmoandW : kAmoandD);
        case 0x08: return set(w ? kAmoorW : kAmoorD);
        case 0x10: return set(w ? kAmominW : kAmominD);
        case 0x14: return set(w ? kAmomaxW : kAmomaxD);
        case 0x18: return set(w ? kAmominuW : kAmominuD);
        case 0x1c: return set(w ? kAmomaxuW : kAmomaxuD);
      }
      return false;
    }
    case 0x07:
      d.rd = (x >> 7) & 0x1f;
      if (funct3 == 2) return set(kFlw, imm_i(x));
      if (funct3 == 3) return set(kFld, imm_i(x));
      return false;
    case 0x27:
      if (funct3 == 2) return set(kFsw, imm_s(x));
      if (funct3 == 3) return set(kFsd, imm_s(x));
      return false;
    case 0x43: case 0x47: case 0x4b: case 0x4f: {
      const uint32_t fmt = (x >> 25) & 3;
      if (fmt > 1 || funct3 == 5 || funct3 == 6) return false;
      d.rd = (x >> 7) & 0x1f;
      static constexpr Op s_ops[4] = {kFmaddS, kFmsubS, kFnmsubS, kFnmaddS};
      static constexpr Op d_ops[4] = {kFmaddD, kFmsubD, kFnmsubD, kFnmaddD};
      return set(fmt == 0 ? s_ops[(opcode >> 2) & 3] : d_ops[(opcode >> 2) & 3]);
    }
    case 0x53: {
      const uint32_t fmt = funct7 & 3;
      if (fmt > 1) return false;
      const bool dbl = fmt == 1;
      const uint32_t funct5 = funct7 >> 2;
      const bool rm_ok = funct3 != 5 && funct3 != 6;
      const uint8_t frd = (x >> 7) & 0x1f;
      switch (funct5) {
        case 0x00: d.rd = frd; return rm_ok && set(dbl ? kFaddD : kFaddS);
        case 0x01: d.rd = frd; return rm_ok && set(dbl ? kFsubD : kFsubS);
        case 0x02: d.rd = frd; return rm_ok && set(dbl ? kFmulD : kFmulS);
        case 0x03: d.rd = frd; return rm_ok && set(dbl ? kFdivD : kFdivS);
        case 0x0b: d.rd = frd; return rm_ok && d.rs2 == 0 && set(dbl ? kFsqrtD : kFsqrtS);
        case 0x04:
          d.rd = frd;
          if (funct3 == 0) return set(dbl ? kFsgnjD : kFsgnjS);
          if (funct3 == 1) return set(dbl ? kFsgnjnD : kFsgnjnS);
          if (funct3 == 2) return set(dbl ? kFsgnjxD : kFsgnjxS);
          return false;
        case 0x05:
          d.rd = frd;
          if (funct3 == 0) return set(dbl ? kFminD : kFminS);
          if (funct3 == 1) return set(dbl ? kFmaxD : kFmaxS);
          return false;
        case 0x08:
          d.rd = frd;
          if (!rm_ok) return false;
          if (!dbl && d.rs2 == 1) return set(kFcvtSD);
          if (dbl && d.rs2 == 0) return set(kFcvtDS);
          return false;
        case 0x14:
          if (funct3 == 2) return set(dbl ? kFeqD : kFeqS);
          if (funct3 == 1) return set(dbl ? kFltD : kFltS);
          if (funct3 == 0) return set(dbl ? kFleD : kFleS);
          return false;
        case 0x18: {
          if (!rm_ok || d.rs2 > 3) return false;
          static constexpr Op s_ops[4] = {kFcvtWS, kFcvtWuS, kFcvtLS, kFcvtLuS};
          static constexpr Op d_ops[4] = {kFcvtWD, kFcvtWuD, kFcvtLD, kFcvtLuD};
          return set(dbl ? d_ops[d.rs2] : s_ops[d.rs2]);
        }
        case 0x1a: {
          d.rd = frd;
          if (!rm_ok || d.rs2 > 3) return false;
          static constexpr Op s_ops[4] = {kFcvtSW, kFcvtSWu, kFcvtSL, kFcvtSLu};
          static constexpr Op d_ops[4] = {kFcvtDW, kFcvtDWu, kFcvtDL, kFcvtDLu};
          return set(dbl ? d_ops[d.rs2] : s_ops[d.rs2]);
        }
        case 0x1c:
          if (d.rs2 != 0) return false;
          if (funct3 == 0) return set(dbl ? kFmvXD : kFmvXW);
          if (funct3 == 1) return set(dbl ? kFclassD : kFclassS);
          return false;
        case 0x1e:
          d.rd = frd;
          return d.rs2 == 0 && funct3 == 0 && set(dbl ? kFmvDX : kFmvWX);
      }
      return false;
    }
  }
  return false;
}

}  // namespace

const char* op_name(Op op) { return op < kOpCount ? kOpNames[op] : "?"; }

DecodedInsn decode(uint32_t insn) {
  DecodedInsn d;
  uint32_t x = insn;
  d.len = 4;
  if ((insn & 3) != 3) {
    d.len = 2;
    x = expand_compressed(static_cast<uint16_t>(insn));
  }
  if (x == 0 || !decode32(x, d)) {
    DecodedInsn bad;
    bad.op = kIllegal;
    bad.len = d.len;
    bad.imm = static_cast<int32_t>((insn & 3) != 3 ? (insn & 0xffff) : insn);
    bad.rd = kSinkReg;
    return bad;
  }
  return d;
}

}  // namespace ftvm::vm
