/* Sv39 paging, with page tables built here: 4 KiB, 2 MiB and 1 GiB leaves;
 * load, store and fetch page faults with the right cause and tval (invalid
 * PTE, missing permission, reserved W-without-R, non-leaf at level 0,
 * misaligned superpage, non-canonical address); U-bit checks both ways, SUM
 * and MXR; A and D set by hardware; sfence.vma after a PTE change (also
 * one naming an address of a superpage); MPRV
 * for M-mode loads; page faults delegated to S (scause/stval).
 *
 * Address space (satp mode 8, ASID 0):
 *   0x0000_0000 1G  -> 0x0000_0000  RW   (devices: UART, finisher)
 *   0x4000_0000 1G  -> 0x8000_0000  RWXU (alias of RAM for U-mode code)
 *   0x8000_0000 1G  -> 0x8000_0000  RWX  (identity: code, data, tables)
 *   0x1_0000_0000   4K pages, see map_4k() below
 *   0x1_4000_0000   2M pages: one to 0x8040_0000, one misaligned
 *   0x1_8000_0000 1G  -> 0x8000_0000  R    (read-only view of RAM) */
#include "runtime.h"

#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80
#define AD (PTE_A | PTE_D)

#define U_ALIAS 0x40000000ul /* U code runs at PA - U_ALIAS */
#define VA_4K 0x100000000ul
#define VA_2M 0x140000000ul
#define VA_1G 0x180000000ul
#define PA_2M 0x80400000ul

static u64 root[512] __attribute__((aligned(4096)));
static u64 l1_4k[512] __attribute__((aligned(4096)));
static u64 l0_4k[512] __attribute__((aligned(4096)));
static u64 l1_2m[512] __attribute__((aligned(4096)));
static u64 l0_nonleaf[512] __attribute__((aligned(4096)));
static u64 root_b[512] __attribute__((aligned(4096)));
static u64 l1_4k_b[512] __attribute__((aligned(4096)));
static u64 l0_4k_b[512] __attribute__((aligned(4096)));
static volatile u64 page[8][512] __attribute__((aligned(4096)));

static u64 pte(u64 pa, u64 flags) { return ((pa >> 12) << 10) | flags; }

/* 4K pages under VA_4K + n * 4096. */
enum {
  P_RW = 0,       /* page[0], RW */
  P_RO = 1,       /* page[1], R */
  P_XO = 2,       /* page[2], X only: code */
  P_INVALID = 3,  /* V = 0 */
  P_ALIAS = 4,    /* page[0] again, RW */
  P_WONLY = 5,    /* page[0], W without R: reserved */
  P_USER = 6,     /* page[3], RWU */
  P_AD = 7,       /* page[4], RW with A = D = 0 */
  P_REMAP = 8,    /* page[0], later page[1] */
  P_NONLEAF = 9,  /* a pointer at level 0 */
  P_UXO = 10,     /* page[2], X U: code for U */
  P_CODE1 = 11,   /* page[6], X: code running into P_CODE2 */
  P_CODE2 = 12,   /* page[7], X; the next page is unmapped (13) */
  P_PBMT = 14,    /* page[0], RW with PBMT = 1 (Svpbmt is not implemented) */
  P_NAPOT = 15,   /* page[0], RW with N = 1 (Svnapot is not implemented) */
  P_RSVD = 16,    /* page[0], RW with reserved bit 54 set */
  P_CODE_RW = 17, /* page[2] (the X-only code page), RW: a data alias */
  P_SWITCH = 18,  /* X: page[6] under root, page[7] under root_b */
};

