/* Zicsr: csrrw/csrrs/csrrc and their immediate forms (old value returned,
 * new value written, x0 rules), mscratch/sscratch as plain 64-bit storage,
 * WARL behaviour of mepc/mtvec, sstatus as a view of mstatus, machine
 * information CSRs, and writes to read-only CSRs trapping as illegal
 * instructions with the instruction bits in mtval. */
#include "runtime.h"

#define NORVC(...) asm volatile(".option push\n .option norvc\n" __VA_ARGS__)
#define END "\n .option pop"

static void read_write(void) {
  u64 old, r;
  CSR_WRITE(mscratch, 0x0123456789abcdef);
  CHECK(CSR_READ(mscratch), 0x0123456789abcdef);
  asm volatile("csrrw %0, mscratch, %1" : "=r"(old) : "r"(0xfedcba9876543210ul));
  CHECK(old, 0x0123456789abcdef);
  CHECK(CSR_READ(mscratch), 0xfedcba9876543210);
  asm volatile("csrrs %0, mscratch, %1" : "=r"(old) : "r"(0x0000000f0000000ful));
  CHECK(old, 0xfedcba9876543210);
  CHECK(CSR_READ(mscratch), 0xfedcba9f7654321f);
  asm volatile("csrrc %0, mscratch, %1" : "=r"(old) : "r"(0xff000000000000fful));
  CHECK(old, 0xfedcba9f7654321f);
  CHECK(CSR_READ(mscratch), 0x00dcba9f76543200);
  asm volatile("csrrwi %0, mscratch, 31" : "=r"(old));
  CHECK(old, 0x00dcba9f76543200);
  CHECK(CSR_READ(mscratch), 31);
  asm volatile("csrrci %0, mscratch, 5" : "=r"(old));
  CHECK(old, 31);
  CHECK(CSR_READ(mscratch), 26);
  asm volatile("csrrsi %0, mscratch, 16" : "=r"(old));
  CHECK(old, 26);
  CHECK(CSR_READ(mscratch), 26);
  asm volatile("csrrsi %0, mscratch, 1" : "=r"(old));
  CHECK(CSR_READ(mscratch), 27);
  /* rd = x0: write only; rs1 = x0 with csrrs/csrrc: read only. */
  asm volatile("csrrw x0, mscratch, %0" ::"r"(-1ul));
  CHECK(CSR_READ(mscratch), 0xffffffffffffffff);
  asm volatile("csrrs %0, mscratch, x0" : "=r"(r));
  CHECK(r, 0xffffffffffffffff);
  asm volatile("csrrc %0, mscratch, x0" : "=r"(r));
  CHECK(r, 0xffffffffffffffff);
  /* Same register as source and destination: the old value is returned,
   * the source's old value written. */
  asm volatile("li %0, 77\n csrrw %0, mscratch, %0" : "=&r"(r));
  CHECK(r, 0xffffffffffffffff);
  CHECK(CSR_READ(mscratch), 77);
  CSR_WRITE(sscratch, 0xa5a5a5a55a5a5a5a);
  CHECK(CSR_READ(sscratch), 0xa5a5a5a55a5a5a5a);
  CHECK(CSR_READ(mscratch), 77);
  /* The runtime keeps the trap stack in mscratch: put it back. */
  extern char __mtrap_stack_top[], __strap_stack_top[];
  CSR_WRITE(mscratch, (u64)__mtrap_stack_top);
  CSR_WRITE(sscratch, (u64)__strap_stack_top);
}

static void warl_fields(void) {
  u64 saved = CSR_READ(mepc);
  CSR_WRITE(mepc, 0x80001233);
  /* Bit 1 is kept with C. Bit 0 should read 0, but QEMU 7.2 keeps it (it
   * only clears it on mret), so it is not checked. */
  CHECK(CSR_READ(mepc) & ~1ul, 0x80001232);
  CSR_WRITE(mepc, saved);
  saved = CSR_READ(sepc);
  CSR_WRITE(sepc, 0x80004567);
  CHECK(CSR_READ(sepc) & ~1ul, 0x80004566);
  CSR_WRITE(sepc, saved);
  /* mtvec direct mode at a 4-byte aligned address. */
  saved = CSR_READ(mtvec);
  CSR_WRITE(mtvec, 0x80002000);
  CHECK(CSR_READ(mtvec), 0x80002000);
  CSR_WRITE(mtvec, saved);
  CHECK(CSR_READ(mtvec), saved);
  /* sstatus is a restricted view of mstatus. */
  CSR_SET(sstatus, MSTATUS_SUM);
  CHECK(CSR_READ(mstatus) & MSTATUS_SUM, MSTATUS_SUM);
  CSR_CLEAR(mstatus, MSTATUS_SUM);
  CHECK(CSR_READ(sstatus) & MSTATUS_SUM, 0);
  CSR_SET(mstatus, MSTATUS_MPIE);
  CHECK(CSR_READ(sstatus) & MSTATUS_MPIE, 0); /* M fields are invisible in sstatus */
  CSR_SET(mstatus, MSTATUS_SPIE);
  CHECK(CSR_READ(sstatus) & MSTATUS_SPIE, MSTATUS_SPIE);
  CSR_CLEAR(sstatus, MSTATUS_SPIE);
  CHECK(CSR_READ(mstatus) & MSTATUS_SPIE, 0);
  /* UXL and SXL are 64-bit (2). */
  CHECK((CSR_READ(mstatus) >> 32) & 0xf, 0xa);
}

static void machine_info(void) {
  u64 misa = CSR_READ(misa);
  CHECK(misa >> 62, 2); /* MXL = 64 */
#define EXT(c) (1ul << ((c) - 'A'))
  u64 need = EXT('I') | EXT('M') | EXT('A') | EXT('F') | EXT('D') | EXT('C') | EXT('S') | EXT('U');
  CHECK(misa & need, need);
  CHECK(CSR_READ(mhartid), 0);
  (void)CSR_READ(mvendorid);
  (void)CSR_READ(marchid);
  (void)CSR_READ(mimpid);
}

static void read_only_writes(void) {
  u64 start, r;
  isa_expect_traps();
  /* csrw mhartid, a0 = csrrw x0, 0xf14, a0 */
  NORVC("la %0, 1f\n li a0, 1\n1: csrw mhartid, a0" END : "=r"(start)::"a0");
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.epc, start);
  CHECK(isa_trap.tval, 0xf1451073);
  NORVC("la %0, 1f\n1: csrrsi x0, mvendorid, 1" END : "=r"(start));
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.epc, start);
  CHECK(isa_trap.tval, 0xf110e073);
  /* cycle (0xc00) is read-only even in M-mode. */
  NORVC("la %0, 1f\n li a0, 0\n1: csrw cycle, a0" END : "=r"(start)::"a0");
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0xc0051073);
  /* Reads of read-only CSRs, and csrrs/csrrc with x0 or uimm 0, do not trap. */
  asm volatile("csrrs %0, mhartid, x0" : "=r"(r));
  asm volatile("csrrc %0, mimpid, x0" : "=r"(r));
  asm volatile("csrrsi %0, mhartid, 0" : "=r"(r));
  asm volatile("csrrci %0, marchid, 0" : "=r"(r));
  CHECK(isa_trap.count, 3);
  /* A CSR that does not exist. */
  NORVC("la %0, 1f\n1: csrr a0, 0x7ff" END : "=r"(start)::"a0");
  CHECK(isa_trap.count, 4);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0x7ff02573);
  isa_unexpect_traps();
}

int main(void) {
  read_write();
  warl_fields();
  machine_info();
  read_only_writes();
  return 0;
}
