/* RV64I integer computation: every register-register and register-immediate
 * ALU instruction, including the 32-bit W forms, on edge operands. Expected
 * values are C expressions over literal operands, folded by the compiler on
 * the build host, so they do not depend on the machine under test. */
#include "runtime.h"

#define SX32(x) ((u64)(i64)(i32)(u32)(x))

#define TEST_RR(op, a, b, F)                                                          \
  do {                                                                                \
    u64 r_;                                                                           \
    asm volatile(#op " %0, %1, %2" : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b)));        \
    isa_check(__LINE__, #op " " #a ", " #b, r_, F((u64)(a), (u64)(b)));               \
  } while (0)

#define TEST_RI(op, a, imm, F)                                                        \
  do {                                                                                \
    u64 r_;                                                                           \
    asm volatile(#op " %0, %1, %2" : "=r"(r_) : "r"((u64)(a)), "i"(imm));             \
    isa_check(__LINE__, #op " " #a ", " #imm, r_, F((u64)(a), (u64)(i64)(imm)));      \
  } while (0)

#define RR_SET(op, F)                                      \
  TEST_RR(op, 0, 0, F);                                    \
  TEST_RR(op, 1, 1, F);                                    \
  TEST_RR(op, 0x7fffffffffffffff, 1, F);                   \
  TEST_RR(op, 0x8000000000000000, 0xffffffffffffffff, F);  \
  TEST_RR(op, 0x123456789abcdef0, 0x0fedcba987654321, F);  \
  TEST_RR(op, 0xffffffff80000000, 0x000000007fffffff, F);  \
  TEST_RR(op, 0x00000000ffffffff, 0x3f, F);                \
  TEST_RR(op, 0xdeadbeefcafebabe, 0x41, F);                \
  TEST_RR(op, 0x0000000080000000, 0x1f, F)

#define RI_SET(op, F)                                      \
  TEST_RI(op, 0, 0, F);                                    \
  TEST_RI(op, 1, -1, F);                                   \
  TEST_RI(op, 0x7fffffffffffffff, 1, F);                   \
  TEST_RI(op, 0x8000000000000000, -1, F);                  \
  TEST_RI(op, 0x123456789abcdef0, 2047, F);                \
  TEST_RI(op, 0x000000007fffffff, -2048, F);               \
  TEST_RI(op, 0xffffffff80000000, 0x555, F)

#define SHIFT_SET(op, F)                                   \
  TEST_RI(op, 0x8000000000000001, 0, F);                   \
  TEST_RI(op, 0x8000000000000001, 1, F);                   \
  TEST_RI(op, 0xdeadbeefcafebabe, 31, F);                  \
  TEST_RI(op, 0xdeadbeefcafebabe, 32, F);                  \
  TEST_RI(op, 0x123456789abcdef0, 63, F);                  \
  TEST_RI(op, 0xffffffff80000000, 17, F)

#define SHIFTW_SET(op, F)                                  \
  TEST_RI(op, 0xffffffff80000001, 0, F);                   \
  TEST_RI(op, 0x0000000080000001, 1, F);                   \
  TEST_RI(op, 0xdeadbeefcafebabe, 31, F);                  \
  TEST_RI(op, 0x123456787fffffff, 15, F);                  \
  TEST_RI(op, 0x0000000000000001, 31, F)

#define F_ADD(a, b) ((a) + (b))
#define F_SUB(a, b) ((a) - (b))
#define F_SLL(a, b) ((a) << ((b)&63))
#define F_SRL(a, b) ((a) >> ((b)&63))
#define F_SRA(a, b) ((u64)((i64)(a) >> ((b)&63)))
#define F_SLT(a, b) ((u64)((i64)(a) < (i64)(b)))
#define F_SLTU(a, b) ((u64)((a) < (b)))
#define F_XOR(a, b) ((a) ^ (b))
#define F_OR(a, b) ((a) | (b))
#define F_AND(a, b) ((a) & (b))
#define F_ADDW(a, b) SX32((u32)(a) + (u32)(b))
#define F_SUBW(a, b) SX32((u32)(a) - (u32)(b))
#define F_SLLW(a, b) SX32((u32)(a) << ((b)&31))
#define F_SRLW(a, b) SX32((u32)(a) >> ((b)&31))
#define F_SRAW(a, b) SX32((i32)(u32)(a) >> ((b)&31))

static void register_register(void) {
  RR_SET(add, F_ADD);
  RR_SET(sub, F_SUB);
  RR_SET(sll, F_SLL);
  RR_SET(srl, F_SRL);
  RR_SET(sra, F_SRA);
  RR_SET(slt, F_SLT);
  RR_SET(sltu, F_SLTU);
  RR_SET(xor, F_XOR);
  RR_SET(or, F_OR);
  RR_SET(and, F_AND);
  RR_SET(addw, F_ADDW);
  RR_SET(subw, F_SUBW);
  RR_SET(sllw, F_SLLW);
  RR_SET(srlw, F_SRLW);
  RR_SET(sraw, F_SRAW);
}

static void register_immediate(void) {
  RI_SET(addi, F_ADD);
  RI_SET(slti, F_SLT);
  RI_SET(sltiu, F_SLTU);
  RI_SET(xori, F_XOR);
  RI_SET(ori, F_OR);
  RI_SET(andi, F_AND);
  RI_SET(addiw, F_ADDW);
  SHIFT_SET(slli, F_SLL);
  SHIFT_SET(srli, F_SRL);
  SHIFT_SET(srai, F_SRA);
  SHIFTW_SET(slliw, F_SLLW);
  SHIFTW_SET(srliw, F_SRLW);
  SHIFTW_SET(sraiw, F_SRAW);
}

static void special_registers(void) {
  u64 r;
  /* x0 reads as zero and ignores writes. */
  asm volatile("li t0, 77\n addi x0, t0, 1\n add %0, x0, x0" : "=r"(r)::"t0");
  CHECK(r, 0);
  asm volatile("addi %0, x0, -5" : "=r"(r));
  CHECK(r, (u64)-5);
  /* Destination equal to both sources. */
  asm volatile("li %0, 21\n add %0, %0, %0" : "=&r"(r));
  CHECK(r, 42);
  asm volatile("li %0, -1\n srli %0, %0, 1\n srai %0, %0, 62" : "=&r"(r));
  CHECK(r, 1);
  /* sltu x, x0, y is "y != 0"; sltiu x, y, 1 is "y == 0". */
  asm volatile("li t0, 9\n sltu %0, x0, t0" : "=r"(r)::"t0");
  CHECK(r, 1);
  asm volatile("sltiu %0, x0, 1" : "=r"(r));
  CHECK(r, 1);
}

int main(void) {
  register_register();
  register_immediate();
  special_registers();
  return 0;
}
