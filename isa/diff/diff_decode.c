/* Differential: decoding. PRNG-generated instruction words (fixed seed)
 * are written to a code slot, made visible with fence.i and executed on PRNG
 * register contents (x5..x31, f0..f31, fcsr). Opcode spaces: integer
 * computational (OP, OP-IMM, OP-32, OP-IMM-32, LUI, AUIPC), loads and stores
 * (integer and FP, base x5 = the middle of a scratch buffer), AMOs (on x5,
 * aligned), MISC-MEM, OP-FP and the fused multiply-adds, and the compressed
 * arithmetic forms. Every field is random except that rd is never ra, sp, gp
 * or tp and integer sources are x0 or x5..x31. Legal encodings change
 * registers or the buffer, reserved ones trap: registers, trap cause/tval
 * and the buffer are hashed, one line per block of words. */
#include "runtime.h"

#define NBLOCKS 256
#define PER_BLOCK 64

u32 slot[4] __attribute__((aligned(16)));
static u64 state[65]; /* x0..x31, f0..f31, fcsr */
static u8 scratch[4096] __attribute__((aligned(4096)));

#define FP_REGS(op)                                                                        \
  " " op " f0, 256(tp)\n " op " f1, 264(tp)\n " op " f2, 272(tp)\n " op " f3, 280(tp)\n"   \
  " " op " f4, 288(tp)\n " op " f5, 296(tp)\n " op " f6, 304(tp)\n " op " f7, 312(tp)\n"   \
  " " op " f8, 320(tp)\n " op " f9, 328(tp)\n " op " f10, 336(tp)\n " op " f11, 344(tp)\n" \
  " " op " f12, 352(tp)\n " op " f13, 360(tp)\n " op " f14, 368(tp)\n " op " f15, 376(tp)\n" \
  " " op " f16, 384(tp)\n " op " f17, 392(tp)\n " op " f18, 400(tp)\n " op " f19, 408(tp)\n" \
  " " op " f20, 416(tp)\n " op " f21, 424(tp)\n " op " f22, 432(tp)\n " op " f23, 440(tp)\n" \
  " " op " f24, 448(tp)\n " op " f25, 456(tp)\n " op " f26, 464(tp)\n " op " f27, 472(tp)\n" \
  " " op " f28, 480(tp)\n " op " f29, 488(tp)\n " op " f30, 496(tp)\n " op " f31, 504(tp)\n"

/* sandbox_run(state): x5..x31 from state, call the slot, x5..x31 back to
 * state, and likewise f0..f31 and fcsr (state[32..64]). ra, sp, gp, tp and
 * the callee-saved registers survive. */
extern void sandbox_run(u64 *st);
asm(".text\n .globl sandbox_run\n sandbox_run:\n"
    " .option push\n .option norvc\n"
    " addi sp, sp, -128\n sd ra, 0(sp)\n sd gp, 8(sp)\n sd tp, 16(sp)\n"
    " sd s0, 24(sp)\n sd s1, 32(sp)\n sd s2, 40(sp)\n sd s3, 48(sp)\n sd s4, 56(sp)\n"
    " sd s5, 64(sp)\n sd s6, 72(sp)\n sd s7, 80(sp)\n sd s8, 88(sp)\n sd s9, 96(sp)\n"
    " sd s10, 104(sp)\n sd s11, 112(sp)\n"
    " mv tp, a0\n la gp, slot\n"
    " ld x5, 40(tp)\n ld x6, 48(tp)\n ld x7, 56(tp)\n ld x8, 64(tp)\n ld x9, 72(tp)\n"
    " ld x10, 80(tp)\n ld x11, 88(tp)\n ld x12, 96(tp)\n ld x13, 104(tp)\n ld x14, 112(tp)\n"
    " ld x15, 120(tp)\n ld x16, 128(tp)\n ld x17, 136(tp)\n ld x18, 144(tp)\n ld x19, 152(tp)\n"
    " ld x20, 160(tp)\n ld x21, 168(tp)\n ld x22, 176(tp)\n ld x23, 184(tp)\n ld x24, 192(tp)\n"
    " ld x25, 200(tp)\n ld x26, 208(tp)\n ld x27, 216(tp)\n ld x28, 224(tp)\n ld x29, 232(tp)\n"
    " ld x30, 240(tp)\n ld x31, 248(tp)\n"
    FP_REGS("fld")
    " ld ra, 512(tp)\n csrw fcsr, ra\n"
    " jalr ra, 0(gp)\n"
    FP_REGS("fsd")
    " frcsr ra\n sd ra, 512(tp)\n"
    " sd x5, 40(tp)\n sd x6, 48(tp)\n sd x7, 56(tp)\n sd x8, 64(tp)\n sd x9, 72(tp)\n"
    " sd x10, 80(tp)\n sd x11, 88(tp)\n sd x12, 96(tp)\n sd x13, 104(tp)\n sd x14, 112(tp)\n"
    " sd x15, 120(tp)\n sd x16, 128(tp)\n sd x17, 136(tp)\n sd x18, 144(tp)\n sd x19, 152(tp)\n"
    " sd x20, 160(tp)\n sd x21, 168(tp)\n sd x22, 176(tp)\n sd x23, 184(tp)\n sd x24, 192(tp)\n"
    " sd x25, 200(tp)\n sd x26, 208(tp)\n sd x27, 216(tp)\n sd x28, 224(tp)\n sd x29, 232(tp)\n"
    " sd x30, 240(tp)\n sd x31, 248(tp)\n"
    " ld ra, 0(sp)\n ld gp, 8(sp)\n ld tp, 16(sp)\n"
    " ld s0, 24(sp)\n ld s1, 32(sp)\n ld s2, 40(sp)\n ld s3, 48(sp)\n ld s4, 56(sp)\n"
    " ld s5, 64(sp)\n ld s6, 72(sp)\n ld s7, 80(sp)\n ld s8, 88(sp)\n ld s9, 96(sp)\n"
    " ld s10, 104(sp)\n ld s11, 112(sp)\n addi sp, sp, 128\n ret\n"
    " .option pop\n");