static void build_tables(void) {
  root[0] = pte(0, PTE_V | PTE_R | PTE_W | AD);
  root[1] = pte(0x80000000ul, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | AD);
  root[2] = pte(0x80000000ul, PTE_V | PTE_R | PTE_W | PTE_X | AD);
  root[4] = pte((u64)l1_4k, PTE_V);
  root[5] = pte((u64)l1_2m, PTE_V);
  root[6] = pte(0x80000000ul, PTE_V | PTE_R | AD);
  l1_4k[0] = pte((u64)l0_4k, PTE_V);
  l0_4k[P_RW] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD);
  l0_4k[P_RO] = pte((u64)page[1], PTE_V | PTE_R | AD);
  l0_4k[P_XO] = pte((u64)page[2], PTE_V | PTE_X | AD);
  l0_4k[P_INVALID] = pte((u64)page[0], PTE_R | PTE_W | AD);
  l0_4k[P_ALIAS] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD);
  l0_4k[P_WONLY] = pte((u64)page[0], PTE_V | PTE_W | AD);
  l0_4k[P_USER] = pte((u64)page[3], PTE_V | PTE_R | PTE_W | PTE_U | AD);
  l0_4k[P_AD] = pte((u64)page[4], PTE_V | PTE_R | PTE_W);
  l0_4k[P_REMAP] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD);
  l0_4k[P_NONLEAF] = pte((u64)l0_nonleaf, PTE_V);
  l0_4k[P_UXO] = pte((u64)page[2], PTE_V | PTE_X | PTE_U | AD);
  l0_4k[P_CODE1] = pte((u64)page[6], PTE_V | PTE_X | AD);
  l0_4k[P_CODE2] = pte((u64)page[7], PTE_V | PTE_X | AD);
  l0_4k[P_PBMT] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD) | (1ul << 61);
  l0_4k[P_NAPOT] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD) | (1ul << 63);
  l0_4k[P_RSVD] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD) | (1ul << 54);
  l0_4k[P_CODE_RW] = pte((u64)page[2], PTE_V | PTE_R | PTE_W | AD);
  l0_4k[P_SWITCH] = pte((u64)page[6], PTE_V | PTE_X | AD);
  /* A second address space: the same except for P_SWITCH. */
  for (int i = 0; i < 512; i++) {
    root_b[i] = root[i];
    l1_4k_b[i] = l1_4k[i];
    l0_4k_b[i] = l0_4k[i];
  }
  root_b[4] = pte((u64)l1_4k_b, PTE_V);
  l1_4k_b[0] = pte((u64)l0_4k_b, PTE_V);
  l0_4k_b[P_SWITCH] = pte((u64)page[7], PTE_V | PTE_X | AD);
  l1_2m[0] = pte(PA_2M, PTE_V | PTE_R | PTE_W | AD);
  l1_2m[1] = pte(PA_2M + 0x1000, PTE_V | PTE_R | PTE_W | AD); /* misaligned superpage */
}

/* sv_access(op) in the current mode on g_va (and g_val): 0 load, 1 store,
 * 2 call, 3 sfence.vma then load, 4 sfence.vma g_va then load, 5 amoadd.d,
 * 6 lr.d, 7 lr.d then sc.d of g_val. A faulting
 * load leaves a0 = -1. Written without compressed instructions so that the
 * runtime can step over a faulting one at an address it cannot read. */
volatile u64 g_va, g_val;
extern char sv_access[];
asm(".text\n .globl sv_access\n sv_access:\n"
    " .option push\n .option norvc\n"
    " la t0, g_va\n ld t1, 0(t0)\n la t0, g_val\n ld t2, 0(t0)\n"
    " li t3, 1\n beq a0, t3, 1f\n"
    " li t3, 2\n beq a0, t3, 2f\n"
    " li t3, 3\n beq a0, t3, 3f\n"
    " li t3, 4\n beq a0, t3, 4f\n"
    " li t3, 5\n beq a0, t3, 5f\n"
    " li t3, 6\n beq a0, t3, 6f\n"
    " li t3, 7\n beq a0, t3, 7f\n"
    " li a0, -1\n ld a0, 0(t1)\n ret\n"
    "1: sd t2, 0(t1)\n li a0, 0\n ret\n"
    "2: addi sp, sp, -16\n sd ra, 0(sp)\n li a0, -1\n jalr ra, 0(t1)\n ld ra, 0(sp)\n"
    "   addi sp, sp, 16\n ret\n"
    "3: sfence.vma\n li a0, -1\n ld a0, 0(t1)\n ret\n"
    "4: sfence.vma t1, zero\n li a0, -1\n ld a0, 0(t1)\n ret\n"
    "5: li a0, -1\n amoadd.d a0, t2, (t1)\n ret\n"
    "6: li a0, -1\n lr.d a0, (t1)\n ret\n"
    "7: lr.d a0, (t1)\n li a0, -1\n sc.d a0, t2, (t1)\n ret\n"
    " .option pop\n");

