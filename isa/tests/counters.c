/* Counters: mcycle/minstret and their user views cycle/instret/time move
 * forward; instret advances by exactly the number of retired instructions
 * over a straight-line sequence; writes to minstret/mcycle take effect;
 * mcountinhibit stops them;
 * mcounteren/scounteren gate S- and U-mode access. */
#include "runtime.h"

static u64 read_cycle_u(u64 unused) {
  (void)unused;
  u64 r;
  asm volatile("rdcycle %0" : "=r"(r));
  return r;
}

static u64 read_instret_u(u64 unused) {
  (void)unused;
  u64 r;
  asm volatile("rdinstret %0" : "=r"(r));
  return r;
}

static u64 read_time_s(u64 unused) {
  (void)unused;
  u64 r;
  asm volatile("rdtime %0" : "=r"(r));
  return r;
}

int main(void) {
  u64 a, b, d;
  /* Monotonic. */
  a = CSR_READ(mcycle);
  for (volatile int i = 0; i < 100; i++) {
  }
  b = CSR_READ(mcycle);
  CHECK_TRUE(b > a);
  a = CSR_READ(cycle);
  b = CSR_READ(cycle);
  CHECK_TRUE(b > a);
  a = CSR_READ(instret);
  for (volatile int i = 0; i < 100; i++) {
  }
  b = CSR_READ(instret);
  CHECK_TRUE(b - a > 100);
  /* Exact: the first read happens before its own retirement, so the second
   * sees that csrr plus the ten nops. */
  asm volatile(
      ".option push\n .option norvc\n"
      "csrr %0, minstret\n"
      "nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n"
      "csrr %1, minstret\n"
      ".option pop"
      : "=r"(a), "=r"(b));
  CHECK(b - a, 11);
  asm volatile(
      "csrr %0, instret\n"
      "c.nop\n addi x0, x0, 0\n add t0, t0, t0\n c.addi t0, 1\n li t1, 5\n"
      "1: addi t1, t1, -1\n bnez t1, 1b\n"
      "csrr %1, instret\n"
      : "=r"(a), "=r"(b)::"t0", "t1");
  CHECK(b - a, 1 + 5 + 10); /* csrr, five straight, five loop iterations of two */
  /* Writes: the written value is what the next instruction reads. The
   * specification has the write replace the writing instruction's own
   * increment; QEMU 7.2 counts the csrw too, so one more is tolerated. */
  asm volatile("csrw minstret, %2\n csrr %0, minstret\n csrr %1, minstret"
               : "=r"(a), "=r"(b)
               : "r"(1000000ul));
  CHECK_TRUE(a - 1000000 <= 1);
  CHECK(b, a + 1);
  CSR_WRITE(mcycle, 0x100000000ul);
  d = CSR_READ(mcycle);
  CHECK_TRUE(d >= 0x100000000ul && d < 0x100010000ul);
  /* mcountinhibit.CY/IR stop mcycle/minstret. */
  CSR_WRITE(mcountinhibit, 5);
  a = CSR_READ(minstret);
  b = CSR_READ(minstret);
  CHECK(b - a, 0);
  a = CSR_READ(mcycle);
  for (volatile int i = 0; i < 100; i++) {
  }
  b = CSR_READ(mcycle);
  CHECK(b - a, 0);
  CSR_WRITE(mcountinhibit, 0);
  a = CSR_READ(minstret);
  b = CSR_READ(minstret);
  CHECK(b - a, 1);
  /* mtime through the CLINT moves forward. */
  a = MMIO64(CLINT_MTIME);
  for (volatile int i = 0; i < 20000; i++) {
  }
  b = MMIO64(CLINT_MTIME);
  CHECK_TRUE(b > a);
  /* S/U access needs mcounteren (and scounteren for U). */
  isa_expect_traps();
  CSR_WRITE(mcounteren, 0);
  CSR_WRITE(scounteren, 0);
  isa_call_in_mode(PRV_U, read_cycle_u, 0, 0);
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.tval & ~(0x1ful << 7), 0xc0002073); /* csrr rd, cycle */
  isa_call_in_mode(PRV_S, read_time_s, 0, 0);
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CSR_WRITE(mcounteren, 7);
  a = MMIO64(CLINT_MTIME);
  b = isa_call_in_mode(PRV_S, read_time_s, 0, 0);
  CHECK(isa_trap.count, 2);
  CHECK_TRUE(b >= a);
  isa_call_in_mode(PRV_U, read_instret_u, 0, 0); /* scounteren still 0 */
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.from, PRV_U);
  CSR_WRITE(scounteren, 7);
  a = CSR_READ(minstret);
  b = isa_call_in_mode(PRV_U, read_instret_u, 0, 0);
  CHECK(isa_trap.count, 3);
  CHECK_TRUE(b > a);
  isa_unexpect_traps();
  return 0;
}
