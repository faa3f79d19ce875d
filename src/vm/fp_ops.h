// The F and D extensions' computational instructions, defined once for both
// engines: the interpreter expands the list into handlers, and exec_fp (used
// by the translator) into a switch. Loads and stores are not here (they go
// through each engine's memory path).
//
// FTVM_FP_OPS(OP) calls OP(name, kind, expr) for every instruction, where
// kind says where the result goes and whether a rounding mode applies:
//   _S  a single, NaN-boxed into f[rd], rounding mode rm
//   _D  a double into f[rd], rounding mode rm
//   _X  an integer into x[rd], rounding mode rm
//   N_S, N_D, N_X  the same without a rounding mode
// The expressions use FS1..FS3 (unboxed singles), FD1..FD3 (doubles), RS1,
// rm and fl (the flags raised), which the expanding code defines.
#pragma once

#include <cstdint>

#include "vm/decode.h"
#include "vm/fpu.h"
#include "vm/int_ops.h"

namespace ftvm::vm {

struct HartState;

namespace fp_ops {

inline uint32_t unbox_s(uint64_t v) {
  return (v >> 32) == 0xffffffffu ? static_cast<uint32_t>(v) : 0x7fc00000u;
}
inline uint64_t box_s(uint32_t v) { return 0xffffffff00000000ull | v; }

}  // namespace fp_ops

// Executes one computational F/D instruction `d` on `s` as the interpreter
// does: false (and nothing changed) when it is illegal now (the FPU is off,
// or the rounding mode is reserved); the caller then takes the trap.
bool exec_fp(HartState& s, const DecodedInsn& d);

}  // namespace ftvm::vm

