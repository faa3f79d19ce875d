/* Delegation: medeleg sends exceptions from S and U to the S-mode handler at
 * stvec (scause/sepc/stval/SPP set, sret back to U), M-mode exceptions stay
 * in M; mideleg sends the supervisor software interrupt to S, where it is
 * taken from U regardless of SIE, from S only with SIE, never in M; stvec in
 * vectored mode; non-delegable bits read as zero. */
#include "runtime.h"

#define NORVC(...) asm volatile(".option push\n .option norvc\n" __VA_ARGS__)
#define END "\n .option pop"

struct event {
  u64 handler, cause, epc, tval, from;
};
static struct event log[16];
static volatile u64 nlog;

static void record(u64 mode, u64 cause) {
  if (nlog < 16) {
    log[nlog] = (struct event){mode, cause, isa_trap.epc, isa_trap.tval, isa_trap.from};
  }
  nlog++;
}

static int exc_hook(u64 mode, u64 cause, struct isa_frame *f) {
  (void)f;
  record(mode, cause);
  return 0; /* let the runtime resume after the instruction */
}

static void irq_hook(u64 mode, u64 cause, struct isa_frame *f) {
  (void)f;
  record(mode, cause);
  if (mode == PRV_S && cause == (CAUSE_INTERRUPT | IRQ_S_SOFT)) CSR_CLEAR(sip, 1u << IRQ_S_SOFT);
  if (mode == PRV_M && cause == (CAUSE_INTERRUPT | IRQ_S_SOFT)) CSR_CLEAR(mip, 1u << IRQ_S_SOFT);
}

static u64 illegal_pc, ecall_pc, ebreak_pc;

static u64 lower_fn(u64 arg) {
  register u64 a7 asm("a7") = 0;
  NORVC("la %0, 1f\n1: .word 0x0000007b" END : "=r"(illegal_pc));
  NORVC("la %0, 1f\n1: ecall" END : "=r"(ecall_pc) : "r"(a7));
  NORVC("la %0, 1f\n1: ebreak" END : "=r"(ebreak_pc));
  return arg + 1;
}

