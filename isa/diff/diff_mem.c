/* Differential: memory and register state. A PRNG-driven (fixed seed) mix
 * of loads and stores of every width at any alignment, AMOs, lr/sc pairs and
 * compressed loads/stores over a 64 KiB buffer; the buffer's hash is printed
 * after each phase. Then a straight-line block leaves values in every
 * integer and FP register, which are all printed, and a series of traps is
 * printed as (cause, tval) pairs. */
#include "runtime.h"

#define BUF_SIZE 65536
static u8 buf[BUF_SIZE] __attribute__((aligned(4096)));

static u64 mix(u64 h, u64 v) { return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)); }

static u64 hash_buf(void) {
  u64 h = 0;
  for (int i = 0; i < BUF_SIZE; i += 8) h = mix(h, *(volatile u64 *)(buf + i));
  return h;
}

static u64 load(int width, int sign, u8 *p) {
  u64 r;
  switch (width * 2 + sign) {
    case 2: asm volatile("lbu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 3: asm volatile("lb %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 4: asm volatile("lhu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 5: asm volatile("lh %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 8: asm volatile("lwu %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    case 9: asm volatile("lw %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
    default: asm volatile("ld %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); break;
  }
  return r;
}

static void store(int width, u8 *p, u64 v) {
  switch (width) {
    case 1: asm volatile("sb %0, 0(%1)" ::"r"(v), "r"(p) : "memory"); break;
    case 2: asm volatile("sh %0, 0(%1)" ::"r"(v), "r"(p) : "memory"); break;
    case 4: asm volatile("sw %0, 0(%1)" ::"r"(v), "r"(p) : "memory"); break;
    default: asm volatile("sd %0, 0(%1)" ::"r"(v), "r"(p) : "memory"); break;
  }
}

static u64 amo(int which, u64 *p, u64 v) {
  u64 r;
  u32 *w = (u32 *)p;
  switch (which) {
    case 0: asm volatile("amoadd.d %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(p) : "memory"); break;
    case 1: asm volatile("amoxor.w.aq %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(w) : "memory"); break;
    case 2: asm volatile("amomin.d.rl %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(p) : "memory"); break;
    case 3: asm volatile("amomaxu.w %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(w) : "memory"); break;
    case 4: asm volatile("amoswap.w.aqrl %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(w) : "memory"); break;
    case 5: asm volatile("amoor.d %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(p) : "memory"); break;
    case 6: asm volatile("amoand.d.aq %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(p) : "memory"); break;
    default: asm volatile("amomax.w %0, %1, (%2)" : "=r"(r) : "r"(v), "r"(w) : "memory"); break;
  }
  return r;
}

static void memory_phases(void) {
  u64 seed = 0x3e3;
  for (int i = 0; i < BUF_SIZE; i += 8) *(u64 *)(buf + i) = isa_rand(&seed);
  isa_printf("mem init: %016lx\n", hash_buf());
  /* Plain loads and stores, any alignment. */
  u64 h = 0;
  for (int k = 0; k < 20000; k++) {
    u64 r = isa_rand(&seed);
    int width = 1 << (r & 3);
    u8 *p = buf + ((r >> 8) % (BUF_SIZE - 8));
    if ((r >> 4) & 1)
      store(width, p, isa_rand(&seed));
    else
      h = mix(h, load(width, (r >> 5) & 1, p));
  }
  isa_printf("mem loads/stores: %016lx %016lx\n", h, hash_buf());
  /* AMOs on aligned words and doublewords. */
  h = 0;
  for (int k = 0; k < 5000; k++) {
    u64 r = isa_rand(&seed);
    u64 *p = (u64 *)(buf + (((r >> 8) % (BUF_SIZE / 8)) * 8));
    h = mix(h, amo(r & 7, p, isa_rand(&seed)));
  }
  isa_printf("mem amo: %016lx %016lx\n", h, hash_buf());
  /* lr/sc: each pair succeeds; an sc without lr fails. */
  h = 0;
  for (int k = 0; k < 2000; k++) {
    u64 r = isa_rand(&seed);
    u64 *p = (u64 *)(buf + (((r >> 8) % (BUF_SIZE / 8)) * 8));
    u64 v, sc, sc2;
    asm volatile("lr.d %0, (%3)\n add %0, %0, %4\n sc.d %1, %0, (%3)\n sc.d %2, %0, (%3)"
                 : "=&r"(v), "=&r"(sc), "=&r"(sc2)
                 : "r"(p), "r"(r)
                 : "memory");
    h = mix(mix(mix(h, v), sc), sc2 != 0);
  }
  isa_printf("mem lr/sc: %016lx %016lx\n", h, hash_buf());
  /* Compressed loads and stores through s0/s1. */
  h = 0;
  for (int k = 0; k < 2000; k++) {
    u64 r = isa_rand(&seed);
    u8 *p = buf + (((r >> 8) % (BUF_SIZE / 8 - 32)) * 8);
    u64 a, b;
    asm volatile(
        "mv s0, %2\n mv s1, %3\n"
        "c.ld a0, 8(s0)\n c.lw a1, 4(s0)\n"
        "c.sw a0, 16(s0)\n c.sd a1, 24(s0)\n"
        "c.add a0, s1\n c.sd a0, 0(s0)\n"
        "mv %0, a0\n mv %1, a1"
        : "=r"(a), "=r"(b)
        : "r"(p), "r"(r)
        : "s0", "s1", "a0", "a1", "memory");
    h = mix(mix(h, a), b);
  }
  isa_printf("mem compressed: %016lx %016lx\n", h, hash_buf());
}

u64 diff_regs[64];

static void register_dump(void) {
  asm volatile(
      ".option push\n .option norvc\n"
      "la t6, diff_regs\n"
      "li x1, 0x0123456789abcdef\n"
      "slli x5, x1, 13\n xor x6, x5, x1\n sub x7, x6, x5\n mul x8, x7, x6\n"
      "mulh x9, x8, x1\n srai x10, x9, 7\n addw x11, x10, x8\n divu x12, x1, x11\n"
      "rem x13, x12, x10\n sraw x14, x1, x13\n sltu x15, x14, x13\n or x16, x15, x9\n"
      "remuw x17, x16, x12\n mulhsu x18, x17, x16\n and x19, x18, x1\n srl x20, x19, x11\n"
      "addiw x21, x20, -1234\n lui x22, 0xabcde\n auipc x23, 0\n sub x23, x23, t6\n"
      "sllw x24, x22, x21\n divw x25, x24, x17\n xori x26, x25, -1\n mulhu x27, x26, x26\n"
      "sltiu x28, x27, 77\n srliw x29, x27, 3\n sub x30, x29, x28\n"
      "fmv.d.x f0, x1\n fcvt.d.l f1, x8\n fcvt.s.l f2, x9\n fdiv.d f3, f1, f0\n"
      "fsqrt.d f4, f1\n fmadd.d f5, f3, f4, f1\n fcvt.s.d f6, f5\n fmul.s f7, f6, f2\n"
      "fsgnjn.d f8, f5, f3\n fmin.d f9, f8, f4\n fmax.s f10, f7, f6\n fcvt.d.w f11, x11\n"
      "fnmsub.d f12, f11, f9, f5\n fadd.s f13, f10, f7, rup\n fsub.d f14, f12, f3, rdn\n"
      "fcvt.d.s f15, f13\n fmsub.s f16, f13, f7, f6, rtz\n fdiv.s f17, f16, f13, rmm\n"
      "fsqrt.s f18, f17\n fsgnjx.s f19, f18, f16\n fcvt.s.wu f20, x21\n fcvt.d.lu f21, x27\n"
      "fmul.d f22, f21, f21\n fnmadd.s f23, f20, f19, f18\n fmv.w.x f24, x22\n"
      "fadd.d f25, f22, f14\n fcvt.s.d f26, f25, rdn\n fmin.s f27, f26, f24\n"
      "fdiv.d f28, f25, f0\n fmv.d.x f29, x26\n fmul.d f30, f29, f28\n fsub.s f31, f27, f23\n"
      "sd x1, 8(t6)\n sd x5, 40(t6)\n sd x6, 48(t6)\n sd x7, 56(t6)\n sd x8, 64(t6)\n"
      "sd x9, 72(t6)\n sd x10, 80(t6)\n sd x11, 88(t6)\n sd x12, 96(t6)\n sd x13, 104(t6)\n"
      "sd x14, 112(t6)\n sd x15, 120(t6)\n sd x16, 128(t6)\n sd x17, 136(t6)\n sd x18, 144(t6)\n"
      "sd x19, 152(t6)\n sd x20, 160(t6)\n sd x21, 168(t6)\n sd x22, 176(t6)\n sd x23, 184(t6)\n"
      "sd x24, 192(t6)\n sd x25, 200(t6)\n sd x26, 208(t6)\n sd x27, 216(t6)\n sd x28, 224(t6)\n"
      "sd x29, 232(t6)\n sd x30, 240(t6)\n"
      "fsd f0, 256(t6)\n fsd f1, 264(t6)\n fsd f2, 272(t6)\n fsd f3, 280(t6)\n fsd f4, 288(t6)\n"
      "fsd f5, 296(t6)\n fsd f6, 304(t6)\n fsd f7, 312(t6)\n fsd f8, 320(t6)\n fsd f9, 328(t6)\n"
      "fsd f10, 336(t6)\n fsd f11, 344(t6)\n fsd f12, 352(t6)\n fsd f13, 360(t6)\n"
      "fsd f14, 368(t6)\n fsd f15, 376(t6)\n fsd f16, 384(t6)\n fsd f17, 392(t6)\n"
      "fsd f18, 400(t6)\n fsd f19, 408(t6)\n fsd f20, 416(t6)\n fsd f21, 424(t6)\n"
      "fsd f22, 432(t6)\n fsd f23, 440(t6)\n fsd f24, 448(t6)\n fsd f25, 456(t6)\n"
      "fsd f26, 464(t6)\n fsd f27, 472(t6)\n fsd f28, 480(t6)\n fsd f29, 488(t6)\n"
      "fsd f30, 496(t6)\n fsd f31, 504(t6)\n"
      "csrr t5, fcsr\n sd t5, 248(t6)\n"
      ".option pop\n"
      :
      :
      : "ra", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
        "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
        "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13",
        "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25",
        "f26", "f27", "f28", "f29", "f30", "f31", "memory");
  for (int i = 1; i < 31; i++) {
    if (i >= 2 && i <= 4) continue;
    isa_printf("x%d = %016lx\n", i, diff_regs[i]);
  }
  isa_printf("fcsr = %lx\n", diff_regs[31]);
  for (int i = 0; i < 32; i++) isa_printf("f%d = %016lx\n", i, diff_regs[32 + i]);
}

static void trap_series(void) {
  isa_expect_traps();
  /* Reserved or trapping encodings; ebreak's tval may be 0 or the pc, so
   * it is not printed for breakpoints. */
  static const u32 words[] = {0x0000007b, 0xffffffff, 0x00000073 | (1u << 20),
                              0x10500073 | (1u << 7), 0x7ff02573, 0x0000100f | (5u << 7),
                              0xfe000033, 0x4000501b | (1u << 25), 0x0000707f,
                              0x00002007 | (3u << 12), 0xc0001073, 0x0000000f | (0xfu << 28)};
  static u32 code[4] __attribute__((aligned(16)));
  for (unsigned i = 0; i < sizeof words / sizeof words[0]; i++) {
    code[0] = words[i];
    code[1] = 0x00008067;
    asm volatile("fence.i" ::: "memory");
    u64 before = isa_trap.count;
    asm volatile("jalr ra, 0(%0)" ::"r"(code) : "ra", "memory");
    int trapped = isa_trap.count != before;
    isa_printf("word %08x: %s cause %lx tval %lx\n", words[i], trapped ? "trap" : "no trap",
               trapped ? isa_trap.cause : 0,
               trapped && isa_trap.cause != CAUSE_BREAKPOINT ? isa_trap.tval : 0);
  }
  static const u64 addrs[] = {0x0, 0x8, 0x90000000, 0x90000ff8, 0xfffffffffffffff8};
  for (unsigned i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
    u64 before = isa_trap.count, v = 0;
    asm volatile(".option push\n .option norvc\n ld %0, 0(%1)\n .option pop"
                 : "+r"(v)
                 : "r"(addrs[i])
                 : "memory");
    int trapped = isa_trap.count != before;
    isa_printf("load %lx: %s cause %lx tval %lx value %lx\n", addrs[i],
               trapped ? "trap" : "no trap", trapped ? isa_trap.cause : 0,
               trapped ? isa_trap.tval : 0, v);
  }
  isa_unexpect_traps();
}

int main(void) {
  isa_printf("diff_mem\n");
  memory_phases();
  register_dump();
  trap_series();
  return 0;
}