// clang-format off
#define FTVM_FP_OPS(OP) \
  OP(kFmaddS, _S, fpu::fma_s(FS1, FS2, FS3, false, false, rm, fl)) \
  OP(kFmsubS, _S, fpu::fma_s(FS1, FS2, FS3, false, true, rm, fl)) \
  OP(kFnmsubS, _S, fpu::fma_s(FS1, FS2, FS3, true, false, rm, fl)) \
  OP(kFnmaddS, _S, fpu::fma_s(FS1, FS2, FS3, true, true, rm, fl)) \
  OP(kFaddS, _S, fpu::add_s(FS1, FS2, rm, fl)) \
  OP(kFsubS, _S, fpu::sub_s(FS1, FS2, rm, fl)) \
  OP(kFmulS, _S, fpu::mul_s(FS1, FS2, rm, fl)) \
  OP(kFdivS, _S, fpu::div_s(FS1, FS2, rm, fl)) \
  OP(kFsqrtS, _S, fpu::sqrt_s(FS1, rm, fl)) \
  OP(kFsgnjS, N_S, (FS1 & 0x7fffffffu) | (FS2 & 0x80000000u)) \
  OP(kFsgnjnS, N_S, (FS1 & 0x7fffffffu) | (~FS2 & 0x80000000u)) \
  OP(kFsgnjxS, N_S, FS1 ^ (FS2 & 0x80000000u)) \
  OP(kFminS, N_S, fpu::min_s(FS1, FS2, fl)) \
  OP(kFmaxS, N_S, fpu::max_s(FS1, FS2, fl)) \
  OP(kFcvtWS, _X, fpu::cvt_w_s(FS1, rm, fl)) \
  OP(kFcvtWuS, _X, fpu::cvt_wu_s(FS1, rm, fl)) \
  OP(kFcvtLS, _X, fpu::cvt_l_s(FS1, rm, fl)) \
  OP(kFcvtLuS, _X, fpu::cvt_lu_s(FS1, rm, fl)) \
  OP(kFmvXW, N_X, sext32(FD1)) \
  OP(kFclassS, N_X, fpu::classify_s(FS1)) \
  OP(kFeqS, N_X, fpu::eq_s(FS1, FS2, fl) ? 1 : 0) \
  OP(kFltS, N_X, fpu::lt_s(FS1, FS2, fl) ? 1 : 0) \
  OP(kFleS, N_X, fpu::le_s(FS1, FS2, fl) ? 1 : 0) \
  OP(kFcvtSW, _S, fpu::cvt_s_w(static_cast<int32_t>(RS1), rm, fl)) \
  OP(kFcvtSWu, _S, fpu::cvt_s_wu(static_cast<uint32_t>(RS1), rm, fl)) \
  OP(kFcvtSL, _S, fpu::cvt_s_l(static_cast<int64_t>(RS1), rm, fl)) \
  OP(kFcvtSLu, _S, fpu::cvt_s_lu(RS1, rm, fl)) \
  OP(kFmvWX, N_S, static_cast<uint32_t>(RS1)) \
  OP(kFmaddD, _D, fpu::fma_d(FD1, FD2, FD3, false, false, rm, fl)) \
  OP(kFmsubD, _D, fpu::fma_d(FD1, FD2, FD3, false, true, rm, fl)) \
  OP(kFnmsubD, _D, fpu::fma_d(FD1, FD2, FD3, true, false, rm, fl)) \
  OP(kFnmaddD, _D, fpu::fma_d(FD1, FD2, FD3, true, true, rm, fl)) \
  OP(kFaddD, _D, fpu::add_d(FD1, FD2, rm, fl)) \
  OP(kFsubD, _D, fpu::sub_d(FD1, FD2, rm, fl)) \
  OP(kFmulD, _D, fpu::mul_d(FD1, FD2, rm, fl)) \
  OP(kFdivD, _D, fpu::div_d(FD1, FD2, rm, fl)) \
  OP(kFsqrtD, _D, fpu::sqrt_d(FD1, rm, fl)) \
  OP(kFsgnjD, N_D, (FD1 & ~(1ull << 63)) | (FD2 & (1ull << 63))) \
  OP(kFsgnjnD, N_D, (FD1 & ~(1ull << 63)) | (~FD2 & (1ull << 63))) \
  OP(kFsgnjxD, N_D, FD1 ^ (FD2 & (1ull << 63))) \
  OP(kFminD, N_D, fpu::min_d(FD1, FD2, fl)) \
  OP(kFmaxD, N_D, fpu::max_d(FD1, FD2, fl)) \
  OP(kFcvtSD, _S, fpu::cvt_s_d(FD1, rm, fl)) \
  OP(kFcvtDS, _D, fpu::cvt_d_s(FS1, rm, fl)) \
  OP(kFcvtWD, _X, fpu::cvt_w_d(FD1, rm, fl)) \
  OP(kFcvtWuD, _X, fpu::cvt_wu_d(FD1, rm, fl)) \
  OP(kFcvtLD, _X, fpu::cvt_l_d(FD1, rm, fl)) \
  OP(kFcvtLuD, _X, fpu::cvt_lu_d(FD1, rm, fl)) \
  OP(kFmvXD, N_X, FD1) \
  OP(kFclassD, N_X, fpu::classify_d(FD1)) \
  OP(kFeqD, N_X, fpu::eq_d(FD1, FD2, fl) ? 1 : 0) \
  OP(kFltD, N_X, fpu::lt_d(FD1, FD2, fl) ? 1 : 0) \
  OP(kFleD, N_X, fpu::le_d(FD1, FD2, fl) ? 1 : 0) \
  OP(kFcvtDW, _D, fpu::cvt_d_w(static_cast<int32_t>(RS1), rm, fl)) \
  OP(kFcvtDWu, _D, fpu::cvt_d_wu(static_cast<uint32_t>(RS1), rm, fl)) \
  OP(kFcvtDL, _D, fpu::cvt_d_l(static_cast<int64_t>(RS1), rm, fl)) \
  OP(kFcvtDLu, _D, fpu::cvt_d_lu(RS1, rm, fl)) \
  OP(kFmvDX, N_D, RS1)
// clang-format on