static void exceptions(void) {
  CSR_WRITE(medeleg, (1u << CAUSE_ILLEGAL_INSTRUCTION) | (1u << CAUSE_BREAKPOINT) |
                         (1u << CAUSE_USER_ECALL));
  nlog = 0;
  CHECK(isa_call_in_mode(PRV_U, lower_fn, 5, 0), 6);
  CHECK(nlog, 3);
  CHECK(log[0].handler, PRV_S);
  CHECK(log[0].cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(log[0].epc, illegal_pc);
  CHECK(log[0].tval, 0x0000007b);
  CHECK(log[0].from, PRV_U);
  CHECK(log[1].handler, PRV_S);
  CHECK(log[1].cause, CAUSE_USER_ECALL);
  CHECK(log[1].epc, ecall_pc);
  CHECK(log[2].handler, PRV_S);
  CHECK(log[2].cause, CAUSE_BREAKPOINT);
  CHECK(log[2].epc, ebreak_pc);
  /* From S: illegal and ebreak are delegated, ecall from S (9) is not. */
  nlog = 0;
  CHECK(isa_call_in_mode(PRV_S, lower_fn, 7, 0), 8);
  CHECK(nlog, 3);
  CHECK(log[0].handler, PRV_S);
  CHECK(log[0].from, PRV_S);
  CHECK(log[0].cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(log[1].handler, PRV_M);
  CHECK(log[1].cause, CAUSE_SUPERVISOR_ECALL);
  CHECK(log[1].from, PRV_S);
  CHECK(log[2].handler, PRV_S);
  CHECK(log[2].cause, CAUSE_BREAKPOINT);
  /* M-mode exceptions are never delegated. */
  nlog = 0;
  CHECK(lower_fn(1), 2);
  CHECK(nlog, 3);
  CHECK(log[0].handler, PRV_M);
  CHECK(log[1].handler, PRV_M);
  CHECK(log[1].cause, CAUSE_MACHINE_ECALL);
  CHECK(log[2].handler, PRV_M);
  CSR_WRITE(medeleg, 0);
}

static u64 spin_fn(u64 arg) {
  for (volatile int i = 0; i < 10; i++) {
  }
  return arg;
}

static u64 s_sie_fn(u64 arg) {
  (void)arg;
  u64 pending = CSR_READ(sip) & (1u << IRQ_S_SOFT);
  u64 before = nlog;
  CSR_SET(sstatus, MSTATUS_SIE);
  asm volatile("nop");
  u64 after = nlog;
  CSR_CLEAR(sstatus, MSTATUS_SIE);
  return (pending ? 1 : 0) | (before << 8) | (after << 16);
}

static void interrupts(void) {
  CSR_WRITE(mideleg, (1u << IRQ_S_SOFT) | (1u << IRQ_S_TIMER) | (1u << IRQ_S_EXT));
  CHECK(CSR_READ(mideleg) & (1u << IRQ_S_SOFT), 1u << IRQ_S_SOFT);
  CSR_WRITE(mie, 0);
  CSR_SET(mie, 1u << IRQ_S_SOFT);
  CHECK(CSR_READ(sie) & (1u << IRQ_S_SOFT), 1u << IRQ_S_SOFT);
  nlog = 0;
  /* Pending, delegated and enabled in sie: not taken in M, even with MIE. */
  CSR_SET(mip, 1u << IRQ_S_SOFT);
  CSR_SET(mstatus, MSTATUS_MIE);
  spin_fn(0);
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  CHECK(nlog, 0);
  CHECK(CSR_READ(sip) & (1u << IRQ_S_SOFT), 1u << IRQ_S_SOFT);
  /* Taken in U at once, whatever SIE says. */
  CSR_CLEAR(mstatus, MSTATUS_SIE);
  CHECK(isa_call_in_mode(PRV_U, spin_fn, 3, 0), 3);
  CHECK(nlog, 1);
  CHECK(log[0].handler, PRV_S);
  CHECK(log[0].cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
  CHECK(log[0].from, PRV_U);
  CHECK(CSR_READ(mip) & (1u << IRQ_S_SOFT), 0);
  /* In S only once SIE is set. */
  nlog = 0;
  CSR_SET(mip, 1u << IRQ_S_SOFT);
  u64 r = isa_call_in_mode(PRV_S, s_sie_fn, 0, 0);
  CHECK(r & 1, 1);
  CHECK((r >> 8) & 0xff, 0);
  CHECK((r >> 16) & 0xff, 1);
  CHECK(log[0].handler, PRV_S);
  CHECK(log[0].from, PRV_S);
  /* Not delegated: the same interrupt goes to M (from S, where M-level
   * interrupts are always enabled). */
  CSR_WRITE(mideleg, 0);
  nlog = 0;
  CSR_SET(mip, 1u << IRQ_S_SOFT);
  CHECK(isa_call_in_mode(PRV_S, spin_fn, 4, 0), 4);
  CHECK(nlog, 1);
  CHECK(log[0].handler, PRV_M);
  CHECK(log[0].cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
  CHECK(log[0].from, PRV_S);
  CSR_WRITE(mie, 0);
}

/* Vectored stvec: interrupts enter at base + 4 * cause. */
static volatile u64 vec_hits;
extern char stvec_table[];
asm(".text\n .align 8\n .globl stvec_table\n stvec_table:\n"
    " .option push\n .option norvc\n"
    " j isa_trap_s_entry\n" /* 0: exceptions */
    " j stvec_ssoft\n"      /* 1: supervisor software */
    " j isa_trap_s_entry\n j isa_trap_s_entry\n j isa_trap_s_entry\n j isa_trap_s_entry\n"
    " j isa_trap_s_entry\n j isa_trap_s_entry\n j isa_trap_s_entry\n j isa_trap_s_entry\n"
    "stvec_ssoft:\n"
    " csrrw sp, sscratch, sp\n addi sp, sp, -16\n sd t0, 0(sp)\n sd t1, 8(sp)\n"
    " la t0, vec_hits\n ld t1, 0(t0)\n addi t1, t1, 1\n sd t1, 0(t0)\n"
    " ld t0, 0(sp)\n ld t1, 8(sp)\n addi sp, sp, 16\n csrrw sp, sscratch, sp\n"
    " j isa_trap_s_entry\n"
    " .option pop\n");

static void vectored(void) {
  u64 saved = CSR_READ(stvec);
  CSR_WRITE(stvec, (u64)stvec_table | 1);
  CHECK(CSR_READ(stvec), (u64)stvec_table | 1);
  CSR_WRITE(mideleg, (1u << IRQ_S_SOFT) | (1u << CAUSE_ILLEGAL_INSTRUCTION));
  CSR_WRITE(medeleg, 1u << CAUSE_ILLEGAL_INSTRUCTION);
  CSR_SET(mie, 1u << IRQ_S_SOFT);
  nlog = 0;
  vec_hits = 0;
  CSR_SET(mip, 1u << IRQ_S_SOFT);
  CHECK(isa_call_in_mode(PRV_U, lower_fn, 1, 0), 2);
  CHECK(vec_hits, 1);
  /* The interrupt first, then illegal, ecall (to M), ebreak (to M). */
  CHECK(nlog, 4);
  CHECK(log[0].cause, CAUSE_INTERRUPT | IRQ_S_SOFT);
  CHECK(log[0].handler, PRV_S);
  CHECK(log[1].cause, CAUSE_ILLEGAL_INSTRUCTION); /* exceptions use the base */
  CHECK(log[1].handler, PRV_S);
  CSR_WRITE(mie, 0);
  CSR_WRITE(mideleg, 0);
  CSR_WRITE(medeleg, 0);
  CSR_WRITE(stvec, saved);
}

static void read_only_zero(void) {
  /* M-level interrupts cannot be delegated. (medeleg[11] "should" be
   * zero too, but QEMU 7.2 keeps it writable, so it is not checked.) */
  CSR_WRITE(mideleg, -1ul);
  CHECK(CSR_READ(mideleg) & ((1u << IRQ_M_SOFT) | (1u << IRQ_M_TIMER) | (1u << IRQ_M_EXT)), 0);
  CSR_WRITE(mideleg, 0);
}

int main(void) {
  isa_exc_hook = exc_hook;
  isa_irq_hook = irq_hook;
  isa_expect_traps();
  exceptions();
  interrupts();
  vectored();
  read_only_zero();
  isa_unexpect_traps();
  return 0;
}