static u64 access(int mode, int op, u64 va, u64 val) {
  g_va = va;
  g_val = val;
  return isa_call_in_mode(mode, (u64(*)(u64))sv_access, op, mode == PRV_U ? U_ALIAS : 0);
}

/* A failed fetch resumes at the return address of the jalr. */
static int exc_hook(u64 mode, u64 cause, struct isa_frame *f) {
  if (cause != CAUSE_FETCH_PAGE_FAULT && cause != CAUSE_FETCH_ACCESS) return 0;
  if (mode == PRV_M)
    CSR_WRITE(mepc, f->x[1]);
  else
    CSR_WRITE(sepc, f->x[1]);
  return 1;
}

static u64 traps_before;
#define EXPECT_OK() CHECK(isa_trap.count, traps_before)
#define EXPECT_FAULT(cause_, va_)                 \
  do {                                            \
    CHECK(isa_trap.count, ++traps_before);        \
    CHECK(isa_trap.cause, cause_);                \
    CHECK(isa_trap.tval, va_);                    \
  } while (0)
#define VA(n) (VA_4K + (n) * 4096ul)

static void basic_4k(void) {
  page[0][0] = 0x1111;
  page[0][511] = 0x2222;
  page[1][1] = 0x3333;
  CHECK(access(PRV_S, 0, VA(P_RW), 0), 0x1111);
  CHECK(access(PRV_S, 0, VA(P_RW) + 511 * 8, 0), 0x2222);
  access(PRV_S, 1, VA(P_RW) + 8, 0xabcd);
  CHECK(page[0][1], 0xabcd);
  CHECK(access(PRV_S, 0, VA(P_ALIAS) + 8, 0), 0xabcd);
  CHECK(access(PRV_S, 0, VA(P_RO) + 8, 0), 0x3333);
  /* A misaligned load crossing from one mapped page to the next. */
  page[1][0] = 0x8877665544332211;
  CHECK(access(PRV_S, 0, VA(P_RO) - 4, 0), 0x4433221100000000ul);
  EXPECT_OK();
  /* Code in an execute-only page. */
  ((volatile u32 *)page[2])[0] = 0x4d200513; /* addi a0, x0, 1234 */
  ((volatile u32 *)page[2])[1] = 0x00008067; /* ret */
  asm volatile("fence.i");
  CHECK(access(PRV_S, 2, VA(P_XO), 0), 1234);
  EXPECT_OK();
}

