// IEEE-754 single and double precision arithmetic with RISC-V semantics.
//
// Every function works on raw bit patterns (binary32 in a uint32_t, binary64 in
// a uint64_t), rounds with the given RISC-V rounding mode, and ORs the RISC-V
// exception flags it raises into `flags`. Results follow the RISC-V F/D
// specification exactly: NaN results are the canonical NaN (0x7fc00000,
// 0x7ff8000000000000); min/max follow IEEE 754-2019 minimumNumber and
// maximumNumber (with -0 < +0); conversions to integers saturate and raise NV
// as the specification's table says; tininess is detected after rounding.
// Results are bit-identical on every host: they never depend on the host's
// own floating-point environment, which the functions leave as they found it.
// NaN-boxing of single values in 64-bit registers is the caller's business.
// `rm` must be one of kRne..kRmm (the decoder resolves kDyn and rejects the
// reserved encodings); any other value is a caller bug, and a function that
// needs to round with it aborts through FTVM_CHECK. The functions keep no
// state: safe to call from any thread.
#pragma once

#include <cstdint>

namespace ftvm::vm::fpu {

// RISC-V rounding modes (the frm / rm field encodings). kDyn never reaches here.
enum RoundingMode : uint32_t { kRne = 0, kRtz = 1, kRdn = 2, kRup = 3, kRmm = 4 };

// RISC-V fflags bits.
enum Flag : uint32_t { kNx = 1, kUf = 2, kOf = 4, kDz = 8, kNv = 16 };

uint32_t add_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags);
uint32_t sub_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags);
uint32_t mul_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags);
uint32_t div_s(uint32_t a, uint32_t b, uint32_t rm, uint32_t& flags);
uint32_t sqrt_s(uint32_t a, uint32_t rm, uint32_t& flags);
// a*b+c with one rounding; the negate flags give fmsub (neg_c), fnmsub
// (neg_product), fnmadd (both).
uint32_t fma_s(uint32_t a, uint32_t b, uint32_t c, bool neg_product, bool neg_c, uint32_t rm,
               uint32_t& flags);
uint32_t min_s(uint32_t a, uint32_t b, uint32_t& flags);
uint32_t max_s(uint32_t a, uint32_t b, uint32_t& flags);
bool eq_s(uint32_t a, uint32_t b, uint32_t& flags);  // quiet: NV only for sNaN
bool lt_s(uint32_t a, uint32_t b, uint32_t& flags);  // signaling: NV for any NaN
bool le_s(uint32_t a, uint32_t b, uint32_t& flags);
uint32_t classify_s(uint32_t a);  // the fclass.s 10-bit mask

uint64_t add_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags);
uint64_t sub_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags);
uint64_t mul_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags);
uint64_t div_d(uint64_t a, uint64_t b, uint32_t rm, uint32_t& flags);
uint64_t sqrt_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t fma_d(uint64_t a, uint64_t b, uint64_t c, bool neg_product, bool neg_c, uint32_t rm,
               uint32_t& flags);
uint64_t min_d(uint64_t a, uint64_t b, uint32_t& flags);
uint64_t max_d(uint64_t a, uint64_t b, uint32_t& flags);
bool eq_d(uint64_t a, uint64_t b, uint32_t& flags);
bool lt_d(uint64_t a, uint64_t b, uint32_t& flags);
bool le_d(uint64_t a, uint64_t b, uint32_t& flags);
uint64_t classify_d(uint64_t a);

// Conversions. Integer results are returned as the 64-bit register value the
// instruction writes (32-bit results sign-extended, as fcvt.w[u] requires).
uint64_t cvt_w_s(uint32_t a, uint32_t rm, uint32_t& flags);   // fcvt.w.s
uint64_t cvt_wu_s(uint32_t a, uint32_t rm, uint32_t& flags);  // fcvt.wu.s
uint64_t cvt_l_s(uint32_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_lu_s(uint32_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_w_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_wu_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_l_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_lu_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint32_t cvt_s_w(int32_t a, uint32_t rm, uint32_t& flags);
uint32_t cvt_s_wu(uint32_t a, uint32_t rm, uint32_t& flags);
uint32_t cvt_s_l(int64_t a, uint32_t rm, uint32_t& flags);
uint32_t cvt_s_lu(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_d_w(int32_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_d_wu(uint32_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_d_l(int64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_d_lu(uint64_t a, uint32_t rm, uint32_t& flags);
uint32_t cvt_s_d(uint64_t a, uint32_t rm, uint32_t& flags);
uint64_t cvt_d_s(uint32_t a, uint32_t rm, uint32_t& flags);

}  // namespace ftvm::vm::fpu
