/* Differential: F and D instructions over edge operands (zeros, subnormals,
 * normals near rounding boundaries, extremes, infinities, quiet and
 * signalling NaNs with payloads) and PRNG bit patterns (fixed seed), under
 * the five static rounding modes and under rm = dyn with each frm value.
 * Every result is mixed with the fflags that instruction raised (cleared
 * before each one); each output line is one (op, rounding, first operand)
 * row. Improperly NaN-boxed single operands are covered by the *_raw ops.
 * Finally fcsr after an accumulating run is printed. */
#include "runtime.h"

static const u64 s_edge[24] = {
    0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x3f800000, 0xbf800000, 0x3fc00000,
    0x3eaaaaab, 0x3f7fffff, 0x4b000001, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000,
    0x7f800001, 0xffc12345, 0x4f000000, 0xcf000000, 0x5f000000, 0x40200000, 0xc0200000, 0x33800000,
};
static const u64 d_edge[24] = {
    0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x800fffffffffffff,
    0x0010000000000000, 0x3ff0000000000000, 0xbff0000000000000, 0x3ff8000000000000,
    0x3fd5555555555555, 0x3fefffffffffffff, 0x4330000000000001, 0x7fefffffffffffff,
    0xffefffffffffffff, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
    0x7ff0000000000001, 0xfff8000000012345, 0x41e0000000000000, 0xc1e0000000000000,
    0x43e0000000000000, 0x4004000000000000, 0x36a0000000000000, 0x3ca0000000000000,
};
static const u64 i_edge[24] = {
    0, 1, 2, 3, 0xffffffffffffffff, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x8000000000000000,
    0x000000007fffffff, 0x0000000080000000, 0x00000000ffffffff, 0xffffffff80000000,
    0x0000000100000000, 0x0000000001000001, 0x0000000000ffffff, 0x0020000000000001,
    0x001fffffffffffff, 0xffffffff7fffffff, 0x7ffffffffffffc00, 0x7ffffffffffffe00,
    0xfffffffffffff801, 0x00000000fffffff0, 0x8000000000000401, 0x123456789abcdef0,
};
/* 64-bit register images for single ops: boxed and improperly boxed. */
static const u64 raw_edge[8] = {
    0xffffffff3f800000, 0x000000003f800000, 0xfffffffe3f800000, 0x7fffffff40000000,
    0xffffffffbf800000, 0x3ff0000000000000, 0xffffffff7f800001, 0x00000000ffffffff,
};

typedef u64 (*fp_fn)(u64, u64, u64, u64 *);

#define FN(fname, LD, INSN, OUT)                                                         \
  static u64 fname(u64 a, u64 b, u64 c, u64 *fl) {                                      \
    u64 r, f;                                                                           \
    asm volatile("csrwi fflags, 0\n " LD " ft0, %2\n " LD " ft1, %3\n " LD " ft2, %4\n " \
                 INSN "\n " OUT "\n frflags %1"                                          \
                 : "=&r"(r), "=&r"(f)                                                   \
                 : "r"(a), "r"(b), "r"(c)                                               \
                 : "ft0", "ft1", "ft2", "ft3", "t0");                                   \
    *fl = f;                                                                            \
    return r;                                                                           \
  }
#define OUTF "fmv.x.d %0, ft3"
#define OUTI "mv %0, t0"

