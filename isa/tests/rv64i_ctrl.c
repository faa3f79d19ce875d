/* RV64I control transfer and upper immediates: every conditional branch taken
 * and not taken on signed/unsigned edge operands, jal and jalr link values,
 * jalr clearing bit 0 of the target, and lui/auipc. */
#include "runtime.h"

/* Returns 1 if the branch was taken. */
#define TEST_BR(op, a, b, taken)                                              \
  do {                                                                        \
    u64 r_;                                                                   \
    asm volatile("li %0, 1\n " #op " %1, %2, 1f\n li %0, 0\n1:"               \
                 : "=&r"(r_)                                                  \
                 : "r"((u64)(a)), "r"((u64)(b)));                             \
    isa_check(__LINE__, #op " " #a ", " #b, r_, taken);                       \
  } while (0)

static void branches(void) {
  TEST_BR(beq, 0, 0, 1);
  TEST_BR(beq, 1, 0, 0);
  TEST_BR(beq, 0xffffffffffffffff, 0xffffffffffffffff, 1);
  TEST_BR(beq, 0x100000000, 0, 0);
  TEST_BR(bne, 0, 0, 0);
  TEST_BR(bne, 0x8000000000000000, 0, 1);
  TEST_BR(bne, 0x100000000, 0, 1);
  TEST_BR(blt, 0xffffffffffffffff, 0, 1);
  TEST_BR(blt, 0, 0xffffffffffffffff, 0);
  TEST_BR(blt, 0x8000000000000000, 0x7fffffffffffffff, 1);
  TEST_BR(blt, 5, 5, 0);
  TEST_BR(blt, 0x00000000ffffffff, 0x0000000100000000, 1);
  TEST_BR(bge, 5, 5, 1);
  TEST_BR(bge, 0xffffffffffffffff, 0, 0);
  TEST_BR(bge, 0x7fffffffffffffff, 0x8000000000000000, 1);
  TEST_BR(bge, 0, 1, 0);
  TEST_BR(bltu, 0, 0xffffffffffffffff, 1);
  TEST_BR(bltu, 0xffffffffffffffff, 0, 0);
  TEST_BR(bltu, 0x7fffffffffffffff, 0x8000000000000000, 1);
  TEST_BR(bltu, 7, 7, 0);
  TEST_BR(bgeu, 7, 7, 1);
  TEST_BR(bgeu, 0xffffffffffffffff, 0, 1);
  TEST_BR(bgeu, 0, 0xffffffffffffffff, 0);
  TEST_BR(bgeu, 0x8000000000000000, 0x7fffffffffffffff, 1);
  /* Backward branch: a counted loop. */
  u64 n;
  asm volatile("li %0, 0\n li t0, 10\n1: addi %0, %0, 3\n addi t0, t0, -1\n bnez t0, 1b"
               : "=&r"(n)::"t0");
  CHECK(n, 30);
}

static void jumps(void) {
  u64 link, here, r;
  /* jal: rd = pc + 4; the skipped instruction does not run. */
  asm volatile(
      ".option push\n .option norvc\n"
      "li %2, 0\n"
      "auipc %1, 0\n"
      "jal %0, 1f\n"
      "li %2, 1\n"
      "1:\n .option pop"
      : "=&r"(link), "=&r"(here), "=&r"(r));
  CHECK(link - here, 8);
  CHECK(r, 0);
  /* jal x0 does not link. */
  asm volatile(".option push\n .option norvc\n li %0, 5\n jal x0, 1f\n li %0, 6\n1:\n .option pop"
               : "=&r"(r));
  CHECK(r, 5);
  /* jalr with an offset, and with bit 0 of the target set (cleared by jalr). */
  asm volatile(
      ".option push\n .option norvc\n"
      "la t0, 1f\n"
      "addi t0, t0, -8\n"
      "li %1, 0\n"
      "auipc %2, 0\n"
      "jalr %0, 8(t0)\n"
      "li %1, 1\n"
      "1:\n .option pop"
      : "=&r"(link), "=&r"(r), "=&r"(here)::"t0");
  CHECK(link - here, 8);
  CHECK(r, 0);
  asm volatile(
      ".option push\n .option norvc\n"
      "la t0, 1f\n"
      "addi t0, t0, 1\n"
      "li %0, 0\n"
      "jalr x0, 0(t0)\n"
      "li %0, 1\n"
      "1:\n .option pop"
      : "=&r"(r)::"t0");
  CHECK(r, 0);
  /* jalr with rd == rs1: the target uses the old value. */
  asm volatile(
      ".option push\n .option norvc\n"
      "la %0, 1f\n"
      "auipc %1, 0\n"
      "jalr %0, 0(%0)\n"
      "nop\n"
      "1:\n .option pop"
      : "=&r"(link), "=&r"(here));
  CHECK(link - here, 8);
  /* A real call and return. */
  extern u64 isa_ctrl_callee(u64);
  asm volatile("mv a0, %1\n call isa_ctrl_callee\n mv %0, a0" : "=r"(r) : "r"(41ul) : "a0", "ra");
  CHECK(r, 42);
}

asm(".globl isa_ctrl_callee\n isa_ctrl_callee: addi a0, a0, 1\n ret");

static void upper_immediates(void) {
  u64 r, pc;
  asm volatile("lui %0, 0x12345" : "=r"(r));
  CHECK(r, 0x12345000);
  asm volatile("lui %0, 0x80000" : "=r"(r));
  CHECK(r, 0xffffffff80000000);
  asm volatile("lui %0, 0xfffff" : "=r"(r));
  CHECK(r, 0xfffffffffffff000);
  asm volatile("lui %0, 0" : "=r"(r));
  CHECK(r, 0);
  asm volatile("lui %0, 0x7ffff\n addiw %0, %0, 0x7ff" : "=&r"(r));
  CHECK(r, 0x7ffff7ff);
  /* auipc: pc-relative, checked against a label address taken with jal. */
  asm volatile(
      ".option push\n .option norvc\n"
      "jal %1, 1f\n"
      "1: auipc %0, 0\n"
      ".option pop"
      : "=&r"(r), "=&r"(pc));
  CHECK(r, pc);
  asm volatile(
      ".option push\n .option norvc\n"
      "jal %1, 1f\n"
      "1: auipc %0, 0x1\n"
      ".option pop"
      : "=&r"(r), "=&r"(pc));
  CHECK(r - pc, 0x1000);
  asm volatile(
      ".option push\n .option norvc\n"
      "jal %1, 1f\n"
      "1: auipc %0, 0xfffff\n"
      ".option pop"
      : "=&r"(r), "=&r"(pc));
  CHECK(r - pc, (u64)-0x1000);
  asm volatile(
      ".option push\n .option norvc\n"
      "jal %1, 1f\n"
      "1: auipc %0, 0x80000\n"
      ".option pop"
      : "=&r"(r), "=&r"(pc));
  CHECK(r - pc, 0xffffffff80000000);
}

int main(void) {
  branches();
  jumps();
  upper_immediates();
  return 0;
}
