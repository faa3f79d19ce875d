/* RV64M: mul/mulh/mulhsu/mulhu/div/divu/rem/remu and the W forms on edge
 * operands, including division by zero and signed overflow, whose results the
 * specification fixes (no trap). Expected values are folded by the compiler
 * on the build host from literal operands. */
#include "runtime.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define SX32(x) ((u64)(i64)(i32)(u32)(x))
#define I64_MIN 0x8000000000000000ull

#define TEST_RR(op, a, b, F)                                                   \
  do {                                                                         \
    u64 r_;                                                                    \
    asm volatile(#op " %0, %1, %2" : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b))); \
    isa_check(__LINE__, #op " " #a ", " #b, r_, F((u64)(a), (u64)(b)));        \
  } while (0)

#define M_SET(op, F)                                       \
  TEST_RR(op, 0, 0, F);                                    \
  TEST_RR(op, 7, 3, F);                                    \
  TEST_RR(op, 0xfffffffffffffff9, 2, F);                   \
  TEST_RR(op, 7, 0xfffffffffffffffe, F);                   \
  TEST_RR(op, 0xfffffffffffffff9, 0xfffffffffffffffe, F);  \
  TEST_RR(op, 0x8000000000000000, 0xffffffffffffffff, F);  \
  TEST_RR(op, 0x8000000000000000, 0x8000000000000000, F);  \
  TEST_RR(op, 0x7fffffffffffffff, 0x7fffffffffffffff, F);  \
  TEST_RR(op, 0x123456789abcdef0, 0, F);                   \
  TEST_RR(op, 0xffffffff80000000, 0xffffffffffffffff, F);  \
  TEST_RR(op, 0x0000000080000000, 0x00000000ffffffff, F);  \
  TEST_RR(op, 0xdeadbeefcafebabe, 0x00000000fedcba98, F);  \
  TEST_RR(op, 0x00000001fffffff9, 0x0000000100000000, F)

#define F_MUL(a, b) ((a) * (b))
#define F_MULH(a, b) ((u64)(((i128)(i64)(a) * (i128)(i64)(b)) >> 64))
#define F_MULHSU(a, b) ((u64)(((i128)(i64)(a) * (i128)(u128)(b)) >> 64))
#define F_MULHU(a, b) ((u64)(((u128)(a) * (u128)(b)) >> 64))
#define F_DIV(a, b) \
  ((b) == 0 ? ~0ull : ((a) == I64_MIN && (b) == ~0ull) ? I64_MIN : (u64)((i64)(a) / (i64)((b) ? (b) : 1)))
#define F_DIVU(a, b) ((b) == 0 ? ~0ull : (a) / ((b) ? (b) : 1))
#define F_REM(a, b) \
  ((b) == 0 ? (a) : ((a) == I64_MIN && (b) == ~0ull) ? 0 : (u64)((i64)(a) % (i64)((b) ? (b) : 1)))
#define F_REMU(a, b) ((b) == 0 ? (a) : (a) % ((b) ? (b) : 1))

#define A32(a) ((i32)(u32)(a))
#define B32(b) ((u32)(b) ? (i32)(u32)(b) : 1)
#define OVF32(a, b) ((u32)(a) == 0x80000000u && (u32)(b) == 0xffffffffu)
#define F_MULW(a, b) SX32((u32)(a) * (u32)(b))
#define F_DIVW(a, b) ((u32)(b) == 0 ? ~0ull : OVF32(a, b) ? SX32(a) : SX32(A32(a) / B32(b)))
#define F_DIVUW(a, b) ((u32)(b) == 0 ? ~0ull : SX32((u32)(a) / ((u32)(b) ? (u32)(b) : 1)))
#define F_REMW(a, b) ((u32)(b) == 0 ? SX32(a) : OVF32(a, b) ? 0 : SX32(A32(a) % B32(b)))
#define F_REMUW(a, b) ((u32)(b) == 0 ? SX32(a) : SX32((u32)(a) % ((u32)(b) ? (u32)(b) : 1)))

int main(void) {
  M_SET(mul, F_MUL);
  M_SET(mulh, F_MULH);
  M_SET(mulhsu, F_MULHSU);
  M_SET(mulhu, F_MULHU);
  M_SET(div, F_DIV);
  M_SET(divu, F_DIVU);
  M_SET(rem, F_REM);
  M_SET(remu, F_REMU);
  M_SET(mulw, F_MULW);
  M_SET(divw, F_DIVW);
  M_SET(divuw, F_DIVUW);
  M_SET(remw, F_REMW);
  M_SET(remuw, F_REMUW);

  /* The fixed results, spelled out. */
  u64 r;
  asm volatile("div %0, %1, x0" : "=r"(r) : "r"(5ul));
  CHECK(r, 0xffffffffffffffff);
  asm volatile("rem %0, %1, x0" : "=r"(r) : "r"(-5ul));
  CHECK(r, (u64)-5);
  asm volatile("divuw %0, %1, x0" : "=r"(r) : "r"(5ul));
  CHECK(r, 0xffffffffffffffff);
  asm volatile("remuw %0, %1, x0" : "=r"(r) : "r"(0x80000000ul));
  CHECK(r, 0xffffffff80000000);
  asm volatile("divw %0, %1, %2" : "=r"(r) : "r"(0x80000000ul), "r"(-1ul));
  CHECK(r, 0xffffffff80000000);
  asm volatile("remw %0, %1, %2" : "=r"(r) : "r"(0x80000000ul), "r"(-1ul));
  CHECK(r, 0);
  asm volatile("div %0, %1, %2" : "=r"(r) : "r"(0x8000000000000000ul), "r"(-1ul));
  CHECK(r, 0x8000000000000000);
  asm volatile("mulhsu %0, %1, %2" : "=r"(r) : "r"(-1ul), "r"(-1ul));
  CHECK(r, 0xffffffffffffffff);
  asm volatile("mulhu %0, %1, %2" : "=r"(r) : "r"(-1ul), "r"(-1ul));
  CHECK(r, 0xfffffffffffffffe);
  return 0;
}
