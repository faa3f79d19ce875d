/* Differential: Sv39 permission checks and A/D updates. Each trial points
 * one leaf PTE at a data or a code page with PRNG flag bits (V R W X U G A D,
 * the RSW bits and now and then a reserved or extension bit), picks S or U,
 * SUM and MXR, and one access (load, store, fetch, AMO, lr); it records
 * whether it faulted (cause, tval), the value read and the PTE afterwards.
 * One hash line per 32 trials; the data page's hash at the end. */
#include "runtime.h"

#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_A 0x40
#define PTE_D 0x80
#define U_ALIAS 0x40000000ul
#define VA_TEST 0x100000000ul

static u64 root[512] __attribute__((aligned(4096)));
static u64 l1[512] __attribute__((aligned(4096)));
static u64 l0[512] __attribute__((aligned(4096)));
static volatile u64 data_page[512] __attribute__((aligned(4096)));
static volatile u32 code_page[1024] __attribute__((aligned(4096)));

static u64 pte(u64 pa, u64 flags) { return ((pa >> 12) << 10) | flags; }

volatile u64 g_va, g_val;
extern char vm_access[];
/* vm_access(op): 0 ld, 1 sd g_val, 2 call, 3 amoor.d g_val, 4 lr.d. A
 * faulting load leaves a0 = -1; no compressed instructions (see sv39.c). */
asm(".text\n .globl vm_access\n vm_access:\n"
    " .option push\n .option norvc\n"
    " la t0, g_va\n ld t1, 0(t0)\n la t0, g_val\n ld t2, 0(t0)\n"
    " li t3, 1\n beq a0, t3, 1f\n li t3, 2\n beq a0, t3, 2f\n"
    " li t3, 3\n beq a0, t3, 3f\n li t3, 4\n beq a0, t3, 4f\n"
    " li a0, -1\n ld a0, 0(t1)\n ret\n"
    "1: sd t2, 0(t1)\n li a0, 0\n ret\n"
    "2: addi sp, sp, -16\n sd ra, 0(sp)\n li a0, -1\n jalr ra, 0(t1)\n ld ra, 0(sp)\n"
    "   addi sp, sp, 16\n ret\n"
    "3: li a0, -1\n amoor.d a0, t2, (t1)\n ret\n"
    "4: li a0, -1\n lr.d a0, (t1)\n ret\n"
    " .option pop\n");

static int exc_hook(u64 mode, u64 cause, struct isa_frame *f) {
  if (cause != CAUSE_FETCH_PAGE_FAULT) return 0;
  if (mode == PRV_M)
    CSR_WRITE(mepc, f->x[1]);
  else
    CSR_WRITE(sepc, f->x[1]);
  return 1;
}

static u64 mix(u64 h, u64 v) { return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)); }

int main(void) {
  root[0] = pte(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  root[1] = pte(0x80000000ul, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
  root[2] = pte(0x80000000ul, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
  root[4] = pte((u64)l1, PTE_V);
  l1[0] = pte((u64)l0, PTE_V);
  for (int i = 0; i < 1024; i += 2) {
    code_page[i] = 0x05500513; /* addi a0, x0, 0x55 */
    code_page[i + 1] = 0x00008067;
  }
  u64 seed = 0x7ab1e;
  for (int i = 0; i < 512; i++) data_page[i] = isa_rand(&seed);
  asm volatile("fence.i" ::: "memory");
  CSR_WRITE(satp, (8ul << 60) | ((u64)root >> 12));
  asm volatile("sfence.vma" ::: "memory");
  isa_exc_hook = exc_hook;
  isa_printf("diff_vm\n");
  u64 faults = 0;
  for (int blk = 0; blk < 64; blk++) {
    u64 h = 0;
    for (int k = 0; k < 32; k++) {
      u64 r = isa_rand(&seed);
      int op = (int)(r % 5);
      int slot = (int)((r >> 3) & 63);
      int mode = (r >> 9) & 1 ? PRV_U : PRV_S;
      u64 flags = (r >> 10) & 0x3ff;       /* V R W X U G A D RSW */
      if (((r >> 20) & 15) != 0) flags |= PTE_V;
      u64 extra = 0;
      switch ((r >> 24) & 31) {
        case 0: extra = 1ul << 54; break;  /* reserved */
        case 1: extra = 1ul << 61; break;  /* PBMT without Svpbmt */
        case 2: extra = 1ul << 63; break;  /* N without Svnapot */
        default: break;
      }
      u64 pa = op == 2 ? (u64)code_page : (u64)data_page;
      l0[slot] = pte(pa, flags) | extra;
      asm volatile("sfence.vma" ::: "memory");
      CSR_CLEAR(mstatus, MSTATUS_SUM | MSTATUS_MXR);
      if ((r >> 30) & 1) CSR_SET(mstatus, MSTATUS_SUM);
      if ((r >> 31) & 1) CSR_SET(mstatus, MSTATUS_MXR);
      g_va = VA_TEST + slot * 4096ul + (((r >> 32) & 511) * 8);
      g_val = isa_rand(&seed);
      isa_expect_traps();
      u64 v = isa_call_in_mode(mode, (u64(*)(u64))vm_access, op, mode == PRV_U ? U_ALIAS : 0);
      isa_unexpect_traps();
      /* An AMO faults as a store (cause 15) and a faulting access sets no
       * A bit. QEMU 7.2 does the AMO's load first: it reports 13 when the
       * page is not readable and sets A when it is. Neither is hashed. */
      u64 cause = isa_trap.cause, after = l0[slot];
      if (op == 3 && isa_trap.count) {
        if (cause == CAUSE_LOAD_PAGE_FAULT) cause = CAUSE_STORE_PAGE_FAULT;
        after &= ~(u64)PTE_A;
      }
      h = mix(mix(h, r), v);
      h = mix(h, after);
      if (isa_trap.count) {
        faults++;
        h = mix(mix(mix(h, cause), isa_trap.tval), isa_trap.handler);
      }
#ifdef VM_VERBOSE
      isa_printf("t%d op %d mode %d pte %lx sum %d mxr %d -> v %lx pte %lx trap %lu cause %lx tval %lx\n",
                 blk * 32 + k, op, mode, pte(pa, flags) | extra, (int)((r >> 30) & 1),
                 (int)((r >> 31) & 1), v, l0[slot], isa_trap.count, cause, isa_trap.tval);
#endif
    }
    isa_printf("block %d: %016lx\n", blk, h);
  }
  CSR_CLEAR(mstatus, MSTATUS_SUM | MSTATUS_MXR);
  CSR_WRITE(satp, 0);
  asm volatile("sfence.vma" ::: "memory");
  u64 h = 0;
  for (int i = 0; i < 512; i++) h = mix(h, data_page[i]);
  isa_printf("faults %lu data %016lx\n", faults, h);
  return 0;
}
