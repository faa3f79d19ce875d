/* RVC: every RV64C instruction form, written with explicit c.* mnemonics so
 * the assembler must emit the 16-bit encoding, plus reserved compressed
 * encodings trapping as illegal instructions with the 16 bits in mtval. */
#include "runtime.h"

static volatile u64 mem[8] __attribute__((aligned(64)));

/* The whole file is built with C enabled; c.* mnemonics force 16 bits. */
#define RVC(...) asm volatile(__VA_ARGS__)

static void integer_register(void) {
  u64 r, s;
  RVC("li a0, 0\n c.li a0, -32\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, (u64)-32);
  RVC("c.li a0, 31\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 31);
  RVC("c.lui a0, 0x1f\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0x1f000);
  RVC("c.lui a0, 0xfffe0\n mv %0, a0" : "=r"(r)::"a0"); /* nzimm = -32 << 12 */
  CHECK(r, 0xfffffffffffe0000);
  RVC("c.li a0, 5\n c.addi a0, -6\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, (u64)-1);
  RVC("c.nop\n c.nop");
  RVC("li a0, 0x7fffffff\n c.addiw a0, 1\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0xffffffff80000000);
  RVC("li a0, 0x100000005\n c.addiw a0, 0\n mv %0, a0" : "=r"(r)::"a0"); /* sext.w */
  CHECK(r, 5);
  RVC("li a0, 0x8000000000000001\n c.slli a0, 3\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 8);
  RVC("li a0, 0x8000000000000010\n c.srli a0, 4\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0x0800000000000001);
  RVC("li a0, 0x8000000000000010\n c.srai a0, 4\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0xf800000000000001);
  RVC("li a0, 0x8000000000000010\n c.srai a0, 63\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, (u64)-1);
  RVC("li a0, 0x0f0f\n c.andi a0, -16\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0x0f00);
  RVC("li a0, 0x0f0f\n c.andi a0, 5\n mv %0, a0" : "=r"(r)::"a0");
  CHECK(r, 0x5);
  RVC("li a0, 1234\n c.mv a1, a0\n mv %0, a1" : "=r"(r)::"a0", "a1");
  CHECK(r, 1234);
  RVC("li a0, 1000\n li a5, 234\n c.add a0, a5\n mv %0, a0" : "=r"(r)::"a0", "a5");
  CHECK(r, 1234);
  RVC("li s0, 10\n li s1, 25\n c.sub s0, s1\n mv %0, s0" : "=r"(r)::"s0", "s1");
  CHECK(r, (u64)-15);
  RVC("li s0, 0xff00\n li a2, 0x0ff0\n c.xor s0, a2\n mv %0, s0" : "=r"(r)::"s0", "a2");
  CHECK(r, 0xf0f0);
  RVC("li s0, 0xff00\n li a2, 0x0ff0\n c.or s0, a2\n mv %0, s0" : "=r"(r)::"s0", "a2");
  CHECK(r, 0xfff0);
  RVC("li s0, 0xff00\n li a2, 0x0ff0\n c.and s0, a2\n mv %0, s0" : "=r"(r)::"s0", "a2");
  CHECK(r, 0x0f00);
  RVC("li a3, 0x80000000\n li a4, 1\n c.subw a3, a4\n mv %0, a3" : "=r"(r)::"a3", "a4");
  CHECK(r, 0x7fffffff);
  RVC("li a3, 0x7fffffff\n li a4, 1\n c.addw a3, a4\n mv %0, a3" : "=r"(r)::"a3", "a4");
  CHECK(r, 0xffffffff80000000);
  /* c.addi16sp / c.addi4spn */
  RVC("mv %1, sp\n c.addi16sp sp, -64\n c.addi4spn a0, sp, 16\n mv %0, a0\n c.addi16sp sp, 64"
      : "=r"(r), "=r"(s)::"a0");
  CHECK(s - r, 48);
  RVC("mv %1, sp\n c.addi16sp sp, 496\n mv %0, sp\n c.addi16sp sp, -496" : "=r"(r), "=r"(s));
  CHECK(r - s, 496);
  RVC("c.addi4spn a0, sp, 1020\n mv %0, a0\n mv %1, sp" : "=r"(r), "=r"(s)::"a0");
  CHECK(r - s, 1020);
}

static void loads_stores(void) {
  u64 r;
  mem[0] = 0xfedcba9876543210;
  mem[1] = 0;
  RVC("mv s0, %1\n c.lw a0, 4(s0)\n mv %0, a0" : "=r"(r) : "r"(mem) : "s0", "a0", "memory");
  CHECK(r, 0xfffffffffedcba98);
  RVC("mv s0, %1\n c.ld a0, 0(s0)\n mv %0, a0" : "=r"(r) : "r"(mem) : "s0", "a0", "memory");
  CHECK(r, 0xfedcba9876543210);
  RVC("mv s1, %0\n li a1, 0x11223344\n c.sw a1, 12(s1)" ::"r"(mem) : "s1", "a1", "memory");
  CHECK(mem[1], 0x1122334400000000);
  RVC("mv s1, %0\n li a1, -2\n c.sd a1, 248(s1)" ::"r"((u64)mem - 240) : "s1", "a1", "memory");
  CHECK(mem[1], 0xfffffffffffffffe);
  mem[2] = 0x400921fb54442d18; /* pi */
  RVC("mv s0, %1\n c.fld fa0, 16(s0)\n c.fsd fa0, 24(s0)\n fmv.x.d %0, fa0" : "=r"(r) : "r"(mem)
      : "s0", "fa0", "memory");
  CHECK(r, 0x400921fb54442d18);
  CHECK(mem[3], 0x400921fb54442d18);
  /* sp-relative forms on a scratch area below the stack pointer. */
  u64 w, d, f;
  RVC("c.addi16sp sp, -32\n"
      "li a0, 0x8877665544332211\n"
      "c.sdsp a0, 0(sp)\n"
      "c.sdsp zero, 8(sp)\n"
      "c.swsp a0, 12(sp)\n"
      "fmv.d.x fa1, a0\n"
      "c.fsdsp fa1, 16(sp)\n"
      "c.lwsp %0, 4(sp)\n"
      "c.ldsp %1, 8(sp)\n"
      "c.fldsp fa2, 16(sp)\n"
      "fmv.x.d %2, fa2\n"
      "c.addi16sp sp, 32"
      : "=r"(w), "=r"(d), "=r"(f)::"a0", "fa1", "fa2", "memory");
  CHECK(w, 0xffffffff88776655);
  CHECK(d, 0x4433221100000000);
  CHECK(f, 0x8877665544332211);
}

static u64 jump_target_count;
asm(".globl rvc_callee\n rvc_callee:\n .option push\n .option rvc\n c.addi a0, 1\n c.jr ra\n .option pop");

static void control(void) {
  u64 r, link, here;
  RVC("li %0, 1\n c.j 1f\n li %0, 2\n1:" : "=&r"(r));
  CHECK(r, 1);
  RVC("li s0, 0\n li %0, 0\n c.beqz s0, 1f\n li %0, 1\n1:" : "=&r"(r)::"s0");
  CHECK(r, 0);
  RVC("li s0, 3\n li %0, 0\n c.beqz s0, 1f\n li %0, 1\n1:" : "=&r"(r)::"s0");
  CHECK(r, 1);
  RVC("li s0, 0x100000000\n li %0, 0\n c.bnez s0, 1f\n li %0, 1\n1:" : "=&r"(r)::"s0");
  CHECK(r, 0);
  RVC("li s0, 0\n li %0, 0\n c.bnez s0, 1f\n li %0, 1\n1:" : "=&r"(r)::"s0");
  CHECK(r, 1);
  /* Backward c.bnez loop. */
  RVC("li s1, 5\n li %0, 0\n1: c.addi %0, 2\n c.addi s1, -1\n c.bnez s1, 1b" : "=&r"(r)::"s1");
  CHECK(r, 10);
  /* c.jalr links pc + 2. */
  RVC("la a5, rvc_callee\n li a0, 41\n auipc %2, 0\n c.jalr a5\n mv %0, a0\n mv %1, ra"
      : "=r"(r), "=r"(link), "=&r"(here)::"a0", "a5", "ra");
  CHECK(r, 42);
  CHECK(link - here, 6);
  RVC("la a5, 1f\n li %0, 7\n c.jr a5\n li %0, 8\n1:" : "=&r"(r)::"a5");
  CHECK(r, 7);
  jump_target_count++;
}

static void illegal_and_ebreak(void) {
  isa_expect_traps();
  u64 start, end;
  /* c.ebreak: cause 3; mtval is 0 or the pc. */
  RVC("la %0, 1f\n1: c.ebreak\n2: la %1, 2b" : "=r"(start), "=r"(end));
  CHECK(isa_trap.count, 1);
  CHECK(isa_trap.cause, CAUSE_BREAKPOINT);
  CHECK(isa_trap.epc, start);
  CHECK_TRUE(isa_trap.tval == 0 || isa_trap.tval == start);
  CHECK(end - start, 2);
  /* 0x0000 is defined illegal; c.lui with nzimm = 0 and c.addi4spn with
   * nzuimm = 0 are reserved. */
  RVC("la %0, 1f\n1: .half 0x0000" : "=r"(start));
  CHECK(isa_trap.count, 2);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.epc, start);
  CHECK(isa_trap.tval, 0);
  RVC("la %0, 1f\n1: .half 0x6081" : "=r"(start)); /* c.lui ra, 0 */
  CHECK(isa_trap.count, 3);
  CHECK(isa_trap.cause, CAUSE_ILLEGAL_INSTRUCTION);
  CHECK(isa_trap.epc, start);
  CHECK(isa_trap.tval, 0x6081);
  RVC("la %0, 1f\n1: .half 0x0004" : "=r"(start)); /* c.addi4spn s1, sp, 0 */
  CHECK(isa_trap.count, 4);
  CHECK(isa_trap.tval, 0x0004);
  isa_unexpect_traps();
}

int main(void) {
  integer_register();
  loads_stores();
  control();
  illegal_and_ebreak();
  return 0;
}
