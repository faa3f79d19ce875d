/* RV64D: double-precision arithmetic under the five static rounding modes and
 * dynamic frm, exception flags, conversions between double, single and
 * integers (with saturation), fclass, fmin/fmax, fsgnj*, compares, fused
 * multiply-add, fld/fsd and fmv.x.d/fmv.d.x. NaN-boxing of fcvt.s.d results
 * is checked too. Expected bit patterns are worked out by hand. */
#include "fp_check.h"

#define D "fmv.d.x"
#define OUTF "fmv.x.d %0, ft3"
#define OUTI "mv %0, t0"

#define ONE 0x3ff0000000000000
#define TWO 0x4000000000000000
#define THREE 0x4008000000000000
#define HALF 0x3fe0000000000000
#define M_ONE 0xbff0000000000000
#define P_INF 0x7ff0000000000000
#define N_INF 0xfff0000000000000
#define QNAN 0x7ff8000000000000
#define SNAN 0x7ff0000000000001
#define MAXD 0x7fefffffffffffff
#define MINSUB 0x0000000000000001
#define P_ZERO 0x0000000000000000
#define N_ZERO 0x8000000000000000

static void rounding(void) {
  /* 1 + 2^-53: a tie between 1 and 1 + 2^-52. */
  FP_ALLRM(D, "fadd.d ft3, ft0, ft1", OUTF, ONE, 0x3ca0000000000000, 0, ONE, ONE, ONE,
           0x3ff0000000000001, 0x3ff0000000000001, NX);
  FP_ALLRM(D, "fadd.d ft3, ft0, ft1", OUTF, M_ONE, 0xbca0000000000000, 0, M_ONE, M_ONE,
           0xbff0000000000001, M_ONE, 0xbff0000000000001, NX);
  /* 1 - 1.5 * 2^-53: a tie between 1 - 2^-52 (even) and 1 - 2^-53. */
  FP_ALLRM(D, "fsub.d ft3, ft0, ft1", OUTF, ONE, 0x3ca8000000000000, 0, 0x3feffffffffffffe,
           0x3feffffffffffffe, 0x3feffffffffffffe, 0x3fefffffffffffff, 0x3fefffffffffffff, NX);
  /* 1 / 3 = 0x3fd5555555555555 + 1/3 ulp */
  FP_ALLRM(D, "fdiv.d ft3, ft0, ft1", OUTF, ONE, THREE, 0, 0x3fd5555555555555,
           0x3fd5555555555555, 0x3fd5555555555555, 0x3fd5555555555556, 0x3fd5555555555555, NX);
  FP_ALLRM(D, "fdiv.d ft3, ft0, ft1", OUTF, M_ONE, THREE, 0, 0xbfd5555555555555,
           0xbfd5555555555555, 0xbfd5555555555556, 0xbfd5555555555555, 0xbfd5555555555555, NX);
  /* sqrt(2) = 0x3ff6a09e667f3bcc + 0.6 ulp */
  FP_ALLRM(D, "fsqrt.d ft3, ft0", OUTF, TWO, 0, 0, 0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcc,
           0x3ff6a09e667f3bcc, 0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcd, NX);
  /* 3 * 0x3fd5555555555555 = 1 - 2^-54 */
  FP_ALLRM(D, "fmul.d ft3, ft0, ft1", OUTF, THREE, 0x3fd5555555555555, 0, ONE,
           0x3fefffffffffffff, 0x3fefffffffffffff, ONE, ONE, NX);
  FP_ALLRM(D, "fmul.d ft3, ft0, ft1", OUTF, MAXD, TWO, 0, P_INF, MAXD, MAXD, P_INF, P_INF,
           OF | NX);
  FP_ALLRM(D, "fmul.d ft3, ft0, ft1", OUTF, MAXD, 0xc000000000000000, 0, N_INF,
           0xffefffffffffffff, N_INF, 0xffefffffffffffff, N_INF, OF | NX);
  FP_ALLRM(D, "fmul.d ft3, ft0, ft1", OUTF, MINSUB, HALF, 0, 0, 0, 0, MINSUB, MINSUB, UF | NX);
  FP_ALLRM(D, "fnmadd.d ft3, ft0, ft1, ft2", OUTF, ONE, ONE, 0x3ca0000000000000, M_ONE, M_ONE,
           0xbff0000000000001, M_ONE, 0xbff0000000000001, NX);
  /* double -> single: 1/3 */
  FP_ALLRM(D, "fcvt.s.d ft3, ft0", OUTF, 0x3fd5555555555555, 0, 0, BOX(0x3eaaaaab),
           BOX(0x3eaaaaaa), BOX(0x3eaaaaaa), BOX(0x3eaaaaab), BOX(0x3eaaaaab), NX);
  /* 1e300 -> single overflows */
  FP_ALLRM(D, "fcvt.s.d ft3, ft0", OUTF, 0x7e37e43c8800759c, 0, 0, BOX(0x7f800000),
           BOX(0x7f7fffff), BOX(0x7f7fffff), BOX(0x7f800000), BOX(0x7f800000), OF | NX);
  FP_ALLRM(D, "fcvt.w.d t0, ft0", OUTI, 0xc004000000000000, 0, 0, (u64)-2, (u64)-2, (u64)-3,
           (u64)-2, (u64)-3, NX);
  FP_ALLRM(D, "fcvt.l.d t0, ft0", OUTI, 0x4004000000000000, 0, 0, 2, 2, 2, 3, 3, NX);
}

