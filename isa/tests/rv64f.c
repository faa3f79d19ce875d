/* RV64F: single-precision arithmetic under the five static rounding modes and
 * dynamic frm, NaN-boxing of
 * single values in 64-bit registers, conversions with saturation, fclass,
 * fmin/fmax, fsgnj*, compares and fused multiply-add (fcsr, invalid
 * rounding modes and mstatus.FS are in fcsr.c). Expected bit patterns are worked out by hand (see comments)
 * and hold on any IEEE 754 implementation. */
#include "fp_check.h"

#define S "fmv.w.x"
#define OUTF "fmv.x.d %0, ft3"
#define OUTI "mv %0, t0"

#define ONE 0x3f800000
#define TWO 0x40000000
#define THREE 0x40400000
#define HALF 0x3f000000
#define M_ONE 0xbf800000
#define P_INF 0x7f800000
#define N_INF 0xff800000
#define QNAN 0x7fc00000
#define SNAN 0x7f800001
#define MAXF 0x7f7fffff
#define MINSUB 0x00000001
#define P_ZERO 0x00000000
#define N_ZERO 0x80000000

static void rounding(void) {
  /* 1 + 2^-24: a tie between 1 and 1 + 2^-23. */
  FP_ALLRM(S, "fadd.s ft3, ft0, ft1", OUTF, ONE, 0x33800000, 0, BOX(ONE), BOX(ONE), BOX(ONE),
           BOX(0x3f800001), BOX(0x3f800001), NX);
  /* -1 - 2^-24 */
  FP_ALLRM(S, "fadd.s ft3, ft0, ft1", OUTF, M_ONE, 0xb3800000, 0, BOX(M_ONE), BOX(M_ONE),
           BOX(0xbf800001), BOX(M_ONE), BOX(0xbf800001), NX);
  /* 1 - 1.5 * 2^-24: a tie between 1 - 2^-23 (even) and 1 - 2^-24. */
  FP_ALLRM(S, "fsub.s ft3, ft0, ft1", OUTF, ONE, 0x33c00000, 0, BOX(0x3f7ffffe), BOX(0x3f7ffffe),
           BOX(0x3f7ffffe), BOX(0x3f7fffff), BOX(0x3f7fffff), NX);
  /* 3 * 0x3eaaaaab = 1 + 2^-25 */
  FP_ALLRM(S, "fmul.s ft3, ft0, ft1", OUTF, THREE, 0x3eaaaaab, 0, BOX(ONE), BOX(ONE), BOX(ONE),
           BOX(0x3f800001), BOX(ONE), NX);
  /* 1 / 3 and -1 / 3 */
  FP_ALLRM(S, "fdiv.s ft3, ft0, ft1", OUTF, ONE, THREE, 0, BOX(0x3eaaaaab), BOX(0x3eaaaaaa),
           BOX(0x3eaaaaaa), BOX(0x3eaaaaab), BOX(0x3eaaaaab), NX);
  FP_ALLRM(S, "fdiv.s ft3, ft0, ft1", OUTF, M_ONE, THREE, 0, BOX(0xbeaaaaab), BOX(0xbeaaaaaa),
           BOX(0xbeaaaaab), BOX(0xbeaaaaaa), BOX(0xbeaaaaab), NX);
  /* sqrt(2) = 0x3fb504f3 + 0.2 ulp */
  FP_ALLRM(S, "fsqrt.s ft3, ft0", OUTF, TWO, 0, 0, BOX(0x3fb504f3), BOX(0x3fb504f3),
           BOX(0x3fb504f3), BOX(0x3fb504f4), BOX(0x3fb504f3), NX);
  /* Overflow: max * 2 and max * -2. */
  FP_ALLRM(S, "fmul.s ft3, ft0, ft1", OUTF, MAXF, TWO, 0, BOX(P_INF), BOX(MAXF), BOX(MAXF),
           BOX(P_INF), BOX(P_INF), OF | NX);
  FP_ALLRM(S, "fmul.s ft3, ft0, ft1", OUTF, MAXF, 0xc0000000, 0, BOX(N_INF), BOX(0xff7fffff),
           BOX(N_INF), BOX(0xff7fffff), BOX(N_INF), OF | NX);
  /* Underflow: smallest subnormal * 0.5 = 2^-150, a tie between 0 and 2^-149. */
  FP_ALLRM(S, "fmul.s ft3, ft0, ft1", OUTF, MINSUB, HALF, 0, BOX(0), BOX(0), BOX(0),
           BOX(MINSUB), BOX(MINSUB), UF | NX);
  /* Fused: 2 * 3 + 2^-24*... exact cases need no rounding. */
  FP_ALLRM(S, "fmadd.s ft3, ft0, ft1, ft2", OUTF, ONE, ONE, 0x33800000, BOX(ONE), BOX(ONE),
           BOX(ONE), BOX(0x3f800001), BOX(0x3f800001), NX);
  /* fcvt.w.s of 2.5 and -2.5 */
  FP_ALLRM(S, "fcvt.w.s t0, ft0", OUTI, 0x40200000, 0, 0, 2, 2, 2, 3, 3, NX);
  FP_ALLRM(S, "fcvt.w.s t0, ft0", OUTI, 0xc0200000, 0, 0, (u64)-2, (u64)-2, (u64)-3, (u64)-2,
           (u64)-3, NX);
}

