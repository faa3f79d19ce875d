/* Differential: every RV64IM integer operation (register and immediate forms,
 * W forms, mul/div/rem) on a fixed table of edge operands, all pairs printed
 * in full, then on PRNG operands (fixed seed) printed as one hash per op.
 * Nothing here checks itself: the output must match QEMU's byte for byte. */
#include "runtime.h"

static const u64 edge[16] = {
    0x0000000000000000, 0x0000000000000001, 0x0000000000000002, 0xffffffffffffffff,
    0xfffffffffffffffe, 0x7fffffffffffffff, 0x8000000000000000, 0x000000007fffffff,
    0x0000000080000000, 0x00000000ffffffff, 0xffffffff80000000, 0x0000000100000000,
    0x000000000000001f, 0x0000000000000020, 0x000000000000003f, 0x123456789abcdef0,
};

typedef u64 (*op_fn)(u64, u64);

#define RR(name)                                                                 \
  static u64 op_##name(u64 a, u64 b) {                                           \
    u64 r;                                                                       \
    asm volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));                \
    return r;                                                                    \
  }
#define RI(name, insn, imm)                                                      \
  static u64 op_##name(u64 a, u64 b) {                                           \
    (void)b;                                                                     \
    u64 r;                                                                       \
    asm volatile(#insn " %0, %1, " #imm : "=r"(r) : "r"(a));                     \
    return r;                                                                    \
  }

RR(add) RR(sub) RR(sll) RR(slt) RR(sltu) RR(xor) RR(srl) RR(sra) RR(or) RR(and)
RR(addw) RR(subw) RR(sllw) RR(srlw) RR(sraw)
RR(mul) RR(mulh) RR(mulhsu) RR(mulhu) RR(div) RR(divu) RR(rem) RR(remu)
RR(mulw) RR(divw) RR(divuw) RR(remw) RR(remuw)
RI(addi_m1, addi, -1) RI(addi_2047, addi, 2047) RI(addi_m2048, addi, -2048)
RI(slti_m1, slti, -1) RI(slti_5, slti, 5) RI(sltiu_m1, sltiu, -1) RI(sltiu_1, sltiu, 1)
RI(xori_m1, xori, -1) RI(xori_555, xori, 0x555) RI(ori_m2048, ori, -2048) RI(andi_7ff, andi, 0x7ff)
RI(andi_m16, andi, -16) RI(slli_1, slli, 1) RI(slli_63, slli, 63) RI(srli_1, srli, 1)
RI(srli_33, srli, 33) RI(srai_1, srai, 1) RI(srai_63, srai, 63) RI(addiw_m1, addiw, -1)
RI(addiw_2047, addiw, 2047) RI(slliw_31, slliw, 31) RI(srliw_0, srliw, 0) RI(srliw_31, srliw, 31)
RI(sraiw_0, sraiw, 0) RI(sraiw_17, sraiw, 17)

struct op {
  const char *name;
  op_fn fn;
  int binary; /* uses b */
};

#define B(name) {#name, op_##name, 1}
#define U(name) {#name, op_##name, 0}
static const struct op ops[] = {
    B(add), B(sub), B(sll), B(slt), B(sltu), B(xor), B(srl), B(sra), B(or), B(and),
    B(addw), B(subw), B(sllw), B(srlw), B(sraw),
    B(mul), B(mulh), B(mulhsu), B(mulhu), B(div), B(divu), B(rem), B(remu),
    B(mulw), B(divw), B(divuw), B(remw), B(remuw),
    U(addi_m1), U(addi_2047), U(addi_m2048), U(slti_m1), U(slti_5), U(sltiu_m1), U(sltiu_1),
    U(xori_m1), U(xori_555), U(ori_m2048), U(andi_7ff), U(andi_m16), U(slli_1), U(slli_63),
    U(srli_1), U(srli_33), U(srai_1), U(srai_63), U(addiw_m1), U(addiw_2047), U(slliw_31),
    U(srliw_0), U(srliw_31), U(sraiw_0), U(sraiw_17),
};

/* Random operands biased towards interesting shapes. */
static u64 operand(u64 *s) {
  u64 r = isa_rand(s);
  switch (r & 7) {
    case 0: return edge[(r >> 8) & 15];
    case 1: return (i64)(i32)(r >> 16);             /* sign-extended word */
    case 2: return (r >> 3) & 0xff;                 /* small */
    case 3: return -((r >> 3) & 0xff);              /* small negative */
    case 4: return 1ull << ((r >> 3) & 63);         /* one bit */
    default: return isa_rand(s);
  }
}

static u64 mix(u64 h, u64 v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

int main(void) {
  isa_printf("diff_int: %u ops\n", (unsigned)(sizeof ops / sizeof ops[0]));
  for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    const struct op *o = &ops[i];
    if (o->binary) {
      for (int a = 0; a < 16; a++) {
        isa_printf("%s %016lx:", o->name, edge[a]);
        for (int b = 0; b < 16; b++) isa_printf(" %lx", o->fn(edge[a], edge[b]));
        isa_printf("\n");
      }
    } else {
      isa_printf("%s:", o->name);
      for (int a = 0; a < 16; a++) isa_printf(" %lx", o->fn(edge[a], 0));
      isa_printf("\n");
    }
  }
  u64 seed = 0x5eed0001;
  for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    u64 h = 0;
    for (int k = 0; k < 2000; k++) {
      u64 a = operand(&seed), b = operand(&seed);
      h = mix(h, ops[i].fn(a, b));
    }
    isa_printf("%s random: %016lx\n", ops[i].name, h);
  }
  return 0;
}