static void exact_and_special(void) {
  FPF(D, "fadd.d ft3, ft0, ft1", ONE, TWO, 0, THREE, 0);
  FPF(D, "fsub.d ft3, ft0, ft1, rdn", TWO, TWO, 0, N_ZERO, 0);
  FPF(D, "fmadd.d ft3, ft0, ft1, ft2", TWO, THREE, ONE, 0x401c000000000000, 0);
  FPF(D, "fmsub.d ft3, ft0, ft1, ft2", TWO, THREE, ONE, 0x4014000000000000, 0);
  FPF(D, "fnmsub.d ft3, ft0, ft1, ft2", TWO, THREE, ONE, 0xc014000000000000, 0);
  FPF(D, "fnmadd.d ft3, ft0, ft1, ft2", TWO, THREE, ONE, 0xc01c000000000000, 0);
  /* (1 + 2^-52)(1 - 2^-52) - 1 = -2^-104 with a single rounding. */
  FPF(D, "fmsub.d ft3, ft0, ft1, ft2", 0x3ff0000000000001, 0x3feffffffffffffe, ONE,
      0xb970000000000000, 0);
  FPF(D, "fsqrt.d ft3, ft0", 0x4010000000000000, 0, 0, TWO, 0);
  FPF(D, "fdiv.d ft3, ft0, ft1", M_ONE, P_ZERO, 0, N_INF, DZ);
  FPF(D, "fdiv.d ft3, ft0, ft1", P_INF, P_INF, 0, QNAN, NV);
  FPF(D, "fsqrt.d ft3, ft0", N_INF, 0, 0, QNAN, NV);
  FPF(D, "fmul.d ft3, ft0, ft1", 0xfff8000000001234, ONE, 0, QNAN, 0);
  FPF(D, "fadd.d ft3, ft0, ft1", ONE, SNAN, 0, QNAN, NV);
  FPF(D, "fmadd.d ft3, ft0, ft1, ft2", P_ZERO, N_INF, QNAN, QNAN, NV);
}

