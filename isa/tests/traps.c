/* Traps: illegal instructions (mtval = the bits), ecall from M, S and U with
 * their causes, ebreak, misaligned LR/SC/AMO, access faults on unmapped
 * physical addresses (load, store, fetch), privileged instructions and CSRs
 * from lower modes, and the mstatus bookkeeping of mret and sret (MPP, MPIE,
 * MPRV, SPP, SPIE, TSR). */
#include "runtime.h"

#define NORVC(...) asm volatile(".option push\n .option norvc\n" __VA_ARGS__)
#define END "\n .option pop"

static volatile u64 buf[4] __attribute__((aligned(16)));

static void illegal_instructions(void) {
  u64 pc;
  isa_expect_traps();
  NORVC("la %0, 1f\n1: .word 0x0000007b" END : "=r"(pc)); /* custom-3 opcode */
  CHECK_TRAP(1, CAUSE_ILLEGAL_INSTRUCTION, pc, 0x0000007b);
  NORVC("la %0, 1f\n1: .word 0xc0001073" END : "=r"(pc)); /* unimp: csrrw x0, cycle, x0 */
  CHECK_TRAP(2, CAUSE_ILLEGAL_INSTRUCTION, pc, 0xc0001073);
  /* 0x0200c033 is div x0, x1, x0: legal, so no trap. */
  NORVC("la %0, 1f\n1: .word 0x0200c033" END : "=r"(pc));
  CHECK(isa_trap.count, 2);
  NORVC("la %0, 1f\n1: .word 0xfe000033" END : "=r"(pc)); /* OP with funct7 0x7f */
  CHECK_TRAP(3, CAUSE_ILLEGAL_INSTRUCTION, pc, 0xfe000033);
  NORVC("la %0, 1f\n1: .word 0x0000301b" END : "=r"(pc)); /* OP-IMM-32 funct3 3 */
  CHECK_TRAP(4, CAUSE_ILLEGAL_INSTRUCTION, pc, 0x0000301b);
  NORVC("la %0, 1f\n1: .word 0x00007003" END : "=r"(pc)); /* LOAD funct3 7 */
  CHECK_TRAP(5, CAUSE_ILLEGAL_INSTRUCTION, pc, 0x00007003);
  isa_unexpect_traps();
}

static u64 ecall_fn(u64 arg) {
  register u64 a0 asm("a0") = arg;
  register u64 a7 asm("a7") = 0;
  asm volatile(".option push\n .option norvc\n ecall\n .option pop" : "+r"(a0) : "r"(a7) : "memory");
  return a0 + 1;
}

static u64 ebreak_fn(u64 arg) {
  asm volatile("ebreak");
  return arg;
}

static void ecall_ebreak(void) {
  u64 pc;
  isa_expect_traps();
  NORVC("la %0, 1f\n li a7, 0\n1: ecall" END : "=r"(pc)::"a7");
  CHECK_TRAP(1, CAUSE_MACHINE_ECALL, pc, 0);
  CHECK(isa_trap.from, PRV_M);
  CHECK(isa_call_in_mode(PRV_S, ecall_fn, 10, 0), 11);
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.cause, CAUSE_SUPERVISOR_ECALL);
  CHECK(isa_trap.from, PRV_S);
  CHECK(isa_trap.tval, 0);
  CHECK(isa_call_in_mode(PRV_U, ecall_fn, 20, 0), 21);
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_USER_ECALL);
  CHECK(isa_trap.from, PRV_U);
  NORVC("la %0, 1f\n1: ebreak" END : "=r"(pc));
  CHECK(isa_trap.count, 4);
  CHECK(isa_trap.cause, CAUSE_BREAKPOINT);
  CHECK(isa_trap.epc, pc);
  CHECK_TRUE(isa_trap.tval == 0 || isa_trap.tval == pc);
  CHECK(isa_call_in_mode(PRV_U, ebreak_fn, 5, 0), 5);
  CHECK(isa_trap.count, 5);
  CHECK(isa_trap.cause, CAUSE_BREAKPOINT);
  CHECK(isa_trap.from, PRV_U);
  isa_unexpect_traps();
}