static void faults_4k(void) {
  /* Store to read-only, load from execute-only (MXR off). */
  access(PRV_S, 1, VA(P_RO) + 16, 1);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RO) + 16);
  CHECK(page[1][2], 0);
  CHECK(access(PRV_S, 0, VA(P_XO) + 4, 0), (u64)-1);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_XO) + 4);
  /* Fetch from a page without X. */
  access(PRV_S, 2, VA(P_RW), 0);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_RW));
  CHECK(isa_trap.epc, VA(P_RW));
  /* Invalid PTE: all three kinds of access. */
  access(PRV_S, 0, VA(P_INVALID) + 0x123, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_INVALID) + 0x123);
  access(PRV_S, 1, VA(P_INVALID) + 0x8, 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_INVALID) + 0x8);
  access(PRV_S, 2, VA(P_INVALID), 0);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_INVALID));
  /* W without R is reserved: every access faults. */
  access(PRV_S, 0, VA(P_WONLY), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_WONLY));
  access(PRV_S, 1, VA(P_WONLY), 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_WONLY));
  /* A pointer PTE at level 0. */
  access(PRV_S, 0, VA(P_NONLEAF), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_NONLEAF));
  /* PTE bits of extensions this hart lacks, and reserved bits. */
  access(PRV_S, 0, VA(P_PBMT), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_PBMT));
  access(PRV_S, 0, VA(P_NAPOT), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_NAPOT));
  access(PRV_S, 1, VA(P_RSVD), 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RSVD));
  /* Atomics: an AMO or sc needs W, lr needs R. */
  access(PRV_S, 5, VA(P_RO) + 24, 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RO) + 24);
  access(PRV_S, 6, VA(P_XO) + 8, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_XO) + 8);
  access(PRV_S, 7, VA(P_RO) + 32, 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RO) + 32);
  CHECK(page[1][3] | page[1][4], 0);
  /* Unmapped: nothing at this level-1 slot. */
  access(PRV_S, 0, VA_4K + 0x200000, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA_4K + 0x200000);
  /* Non-canonical: bits 63..39 must equal bit 38. */
  access(PRV_S, 0, 0x8000000000ul, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, 0x8000000000ul);
  access(PRV_S, 1, 0xffffff0000000000ul, 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, 0xffffff0000000000ul);
  /* A misaligned load whose second half is on an invalid page: tval is
   * in the access (the first byte on QEMU, the faulting page on others). */
  access(PRV_S, 0, VA(P_INVALID) - 4, 0);
  CHECK(isa_trap.count, ++traps_before);
  CHECK(isa_trap.cause, CAUSE_LOAD_PAGE_FAULT);
  CHECK_TRUE(isa_trap.tval >= VA(P_INVALID) - 4 && isa_trap.tval <= VA(P_INVALID));
}

/* Instructions at the end of a page: one 32-bit instruction split across two
 * virtual pages that are not physically adjacent, a compressed instruction
 * ending a page whose successor is unmapped (no fault), and a 32-bit one
 * running into the unmapped page (fetch fault, epc at its start, tval at
 * the page it needed). */
static void page_crossing_fetch(void) {
  volatile u16 *c1 = (volatile u16 *)page[6], *c2 = (volatile u16 *)page[7];
  c1[2046] = 0x0001; /* c.nop */
  c1[2047] = 0x0513; /* addi a0, x0, 777 (0x30900513), low half */
  c2[0] = 0x3090;    /* ... high half, on the next virtual page */
  c2[1] = 0x8067;    /* ret (0x00008067) */
  c2[2] = 0x0000;
  c2[2046] = 0x4515; /* c.li a0, 5 */
  c2[2047] = 0x8082; /* c.jr ra */
  asm volatile("fence.i" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_CODE1) + 4092, 0), 777);
  CHECK(access(PRV_S, 2, VA(P_CODE2) + 4092, 0), 5);
  EXPECT_OK();
  c2[2046] = 0x0001; /* c.nop */
  c2[2047] = 0x0513; /* first half of addi; the second half is unmapped */
  asm volatile("fence.i" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_CODE2) + 4092, 0), (u64)-1);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_CODE2 + 1));
  CHECK(isa_trap.epc, VA(P_CODE2) + 4094);
}

/* Code changes the fetch path must notice: code rewritten through a data
 * alias in S-mode (then fence.i), a leaf PTE of a code page pointed
 * elsewhere (then sfence.vma), and a switch of satp to another root. */