static void exact_results(void) {
  FPF(S, "fadd.s ft3, ft0, ft1", ONE, TWO, 0, BOX(THREE), 0);
  FPF(S, "fsub.s ft3, ft0, ft1", ONE, TWO, 0, BOX(M_ONE), 0);
  FPF(S, "fsub.s ft3, ft0, ft1", ONE, ONE, 0, BOX(P_ZERO), 0);
  FPF(S, "fsub.s ft3, ft0, ft1, rdn", ONE, ONE, 0, BOX(N_ZERO), 0); /* x - x = -0 rounding down */
  FPF(S, "fmul.s ft3, ft0, ft1", THREE, HALF, 0, BOX(0x3fc00000), 0);
  FPF(S, "fmadd.s ft3, ft0, ft1, ft2", TWO, THREE, ONE, BOX(0x40e00000), 0);
  FPF(S, "fmsub.s ft3, ft0, ft1, ft2", TWO, THREE, ONE, BOX(0x40a00000), 0);
  FPF(S, "fnmsub.s ft3, ft0, ft1, ft2", TWO, THREE, ONE, BOX(0xc0a00000), 0);
  FPF(S, "fnmadd.s ft3, ft0, ft1, ft2", TWO, THREE, ONE, BOX(0xc0e00000), 0);
  /* Single rounding: (1 + 2^-23)(1 - 2^-23) - 1 = -2^-46 exactly. */
  FPF(S, "fmsub.s ft3, ft0, ft1, ft2", 0x3f800001, 0x3f7ffffe, ONE, BOX(0xa8800000), 0);
  FPF(S, "fsqrt.s ft3, ft0", 0x40800000, 0, 0, BOX(TWO), 0);
  FPF(S, "fsqrt.s ft3, ft0", N_ZERO, 0, 0, BOX(N_ZERO), 0);
}

static void special_values(void) {
  FPF(S, "fdiv.s ft3, ft0, ft1", ONE, P_ZERO, 0, BOX(P_INF), DZ);
  FPF(S, "fdiv.s ft3, ft0, ft1", ONE, N_ZERO, 0, BOX(N_INF), DZ);
  FPF(S, "fdiv.s ft3, ft0, ft1", P_ZERO, P_ZERO, 0, BOX(QNAN), NV);
  FPF(S, "fsqrt.s ft3, ft0", M_ONE, 0, 0, BOX(QNAN), NV);
  FPF(S, "fadd.s ft3, ft0, ft1", P_INF, N_INF, 0, BOX(QNAN), NV);
  FPF(S, "fmul.s ft3, ft0, ft1", P_INF, P_ZERO, 0, BOX(QNAN), NV);
  /* NaN results are canonical whatever the input payload. */
  FPF(S, "fadd.s ft3, ft0, ft1", 0xffc12345, ONE, 0, BOX(QNAN), 0);
  FPF(S, "fadd.s ft3, ft0, ft1", SNAN, ONE, 0, BOX(QNAN), NV);
  FPF(S, "fmadd.s ft3, ft0, ft1, ft2", P_INF, P_ZERO, QNAN, BOX(QNAN), NV);
  FPF(S, "fmadd.s ft3, ft0, ft1, ft2", ONE, ONE, SNAN, BOX(QNAN), NV);
}

