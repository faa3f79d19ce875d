/* The FP control and status register and FP state control: fflags
 * accumulating across instructions, fcsr/frm/fflags as views of one
 * register (including the fsrm/fsflags forms), reserved rounding modes
 * (static rm = 5, dyn with frm = 5) trapping as illegal instructions with the
 * bits in mtval, and mstatus.FS: Dirty after an FP write, SD, and every FP
 * instruction and FP CSR access illegal when FS = Off. */
#include "fp_check.h"

#define ONE 0x3f800000
#define THREE 0x40400000
#define M_ONE 0xbf800000

static void fcsr_access(void) {
  u64 r, old;
  CSR_WRITE(fcsr, 0);
  /* fflags accumulate: NX, then DZ, then NV. */
  asm volatile(
      "fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n"
      "fdiv.s ft2, ft0, ft1\n" /* 1/3: NX */
      "fmv.w.x ft1, x0\n"
      "fdiv.s ft2, ft0, ft1\n" /* 1/0: DZ */
      "fsqrt.s ft2, ft2\n"     /* sqrt(+inf) = +inf: no flag */
      "frflags %0"
      : "=r"(r)
      : "r"((u64)ONE), "r"((u64)THREE)
      : "ft0", "ft1", "ft2");
  CHECK(r, NX | DZ);
  asm volatile("fmv.w.x ft0, %1\n fsqrt.s ft0, ft0\n frflags %0" : "=r"(r) : "r"((u64)M_ONE) : "ft0");
  CHECK(r, NX | DZ | NV);
  CHECK(CSR_READ(fcsr), NX | DZ | NV);
  /* An op raising nothing leaves the flags alone. */
  asm volatile("fmv.w.x ft0, %1\n fadd.s ft0, ft0, ft0\n frflags %0" : "=r"(r) : "r"((u64)ONE) : "ft0");
  CHECK(r, NX | DZ | NV);
  /* fcsr = frm << 5 | fflags; the three CSRs are views of one register. */
  CSR_WRITE(fcsr, 0x9f);
  CHECK(CSR_READ(frm), 4);
  CHECK(CSR_READ(fflags), 0x1f);
  CSR_WRITE(frm, 1);
  CHECK(CSR_READ(fcsr), 0x3f);
  CSR_WRITE(fflags, 0x2);
  CHECK(CSR_READ(fcsr), 0x22);
  CSR_WRITE(fcsr, 0xffffffffffffff1f); /* bits above 7 are reserved, read as 0 */
  CHECK(CSR_READ(fcsr), 0x1f);
  CHECK(CSR_READ(frm), 0);
  asm volatile("fsrmi %0, 3" : "=r"(old));
  CHECK(old, 0);
  asm volatile("fsflagsi %0, 4" : "=r"(old));
  CHECK(old, 0x1f);
  CHECK(CSR_READ(fcsr), 0x64);
  asm volatile("csrrci %0, fflags, 4" : "=r"(old));
  CHECK(old, 4);
  asm volatile("csrrsi %0, frm, 4" : "=r"(old));
  CHECK(old, 3);
  CHECK(CSR_READ(fcsr), 0xe0);
  CSR_WRITE(fcsr, 0);
}

static void illegal_and_fs(void) {
  u64 r;
  /* Static rm = 5 is reserved: illegal instruction, mtval = the bits. */
  isa_expect_traps();
  asm volatile(".option push\n .option norvc\n .word 0x00105153\n .option pop"); /* fadd.s ft2,ft0,ft1,rm=5 */
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0x00105153);
  /* frm = 5 with rm = dyn is illegal; rm = rne is not. */
  CSR_WRITE(frm, 5);
  CHECK(CSR_READ(frm), 5);
  asm volatile(".option push\n .option norvc\n .word 0x00107153\n .option pop"); /* ..., dyn */
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.tval, 0x00107153);
  asm volatile("fadd.s ft2, ft0, ft1, rne" ::: "ft2");
  CHECK(isa_trap.count, 2);
  CSR_WRITE(frm, 0);
  /* mstatus.FS: an FP write makes it Dirty and sets SD. */
  CSR_CLEAR(mstatus, MSTATUS_FS);
  CSR_SET(mstatus, MSTATUS_FS_INITIAL);
  asm volatile("fmv.w.x ft0, x0" ::: "ft0");
  r = CSR_READ(mstatus);
  CHECK((r >> 13) & 3, 3);
  CHECK(r >> 63, 1);
  /* With FS = Off every FP instruction and FP CSR access is illegal. */
  CSR_CLEAR(mstatus, MSTATUS_FS);
  CHECK(CSR_READ(mstatus) >> 63, 0);
  asm volatile(".option push\n .option norvc\n fadd.s ft0, ft0, ft0\n .option pop" ::: "ft0");
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0x00007053);
  asm volatile(".option push\n .option norvc\n csrr %0, fcsr\n .option pop" : "=r"(r));
  CHECK(isa_trap.count, 4);
  asm volatile(".option push\n .option norvc\n flw ft0, 0(sp)\n .option pop" ::: "ft0");
  CHECK(isa_trap.count, 5);
  CSR_SET(mstatus, MSTATUS_FS_INITIAL);
  isa_unexpect_traps();
}

int main(void) {
  fcsr_access();
  illegal_and_fs();
  return 0;
}