static void code_mapping_changes(void) {
  volatile u32 *code = (volatile u32 *)page[2];
  code[0] = 0x4d200513; /* addi a0, x0, 1234 */
  code[1] = 0x00008067;
  asm volatile("fence.i" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_XO), 0), 1234);
  access(PRV_S, 1, VA(P_CODE_RW), 0x000080670c800513ul); /* addi a0, x0, 200; ret */
  asm volatile("fence.i" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_XO), 0), 200);
  EXPECT_OK();
  /* P_SWITCH: page[6] starts with addi a0, x0, 61; page[7] with 62. */
  volatile u32 *c6 = (volatile u32 *)page[6], *c7 = (volatile u32 *)page[7];
  c6[0] = 0x03d00513;
  c6[1] = 0x00008067;
  c7[0] = 0x03e00513;
  c7[1] = 0x00008067;
  asm volatile("fence.i" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_SWITCH), 0), 61);
  l0_4k[P_SWITCH] = pte((u64)page[7], PTE_V | PTE_X | AD);
  asm volatile("sfence.vma" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_SWITCH), 0), 62);
  l0_4k[P_SWITCH] = pte((u64)page[6], PTE_V | PTE_X | AD);
  asm volatile("sfence.vma" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_SWITCH), 0), 61);
  CSR_WRITE(satp, (8ul << 60) | ((u64)root_b >> 12));
  asm volatile("sfence.vma" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_SWITCH), 0), 62);
  CSR_WRITE(satp, (8ul << 60) | ((u64)root >> 12));
  asm volatile("sfence.vma" ::: "memory");
  CHECK(access(PRV_S, 2, VA(P_SWITCH), 0), 61);
  EXPECT_OK();
  /* Restore the X-only page for the tests that follow. */
  code[0] = 0x4d200513;
  code[1] = 0x00008067;
  asm volatile("fence.i" ::: "memory");
}

static void user_and_sum_mxr(void) {
  page[3][0] = 0x5555;
  /* U-mode: its own page works, supervisor pages fault. */
  CHECK(access(PRV_U, 0, VA(P_USER), 0), 0x5555);
  access(PRV_U, 1, VA(P_USER) + 8, 0x77);
  CHECK(page[3][1], 0x77);
  EXPECT_OK();
  access(PRV_U, 0, VA(P_RW), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_RW));
  access(PRV_U, 1, VA(P_RW), 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RW));
  access(PRV_U, 2, VA(P_XO), 0);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_XO));
  CHECK(access(PRV_U, 2, VA(P_UXO), 0), 1234);
  EXPECT_OK();
  /* S-mode and U pages: loads and stores need SUM, fetches never work. */
  CSR_CLEAR(mstatus, MSTATUS_SUM);
  access(PRV_S, 0, VA(P_USER), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_USER));
  access(PRV_S, 1, VA(P_USER), 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_USER));
  CSR_SET(mstatus, MSTATUS_SUM);
  CHECK(access(PRV_S, 0, VA(P_USER), 0), 0x5555);
  access(PRV_S, 1, VA(P_USER) + 16, 0x99);
  CHECK(page[3][2], 0x99);
  EXPECT_OK();
  access(PRV_S, 2, VA(P_UXO), 0);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_UXO));
  CSR_CLEAR(mstatus, MSTATUS_SUM);
  /* MXR: loads from execute-only pages. */
  CSR_SET(mstatus, MSTATUS_MXR);
  CHECK(access(PRV_S, 0, VA(P_XO), 0), 0x000080674d200513);
  EXPECT_OK();
  CHECK(access(PRV_U, 0, VA(P_UXO), 0), 0x000080674d200513);
  EXPECT_OK();
  CSR_CLEAR(mstatus, MSTATUS_MXR);
  access(PRV_U, 0, VA(P_UXO), 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_UXO));
}

static void accessed_dirty(void) {
  CHECK(l0_4k[P_AD] & AD, 0);
  page[4][0] = 42;
  CHECK(access(PRV_S, 0, VA(P_AD), 0), 42);
  CHECK(l0_4k[P_AD] & AD, PTE_A);
  access(PRV_S, 1, VA(P_AD), 43);
  CHECK(l0_4k[P_AD] & AD, AD);
  CHECK(page[4][0], 43);
  /* A store to a clean page that was only read before. */
  l0_4k[P_AD] &= ~(u64)AD;
  access(PRV_S, 4, VA(P_AD), 0); /* sfence.vma va, then load */
  CHECK(l0_4k[P_AD] & AD, PTE_A);
  access(PRV_S, 1, VA(P_AD) + 8, 44);
  CHECK(l0_4k[P_AD] & AD, AD);
  EXPECT_OK();
}