static void conversions(void) {
  FPF(D, "fcvt.d.s ft3, ft0", BOX(0x3eaaaaab), 0, 0, 0x3fd5555560000000, 0);
  FPF(D, "fcvt.d.s ft3, ft0", BOX(0x7f800001), 0, 0, QNAN, NV);
  FPF(D, "fcvt.d.s ft3, ft0", BOX(0x80000001), 0, 0, 0xb6a0000000000000, 0); /* -2^-149 */
  FPF(D, "fcvt.s.d ft3, ft0", QNAN | 0x123, 0, 0, BOX(0x7fc00000), 0);
  FPF(D, "fcvt.s.d ft3, ft0", SNAN, 0, 0, BOX(0x7fc00000), NV);
  FPF(D, "fcvt.s.d ft3, ft0", N_ZERO, 0, 0, BOX(0x80000000), 0);
  FPF(D, "fcvt.s.d ft3, ft0", 0x3690000000000000, 0, 0, BOX(0x00000000), UF | NX); /* 2^-150 */
  FPI(D, "fcvt.w.d t0, ft0, rtz", 0x41e65a0bc0000000, 0, 0, 0x7fffffff, NV); /* 3e9 */
  FPI(D, "fcvt.w.d t0, ft0, rtz", 0xc1e0000000000000, 0, 0, 0xffffffff80000000, 0);
  FPI(D, "fcvt.w.d t0, ft0, rtz", 0xc1e0000000100000, 0, 0, 0xffffffff80000000, NX); /* -2^31-0.5 */
  FPI(D, "fcvt.w.d t0, ft0, rtz", 0xc1e0000000200000, 0, 0, 0xffffffff80000000, NV); /* -2^31-1 */
  FPI(D, "fcvt.w.d t0, ft0, rtz", QNAN, 0, 0, 0x7fffffff, NV);
  FPI(D, "fcvt.w.d t0, ft0, rtz", N_INF, 0, 0, 0xffffffff80000000, NV);
  FPI(D, "fcvt.wu.d t0, ft0, rtz", 0x41efffffffe00000, 0, 0, 0xffffffffffffffff, 0);
  FPI(D, "fcvt.wu.d t0, ft0, rtz", 0x41f0000000000000, 0, 0, 0xffffffffffffffff, NV);
  FPI(D, "fcvt.wu.d t0, ft0, rtz", M_ONE, 0, 0, 0, NV);
  FPI(D, "fcvt.wu.d t0, ft0, rtz", 0xbfe0000000000000, 0, 0, 0, NX);
  FPI(D, "fcvt.wu.d t0, ft0, rtz", SNAN, 0, 0, 0xffffffffffffffff, NV);
  FPI(D, "fcvt.l.d t0, ft0, rtz", 0xc3e158e460913d00, 0, 0, 0x8000000000000000, NV); /* -1e19 */
  FPI(D, "fcvt.l.d t0, ft0, rtz", 0x43dfffffffffffff, 0, 0, 0x7ffffffffffffc00, 0);
  FPI(D, "fcvt.l.d t0, ft0, rtz", 0x43e0000000000000, 0, 0, 0x7fffffffffffffff, NV);
  FPI(D, "fcvt.l.d t0, ft0, rtz", QNAN, 0, 0, 0x7fffffffffffffff, NV);
  FPI(D, "fcvt.lu.d t0, ft0, rtz", 0x43f0000000000000, 0, 0, 0xffffffffffffffff, NV);
  FPI(D, "fcvt.lu.d t0, ft0, rtz", 0x43efffffffffffff, 0, 0, 0xfffffffffffff800, 0);
  FPI(D, "fcvt.lu.d t0, ft0, rtz", N_ZERO, 0, 0, 0, 0);
  FPI(D, "fcvt.lu.d t0, ft0, rtz", P_INF, 0, 0, 0xffffffffffffffff, NV);
  FPI(D, "fcvt.lu.d t0, ft0, rtz", N_INF, 0, 0, 0, NV);
  u64 r, f;
#define CVT_TO_D(insn, rm, v, exp, fl)                                                      \
  asm volatile("csrwi fflags, 0\n " insn " ft3, %2" rm "\n fmv.x.d %0, ft3\n frflags %1"  \
               : "=r"(r), "=r"(f)                                                          \
               : "r"((u64)(v))                                                             \
               : "ft3");                                                                   \
  fp_check(__LINE__, insn " " rm " " #v, r, exp, f, fl)
  CVT_TO_D("fcvt.d.w", "", 0xffffffffffffffff, M_ONE, 0);
  CVT_TO_D("fcvt.d.w", "", 0x0000000080000000, 0xc1e0000000000000, 0);
  CVT_TO_D("fcvt.d.wu", "", 0xffffffff, 0x41efffffffe00000, 0);
  CVT_TO_D("fcvt.d.wu", "", 0x1234567800000001, ONE, 0);
  CVT_TO_D("fcvt.d.l", ", rne", 0x7fffffffffffffff, 0x43e0000000000000, NX);
  CVT_TO_D("fcvt.d.l", ", rtz", 0x7fffffffffffffff, 0x43dfffffffffffff, NX);
  CVT_TO_D("fcvt.d.l", ", rne", 0x8000000000000000, 0xc3e0000000000000, 0);
  CVT_TO_D("fcvt.d.lu", ", rne", 0xffffffffffffffff, 0x43f0000000000000, NX);
  CVT_TO_D("fcvt.d.lu", ", rdn", 0xffffffffffffffff, 0x43efffffffffffff, NX);
  CVT_TO_D("fcvt.d.lu", ", rmm", 0x0020000000000001, 0x4340000000000001, NX); /* 2^53 + 1: a tie */
  CVT_TO_D("fcvt.d.lu", ", rne", 0x0020000000000001, 0x4340000000000000, NX);
  CVT_TO_D("fcvt.d.lu", ", rup", 0x0020000000000001, 0x4340000000000001, NX);
}

static void classify_minmax_sign(void) {
  static const u64 in[10] = {N_INF, M_ONE, 0x8000000000000001, N_ZERO, P_ZERO,
                             MINSUB, ONE, P_INF, SNAN, QNAN};
  for (int i = 0; i < 10; i++) {
    u64 r;
    asm volatile("fmv.d.x ft0, %1\n fclass.d %0, ft0" : "=r"(r) : "r"(in[i]) : "ft0");
    CHECK(r, 1u << i);
  }
  FPF(D, "fmin.d ft3, ft0, ft1", N_ZERO, P_ZERO, 0, N_ZERO, 0);
  FPF(D, "fmax.d ft3, ft0, ft1", N_ZERO, P_ZERO, 0, P_ZERO, 0);
  FPF(D, "fmax.d ft3, ft0, ft1", P_ZERO, N_ZERO, 0, P_ZERO, 0);
  FPF(D, "fmin.d ft3, ft0, ft1", TWO, ONE, 0, ONE, 0);
  FPF(D, "fmin.d ft3, ft0, ft1", QNAN, M_ONE, 0, M_ONE, 0);
  FPF(D, "fmax.d ft3, ft0, ft1", SNAN, ONE, 0, ONE, NV);
  FPF(D, "fmin.d ft3, ft0, ft1", 0xfff0000000000002, SNAN, 0, QNAN, NV);
  FPF(D, "fsgnj.d ft3, ft0, ft1", ONE, N_ZERO, 0, M_ONE, 0);
  FPF(D, "fsgnjn.d ft3, ft0, ft1", M_ONE, N_ZERO, 0, ONE, 0);
  FPF(D, "fsgnjx.d ft3, ft0, ft1", M_ONE, N_INF, 0, ONE, 0);
  FPF(D, "fsgnjx.d ft3, ft0, ft1", QNAN, N_ZERO, 0, 0xfff8000000000000, 0);
  FPI(D, "feq.d t0, ft0, ft1", P_ZERO, N_ZERO, 0, 1, 0);
  FPI(D, "feq.d t0, ft0, ft1", QNAN, QNAN, 0, 0, 0);
  FPI(D, "feq.d t0, ft0, ft1", SNAN, ONE, 0, 0, NV);
  FPI(D, "flt.d t0, ft0, ft1", N_INF, P_INF, 0, 1, 0);
  FPI(D, "flt.d t0, ft0, ft1", ONE, QNAN, 0, 0, NV);
  FPI(D, "fle.d t0, ft0, ft1", ONE, ONE, 0, 1, 0);
  FPI(D, "fle.d t0, ft0, ft1", TWO, ONE, 0, 0, 0);
}

static void moves_and_memory(void) {
  static volatile u64 mem[2];
  u64 r;
  /* fmv.d.x / fmv.x.d move all 64 bits, NaN payloads included. */
  asm volatile("fmv.d.x ft0, %1\n fmv.x.d %0, ft0" : "=r"(r) : "r"(0x7ff4000000000abcul) : "ft0");
  CHECK(r, 0x7ff4000000000abc);
  mem[0] = 0xfff0000012345678;
  asm volatile("fld ft0, 0(%1)\n fsd ft0, 8(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(mem)
               : "ft0", "memory");
  CHECK(r, 0xfff0000012345678);
  CHECK(mem[1], 0xfff0000012345678);
  /* fsd of a single value stores the box too. */
  asm volatile("fmv.w.x ft0, %0\n fsd ft0, 8(%1)" ::"r"(0x3f800000ul), "r"(mem) : "ft0", "memory");
  CHECK(mem[1], 0xffffffff3f800000);
  /* Double ops see the raw bits of a single result. */
  FPF(D, "fcvt.s.d ft3, ft0\n fadd.d ft3, ft3, ft1", ONE, ONE, 0, QNAN, 0); /* a quiet NaN */
}

int main(void) {
  rounding();
  exact_and_special();
  conversions();
  classify_minmax_sign();
  moves_and_memory();
  return 0;
}
