/* Helpers for the F and D tests: run one FP instruction on raw bit patterns
 * with fflags cleared beforehand, and check the result bits together with the
 * fflags it raised (one numbered check per instruction).
 *
 * Operands are loaded into ft0, ft1, ft2 with LD ("fmv.w.x", which NaN-boxes,
 * or "fmv.d.x", which moves all 64 bits); the instruction under test writes
 * ft3 (read back whole with fmv.x.d, so single results are checked NaN-boxed)
 * or t0 for integer results. PRE runs first (e.g. setting frm). */
#ifndef ISA_FP_CHECK_H
#define ISA_FP_CHECK_H

#include "runtime.h"

#define BOX(x) (0xffffffff00000000ull | (u32)(x))
#define RAW(x) ((u64)(x))

void fp_check(int line, const char *what, u64 got, u64 exp, u64 got_flags, u64 exp_flags);

#define FP_RUN(PRE, LD, INSN, OUT, a, b, c, exp, fl)                                      \
  do {                                                                                  \
    u64 r_, f_;                                                                         \
    asm volatile(PRE "\n csrwi fflags, 0\n " LD " ft0, %2\n " LD " ft1, %3\n " LD        \
                     " ft2, %4\n " INSN "\n " OUT "\n csrr %1, fflags"                  \
                 : "=&r"(r_), "=&r"(f_)                                                 \
                 : "r"((u64)(a)), "r"((u64)(b)), "r"((u64)(c))                          \
                 : "ft0", "ft1", "ft2", "ft3", "t0");                                   \
    fp_check(__LINE__, PRE " " INSN, r_, exp, f_, fl);                                  \
  } while (0)

/* Float result in ft3. */
#define FPF(LD, INSN, a, b, c, exp, fl) FP_RUN("", LD, INSN, "fmv.x.d %0, ft3", a, b, c, exp, fl)
/* Integer result in t0. */
#define FPI(LD, INSN, a, b, c, exp, fl) FP_RUN("", LD, INSN, "mv %0, t0", a, b, c, exp, fl)

/* One instruction under all five static rounding modes and, through frm,
 * the same five with rm = dyn. INSN ends just before the rounding mode. */
#define FP_ALLRM(LD, INSN, OUT, a, b, c, e_rne, e_rtz, e_rdn, e_rup, e_rmm, fl) \
  do {                                                                        \
    FP_RUN("", LD, INSN ", rne", OUT, a, b, c, e_rne, fl);                    \
    FP_RUN("", LD, INSN ", rtz", OUT, a, b, c, e_rtz, fl);                    \
    FP_RUN("", LD, INSN ", rdn", OUT, a, b, c, e_rdn, fl);                    \
    FP_RUN("", LD, INSN ", rup", OUT, a, b, c, e_rup, fl);                    \
    FP_RUN("", LD, INSN ", rmm", OUT, a, b, c, e_rmm, fl);                    \
    FP_RUN("csrwi frm, 0", LD, INSN ", dyn", OUT, a, b, c, e_rne, fl);        \
    FP_RUN("csrwi frm, 1", LD, INSN ", dyn", OUT, a, b, c, e_rtz, fl);        \
    FP_RUN("csrwi frm, 2", LD, INSN ", dyn", OUT, a, b, c, e_rdn, fl);        \
    FP_RUN("csrwi frm, 3", LD, INSN ", dyn", OUT, a, b, c, e_rup, fl);        \
    FP_RUN("csrwi frm, 4", LD, INSN ", dyn", OUT, a, b, c, e_rmm, fl);        \
    asm volatile("csrwi frm, 0");                                             \
  } while (0)

#define NX 0x01
#define UF 0x02
#define OF 0x04
#define DZ 0x08
#define NV 0x10

#endif
