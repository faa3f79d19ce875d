/* RV64A: lr/sc success and failure, sign extension of .w results, and every
 * AMO in .w and .d width with each aq/rl combination, checking both the
 * returned old value and the memory written. (Misaligned atomics trap; that
 * is covered by the traps test.) */
#include "runtime.h"

#define SX32(x) ((u64)(i64)(i32)(u32)(x))

static volatile u32 w[4] __attribute__((aligned(16)));
static volatile u64 d[3] __attribute__((aligned(16)));

/* AMO on w[1]; guards w[0] and w[2] must not change. */
#define TEST_AMOW(op, init, src, F)                                                      \
  do {                                                                                   \
    u64 r_;                                                                              \
    w[0] = 0x5a5a5a5a;                                                                   \
    w[1] = (u32)(init);                                                                  \
    w[2] = 0xa5a5a5a5;                                                                   \
    asm volatile(#op " %0, %1, (%2)" : "=r"(r_) : "r"((u64)(src)), "r"(&w[1]) : "memory"); \
    isa_check(__LINE__, #op " old " #init ", " #src, r_, SX32(init));                    \
    isa_check(__LINE__, #op " mem " #init ", " #src, w[1], (u32)F((u32)(init), (u32)(src))); \
    isa_check(__LINE__, #op " guards", ((u64)w[0] << 32) | w[2], 0x5a5a5a5aa5a5a5a5ull);  \
  } while (0)

#define TEST_AMOD(op, init, src, F)                                                      \
  do {                                                                                   \
    u64 r_;                                                                              \
    d[0] = 0x5a5a5a5a5a5a5a5aull;                                                        \
    d[1] = (u64)(init);                                                                  \
    d[2] = 0xa5a5a5a5a5a5a5a5ull;                                                        \
    asm volatile(#op " %0, %1, (%2)" : "=r"(r_) : "r"((u64)(src)), "r"(&d[1]) : "memory"); \
    isa_check(__LINE__, #op " old " #init ", " #src, r_, (u64)(init));                   \
    isa_check(__LINE__, #op " mem " #init ", " #src, d[1], F((u64)(init), (u64)(src)));  \
    isa_check(__LINE__, #op " guards", d[0] ^ d[2], 0xffffffffffffffffull);              \
  } while (0)

#define F_SWAP(a, b) (b)
#define F_ADD(a, b) ((a) + (b))
#define F_XOR(a, b) ((a) ^ (b))
#define F_AND(a, b) ((a) & (b))
#define F_OR(a, b) ((a) | (b))
#define F_MINW(a, b) ((i32)(a) < (i32)(b) ? (a) : (b))
#define F_MAXW(a, b) ((i32)(a) > (i32)(b) ? (a) : (b))
#define F_MIND(a, b) ((i64)(a) < (i64)(b) ? (a) : (b))
#define F_MAXD(a, b) ((i64)(a) > (i64)(b) ? (a) : (b))
#define F_MINU(a, b) ((a) < (b) ? (a) : (b))
#define F_MAXU(a, b) ((a) > (b) ? (a) : (b))

static void amo_word(void) {
  TEST_AMOW(amoswap.w, 0x80000000, 0x12345678, F_SWAP);
  TEST_AMOW(amoswap.w.aq, 0x7fffffff, 0xffffffff80000001, F_SWAP);
  TEST_AMOW(amoadd.w, 0xffffffff, 1, F_ADD);
  TEST_AMOW(amoadd.w.rl, 0x7fffffff, 0x100000001, F_ADD);
  TEST_AMOW(amoxor.w.aqrl, 0xf0f0f0f0, 0xff00ff00, F_XOR);
  TEST_AMOW(amoxor.w, 0x12345678, 0xffffffffffffffff, F_XOR);
  TEST_AMOW(amoand.w, 0xf0f0f0f0, 0xff00ff00, F_AND);
  TEST_AMOW(amoand.w.aq, 0x80000001, 0x7fffffff, F_AND);
  TEST_AMOW(amoor.w.rl, 0x0f0f0f0f, 0x80000000, F_OR);
  TEST_AMOW(amoor.w.aqrl, 0, 0x1, F_OR);
  TEST_AMOW(amomin.w, 0x80000000, 0x7fffffff, F_MINW);
  TEST_AMOW(amomin.w.aq, 5, 0xffffffff, F_MINW);
  TEST_AMOW(amomin.w.rl, 0xfffffffe, 0x00000000fffffffd, F_MINW);
  TEST_AMOW(amomax.w, 0x80000000, 0x7fffffff, F_MAXW);
  TEST_AMOW(amomax.w.aqrl, 5, 0xffffffff, F_MAXW);
  TEST_AMOW(amomax.w.aq, 0x1, 0x100000000, F_MAXW);
  TEST_AMOW(amominu.w, 0x80000000, 0x7fffffff, F_MINU);
  TEST_AMOW(amominu.w.rl, 5, 0xffffffff, F_MINU);
  TEST_AMOW(amomaxu.w, 0x80000000, 0x7fffffff, F_MAXU);
  TEST_AMOW(amomaxu.w.aqrl, 5, 0xffffffff, F_MAXU);
}

static void amo_double(void) {
  TEST_AMOD(amoswap.d, 0x8000000000000000, 0x123456789abcdef0, F_SWAP);
  TEST_AMOD(amoswap.d.aqrl, 0, 0xffffffffffffffff, F_SWAP);
  TEST_AMOD(amoadd.d, 0xffffffffffffffff, 1, F_ADD);
  TEST_AMOD(amoadd.d.aq, 0x00000000ffffffff, 1, F_ADD);
  TEST_AMOD(amoxor.d.rl, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, F_XOR);
  TEST_AMOD(amoand.d, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, F_AND);
  TEST_AMOD(amoand.d.aqrl, 0x8000000000000001, 0x7fffffffffffffff, F_AND);
  TEST_AMOD(amoor.d.aq, 0x0f0f0f0f00000000, 0x8000000000000000, F_OR);
  TEST_AMOD(amomin.d, 0x8000000000000000, 0x7fffffffffffffff, F_MIND);
  TEST_AMOD(amomin.d.rl, 5, 0xffffffffffffffff, F_MIND);
  TEST_AMOD(amomax.d, 0x8000000000000000, 0x7fffffffffffffff, F_MAXD);
  TEST_AMOD(amomax.d.aq, 0x00000000ffffffff, 0x0000000100000000, F_MAXD);
  TEST_AMOD(amominu.d, 0x8000000000000000, 0x7fffffffffffffff, F_MINU);
  TEST_AMOD(amominu.d.aqrl, 5, 0xffffffffffffffff, F_MINU);
  TEST_AMOD(amomaxu.d, 0x8000000000000000, 0x7fffffffffffffff, F_MAXU);
  TEST_AMOD(amomaxu.d.rl, 5, 0xffffffffffffffff, F_MAXU);
}

static void amo_to_x0(void) {
  d[1] = 40;
  asm volatile("amoadd.d x0, %0, (%1)" ::"r"(2ul), "r"(&d[1]) : "memory");
  CHECK(d[1], 42);
}

static void lr_sc(void) {
  u64 v, sc;
  /* Success: lr then sc to the same address. */
  w[1] = 0x80000000;
  asm volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)"
               : "=&r"(v), "=&r"(sc)
               : "r"(&w[1]), "r"(0x1234ul)
               : "memory");
  CHECK(v, 0xffffffff80000000); /* lr.w sign-extends */
  CHECK(sc, 0);
  CHECK(w[1], 0x1234);
  /* A second sc without a new lr fails and does not write. */
  asm volatile("sc.w %0, %1, (%2)" : "=r"(sc) : "r"(0x5678ul), "r"(&w[1]) : "memory");
  CHECK_TRUE(sc != 0);
  CHECK(w[1], 0x1234);
  /* lr.d / sc.d with aq and rl. */
  d[1] = 0xfedcba9876543210;
  asm volatile("lr.d.aq %0, (%2)\n sc.d.rl %1, %3, (%2)"
               : "=&r"(v), "=&r"(sc)
               : "r"(&d[1]), "r"(0x0123456789abcdeful)
               : "memory");
  CHECK(v, 0xfedcba9876543210);
  CHECK(sc, 0);
  CHECK(d[1], 0x0123456789abcdef);
  asm volatile("sc.d %0, %1, (%2)" : "=r"(sc) : "r"(1ul), "r"(&d[1]) : "memory");
  CHECK_TRUE(sc != 0);
  CHECK(d[1], 0x0123456789abcdef);
  /* sc to an address other than the reserved one fails. */
  d[0] = 7;
  d[2] = 9;
  asm volatile("lr.d %0, (%2)\n sc.d %1, %3, (%4)"
               : "=&r"(v), "=&r"(sc)
               : "r"(&d[0]), "r"(11ul), "r"(&d[2])
               : "memory");
  CHECK(v, 7);
  CHECK_TRUE(sc != 0);
  CHECK(d[2], 9);
  /* An lr/sc increment loop. */
  d[1] = 100;
  for (int i = 0; i < 5; i++) {
    asm volatile("1: lr.d t0, (%0)\n addi t0, t0, 3\n sc.d t1, t0, (%0)\n bnez t1, 1b"
                 ::"r"(&d[1]) : "t0", "t1", "memory");
  }
  CHECK(d[1], 115);
  /* lr.w of a positive word and sc.w.aqrl. */
  w[2] = 0x7ffffffe;
  asm volatile("lr.w.aqrl %0, (%2)\n addi %0, %0, 1\n sc.w.aqrl %1, %0, (%2)"
               : "=&r"(v), "=&r"(sc)
               : "r"(&w[2])
               : "memory");
  CHECK(v, 0x7fffffff);
  CHECK(sc, 0);
  CHECK(w[2], 0x7fffffff);
}

int main(void) {
  lr_sc();
  amo_word();
  amo_double();
  amo_to_x0();
  return 0;
}