static void conversions(void) {
  /* To integers, saturating with NV. */
  FPI(S, "fcvt.w.s t0, ft0, rtz", 0x4f32d05e, 0, 0, 0x7fffffff, NV); /* 3e9 */
  FPI(S, "fcvt.w.s t0, ft0, rtz", 0xcf32d05e, 0, 0, 0xffffffff80000000, NV);
  FPI(S, "fcvt.w.s t0, ft0, rtz", QNAN, 0, 0, 0x7fffffff, NV);
  FPI(S, "fcvt.w.s t0, ft0, rtz", N_INF, 0, 0, 0xffffffff80000000, NV);
  FPI(S, "fcvt.w.s t0, ft0, rtz", 0xcf000000, 0, 0, 0xffffffff80000000, 0); /* -2^31 exact */
  FPI(S, "fcvt.wu.s t0, ft0, rtz", 0x4f32d05e, 0, 0, 0xffffffffb2d05e00, 0); /* sign-extended */
  FPI(S, "fcvt.wu.s t0, ft0, rtz", M_ONE, 0, 0, 0, NV);
  FPI(S, "fcvt.wu.s t0, ft0, rtz", 0xbf000000, 0, 0, 0, NX); /* -0.5 -> 0 */
  FPI(S, "fcvt.wu.s t0, ft0, rtz", QNAN, 0, 0, 0xffffffffffffffff, NV);
  FPI(S, "fcvt.wu.s t0, ft0, rtz", 0x4f800000, 0, 0, 0xffffffffffffffff, NV); /* 2^32 */
  FPI(S, "fcvt.l.s t0, ft0, rtz", 0x5f0ac723, 0, 0, 0x7fffffffffffffff, NV);  /* 1e19 */
  FPI(S, "fcvt.l.s t0, ft0, rtz", 0xdf000000, 0, 0, 0x8000000000000000, 0);  /* -2^63 */
  FPI(S, "fcvt.l.s t0, ft0, rtz", P_INF, 0, 0, 0x7fffffffffffffff, NV);
  FPI(S, "fcvt.l.s t0, ft0, rtz", SNAN, 0, 0, 0x7fffffffffffffff, NV);
  FPI(S, "fcvt.lu.s t0, ft0, rtz", 0x5f0ac723, 0, 0, 0x8ac7230000000000, 0);
  FPI(S, "fcvt.lu.s t0, ft0, rtz", N_INF, 0, 0, 0, NV);
  FPI(S, "fcvt.lu.s t0, ft0, rtz", QNAN, 0, 0, 0xffffffffffffffff, NV);
  FPI(S, "fcvt.lu.s t0, ft0, rtz", 0x5f800000, 0, 0, 0xffffffffffffffff, NV); /* 2^64 */
}

