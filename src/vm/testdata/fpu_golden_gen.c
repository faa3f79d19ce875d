/* Bare-metal RISC-V program that records the golden FPU results.
 *
 * Runs every operation of fpu_cases.h on the operands that file generates,
 * under each rounding mode (set in frm; the instructions use the dynamic
 * mode), and prints one line per result over the NS16550A UART of QEMU's
 * `virt` machine, then powers the machine off through the test finisher.
 * gen_fpu_golden.sh builds and runs it and packs the lines into
 * fpu_golden.bin.
 *
 * Output: for each block, "B <op> <rm> <n>" and then n lines
 * "<result hex> <fflags hex>"; "END" last.
 */
#include <stdint.h>

#include "fpu_cases.h"

#define UART_THR ((volatile uint8_t*)0x10000000)
#define UART_LSR ((volatile uint8_t*)0x10000005)
#define FINISHER ((volatile uint32_t*)0x100000)

__asm__(
    "  .section .text.init, \"ax\"\n"
    "  .globl _start\n"
    "_start:\n"
    "  csrr t0, mhartid\n"
    "1:bnez t0, 1b\n"
    "  la sp, gen_stack_top\n"
    "  li t0, 0x2000\n" /* mstatus.FS = Initial */
    "  csrs mstatus, t0\n"
    "  csrwi fcsr, 0\n"
    "  call main\n"
    "2:j 2b\n"
    "  .section .bss\n"
    "  .balign 16\n"
    "  .space 65536\n"
    "gen_stack_top:\n"
    "  .text\n");

static void put_char(char c) {
  while (!(*UART_LSR & 0x20)) {
  }
  *UART_THR = (uint8_t)c;
}

static void put_str(const char* s) {
  while (*s) put_char(*s++);
}