/* Six functions per rounding-sensitive op: rne rtz rdn rup rmm dyn. */
#define RM6(base, LD, INSN, OUT)           \
  FN(base##_rne, LD, INSN ", rne", OUT)    \
  FN(base##_rtz, LD, INSN ", rtz", OUT)    \
  FN(base##_rdn, LD, INSN ", rdn", OUT)    \
  FN(base##_rup, LD, INSN ", rup", OUT)    \
  FN(base##_rmm, LD, INSN ", rmm", OUT)    \
  FN(base##_dyn, LD, INSN ", dyn", OUT)

#define S "fmv.w.x"
#define D "fmv.d.x"
#define X "fmv.d.x" /* int-source ops read %2 directly; ft0-ft2 are loaded but unused */

RM6(fadd_s, S, "fadd.s ft3, ft0, ft1", OUTF)
RM6(fsub_s, S, "fsub.s ft3, ft0, ft1", OUTF)
RM6(fmul_s, S, "fmul.s ft3, ft0, ft1", OUTF)
RM6(fdiv_s, S, "fdiv.s ft3, ft0, ft1", OUTF)
RM6(fsqrt_s, S, "fsqrt.s ft3, ft0", OUTF)
RM6(fmadd_s, S, "fmadd.s ft3, ft0, ft1, ft2", OUTF)
RM6(fmsub_s, S, "fmsub.s ft3, ft0, ft1, ft2", OUTF)
RM6(fnmadd_s, S, "fnmadd.s ft3, ft0, ft1, ft2", OUTF)
RM6(fnmsub_s, S, "fnmsub.s ft3, ft0, ft1, ft2", OUTF)
RM6(fcvt_w_s, S, "fcvt.w.s t0, ft0", OUTI)
RM6(fcvt_wu_s, S, "fcvt.wu.s t0, ft0", OUTI)
RM6(fcvt_l_s, S, "fcvt.l.s t0, ft0", OUTI)
RM6(fcvt_lu_s, S, "fcvt.lu.s t0, ft0", OUTI)
RM6(fcvt_s_w, X, "fcvt.s.w ft3, %2", OUTF)
RM6(fcvt_s_wu, X, "fcvt.s.wu ft3, %2", OUTF)
RM6(fcvt_s_l, X, "fcvt.s.l ft3, %2", OUTF)
RM6(fcvt_s_lu, X, "fcvt.s.lu ft3, %2", OUTF)
RM6(fcvt_s_d, D, "fcvt.s.d ft3, ft0", OUTF)
RM6(fadd_d, D, "fadd.d ft3, ft0, ft1", OUTF)
RM6(fsub_d, D, "fsub.d ft3, ft0, ft1", OUTF)
RM6(fmul_d, D, "fmul.d ft3, ft0, ft1", OUTF)
RM6(fdiv_d, D, "fdiv.d ft3, ft0, ft1", OUTF)
RM6(fsqrt_d, D, "fsqrt.d ft3, ft0", OUTF)
RM6(fmadd_d, D, "fmadd.d ft3, ft0, ft1, ft2", OUTF)
RM6(fmsub_d, D, "fmsub.d ft3, ft0, ft1, ft2", OUTF)
RM6(fnmadd_d, D, "fnmadd.d ft3, ft0, ft1, ft2", OUTF)
RM6(fnmsub_d, D, "fnmsub.d ft3, ft0, ft1, ft2", OUTF)
RM6(fcvt_w_d, D, "fcvt.w.d t0, ft0", OUTI)
RM6(fcvt_wu_d, D, "fcvt.wu.d t0, ft0", OUTI)
RM6(fcvt_l_d, D, "fcvt.l.d t0, ft0", OUTI)
RM6(fcvt_lu_d, D, "fcvt.lu.d t0, ft0", OUTI)
RM6(fcvt_d_l, X, "fcvt.d.l ft3, %2", OUTF)
RM6(fcvt_d_lu, X, "fcvt.d.lu ft3, %2", OUTF)

/* Rounding-insensitive ops: one function each. */
FN(fmin_s, S, "fmin.s ft3, ft0, ft1", OUTF)
FN(fmax_s, S, "fmax.s ft3, ft0, ft1", OUTF)
FN(fsgnj_s, S, "fsgnj.s ft3, ft0, ft1", OUTF)
FN(fsgnjn_s, S, "fsgnjn.s ft3, ft0, ft1", OUTF)
FN(fsgnjx_s, S, "fsgnjx.s ft3, ft0, ft1", OUTF)
FN(feq_s, S, "feq.s t0, ft0, ft1", OUTI)
FN(flt_s, S, "flt.s t0, ft0, ft1", OUTI)
FN(fle_s, S, "fle.s t0, ft0, ft1", OUTI)
FN(fclass_s, S, "fclass.s t0, ft0", OUTI)
FN(fmv_x_w, S, "fmv.x.w t0, ft0", OUTI)
FN(fcvt_d_s, S, "fcvt.d.s ft3, ft0", OUTF)
FN(fmin_d, D, "fmin.d ft3, ft0, ft1", OUTF)
FN(fmax_d, D, "fmax.d ft3, ft0, ft1", OUTF)
FN(fsgnj_d, D, "fsgnj.d ft3, ft0, ft1", OUTF)
FN(fsgnjn_d, D, "fsgnjn.d ft3, ft0, ft1", OUTF)
FN(fsgnjx_d, D, "fsgnjx.d ft3, ft0, ft1", OUTF)
FN(feq_d, D, "feq.d t0, ft0, ft1", OUTI)
FN(flt_d, D, "flt.d t0, ft0, ft1", OUTI)
FN(fle_d, D, "fle.d t0, ft0, ft1", OUTI)
FN(fclass_d, D, "fclass.d t0, ft0", OUTI)
FN(fcvt_d_w, X, "fcvt.d.w ft3, %2", OUTF)
FN(fcvt_d_wu, X, "fcvt.d.wu ft3, %2", OUTF)
FN(fmv_w_x, X, "fmv.w.x ft3, %2", OUTF)
FN(fadd_s_raw, D, "fadd.s ft3, ft0, ft1", OUTF)
FN(fmul_s_raw, D, "fmul.s ft3, ft0, ft1, rtz", OUTF)
FN(fsgnjx_s_raw, D, "fsgnjx.s ft3, ft0, ft1", OUTF)
FN(fmin_s_raw, D, "fmin.s ft3, ft0, ft1", OUTF)
FN(feq_s_raw, D, "feq.s t0, ft0, ft1", OUTI)
FN(fclass_s_raw, D, "fclass.s t0, ft0", OUTI)
FN(fmv_x_w_raw, D, "fmv.x.w t0, ft0", OUTI)
FN(fcvt_d_s_raw, D, "fcvt.d.s ft3, ft0", OUTF)
FN(fcvt_l_s_raw, D, "fcvt.l.s t0, ft0, rtz", OUTI)
FN(fmadd_s_raw, D, "fmadd.s ft3, ft0, ft1, ft2", OUTF)

enum kind { K_S, K_D, K_I, K_RAW };
struct op {
  const char *name;
  fp_fn fn[6]; /* one entry for rounding-insensitive ops */
  int arity;
  enum kind kind;
};

#define OP6(base, arity, kind) \
  {#base, {base##_rne, base##_rtz, base##_rdn, base##_rup, base##_rmm, base##_dyn}, arity, kind}
#define OP1(base, arity, kind) {#base, {base}, arity, kind}

static const struct op ops[] = {
    OP6(fadd_s, 2, K_S), OP6(fsub_s, 2, K_S), OP6(fmul_s, 2, K_S), OP6(fdiv_s, 2, K_S),
    OP6(fsqrt_s, 1, K_S), OP6(fmadd_s, 3, K_S), OP6(fmsub_s, 3, K_S), OP6(fnmadd_s, 3, K_S),
    OP6(fnmsub_s, 3, K_S), OP6(fcvt_w_s, 1, K_S), OP6(fcvt_wu_s, 1, K_S), OP6(fcvt_l_s, 1, K_S),
    OP6(fcvt_lu_s, 1, K_S), OP6(fcvt_s_w, 1, K_I), OP6(fcvt_s_wu, 1, K_I), OP6(fcvt_s_l, 1, K_I),
    OP6(fcvt_s_lu, 1, K_I), OP6(fcvt_s_d, 1, K_D), OP6(fadd_d, 2, K_D), OP6(fsub_d, 2, K_D),
    OP6(fmul_d, 2, K_D), OP6(fdiv_d, 2, K_D), OP6(fsqrt_d, 1, K_D), OP6(fmadd_d, 3, K_D),
    OP6(fmsub_d, 3, K_D), OP6(fnmadd_d, 3, K_D), OP6(fnmsub_d, 3, K_D), OP6(fcvt_w_d, 1, K_D),
    OP6(fcvt_wu_d, 1, K_D), OP6(fcvt_l_d, 1, K_D), OP6(fcvt_lu_d, 1, K_D), OP6(fcvt_d_l, 1, K_I),
    OP6(fcvt_d_lu, 1, K_I),
    OP1(fmin_s, 2, K_S), OP1(fmax_s, 2, K_S), OP1(fsgnj_s, 2, K_S), OP1(fsgnjn_s, 2, K_S),
    OP1(fsgnjx_s, 2, K_S), OP1(feq_s, 2, K_S), OP1(flt_s, 2, K_S), OP1(fle_s, 2, K_S),
    OP1(fclass_s, 1, K_S), OP1(fmv_x_w, 1, K_S), OP1(fcvt_d_s, 1, K_S), OP1(fmin_d, 2, K_D),
    OP1(fmax_d, 2, K_D), OP1(fsgnj_d, 2, K_D), OP1(fsgnjn_d, 2, K_D), OP1(fsgnjx_d, 2, K_D),
    OP1(feq_d, 2, K_D), OP1(flt_d, 2, K_D), OP1(fle_d, 2, K_D), OP1(fclass_d, 1, K_D),
    OP1(fcvt_d_w, 1, K_I), OP1(fcvt_d_wu, 1, K_I), OP1(fmv_w_x, 1, K_I),
    OP1(fadd_s_raw, 2, K_RAW), OP1(fmul_s_raw, 2, K_RAW), OP1(fsgnjx_s_raw, 2, K_RAW),
    OP1(fmin_s_raw, 2, K_RAW), OP1(feq_s_raw, 2, K_RAW), OP1(fclass_s_raw, 1, K_RAW),
    OP1(fmv_x_w_raw, 1, K_RAW), OP1(fcvt_d_s_raw, 1, K_RAW), OP1(fcvt_l_s_raw, 1, K_RAW),
    OP1(fmadd_s_raw, 3, K_RAW),
};

static const char *const rm_name[10] = {"rne", "rtz", "rdn", "rup", "rmm",
                                        "dyn0", "dyn1", "dyn2", "dyn3", "dyn4"};

static u64 mix(u64 h, u64 v) { return (h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2))); }

static const u64 *values(enum kind k, int *n) {
  switch (k) {
    case K_S: *n = 24; return s_edge;
    case K_D: *n = 24; return d_edge;
    case K_I: *n = 24; return i_edge;
    default: *n = 8; return raw_edge;
  }
}

/* Random operand of a kind: mostly edge values perturbed, or raw bits. */
static u64 random_operand(enum kind k, u64 *seed) {
  int n;
  const u64 *v = values(k, &n);
  u64 r = isa_rand(seed);
  u64 x;
  switch (r & 3) {
    case 0: x = v[(r >> 8) % n]; break;
    case 1: x = v[(r >> 8) % n] ^ ((r >> 20) & 0xf); break; /* nudge the last bits */
    case 2: x = v[(r >> 8) % n] + ((r >> 32) & 0xff) - 0x80; break;
    default: x = isa_rand(seed); break;
  }
  if (k == K_S) x &= 0xffffffff;
  return x;
}

int main(void) {
  int nops = sizeof ops / sizeof ops[0];
  isa_printf("diff_fp: %d ops\n", nops);
  for (int i = 0; i < nops; i++) {
    const struct op *o = &ops[i];
    int nrm = o->fn[1] ? 10 : 1;
    int n;
    const u64 *v = values(o->kind, &n);
    for (int m = 0; m < nrm; m++) {
      fp_fn fn = o->fn[m < 5 ? m : 5];
      if (m >= 5) CSR_WRITE(frm, m - 5);
      for (int a = 0; a < n; a++) {
        u64 h = 0, flags_or = 0;
        int nb = o->arity >= 2 ? n : 1;
        for (int b = 0; b < nb; b++) {
          u64 fl;
          u64 c = v[(a * 7 + b * 3) % n];
          u64 r = fn(v[a], v[b], c, &fl);
          h = mix(mix(h, r), fl);
          flags_or |= fl;
          if (nb == 1) h = r ^ (fl << 59); /* unary: the value itself, flags on top */
        }
        isa_printf("%s %s %lx: %016lx %02lx\n", o->name, nrm > 1 ? rm_name[m] : "-", v[a], h,
                   flags_or);
      }
      CSR_WRITE(frm, 0);
    }
  }
  /* PRNG operands: one hash per (op, rounding). */
  u64 seed = 0xf10a7;
  for (int i = 0; i < nops; i++) {
    const struct op *o = &ops[i];
    int nrm = o->fn[1] ? 10 : 1;
    for (int m = 0; m < nrm; m++) {
      fp_fn fn = o->fn[m < 5 ? m : 5];
      if (m >= 5) CSR_WRITE(frm, m - 5);
      u64 h = 0;
      for (int k = 0; k < 300; k++) {
        u64 a = random_operand(o->kind, &seed), b = random_operand(o->kind, &seed),
            c = random_operand(o->kind, &seed), fl;
        h = mix(mix(h, fn(a, b, c, &fl)), fl);
      }
      CSR_WRITE(frm, 0);
      isa_printf("%s %s random: %016lx\n", o->name, nrm > 1 ? rm_name[m] : "-", h);
    }
  }
  /* fflags accumulate across instructions when not cleared. */
  u64 acc;
  asm volatile(
      "csrwi fcsr, 0\n"
      "fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n"
      "fdiv.s ft2, ft0, ft1\n fmul.s ft2, ft1, ft1\n fsqrt.s ft2, ft1\n"
      "fcvt.w.s t0, ft1, rtz\n"
      "csrr %0, fcsr"
      : "=r"(acc)
      : "r"(0x3f800000ul), "r"(0x7f7ffffful)
      : "ft0", "ft1", "ft2", "t0");
  isa_printf("fcsr accumulated: %lx\n", acc);
  return 0;
}
