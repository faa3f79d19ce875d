/* Differential: CSRs whose read-back the RV64GC specification pins down.
 * For each CSR: the value left by the runtime, then what reads back after
 * writing all zeros and after writing all ones (each write undone at once),
 * or that the access traps; for mcycle/minstret, whether a write sticks.
 *
 * Left out on purpose, because QEMU 7.2 keeps bits that a plain RV64GC hart
 * does not have and the specification lets implementations differ: mstatus
 * and sstatus (QEMU: UXL = 3, VS writable), mtvec/stvec with a reserved mode,
 * medeleg/mideleg/mie/mip (QEMU: H and LCOF bits), mepc/sepc bit 0 (QEMU
 * keeps it), mcounteren/scounteren upper half, m/senvcfg, mhpm*, mip's reset
 * MTIP (mtimecmp's reset value), mvendorid/marchid/mimpid (implementation ids). */
#include "runtime.h"

static void show(const char *name, u64 before, u64 zeros, u64 ones, u64 traps) {
  if (traps)
    isa_printf("%s: traps %lu cause %lx\n", name, traps, isa_trap.cause);
  else
    isa_printf("%s: %016lx zeros %016lx ones %016lx\n", name, before, zeros, ones);
}

/* Read, then write 0 / ~0 and read back, restoring the old value between. */
#define PROBE(csr)                                                                        \
  do {                                                                                    \
    u64 b_ = 0, z_ = 0, o_ = 0, t_;                                                       \
    isa_expect_traps();                                                                   \
    asm volatile(".option push\n .option norvc\n"                                         \
                 "csrr %0, " #csr "\n"                                                    \
                 "csrrw %3, " #csr ", x0\n csrr %1, " #csr "\n csrw " #csr ", %3\n"       \
                 "li %3, -1\n csrrw %3, " #csr ", %3\n csrr %2, " #csr "\n csrw " #csr    \
                 ", %3\n"                                                                 \
                 ".option pop"                                                            \
                 : "+&r"(b_), "+&r"(z_), "+&r"(o_), "=&r"(t_)                              \
                 :                                                                        \
                 : "memory");                                                             \
    isa_unexpect_traps();                                                                 \
    show(#csr, b_, z_, o_, isa_trap.count);                                               \
  } while (0)

/* Read-only: just whether the read traps and the value. */
#define PROBE_RO(csr)                                                                     \
  do {                                                                                    \
    u64 v_ = 0;                                                                           \
    isa_expect_traps();                                                                   \
    asm volatile(".option push\n .option norvc\n csrr %0, " #csr "\n .option pop"        \
                 : "+r"(v_)::"memory");                                                   \
    isa_unexpect_traps();                                                                 \
    show(#csr, v_, 0, 0, isa_trap.count);                                                 \
  } while (0)

/* Counters: does a write of a large value stick (read back >= it)? */
#define PROBE_COUNTER(csr)                                                                \
  do {                                                                                    \
    u64 v_ = 0;                                                                           \
    isa_expect_traps();                                                                   \
    asm volatile(".option push\n .option norvc\n"                                         \
                 "li t0, 0x4000000000000000\n csrw " #csr ", t0\n csrr %0, " #csr "\n"    \
                 ".option pop"                                                            \
                 : "+r"(v_)::"t0", "memory");                                             \
    isa_unexpect_traps();                                                                 \
    isa_printf("%s: write sticks: %s\n", #csr,                                          \
               isa_trap.count ? "trap" : (v_ >= 0x4000000000000000ul ? "yes" : "no"));    \
  } while (0)

int main(void) {
  isa_printf("diff_csr\n");
  PROBE_RO(misa);
  PROBE_RO(mhartid);
  PROBE(mscratch);
  PROBE(mcause);
  PROBE(mtval);
  PROBE(sie);
  PROBE(sip);
  PROBE(sscratch);
  PROBE(scause);
  PROBE(stval);
  PROBE(satp);
  PROBE(fcsr);
  PROBE(frm);
  PROBE(fflags);
  PROBE_RO(hpmcounter3);
  PROBE_COUNTER(mcycle);
  PROBE_COUNTER(minstret);
  return 0;
}