static void put_hex(uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) put_char("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

static void put_dec(uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put_char(buf[--n]);
}

#define FP2(insn, ld, st)                                                            \
  __asm__ volatile(ld " ft0, %1\n\t" ld " ft1, %2\n\t" insn " ft2, ft0, ft1\n\t" st \
                      " %0, ft2"                                                     \
                   : "=r"(r)                                                         \
                   : "r"(a), "r"(b)                                                  \
                   : "ft0", "ft1", "ft2")
#define FP3(insn, ld, st)                                                          \
  __asm__ volatile(ld " ft0, %1\n\t" ld " ft1, %2\n\t" ld " ft2, %3\n\t" insn     \
                      " ft3, ft0, ft1, ft2\n\t" st " %0, ft3"                      \
                   : "=r"(r)                                                       \
                   : "r"(a), "r"(b), "r"(c)                                        \
                   : "ft0", "ft1", "ft2", "ft3")
#define FP1(insn, ld, st)                                                               \
  __asm__ volatile(ld " ft0, %1\n\t" insn " ft2, ft0\n\t" st " %0, ft2" : "=r"(r) : "r"(a) \
                   : "ft0", "ft2")
#define CMP(insn, ld)                                                           \
  __asm__ volatile(ld " ft0, %1\n\t" ld " ft1, %2\n\t" insn " %0, ft0, ft1" \
                   : "=r"(r)                                                \
                   : "r"(a), "r"(b)                                         \
                   : "ft0", "ft1")
#define TO_INT(insn, ld) \
  __asm__ volatile(ld " ft0, %1\n\t" insn " %0, ft0" : "=r"(r) : "r"(a) : "ft0")
#define FROM_INT(insn, st) \
  __asm__ volatile(insn " ft0, %1\n\t" st " %0, ft0" : "=r"(r) : "r"(a) : "ft0")

static uint64_t run(int op, const uint64_t in[3], uint64_t* flags) {
  const uint64_t a = in[0];
  const uint64_t b = in[1];
  const uint64_t c = in[2];
  uint64_t r = 0;
  __asm__ volatile("csrw fflags, zero");
  switch (op) {
    case FPU_OP_FADD_S: FP2("fadd.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FSUB_S: FP2("fsub.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FMUL_S: FP2("fmul.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FDIV_S: FP2("fdiv.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FSQRT_S: FP1("fsqrt.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FMADD_S: FP3("fmadd.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FMSUB_S: FP3("fmsub.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FNMSUB_S: FP3("fnmsub.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FNMADD_S: FP3("fnmadd.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FMIN_S: FP2("fmin.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FMAX_S: FP2("fmax.s", "fmv.w.x", "fmv.x.w"); break;
    case FPU_OP_FEQ_S: CMP("feq.s", "fmv.w.x"); break;
    case FPU_OP_FLT_S: CMP("flt.s", "fmv.w.x"); break;
    case FPU_OP_FLE_S: CMP("fle.s", "fmv.w.x"); break;
    case FPU_OP_FCLASS_S: TO_INT("fclass.s", "fmv.w.x"); break;
    case FPU_OP_FADD_D: FP2("fadd.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FSUB_D: FP2("fsub.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FMUL_D: FP2("fmul.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FDIV_D: FP2("fdiv.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FSQRT_D: FP1("fsqrt.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FMADD_D: FP3("fmadd.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FMSUB_D: FP3("fmsub.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FNMSUB_D: FP3("fnmsub.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FNMADD_D: FP3("fnmadd.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FMIN_D: FP2("fmin.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FMAX_D: FP2("fmax.d", "fmv.d.x", "fmv.x.d"); break;
    case FPU_OP_FEQ_D: CMP("feq.d", "fmv.d.x"); break;
    case FPU_OP_FLT_D: CMP("flt.d", "fmv.d.x"); break;
    case FPU_OP_FLE_D: CMP("fle.d", "fmv.d.x"); break;
    case FPU_OP_FCLASS_D: TO_INT("fclass.d", "fmv.d.x"); break;
    case FPU_OP_FCVT_W_S: TO_INT("fcvt.w.s", "fmv.w.x"); break;
    case FPU_OP_FCVT_WU_S: TO_INT("fcvt.wu.s", "fmv.w.x"); break;
    case FPU_OP_FCVT_L_S: TO_INT("fcvt.l.s", "fmv.w.x"); break;
    case FPU_OP_FCVT_LU_S: TO_INT("fcvt.lu.s", "fmv.w.x"); break;
    case FPU_OP_FCVT_W_D: TO_INT("fcvt.w.d", "fmv.d.x"); break;
    case FPU_OP_FCVT_WU_D: TO_INT("fcvt.wu.d", "fmv.d.x"); break;
    case FPU_OP_FCVT_L_D: TO_INT("fcvt.l.d", "fmv.d.x"); break;
    case FPU_OP_FCVT_LU_D: TO_INT("fcvt.lu.d", "fmv.d.x"); break;
    case FPU_OP_FCVT_S_W: FROM_INT("fcvt.s.w", "fmv.x.w"); break;
    case FPU_OP_FCVT_S_WU: FROM_INT("fcvt.s.wu", "fmv.x.w"); break;
    case FPU_OP_FCVT_S_L: FROM_INT("fcvt.s.l", "fmv.x.w"); break;
    case FPU_OP_FCVT_S_LU: FROM_INT("fcvt.s.lu", "fmv.x.w"); break;
    case FPU_OP_FCVT_D_W: FROM_INT("fcvt.d.w", "fmv.x.d"); break;
    case FPU_OP_FCVT_D_WU: FROM_INT("fcvt.d.wu", "fmv.x.d"); break;
    case FPU_OP_FCVT_D_L: FROM_INT("fcvt.d.l", "fmv.x.d"); break;
    case FPU_OP_FCVT_D_LU: FROM_INT("fcvt.d.lu", "fmv.x.d"); break;
    case FPU_OP_FCVT_S_D: FP1("fcvt.s.d", "fmv.d.x", "fmv.x.w"); break;
    case FPU_OP_FCVT_D_S: FP1("fcvt.d.s", "fmv.w.x", "fmv.x.d"); break;
    default: break;
  }
  __asm__ volatile("csrr %0, fflags" : "=r"(*flags));
  return r;
}

int main(void) {
  for (int op = 0; op < FPU_OP_COUNT; ++op) {
    const int modes = kFpuOpInfo[op].rounds ? 5 : 1;
    for (int rm = 0; rm < modes; ++rm) {
      const int n = fpu_block_cases(op);
      const int size = fpu_result_size(op);
      __asm__ volatile("csrw frm, %0" : : "r"((uint64_t)rm));
      put_str("B ");
      put_dec((uint64_t)op);
      put_char(' ');
      put_dec((uint64_t)rm);
      put_char(' ');
      put_dec((uint64_t)n);
      put_char('\n');
      struct FpuRng rng = fpu_block_rng(op, rm);
      for (int i = 0; i < n; ++i) {
        uint64_t in[3];
        uint64_t flags;
        fpu_case_operands(op, &rng, in);
        const uint64_t r = run(op, in, &flags);
        put_hex(r, 2 * size);
        put_char(' ');
        put_hex(flags, 2);
        put_char('\n');
      }
    }
  }
  put_str("END\n");
  *FINISHER = 0x5555;
  for (;;) {
  }
}