static void remap_with_sfence(void) {
  page[0][5] = 0xaaaa;
  page[1][5] = 0xbbbb;
  CHECK(access(PRV_S, 0, VA(P_REMAP) + 40, 0), 0xaaaa);
  l0_4k[P_REMAP] = pte((u64)page[1], PTE_V | PTE_R | AD);
  CHECK(access(PRV_S, 3, VA(P_REMAP) + 40, 0), 0xbbbb);
  l0_4k[P_REMAP] = pte((u64)page[0], PTE_R | AD); /* invalid */
  access(PRV_S, 4, VA(P_REMAP) + 40, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_REMAP) + 40);
  l0_4k[P_REMAP] = pte((u64)page[0], PTE_V | PTE_R | PTE_W | AD);
  CHECK(access(PRV_S, 4, VA(P_REMAP) + 40, 0), 0xaaaa);
  EXPECT_OK();
}

static volatile u64 marker = 0x600dcafe;

static void superpages(void) {
  volatile u64 *big = (volatile u64 *)PA_2M;
  big[0] = 0x2020;
  big[(0x200000 - 8) / 8] = 0x2121;
  CHECK(access(PRV_S, 0, VA_2M, 0), 0x2020);
  CHECK(access(PRV_S, 0, VA_2M + 0x200000 - 8, 0), 0x2121);
  access(PRV_S, 1, VA_2M + 0x123450, 0x2222);
  CHECK(big[0x123450 / 8], 0x2222);
  EXPECT_OK();
  /* A 2M leaf whose PPN is not 2M-aligned. */
  access(PRV_S, 0, VA_2M + 0x200000, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA_2M + 0x200000);
  /* 1G: a read-only view of RAM. */
  u64 va = VA_1G + ((u64)&marker - 0x80000000ul);
  CHECK(access(PRV_S, 0, va, 0), 0x600dcafe);
  access(PRV_S, 1, va, 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, va);
  CHECK(marker, 0x600dcafe);
}

/* sfence.vma naming one address of a 2M superpage: every translation made
 * from that leaf goes, also those of the superpage's other 4K pages (a
 * machine that caches translations per 4K page has to find them all). */
#define PA_2M_B 0x80600000ul
static void superpage_sfence_one_address(void) {
  volatile u64 *a = (volatile u64 *)PA_2M, *b = (volatile u64 *)PA_2M_B;
  a[0x3000 / 8] = 0xa3;
  b[0x3000 / 8] = 0xb3;
  a[0x5000 / 8] = 0xa5;
  b[0x5000 / 8] = 0xb5;
  /* Cached: a load from one 4K page, a store and a load on another. */
  CHECK(access(PRV_S, 0, VA_2M + 0x3000, 0), 0xa3);
  access(PRV_S, 1, VA_2M + 0x5008, 0x1a5);
  CHECK(a[0x5008 / 8], 0x1a5);
  CHECK(access(PRV_S, 2, VA(P_XO), 0), 1234);
  /* The leaf now points at PA_2M_B; the fence names page 0 of the superpage. */
  l1_2m[0] = pte(PA_2M_B, PTE_V | PTE_R | PTE_W | AD);
  CHECK(access(PRV_S, 4, VA_2M, 0), b[0]);
  CHECK(access(PRV_S, 0, VA_2M + 0x3000, 0), 0xb3);
  access(PRV_S, 1, VA_2M + 0x5008, 0x1b5);
  CHECK(b[0x5008 / 8], 0x1b5);
  CHECK(a[0x5008 / 8], 0x1a5);
  CHECK(access(PRV_S, 0, VA_2M + 0x5000, 0), 0xb5);
  /* A fence naming another address keeps nothing stale either way, and
   * code on a page it does not name still runs. */
  l1_2m[0] = pte(PA_2M, PTE_V | PTE_R | PTE_W | AD);
  CHECK(access(PRV_S, 4, VA_2M + 0x1ff000, 0), a[0x1ff000 / 8]);
  CHECK(access(PRV_S, 0, VA_2M + 0x3000, 0), 0xa3);
  CHECK(access(PRV_S, 2, VA(P_XO), 0), 1234);
  EXPECT_OK();
}

