// The pre-decoded form of RV64GC instructions that the interpreter executes.
//
// Decoding happens once per instruction slot of a code page; the interpreter
// then dispatches on `op` with computed goto. Register numbers are resolved at
// decode time: a write to x0 is redirected to the sink register 32, so
// handlers never test for rd == 0.
#pragma once

#include <cstdint>

namespace ftvm::vm {

#define FTVM_OPS(X)                                                                        \
  X(kDecode) X(kPageEnd) X(kIllegal) X(kNop)                                               \
  X(kLui) X(kAuipc) X(kJal) X(kJalr)                                                       \
  X(kBeq) X(kBne) X(kBlt) X(kBge) X(kBltu) X(kBgeu)                                        \
  X(kLb) X(kLh) X(kLw) X(kLd) X(kLbu) X(kLhu) X(kLwu)                                      \
  X(kSb) X(kSh) X(kSw) X(kSd)                                                              \
  X(kAddi) X(kSlti) X(kSltiu) X(kXori) X(kOri) X(kAndi) X(kSlli) X(kSrli) X(kSrai)         \
  X(kAdd) X(kSub) X(kSll) X(kSlt) X(kSltu) X(kXor) X(kSrl) X(kSra) X(kOr) X(kAnd)          \
  X(kAddiw) X(kSlliw) X(kSrliw) X(kSraiw)                                                  \
  X(kAddw) X(kSubw) X(kSllw) X(kSrlw) X(kSraw)                                             \
  X(kMul) X(kMulh) X(kMulhsu) X(kMulhu) X(kDiv) X(kDivu) X(kRem) X(kRemu)                  \
  X(kMulw) X(kDivw) X(kDivuw) X(kRemw) X(kRemuw)                                           \
  X(kFence) X(kFenceI) X(kEcall) X(kEbreak) X(kMret) X(kSret) X(kWfi) X(kSfenceVma)        \
  X(kCsrrw) X(kCsrrs) X(kCsrrc) X(kCsrrwi) X(kCsrrsi) X(kCsrrci)                           \
  X(kLrW) X(kScW) X(kAmoswapW) X(kAmoaddW) X(kAmoxorW) X(kAmoandW) X(kAmoorW)              \
  X(kAmominW) X(kAmomaxW) X(kAmominuW) X(kAmomaxuW)                                        \
  X(kLrD) X(kScD) X(kAmoswapD) X(kAmoaddD) X(kAmoxorD) X(kAmoandD) X(kAmoorD)              \
  X(kAmominD) X(kAmomaxD) X(kAmominuD) X(kAmomaxuD)                                        \
  X(kFlw) X(kFsw) X(kFld) X(kFsd)                                                          \
  X(kFmaddS) X(kFmsubS) X(kFnmsubS) X(kFnmaddS)                                            \
  X(kFaddS) X(kFsubS) X(kFmulS) X(kFdivS) X(kFsqrtS)                                       \
  X(kFsgnjS) X(kFsgnjnS) X(kFsgnjxS) X(kFminS) X(kFmaxS)                                   \
  X(kFcvtWS) X(kFcvtWuS) X(kFcvtLS) X(kFcvtLuS) X(kFmvXW) X(kFclassS)                      \
  X(kFeqS) X(kFltS) X(kFleS) X(kFcvtSW) X(kFcvtSWu) X(kFcvtSL) X(kFcvtSLu) X(kFmvWX)       \
  X(kFmaddD) X(kFmsubD) X(kFnmsubD) X(kFnmaddD)                                            \
  X(kFaddD) X(kFsubD) X(kFmulD) X(kFdivD) X(kFsqrtD)                                       \
  X(kFsgnjD) X(kFsgnjnD) X(kFsgnjxD) X(kFminD) X(kFmaxD)                                   \
  X(kFcvtSD) X(kFcvtDS)                                                                    \
  X(kFcvtWD) X(kFcvtWuD) X(kFcvtLD) X(kFcvtLuD) X(kFmvXD) X(kFclassD)                      \
  X(kFeqD) X(kFltD) X(kFleD) X(kFcvtDW) X(kFcvtDWu) X(kFcvtDL) X(kFcvtDLu) X(kFmvDX)

enum Op : uint16_t {
#define FTVM_OP_ENUM(name) name,
  FTVM_OPS(FTVM_OP_ENUM)
#undef FTVM_OP_ENUM
  kOpCount
};

const char* op_name(Op op);

// The sink register: decoded writes to x0 go here and are never read.
inline constexpr uint8_t kSinkReg = 32;

struct DecodedInsn {
  // The interpreter's handler for (op, len), as an offset from its decode
  // handler; 0 (the zero-initialised value) means "not decoded yet".
  int32_t handler = 0;
  int32_t imm = 0;  // immediate, CSR number, or the raw bits of an illegal instruction
  uint8_t rd = 0;
  uint8_t rs1 = 0;
  uint8_t rs2 = 0;
  uint8_t rs3 = 0;  // fused multiply-add third source
  uint8_t len = 0;  // 2 or 4 bytes
  uint8_t rm = 0;   // FP rounding mode field (7 = dynamic)
  uint16_t op = kDecode;
};
static_assert(sizeof(DecodedInsn) == 16);

// Decodes one instruction (a 32-bit one, or a compressed one in the low 16
// bits when its two low bits are not 0b11). Never fails: an illegal encoding
// decodes to kIllegal with `raw` holding the bits for mtval.
DecodedInsn decode(uint32_t insn);

}  // namespace ftvm::vm
