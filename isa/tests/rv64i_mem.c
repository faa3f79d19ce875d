/* RV64I loads and stores of every width: sign and zero extension, positive
 * and negative offsets, partial-width stores leaving neighbouring bytes alone,
 * and misaligned accesses, which the machine performs without trapping. */
#include "runtime.h"

/* Bytes in memory: 87 96 a5 b4 c3 d2 e1 f0 | 08 19 2a 3b 4c 5d 6e 7f */
static volatile u64 data[2] __attribute__((aligned(16))) = {0xf0e1d2c3b4a59687ull,
                                                             0x7f6e5d4c3b2a1908ull};
static volatile u64 buf[4] __attribute__((aligned(16)));

#define TEST_LD(op, off, base, exp)                                            \
  do {                                                                         \
    u64 r_;                                                                    \
    asm volatile(#op " %0, " #off "(%1)" : "=r"(r_) : "r"(base) : "memory");   \
    isa_check(__LINE__, #op " " #off, r_, (u64)(exp));                         \
  } while (0)

#define TEST_ST(op, off, val)                                                              \
  do {                                                                                     \
    buf[0] = 0x1111111111111111ull;                                                        \
    buf[1] = 0x2222222222222222ull;                                                        \
    buf[2] = 0x3333333333333333ull;                                                        \
    asm volatile(#op " %0, " #off "(%1)" ::"r"((u64)(val)), "r"(&buf[1]) : "memory");      \
  } while (0)

static void loads(void) {
  volatile u64 *d = data;
  TEST_LD(lb, 0, d, 0xffffffffffffff87);
  TEST_LD(lb, 1, d, 0xffffffffffffff96);
  TEST_LD(lb, 9, d, 0x19);
  TEST_LD(lb, 15, d, 0x7f);
  TEST_LD(lbu, 0, d, 0x87);
  TEST_LD(lbu, 7, d, 0xf0);
  TEST_LD(lh, 0, d, 0xffffffffffff9687);
  TEST_LD(lh, 10, d, 0x3b2a);
  TEST_LD(lhu, 0, d, 0x9687);
  TEST_LD(lhu, 6, d, 0xf0e1);
  TEST_LD(lw, 0, d, 0xffffffffb4a59687);
  TEST_LD(lw, 4, d, 0xfffffffff0e1d2c3);
  TEST_LD(lw, 12, d, 0x7f6e5d4c);
  TEST_LD(lwu, 0, d, 0xb4a59687);
  TEST_LD(lwu, 4, d, 0xf0e1d2c3);
  TEST_LD(ld, 0, d, 0xf0e1d2c3b4a59687);
  TEST_LD(ld, 8, d, 0x7f6e5d4c3b2a1908);
  /* Negative offsets from the second doubleword. */
  volatile u64 *d1 = &data[1];
  TEST_LD(lb, -1, d1, 0xfffffffffffffff0);
  TEST_LD(lhu, -2, d1, 0xf0e1);
  TEST_LD(lw, -8, d1, 0xffffffffb4a59687);
  TEST_LD(ld, -8, d1, 0xf0e1d2c3b4a59687);
  /* Misaligned. */
  TEST_LD(lh, 1, d, 0xffffffffffffa596);
  TEST_LD(lhu, 7, d, 0x08f0);
  TEST_LD(lw, 3, d, 0xffffffffe1d2c3b4);
  TEST_LD(lwu, 7, d, 0x2a1908f0);
  TEST_LD(lw, 5, d, 0x08f0e1d2);
  TEST_LD(ld, 5, d, 0x4c3b2a1908f0e1d2);
  TEST_LD(ld, 4, d, 0x3b2a1908f0e1d2c3);
  TEST_LD(ld, 1, d, 0x08f0e1d2c3b4a596);
  /* A load to x0 has no effect. */
  u64 r;
  asm volatile("ld x0, 0(%1)\n mv %0, x0" : "=r"(r) : "r"(d) : "memory");
  CHECK(r, 0);
}

static void stores(void) {
  TEST_ST(sb, 0, 0xabcdef0123456789);
  CHECK(buf[1], 0x2222222222222289);
  TEST_ST(sb, 7, 0x80);
  CHECK(buf[1], 0x8022222222222222);
  TEST_ST(sb, -1, 0x5a);
  CHECK(buf[0], 0x5a11111111111111);
  CHECK(buf[1], 0x2222222222222222);
  TEST_ST(sh, 0, 0xabcdef0123456789);
  CHECK(buf[1], 0x2222222222226789);
  TEST_ST(sh, 6, 0xfedc);
  CHECK(buf[1], 0xfedc222222222222);
  TEST_ST(sw, 0, 0xabcdef0123456789);
  CHECK(buf[1], 0x2222222223456789);
  TEST_ST(sw, 4, 0x89abcdef);
  CHECK(buf[1], 0x89abcdef22222222);
  TEST_ST(sw, -4, 0xcafef00d);
  CHECK(buf[0], 0xcafef00d11111111);
  TEST_ST(sd, 0, 0xabcdef0123456789);
  CHECK(buf[0], 0x1111111111111111);
  CHECK(buf[1], 0xabcdef0123456789);
  CHECK(buf[2], 0x3333333333333333);
  TEST_ST(sd, 8, 0x0123456789abcdef);
  CHECK(buf[2], 0x0123456789abcdef);
  /* Misaligned stores. */
  TEST_ST(sh, 7, 0xbeef);
  CHECK(buf[1], 0xef22222222222222);
  CHECK(buf[2], 0x33333333333333be);
  TEST_ST(sw, 3, 0xdeadbeef);
  CHECK(buf[1], 0x22deadbeef222222);
  TEST_ST(sw, 6, 0xa1b2c3d4);
  CHECK(buf[1], 0xc3d4222222222222);
  CHECK(buf[2], 0x333333333333a1b2);
  TEST_ST(sd, 3, 0x0807060504030201);
  CHECK(buf[1], 0x0504030201222222);
  CHECK(buf[2], 0x3333333333080706);
  TEST_ST(sd, -5, 0xf1f2f3f4f5f6f7f8);
  CHECK(buf[0], 0xf4f5f6f7f8111111);
  CHECK(buf[1], 0x2222222222f1f2f3);
  /* Store then load back through a different width. */
  buf[3] = 0;
  u64 r;
  asm volatile("sh %1, 2(%2)\n lw %0, 0(%2)" : "=&r"(r) : "r"(0x8001ul), "r"(&buf[3]) : "memory");
  CHECK(r, 0xffffffff80010000);
}

int main(void) {
  loads();
  stores();
  return 0;
}