/* MPRV: M-mode loads and stores use MPP's privilege and translation. */
static u64 mprv_load(u64 va, u64 mpp) {
  u64 r = (u64)-1;
  CSR_CLEAR(mstatus, MSTATUS_MPP);
  CSR_SET(mstatus, mpp << 11);
  asm volatile(
      ".option push\n .option norvc\n"
      "csrs mstatus, %2\n ld %0, 0(%1)\n csrc mstatus, %2\n"
      ".option pop"
      : "+&r"(r)
      : "r"(va), "r"((u64)MSTATUS_MPRV)
      : "memory");
  return r;
}

static void mprv(void) {
  page[0][0] = 0x1111;
  page[3][0] = 0x5555;
  CHECK(mprv_load(VA(P_RW), PRV_S), 0x1111);
  CHECK(mprv_load(VA(P_USER), PRV_U), 0x5555);
  EXPECT_OK();
  mprv_load(VA(P_RW), PRV_U);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_RW));
  CHECK(mprv_load(VA(P_INVALID), PRV_S), (u64)-1);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_INVALID));
  /* MPP = M: no translation. */
  CHECK(mprv_load((u64)&marker, PRV_M), 0x600dcafe);
  EXPECT_OK();
}

static void delegated_faults(void) {
  CSR_WRITE(medeleg, (1u << CAUSE_LOAD_PAGE_FAULT) | (1u << CAUSE_STORE_PAGE_FAULT) |
                         (1u << CAUSE_FETCH_PAGE_FAULT));
  access(PRV_U, 0, VA(P_RW) + 24, 0);
  EXPECT_FAULT(CAUSE_LOAD_PAGE_FAULT, VA(P_RW) + 24);
  CHECK(isa_trap.handler, PRV_S);
  CHECK(isa_trap.from, PRV_U);
  access(PRV_S, 1, VA(P_RO), 0);
  EXPECT_FAULT(CAUSE_STORE_PAGE_FAULT, VA(P_RO));
  CHECK(isa_trap.handler, PRV_S);
  CHECK(isa_trap.from, PRV_S);
  access(PRV_S, 2, VA(P_INVALID), 0);
  EXPECT_FAULT(CAUSE_FETCH_PAGE_FAULT, VA(P_INVALID));
  CHECK(isa_trap.handler, PRV_S);
  CSR_WRITE(medeleg, 0);
}

int main(void) {
  build_tables();
  u64 satp = (8ul << 60) | ((u64)root >> 12);
  CSR_WRITE(satp, satp);
  asm volatile("sfence.vma" ::: "memory");
  CHECK(CSR_READ(satp), satp);
  /* A write with a reserved MODE has no effect at all. */
  CSR_WRITE(satp, (3ul << 60) | 0x1234);
  CHECK(CSR_READ(satp), satp);
  isa_exc_hook = exc_hook;
  isa_expect_traps();
  traps_before = 0;
  basic_4k();
  faults_4k();
  page_crossing_fetch();
  code_mapping_changes();
  user_and_sum_mxr();
  accessed_dirty();
  remap_with_sfence();
  superpages();
  superpage_sfence_one_address();
  mprv();
  delegated_faults();
  isa_unexpect_traps();
  CSR_WRITE(satp, 0);
  asm volatile("sfence.vma" ::: "memory");
  return 0;
}