static void from_integers(void) {
  u64 r, f;
#define CVT_TO_S(insn, rm, v, exp, fl)                                                      \
  asm volatile("csrwi fflags, 0\n " insn " ft3, %2, " rm "\n fmv.x.d %0, ft3\n frflags %1"  \
               : "=r"(r), "=r"(f)                                                          \
               : "r"((u64)(v))                                                             \
               : "ft3");                                                                   \
  fp_check(__LINE__, insn " " rm " " #v, r, exp, f, fl)
  CVT_TO_S("fcvt.s.w", "rne", 0x7fffffff, BOX(0x4f000000), NX);
  CVT_TO_S("fcvt.s.w", "rtz", 0x7fffffff, BOX(0x4effffff), NX);
  CVT_TO_S("fcvt.s.w", "rne", 0xffffffff00000001, BOX(ONE), 0); /* upper bits ignored */
  CVT_TO_S("fcvt.s.w", "rne", 0xffffffff, BOX(M_ONE), 0);
  CVT_TO_S("fcvt.s.wu", "rne", 0xffffffff, BOX(0x4f800000), NX);
  CVT_TO_S("fcvt.s.wu", "rtz", 0xffffffff, BOX(0x4f7fffff), NX);
  CVT_TO_S("fcvt.s.l", "rne", 0xffffffffffffffff, BOX(M_ONE), 0);
  CVT_TO_S("fcvt.s.l", "rne", 0x8000000000000000, BOX(0xdf000000), 0);
  CVT_TO_S("fcvt.s.lu", "rne", 0xffffffffffffffff, BOX(0x5f800000), NX);
  CVT_TO_S("fcvt.s.lu", "rdn", 0xffffffffffffffff, BOX(0x5f7fffff), NX);
  CVT_TO_S("fcvt.s.lu", "rne", 0, BOX(0), 0);
}

static void classify_minmax_sign(void) {
  static const u32 in[10] = {N_INF, M_ONE, 0x80000001, N_ZERO, P_ZERO,
                             MINSUB, ONE, P_INF, SNAN, QNAN};
  for (int i = 0; i < 10; i++) {
    u64 r;
    asm volatile("fmv.w.x ft0, %1\n fclass.s %0, ft0" : "=r"(r) : "r"((u64)in[i]) : "ft0");
    CHECK(r, 1u << i);
  }
  FPF(S, "fmin.s ft3, ft0, ft1", N_ZERO, P_ZERO, 0, BOX(N_ZERO), 0);
  FPF(S, "fmin.s ft3, ft0, ft1", P_ZERO, N_ZERO, 0, BOX(N_ZERO), 0);
  FPF(S, "fmax.s ft3, ft0, ft1", N_ZERO, P_ZERO, 0, BOX(P_ZERO), 0);
  FPF(S, "fmax.s ft3, ft0, ft1", ONE, TWO, 0, BOX(TWO), 0);
  FPF(S, "fmin.s ft3, ft0, ft1", ONE, M_ONE, 0, BOX(M_ONE), 0);
  FPF(S, "fmin.s ft3, ft0, ft1", QNAN, ONE, 0, BOX(ONE), 0);
  FPF(S, "fmax.s ft3, ft0, ft1", ONE, QNAN, 0, BOX(ONE), 0);
  FPF(S, "fmin.s ft3, ft0, ft1", SNAN, ONE, 0, BOX(ONE), NV);
  FPF(S, "fmax.s ft3, ft0, ft1", 0x7fc11111, 0xffc22222, 0, BOX(QNAN), 0);
  FPF(S, "fmax.s ft3, ft0, ft1", SNAN, QNAN, 0, BOX(QNAN), NV);
  FPF(S, "fsgnj.s ft3, ft0, ft1", ONE, 0xc0000000, 0, BOX(M_ONE), 0);
  FPF(S, "fsgnj.s ft3, ft0, ft1", M_ONE, TWO, 0, BOX(ONE), 0);
  FPF(S, "fsgnjn.s ft3, ft0, ft1", ONE, 0xc0000000, 0, BOX(ONE), 0);
  FPF(S, "fsgnjn.s ft3, ft0, ft0", ONE, 0, 0, BOX(M_ONE), 0); /* fneg */
  FPF(S, "fsgnjx.s ft3, ft0, ft1", M_ONE, 0xc0000000, 0, BOX(ONE), 0);
  FPF(S, "fsgnjx.s ft3, ft0, ft0", M_ONE, 0, 0, BOX(ONE), 0); /* fabs */
  FPF(S, "fsgnjn.s ft3, ft0, ft0", SNAN, 0, 0, BOX(0xff800001), 0); /* no NaN handling */
  FPI(S, "feq.s t0, ft0, ft1", ONE, ONE, 0, 1, 0);
  FPI(S, "feq.s t0, ft0, ft1", N_ZERO, P_ZERO, 0, 1, 0);
  FPI(S, "feq.s t0, ft0, ft1", QNAN, ONE, 0, 0, 0);
  FPI(S, "feq.s t0, ft0, ft1", SNAN, ONE, 0, 0, NV);
  FPI(S, "flt.s t0, ft0, ft1", QNAN, ONE, 0, 0, NV);
  FPI(S, "flt.s t0, ft0, ft1", M_ONE, ONE, 0, 1, 0);
  FPI(S, "flt.s t0, ft0, ft1", N_ZERO, P_ZERO, 0, 0, 0);
  FPI(S, "fle.s t0, ft0, ft1", N_ZERO, P_ZERO, 0, 1, 0);
  FPI(S, "fle.s t0, ft0, ft1", ONE, QNAN, 0, 0, NV);
  FPI(S, "fle.s t0, ft0, ft1", N_INF, M_ONE, 0, 1, 0);
}

static void nan_boxing(void) {
  /* fmv.d.x leaves the upper half as given: 0x00000000_3f800000 is not a
   * properly boxed single and reads as the canonical NaN. */
  FPF("fmv.d.x", "fadd.s ft3, ft0, ft1", 0x000000003f800000, BOX(ONE), 0, BOX(QNAN), 0);
  FPF("fmv.d.x", "fadd.s ft3, ft0, ft1", BOX(ONE), BOX(ONE), 0, BOX(TWO), 0);
  FPF("fmv.d.x", "fmul.s ft3, ft0, ft1", BOX(TWO), 0xfffffffe40000000, 0, BOX(QNAN), 0);
  FPF("fmv.d.x", "fsgnj.s ft3, ft0, ft1", 0x7fffffff3f800000, BOX(ONE), 0, BOX(QNAN), 0);
  FPF("fmv.d.x", "fsgnjx.s ft3, ft1, ft0", 0x3f800000, BOX(M_ONE), 0, BOX(M_ONE), 0);
  FPF("fmv.d.x", "fmin.s ft3, ft0, ft1", 0x3f800000, BOX(TWO), 0, BOX(TWO), 0);
  FPF("fmv.d.x", "fcvt.d.s ft3, ft0", 0x3f800000, 0, 0, 0x7ff8000000000000, 0);
  FPI("fmv.d.x", "fclass.s t0, ft0", 0x3f800000, 0, 0, 1 << 9, 0);
  FPI("fmv.d.x", "fcvt.w.s t0, ft0, rtz", 0x3f800000, 0, 0, 0x7fffffff, NV);
  FPI("fmv.d.x", "feq.s t0, ft0, ft1", 0x3f800000, 0x3f800000, 0, 0, 0);
  /* fmv.x.w takes the low 32 bits and sign-extends, boxed or not. */
  FPI("fmv.d.x", "fmv.x.w t0, ft0", BOX(M_ONE), 0, 0, 0xffffffffbf800000, 0);
  FPI("fmv.d.x", "fmv.x.w t0, ft0", BOX(ONE), 0, 0, 0x3f800000, 0);
  FPI("fmv.d.x", "fmv.x.w t0, ft0", 0x12345678bf800000, 0, 0, 0xffffffffbf800000, 0);
  /* fmv.w.x boxes; it ignores the upper half of the integer register. */
  u64 r;
  asm volatile("fmv.w.x ft0, %1\n fmv.x.d %0, ft0" : "=r"(r) : "r"(0x123456780000abcdul) : "ft0");
  CHECK(r, 0xffffffff0000abcd);
  /* flw boxes; fsw stores the low 32 bits without checking the box. */
  static volatile u32 mem[2];
  mem[0] = 0x40490fdb;
  asm volatile("flw ft0, 0(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(mem) : "ft0", "memory");
  CHECK(r, BOX(0x40490fdb));
  asm volatile("fmv.d.x ft0, %0\n fsw ft0, 4(%1)" ::"r"(0x00000000c0490fdbul), "r"(mem)
               : "ft0", "memory");
  CHECK(mem[1], 0xc0490fdb);
}

int main(void) {
  rounding();
  exact_results();
  special_values();
  conversions();
  from_integers();
  classify_minmax_sign();
  nan_boxing();
  return 0;
}