static const u64 edge[8] = {0, 1, 0xffffffffffffffff, 0x7fffffffffffffff, 0x8000000000000000,
                            0x80000000, 0xffffffff, 0x7fffffff};

static u64 reg_value(u64 *seed) {
  u64 r = isa_rand(seed);
  if ((r & 3) == 0) return edge[(r >> 2) & 7];
  if ((r & 3) == 1) return (i64)(i32)isa_rand(seed);
  return isa_rand(seed);
}

static u32 pick_rd(u64 r) { return 5 + (u32)(r % 27); } /* x5..x31 */

/* A 32-bit word in one of the integer computational opcode spaces. */
static u32 gen32(u64 *seed) {
  static const u32 opcodes[6] = {0x33, 0x13, 0x3b, 0x1b, 0x37, 0x17};
  u64 r = isa_rand(seed);
  u32 op = opcodes[r % 6];
  u32 w = (u32)(isa_rand(seed) & 0xfffff000u) | (op & 0x7f);
  w |= (u32)(isa_rand(seed) & 0x7000);  /* funct3 */
  w |= pick_rd(r >> 8) << 7;
  /* rs1 and rs2 from x0 and x5..x31 */
  u32 rs1 = (r >> 16) % 28, rs2 = (r >> 24) % 28;
  rs1 = rs1 ? rs1 + 4 : 0;
  rs2 = rs2 ? rs2 + 4 : 0;
  if (op != 0x37 && op != 0x17) {
    w = (w & ~(0x1fu << 15)) | (rs1 << 15);
    if (op == 0x33 || op == 0x3b) {
      w = (w & ~(0x1fu << 20)) | (rs2 << 20);
      /* funct7: mostly valid values, sometimes anything */
      static const u32 f7[4] = {0x00, 0x20, 0x01, 0x00};
      u32 sel = (r >> 32) & 7;
      u32 funct7 = sel < 4 ? f7[sel] : (u32)(isa_rand(seed) & 0x7f);
      w = (w & 0x01ffffffu) | (funct7 << 25);
    } else if ((r >> 40) & 1) {
      /* shifts: mostly clean upper bits */
      w &= ~(0x3fu << 26);
      if ((r >> 41) & 1) w |= 0x10u << 26;
    }
  }
  return w;
}

static u32 pick_src(u64 r) {
  u32 x = (u32)(r % 28);
  return x ? x + 4 : 0;
}

