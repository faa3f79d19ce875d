/* The bare-metal runtime shared by every ISA test and differential program.
 *
 * A test is a freestanding C file whose main() runs in M-mode with the FPU on
 * (mstatus.FS = Initial), mtvec/stvec pointing at the runtime's trap entries
 * and PMP open to S and U. main returns 0 when every check passed; a failed
 * CHECK prints what failed and ends the run at once.
 *
 * Exit status: 0 on pass; on failure the number of the failing check (checks
 * are numbered 1, 2, ... in the order they run), capped at 250. 251..255 are
 * the runtime's own: 253 = a trap nobody expected, 254 = a hook asked to fail.
 * The printed line names the check, its source line, and got/expected.
 *
 * Traps: every trap is recorded in isa_trap (cause, epc, tval, the handler's
 * mode and the interrupted mode). An exception is fatal unless the test armed
 * isa_trap.expect; an armed exception resumes at isa_trap.resume if that is
 * set (and clears it), else after the trapping instruction (its length is read
 * from memory when epc is a RAM address, assumed 4 otherwise). Interrupts go
 * to isa_irq_hook, which must quiet the source; without a hook they are fatal.
 */
#ifndef ISA_RUNTIME_H
#define ISA_RUNTIME_H

#define MSTATUS_SIE 0x2
#define MSTATUS_MIE 0x8
#define MSTATUS_SPIE 0x20
#define MSTATUS_MPIE 0x80
#define MSTATUS_SPP 0x100
#define MSTATUS_MPP 0x1800
#define MSTATUS_FS 0x6000
#define MSTATUS_FS_INITIAL 0x2000
#define MSTATUS_MPRV 0x20000
#define MSTATUS_SUM 0x40000
#define MSTATUS_MXR 0x80000

#define FRAME_SIZE (32 * 8)
#define ISA_ECALL_RETURN 0x5245544e /* a7 of the ecall that ends isa_call_in_mode */

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_USER_ECALL 8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT 13
#define CAUSE_STORE_PAGE_FAULT 15
#define CAUSE_INTERRUPT (1ull << 63)

#define IRQ_S_SOFT 1
#define IRQ_M_SOFT 3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT 9
#define IRQ_M_EXT 11

#define UART_BASE 0x10000000ul
#define FINISHER_BASE 0x100000ul
#define CLINT_BASE 0x2000000ul
#define CLINT_MSIP (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME (CLINT_BASE + 0xbff8)
#define PLIC_BASE 0xc000000ul
#define UART_IRQ 10

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

#ifndef __ASSEMBLER__

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed char i8;
typedef short i16;
typedef int i32;
typedef long i64;
typedef unsigned long size_t;

#define CSR_READ(csr)                                   \
  ({                                                    \
    u64 v_;                                             \
    asm volatile("csrr %0, " #csr : "=r"(v_)::"memory"); \
    v_;                                                 \
  })
#define CSR_WRITE(csr, v) asm volatile("csrw " #csr ", %0" ::"r"((u64)(v)) : "memory")
#define CSR_SET(csr, v) asm volatile("csrs " #csr ", %0" ::"r"((u64)(v)) : "memory")
#define CSR_CLEAR(csr, v) asm volatile("csrc " #csr ", %0" ::"r"((u64)(v)) : "memory")

#define MMIO32(addr) (*(volatile u32 *)(addr))
#define MMIO64(addr) (*(volatile u64 *)(addr))
#define MMIO8(addr) (*(volatile u8 *)(addr))

/* The registers of the interrupted code; x[0] is unused. The handler may
 * change them and they are restored on return. */
struct isa_frame {
  u64 x[32];
};

struct isa_trap_state {
  volatile u64 count;   /* traps taken (exceptions and interrupts) */
  volatile u64 cause;   /* last xcause */
  volatile u64 epc;     /* last xepc */
  volatile u64 tval;    /* last xtval */
  volatile u64 handler; /* PRV_M or PRV_S: who took the last trap */
  volatile u64 from;    /* privilege the last trap came from (xPP) */
  volatile u64 status;  /* xstatus as seen on entry */
  volatile u64 expect;  /* nonzero: exceptions are expected and resumed */
  volatile u64 resume;  /* nonzero: resume the next expected exception here */
};
extern struct isa_trap_state isa_trap;

/* Called for every interrupt with the handler's mode (PRV_M or PRV_S). */
extern void (*volatile isa_irq_hook)(u64 mode, u64 cause, struct isa_frame *f);
/* Called first for every exception; returns nonzero if it dealt with it
 * (including setting xepc). */
extern int (*volatile isa_exc_hook)(u64 mode, u64 cause, struct isa_frame *f);

void isa_putc(char c);
void isa_puts(const char *s);
/* printf subset: %s %c %d %u %x %p with optional l, zero-pad and width. */
void isa_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void isa_exit(int code);
__attribute__((noreturn)) void isa_finish(int main_result);

void isa_check(int line, const char *what, u64 got, u64 expected);
void isa_check_true(int line, const char *what, int ok);
extern u64 isa_checks;

/* Arms the trap recorder: clears the count and expects exceptions. */
static inline void isa_expect_traps(void) {
  isa_trap.count = 0;
  isa_trap.cause = ~0ull;
  isa_trap.epc = 0;
  isa_trap.tval = 0;
  isa_trap.resume = 0;
  isa_trap.expect = 1;
}
static inline void isa_unexpect_traps(void) { isa_trap.expect = 0; }

/* Runs fn(arg) in privilege `mode` (PRV_U, PRV_S or PRV_M) and returns its
 * result in M-mode, with mstatus.MIE as it was. pc, sp and fn are lowered by
 * va_offset for code reached through an alias mapping. mstatus.MPIE becomes
 * MIE in the lower mode. Needs ecall from `mode` not delegated (or, from U,
 * delegated to S with ecall from S not delegated). */
u64 isa_call_in_mode(int mode, u64 (*fn)(u64), u64 arg, u64 va_offset);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);

#define CHECK(got, exp) isa_check(__LINE__, #got, (u64)(got), (u64)(exp))
#define CHECK_TRUE(cond) isa_check_true(__LINE__, #cond, !!(cond))

/* Checks the cause, epc and tval recorded for the last trap and the count. */
#define CHECK_TRAP(n, cause_, epc_, tval_) \
  do {                                     \
    CHECK(isa_trap.count, n);              \
    CHECK(isa_trap.cause, cause_);         \
    CHECK(isa_trap.epc, epc_);             \
    CHECK(isa_trap.tval, tval_);           \
  } while (0)

/* Sequential PRNG (splitmix64) for the differential programs. */
static inline u64 isa_rand(u64 *state) {
  u64 z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

#endif /* __ASSEMBLER__ */
#endif /* ISA_RUNTIME_H */
