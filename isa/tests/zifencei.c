/* Zifencei: self-modifying code. Instructions are written with ordinary
 * stores (and atomics) into a data buffer and into a function in .text,
 * made visible with fence.i and executed; each rewrite of code that already
 * ran must take effect (a machine that caches decoded instructions has to
 * notice). */
#include "runtime.h"

static u32 code[16] __attribute__((aligned(64)));
static u16 two_pages[4096] __attribute__((aligned(4096))); /* 8 KiB */

#define ADDI_A0(imm) (0x00000513u | ((u32)(imm) << 20)) /* addi a0, x0, imm */
#define RET 0x00008067u                                 /* jalr x0, 0(ra) */

static u64 call(volatile void *fn) {
  u64 r;
  asm volatile("jalr ra, 0(%1)\n mv %0, a0" : "=r"(r) : "r"(fn) : "ra", "a0", "a1", "memory");
  return r;
}

/* A function in .text that the test rewrites in place. */
asm(".text\n .align 4\n .globl patched_fn\n patched_fn:\n"
    " .option push\n .option norvc\n addi a0, x0, 1\n jalr x0, 0(ra)\n nop\n nop\n .option pop");
extern u32 patched_fn[];

int main(void) {
  /* A fresh buffer. */
  code[0] = ADDI_A0(42);
  code[1] = RET;
  asm volatile("fence.i" ::: "memory");
  CHECK(call(code), 42);
  /* Rewrite code that has already run, many times. */
  u64 sum = 0;
  for (int i = 0; i < 50; i++) {
    code[0] = ADDI_A0(i);
    asm volatile("fence.i" ::: "memory");
    sum += call(code);
  }
  CHECK(sum, 49 * 50 / 2);
  /* Lengthen the function: one instruction becomes three. */
  code[0] = ADDI_A0(5);
  code[1] = 0x00150513; /* addi a0, a0, 1 */
  code[2] = 0x00151513; /* slli a0, a0, 1 */
  code[3] = RET;
  asm volatile("fence.i" ::: "memory");
  CHECK(call(code), 12);
  /* Compressed instructions written as halfwords: c.li a0, 9; c.jr ra. */
  volatile u16 *half = (volatile u16 *)&code[8];
  half[0] = 0x4525;
  half[1] = 0x8082;
  asm volatile("fence.i" ::: "memory");
  CHECK(call((void *)half), 9);
  half[0] = 0x452d; /* c.li a0, 11 */
  asm volatile("fence.i" ::: "memory");
  CHECK(call((void *)half), 11);
  /* Patch a function in .text, next to running code. */
  CHECK(call(patched_fn), 1);
  patched_fn[0] = ADDI_A0(-7);
  asm volatile("fence.i" ::: "memory");
  CHECK(call(patched_fn), (u64)-7);
  patched_fn[0] = 0x00100513 | (0x7ff << 20); /* addi a0, x0, 2047 (with imm bits ORed) */
  asm volatile("fence.i" ::: "memory");
  CHECK(call(patched_fn), 0x7ff);
  /* A 32-bit instruction straddling a physical page boundary; then only
   * its second half (on the second page) is rewritten. */
  two_pages[2046] = 0x0001; /* c.nop */
  two_pages[2047] = 0x0513; /* addi a0, x0, 11 (0x00b00513), low half */
  two_pages[2048] = 0x00b0; /* ... high half */
  two_pages[2049] = 0x8067; /* ret */
  two_pages[2050] = 0x0000;
  asm volatile("fence.i" ::: "memory");
  CHECK(call(&two_pages[2046]), 11);
  two_pages[2048] = 0x0160; /* addi a0, x0, 22 */
  asm volatile("fence.i" ::: "memory");
  CHECK(call(&two_pages[2046]), 22);
  two_pages[2047] = 0x0593; /* addi a1, x0, 22: a0 keeps what c.li sets */
  two_pages[2045] = 0x4525; /* c.li a0, 9 */
  asm volatile("fence.i" ::: "memory");
  CHECK(call(&two_pages[2045]), 9);
  /* Code that rewrites the instruction right after itself, then fence.i. */
  u64 r;
  asm volatile(
      ".option push\n .option norvc\n"
      "la t0, 1f\n"
      "li t1, 0x06300513\n" /* addi a0, x0, 99 */
      "sw t1, 0(t0)\n"
      "fence.i\n"
      "1: addi a0, x0, 1\n"
      "mv %0, a0\n"
      ".option pop"
      : "=r"(r)::"t0", "t1", "a0", "memory");
  CHECK(r, 99);
  /* Code rewritten by atomics: amoswap, amoadd (to the immediate), and an
   * lr/sc pair, each on code that already ran. */
  code[0] = ADDI_A0(3);
  code[1] = RET;
  asm volatile("fence.i" ::: "memory");
  CHECK(call(code), 3);
  u64 old;
  asm volatile("amoswap.w %0, %2, (%1)" : "=r"(old) : "r"(&code[0]), "r"(ADDI_A0(4)) : "memory");
  asm volatile("fence.i" ::: "memory");
  CHECK(old, ADDI_A0(3));
  CHECK(call(code), 4);
  asm volatile("amoadd.w %0, %2, (%1)" : "=r"(old) : "r"(&code[0]), "r"(1u << 20) : "memory");
  asm volatile("fence.i" ::: "memory");
  CHECK(call(code), 5);
  asm volatile("1: lr.w %0, (%1)\n sc.w t0, %2, (%1)\n bnez t0, 1b"
               : "=&r"(old)
               : "r"(&code[0]), "r"(ADDI_A0(6))
               : "t0", "memory");
  asm volatile("fence.i" ::: "memory");
  CHECK(call(code), 6);
  return 0;
}