/* A word from the memory, AMO, MISC-MEM and FP opcode spaces. */
static u32 gen_other(u64 *seed) {
  static const u32 opcodes[10] = {0x03, 0x23, 0x07, 0x27, 0x2f, 0x0f, 0x53, 0x53, 0x43, 0x4f};
  u64 r = isa_rand(seed);
  u32 op = opcodes[r % 10];
  u32 w = (u32)(isa_rand(seed) & 0xfffff000u) | op | (pick_rd(r >> 8) << 7);
  w |= (u32)(isa_rand(seed) & 0x7000); /* funct3 / rm */
  switch (op) {
    case 0x03: case 0x07: case 0x2f:
      w = (w & ~(0x1fu << 15)) | (5u << 15); /* base x5 */
      if (op == 0x2f) {
        w = (w & ~(0x1fu << 20)) | (pick_src(r >> 16) << 20);
        if ((r >> 24) & 3) w = (w & ~0x7000u) | (((r >> 26) & 1) ? 0x3000u : 0x2000u);
      }
      break;
    case 0x23: case 0x27:
      w = (w & ~(0x1fu << 15)) | (5u << 15);
      if (op == 0x23) w = (w & ~(0x1fu << 20)) | (pick_src(r >> 16) << 20);
      break;
    case 0x0f: break;
    default: /* OP-FP and FMA: integer sources only matter for moves/conversions */
      if ((r >> 20) & 1) w = (w & ~(0x1fu << 15)) | (pick_src(r >> 24) << 15);
      if ((r >> 21) & 1) w = (w & ~0x7000u) | ((u32)((r >> 32) % 5) << 12); /* valid rm */
      break;
  }
  return w;
}

/* A compressed arithmetic form: C.ADDI, C.ADDIW, C.LI, C.LUI/ADDI16SP-space
 * with rd != sp, C.SRLI/SRAI/ANDI/SUB/XOR/OR/AND/SUBW/ADDW, C.SLLI, C.MV,
 * C.ADD, followed by c.nop to fill the slot. */
static u32 gen16(u64 *seed) {
  u64 r = isa_rand(seed);
  u32 h = (u32)(isa_rand(seed) & 0xffff);
  u32 rd = pick_rd(r >> 8);
  switch (r % 6) {
    case 0: h = (h & 0x107c) | 0x0001 | (rd << 7); break;             /* c.addi */
    case 1: h = (h & 0x107c) | 0x2001 | (rd << 7); break;             /* c.addiw */
    case 2: h = (h & 0x107c) | 0x4001 | (rd << 7); break;             /* c.li */
    case 3: h = (h & 0x107c) | 0x6001 | (rd << 7); break;             /* c.lui */
    case 4: h = (h & 0x1ffc) | 0x8001; break;                         /* CB/CA group */
    default:
      if ((r >> 40) & 1) {
        h = (h & 0x107c) | 0x0002 | (rd << 7);                        /* c.slli */
      } else {
        u32 rs2 = (r >> 48) % 28;
        rs2 = rs2 ? rs2 + 4 : 0;
        h = 0x8002 | (h & 0x1000) | (rd << 7) | (rs2 << 2);           /* c.mv / c.add */
        if (rs2 == 0) h |= 5u << 2;                                   /* not c.jr/c.jalr */
      }
      break;
  }
  return h | (0x0001u << 16); /* c.nop in the upper half */
}

static u64 mix(u64 h, u64 v) { return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)); }

int main(void) {
  u64 seed = 0xdec0de;
  u64 total_traps = 0;
  for (int i = 0; i < 4096; i++) scratch[i] = (u8)(i * 7 + 3);
  slot[1] = 0x00008067; /* ret */
  isa_printf("diff_decode: %d words\n", NBLOCKS * PER_BLOCK);
  for (int blk = 0; blk < NBLOCKS; blk++) {
    u64 h = 0, traps = 0;
    for (int k = 0; k < PER_BLOCK; k++) {
      u32 w = (k & 3) == 3 ? gen16(&seed) : (k & 1) ? gen_other(&seed) : gen32(&seed);
      slot[0] = w;
      asm volatile("fence.i" ::: "memory");
      for (int i = 5; i < 32; i++) state[i] = reg_value(&seed);
      state[5] = (u64)scratch + 2048;
      for (int i = 32; i < 64; i++) {
        u64 v = reg_value(&seed);
        state[i] = (i & 1) ? (0xffffffff00000000ull | (u32)v) : v; /* boxed singles too */
      }
      state[64] = isa_rand(&seed) & 0x9f; /* frm 0..4, some flags */
      isa_expect_traps();
      sandbox_run(state);
      isa_unexpect_traps();
      h = mix(h, w);
      for (int i = 5; i < 65; i++) h = mix(h, state[i]);
      if (isa_trap.count) {
        traps++;
        h = mix(mix(h, isa_trap.cause), isa_trap.tval);
      }
    }
    for (int i = 0; i < 4096; i += 8) h = mix(h, *(volatile u64 *)(scratch + i));
    total_traps += traps;
    isa_printf("block %d: %016lx traps %lu\n", blk, h, traps);
  }
  isa_printf("traps: %lu\n", total_traps);
  return 0;
}