#define LOAD_MISALIGNED_OR_FAULT(c) ((c) == CAUSE_MISALIGNED_LOAD || (c) == CAUSE_LOAD_ACCESS)
#define STORE_MISALIGNED_OR_FAULT(c) ((c) == CAUSE_MISALIGNED_STORE || (c) == CAUSE_STORE_ACCESS)
/* The specification gives AMOs the store/AMO causes (6 or 7); QEMU 7.2
 * reports the load cause (4), so both are accepted. */
#define AMO_MISALIGNED_OR_FAULT(c) (STORE_MISALIGNED_OR_FAULT(c) || LOAD_MISALIGNED_OR_FAULT(c))

static void misaligned_atomics(void) {
  u64 pc, r = 0x55;
  volatile u8 *base = (volatile u8 *)buf;
  buf[0] = 0x1111111111111111;
  buf[1] = 0x2222222222222222;
  isa_expect_traps();
  NORVC("la %0, 1f\n1: lr.w %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(base + 2) : "memory");
  CHECK(isa_trap.count, 1);
  CHECK_TRUE(LOAD_MISALIGNED_OR_FAULT(isa_trap.cause));
  CHECK(isa_trap.epc, pc);
  CHECK(isa_trap.tval, (u64)(base + 2));
  CHECK(r, 0x55); /* rd not written */
  NORVC("la %0, 1f\n1: lr.d %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(base + 4) : "memory");
  CHECK(isa_trap.count, 2);
  CHECK_TRUE(LOAD_MISALIGNED_OR_FAULT(isa_trap.cause));
  CHECK(isa_trap.tval, (u64)(base + 4));
  /* A misaligned sc either traps or, as on QEMU, which checks the
   * reservation first, just fails; memory is unchanged either way. */
  u64 before = isa_trap.count;
  r = 0;
  NORVC("lr.d %1, (%2)\n la %0, 1f\n li %1, 0\n1: sc.w %1, %1, (%3)" END
        : "=&r"(pc), "+r"(r)
        : "r"(base), "r"(base + 1)
        : "memory");
  CHECK_TRUE(isa_trap.count == before + 1 ? STORE_MISALIGNED_OR_FAULT(isa_trap.cause) &&
                                                isa_trap.tval == (u64)(base + 1)
                                          : isa_trap.count == before && r != 0);
  r = 0;
  before = isa_trap.count;
  NORVC("lr.d %1, (%2)\n la %0, 1f\n li %1, 0\n1: sc.d %1, %1, (%3)" END
        : "=&r"(pc), "+r"(r)
        : "r"(base), "r"(base + 12)
        : "memory");
  CHECK_TRUE(isa_trap.count == before + 1 ? STORE_MISALIGNED_OR_FAULT(isa_trap.cause) &&
                                                isa_trap.tval == (u64)(base + 12)
                                          : isa_trap.count == before && r != 0);
  isa_trap.count = 4;
  r = 0x55;
  NORVC("la %0, 1f\n1: amoadd.w %1, %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(base + 3) : "memory");
  CHECK(isa_trap.count, 5);
  CHECK_TRUE(AMO_MISALIGNED_OR_FAULT(isa_trap.cause));
  CHECK(isa_trap.epc, pc);
  CHECK(isa_trap.tval, (u64)(base + 3));
  NORVC("la %0, 1f\n1: amoswap.d %1, %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(base + 6) : "memory");
  CHECK(isa_trap.count, 6);
  CHECK_TRUE(AMO_MISALIGNED_OR_FAULT(isa_trap.cause));
  CHECK(isa_trap.tval, (u64)(base + 6));
  NORVC("la %0, 1f\n1: amomaxu.d.aqrl %1, %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(base + 2) : "memory");
  CHECK(isa_trap.count, 7);
  CHECK_TRUE(AMO_MISALIGNED_OR_FAULT(isa_trap.cause));
  CHECK(r, 0x55);
  CHECK(buf[0], 0x1111111111111111);
  CHECK(buf[1], 0x2222222222222222);
  isa_unexpect_traps();
}

static void access_faults(void) {
  u64 pc, r = 7;
  isa_expect_traps();
  NORVC("la %0, 1f\n1: ld %1, 0(zero)" END : "=&r"(pc), "+r"(r)::"memory");
  CHECK_TRAP(1, CAUSE_LOAD_ACCESS, pc, 0);
  CHECK(r, 7);
  NORVC("la %0, 1f\n1: sw %1, 16(zero)" END : "=&r"(pc) : "r"(r) : "memory");
  CHECK_TRAP(2, CAUSE_STORE_ACCESS, pc, 16);
  /* Just past the end of RAM (256 MiB). */
  NORVC("la %0, 1f\n1: lbu %1, 0(%2)" END : "=&r"(pc), "+r"(r) : "r"(0x90000000ul) : "memory");
  CHECK_TRAP(3, CAUSE_LOAD_ACCESS, pc, 0x90000000);
  NORVC("la %0, 1f\n1: amoor.d %1, %1, (%2)" END : "=&r"(pc), "+r"(r) : "r"(0x8ul) : "memory");
  CHECK(isa_trap.count, 4);
  CHECK_TRUE(isa_trap.cause == CAUSE_STORE_ACCESS || isa_trap.cause == CAUSE_LOAD_ACCESS);
  CHECK(isa_trap.epc, pc);
  CHECK(isa_trap.tval, 8);
  /* Fetch from 0: mepc = mtval = 0; resume after the jump. */
  NORVC("la %0, 1f\n sd %0, 0(%1)\n jr zero\n1:" END : "=&r"(pc) : "r"(&isa_trap.resume) : "memory");
  CHECK_TRAP(5, CAUSE_FETCH_ACCESS, 0, 0);
  NORVC("la %0, 1f\n sd %0, 0(%1)\n li t0, 0x90000000\n jalr ra, 0(t0)\n1:" END
        : "=&r"(pc)
        : "r"(&isa_trap.resume)
        : "t0", "ra", "memory");
  CHECK_TRAP(6, CAUSE_FETCH_ACCESS, 0x90000000, 0x90000000);
  isa_unexpect_traps();
}

static u64 read_mstatus_fn(u64 arg) {
  (void)arg;
  return CSR_READ(mstatus);
}

static u64 read_sstatus_fn(u64 arg) {
  (void)arg;
  return CSR_READ(sstatus);
}

static u64 mret_fn(u64 arg) {
  asm volatile(".option push\n .option norvc\n mret\n .option pop");
  return arg;
}

static u64 sret_fn(u64 arg) {
  asm volatile(".option push\n .option norvc\n sret\n .option pop");
  return arg;
}

static u64 sfence_fn(u64 arg) {
  asm volatile("sfence.vma");
  return arg;
}

/* In S-mode: sret to U at `u_part`, which ecalls (a7 = 0), then returns. */
extern char sret_to_u_part[];
static u64 sret_to_u_fn(u64 arg) {
  CSR_WRITE(sepc, (u64)sret_to_u_part);
  CSR_CLEAR(sstatus, MSTATUS_SPP | MSTATUS_SIE);
  CSR_SET(sstatus, MSTATUS_SPIE);
  asm volatile(
      "mv a0, %0\n"
      "sret\n"
      ".globl sret_to_u_part\n"
      "sret_to_u_part:\n"
      "li a7, 0\n ecall\n"
      "li a7, %1\n ecall\n" ::"r"(arg),
      "i"(ISA_ECALL_RETURN)
      : "a0", "a7");
  return 0;
}

static u64 satp_fn(u64 arg) {
  (void)arg;
  return CSR_READ(satp);
}

static u64 wfi_fn(u64 arg) {
  asm volatile("wfi");
  return arg;
}

static void privilege(void) {
  isa_expect_traps();
  /* M CSRs from S and U, S CSRs from U. */
  isa_call_in_mode(PRV_S, read_mstatus_fn, 0, 0);
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.from, PRV_S);
  isa_call_in_mode(PRV_U, read_sstatus_fn, 0, 0);
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.from, PRV_U);
  isa_call_in_mode(PRV_S, read_sstatus_fn, 0, 0);
  CHECK(isa_trap.count, 2);
  /* mret from S, sret and sfence.vma from U are illegal. */
  isa_call_in_mode(PRV_S, mret_fn, 0, 0);
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0x30200073);
  isa_call_in_mode(PRV_U, sret_fn, 0, 0);
  CHECK(isa_trap.count, 4);
  CHECK(isa_trap.tval, 0x10200073);
  isa_call_in_mode(PRV_U, sfence_fn, 0, 0);
  CHECK(isa_trap.count, 5);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  /* mstatus.TSR makes sret illegal in S-mode. */
  CSR_SET(mstatus, 1ul << 22);
  isa_call_in_mode(PRV_S, sret_fn, 0, 0);
  CHECK(isa_trap.count, 6);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.from, PRV_S);
  CSR_CLEAR(mstatus, 1ul << 22);
  /* mstatus.TVM: satp and sfence.vma are illegal in S-mode. */
  CSR_SET(mstatus, 1ul << 20);
  isa_call_in_mode(PRV_S, satp_fn, 0, 0);
  CHECK(isa_trap.count, 7);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  isa_call_in_mode(PRV_S, sfence_fn, 0, 0);
  CHECK(isa_trap.count, 8);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CSR_CLEAR(mstatus, 1ul << 20);
  isa_call_in_mode(PRV_S, satp_fn, 0, 0);
  CHECK(isa_trap.count, 8);
  /* mstatus.TW: wfi in S-mode with nothing pending never completes, so it
   * must trap (a machine that waits forever times out instead). */
  CSR_SET(mstatus, 1ul << 21);
  CSR_WRITE(mie, 0);
  isa_call_in_mode(PRV_S, wfi_fn, 0, 0);
  CHECK(isa_trap.count, 9);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval, 0x10500073);
  CSR_CLEAR(mstatus, 1ul << 21);
  isa_unexpect_traps();
}

static void xret_bookkeeping(void) {
  isa_expect_traps();
  /* mret: MIE <- MPIE, MPIE <- 1, MPP <- U. The ecall inside the S function
   * records mstatus on trap entry, where MPIE = the MIE that mret set.
   * (Privileged spec 1.12 also clears MPRV when leaving M; QEMU 7.2 does
   * not, so that is not checked.) */
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  CSR_SET(mstatus, MSTATUS_MPIE);
  isa_call_in_mode(PRV_S, ecall_fn, 0, 0);
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.status & MSTATUS_MPIE, MSTATUS_MPIE);
  CHECK((isa_trap.status & MSTATUS_MPP) >> 11, PRV_S);
  CHECK(isa_trap.status & MSTATUS_MIE, 0); /* cleared by the trap */
  u64 st = CSR_READ(mstatus);              /* after the runtime's mret back to M */
  CHECK((st & MSTATUS_MPP) >> 11, PRV_U);
  CHECK(st & MSTATUS_MPIE, MSTATUS_MPIE);
  CSR_CLEAR(mstatus, MSTATUS_MIE | MSTATUS_MPIE);
  isa_call_in_mode(PRV_U, ecall_fn, 0, 0);
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.status & MSTATUS_MPIE, 0);
  CHECK((isa_trap.status & MSTATUS_MPP) >> 11, PRV_U);
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  /* sret: SIE <- SPIE, SPIE <- 1, SPP <- U, to U-mode. */
  CHECK(isa_call_in_mode(PRV_S, sret_to_u_fn, 33, 0), 33);
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_USER_ECALL);
  CHECK(isa_trap.from, PRV_U);
  CHECK(isa_trap.status & MSTATUS_SIE, MSTATUS_SIE);
  CHECK(isa_trap.status & MSTATUS_SPIE, MSTATUS_SPIE);
  CHECK(isa_trap.status & MSTATUS_SPP, 0);
  CSR_CLEAR(mstatus, MSTATUS_SIE);
  isa_unexpect_traps();
}

int main(void) {
  illegal_instructions();
  ecall_ebreak();
  misaligned_atomics();
  access_faults();
  privilege();
  xret_bookkeeping();
  return 0;
}
