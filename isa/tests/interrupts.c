/* Interrupts: the M-mode timer (CLINT mtimecmp, mie.MTIE), the software
 * interrupt (CLINT msip), the supervisor timer (mip.STIP set by M-mode,
 * delegated to S), external interrupts from the UART's THR-empty condition
 * (IER = 0x02) through the PLIC, claimed and completed in both the M and the
 * S context, the priority order of simultaneous M interrupts, and WFI
 * waking on a pending interrupt with and without MIE. Timing never reaches
 * the output: waits are bounded loops and only the outcome is checked. */
#include "runtime.h"

#define PLIC_PRIORITY(src) (PLIC_BASE + 4 * (src))
#define PLIC_PENDING (PLIC_BASE + 0x1000)
#define PLIC_ENABLE(ctx) (PLIC_BASE + 0x2000 + 0x80 * (ctx))
#define PLIC_THRESHOLD(ctx) (PLIC_BASE + 0x200000 + 0x1000 * (ctx))
#define PLIC_CLAIM(ctx) (PLIC_BASE + 0x200004 + 0x1000 * (ctx))
#define UART_IER (UART_BASE + 1)
#define ECALL_CLEAR_STIP 0x53544950

static volatile u64 log[16];
static volatile u64 nlog;
static volatile u64 claimed[4];
static volatile u64 nclaimed;
static volatile u64 timer_rearm; /* timer interrupts to re-arm 100 ticks later */

static void irq_hook(u64 mode, u64 cause, struct isa_frame *f) {
  (void)f;
  if (nlog < 16) log[nlog] = (mode << 60) | (cause & 0xff);
  nlog++;
  switch (cause & 0xff) {
    case IRQ_M_TIMER:
      if (timer_rearm) {
        timer_rearm--;
        MMIO64(CLINT_MTIMECMP) = MMIO64(CLINT_MTIME) + 100;
      } else {
        MMIO64(CLINT_MTIMECMP) = ~0ul;
      }
      break;
    case IRQ_M_SOFT: MMIO32(CLINT_MSIP) = 0; break;
    case IRQ_S_TIMER: {
      /* S cannot clear STIP: ask M. */
      register u64 a7 asm("a7") = ECALL_CLEAR_STIP;
      asm volatile("ecall" ::"r"(a7) : "memory");
      break;
    }
    case IRQ_M_EXT:
    case IRQ_S_EXT: {
      u64 ctx = (cause & 0xff) == IRQ_M_EXT ? 0 : 1;
      u32 src = MMIO32(PLIC_CLAIM(ctx));
      if (nclaimed < 4) claimed[nclaimed] = (ctx << 32) | src;
      nclaimed++;
      MMIO8(UART_IER) = 0; /* quiet the source before completing */
      MMIO32(PLIC_CLAIM(ctx)) = src;
      break;
    }
    default: break;
  }
}

static int exc_hook(u64 mode, u64 cause, struct isa_frame *f) {
  if (mode == PRV_M && cause == CAUSE_SUPERVISOR_ECALL && f->x[17] == ECALL_CLEAR_STIP) {
    CSR_CLEAR(mip, 1u << IRQ_S_TIMER);
    CSR_WRITE(mepc, CSR_READ(mepc) + 4);
    return 1;
  }
  return 0;
}

/* Waits until the hook has seen n interrupts, race-free: wfi with MIE off
 * (it still wakes on a pending enabled interrupt), then open MIE briefly.
 * Bounded in count; a lost interrupt hangs and the run times out. */
static int wait_for(u64 n) {
  for (int i = 0; i < 1000 && nlog < n; i++) {
    asm volatile("wfi");
    CSR_SET(mstatus, MSTATUS_MIE);
    asm volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
  }
  return nlog >= n;
}

static void machine_timer(void) {
  /* MTIP, MSIP and MEIP reflect the devices; writes to mip leave them. */
  CSR_SET(mip, (1u << IRQ_M_TIMER) | (1u << IRQ_M_SOFT) | (1u << IRQ_M_EXT));
  CHECK(CSR_READ(mip) & ((1u << IRQ_M_TIMER) | (1u << IRQ_M_SOFT) | (1u << IRQ_M_EXT)), 0);
  nlog = 0;
  CSR_WRITE(mie, 1u << IRQ_M_TIMER);
  /* Pending but MIE off: nothing taken, mip.MTIP visible. */
  MMIO64(CLINT_MTIMECMP) = 0;
  for (int i = 0; i < 1000 && !(CSR_READ(mip) & (1u << IRQ_M_TIMER)); i++) {
  }
  CHECK(CSR_READ(mip) & (1u << IRQ_M_TIMER), 1u << IRQ_M_TIMER);
  CHECK(nlog, 0);
  CHECK(wait_for(1), 1);
  CHECK(nlog, 1);
  CHECK(log[0], ((u64)PRV_M << 60) | IRQ_M_TIMER);
  CHECK(isa_trap.cause, CAUSE_INTERRUPT | IRQ_M_TIMER);
  CHECK(CSR_READ(mip) & (1u << IRQ_M_TIMER), 0);
  /* A deadline in the future fires later. */
  nlog = 0;
  MMIO64(CLINT_MTIMECMP) = MMIO64(CLINT_MTIME) + 200;
  CHECK(wait_for(1), 1);
  CHECK(log[0], ((u64)PRV_M << 60) | IRQ_M_TIMER);
  CSR_WRITE(mie, 0);
}

static u64 spin_fn(u64 n) {
  for (u64 i = 0; i < 100000 && nlog < n; i++) asm volatile("nop");
  return nlog;
}

/* Below M, M-level interrupts are taken whatever mstatus.MIE says. */
static void timer_from_lower_modes(void) {
  CSR_WRITE(mie, 1u << IRQ_M_TIMER);
  CSR_CLEAR(mstatus, MSTATUS_MIE | MSTATUS_MPIE);
  for (int mode = PRV_U; mode <= PRV_S; mode++) {
    nlog = 0;
    MMIO64(CLINT_MTIMECMP) = 0;
    CHECK(isa_call_in_mode(mode, spin_fn, 1, 0), 1);
    CHECK(log[0], ((u64)PRV_M << 60) | IRQ_M_TIMER);
    CHECK(isa_trap.from, (u64)mode);
  }
  CHECK(CSR_READ(mstatus) & MSTATUS_MIE, 0);
  CSR_WRITE(mie, 0);
}

static void machine_software(void) {
  nlog = 0;
  CSR_WRITE(mie, 1u << IRQ_M_SOFT);
  MMIO32(CLINT_MSIP) = 1;
  CHECK(MMIO32(CLINT_MSIP), 1);
  CHECK(CSR_READ(mip) & (1u << IRQ_M_SOFT), 1u << IRQ_M_SOFT);
  CSR_SET(mstatus, MSTATUS_MIE);
  asm volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  CHECK(nlog, 1);
  CHECK(log[0], ((u64)PRV_M << 60) | IRQ_M_SOFT);
  CHECK(CSR_READ(mip) & (1u << IRQ_M_SOFT), 0);
  CSR_WRITE(mie, 0);
}

static void priority(void) {
  /* Software and timer both pending: MSI is taken before MTI. */
  nlog = 0;
  CSR_WRITE(mie, (1u << IRQ_M_SOFT) | (1u << IRQ_M_TIMER));
  MMIO64(CLINT_MTIMECMP) = 0;
  MMIO32(CLINT_MSIP) = 1;
  for (int i = 0; i < 1000 && !(CSR_READ(mip) & (1u << IRQ_M_TIMER)); i++) {
  }
  CSR_SET(mstatus, MSTATUS_MIE);
  asm volatile("nop");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  CHECK(nlog, 2);
  CHECK(log[0] & 0xff, IRQ_M_SOFT);
  CHECK(log[1] & 0xff, IRQ_M_TIMER);
  CSR_WRITE(mie, 0);
}

static u64 s_wait_fn(u64 n) {
  CSR_CLEAR(sstatus, MSTATUS_SIE);
  for (int i = 0; i < 1000 && nlog < n; i++) {
    asm volatile("wfi");
    CSR_SET(sstatus, MSTATUS_SIE);
    asm volatile("nop");
    CSR_CLEAR(sstatus, MSTATUS_SIE);
  }
  return nlog;
}

static void supervisor_timer(void) {
  nlog = 0;
  CSR_WRITE(mideleg, 1u << IRQ_S_TIMER);
  CSR_WRITE(mie, 1u << IRQ_S_TIMER);
  CSR_SET(mip, 1u << IRQ_S_TIMER);
  CHECK(CSR_READ(sip) & (1u << IRQ_S_TIMER), 1u << IRQ_S_TIMER);
  CHECK(isa_call_in_mode(PRV_S, s_wait_fn, 1, 0), 1);
  CHECK(log[0], ((u64)PRV_S << 60) | IRQ_S_TIMER);
  CHECK(CSR_READ(mip) & (1u << IRQ_S_TIMER), 0);
  CSR_WRITE(mie, 0);
  CSR_WRITE(mideleg, 0);
}

static void plic_setup(u64 ctx) {
  MMIO32(PLIC_PRIORITY(UART_IRQ)) = 1;
  MMIO32(PLIC_ENABLE(0)) = 0;
  MMIO32(PLIC_ENABLE(1)) = 0;
  MMIO32(PLIC_ENABLE(ctx)) = 1u << UART_IRQ;
  MMIO32(PLIC_THRESHOLD(ctx)) = 0;
}

static void external(void) {
  /* M context. */
  nlog = 0;
  nclaimed = 0;
  plic_setup(0);
  CHECK(MMIO32(PLIC_PRIORITY(UART_IRQ)), 1);
  CHECK(MMIO32(PLIC_ENABLE(0)), 1u << UART_IRQ);
  CSR_WRITE(mie, 1u << IRQ_M_EXT);
  MMIO8(UART_IER) = 0x02; /* THR empty: raised at once */
  for (int i = 0; i < 1000 && !(CSR_READ(mip) & (1u << IRQ_M_EXT)); i++) {
  }
  CHECK(CSR_READ(mip) & (1u << IRQ_M_EXT), 1u << IRQ_M_EXT);
  CHECK(MMIO32(PLIC_PENDING) & (1u << UART_IRQ), 1u << UART_IRQ);
  CHECK(wait_for(1), 1);
  CHECK(log[0], ((u64)PRV_M << 60) | IRQ_M_EXT);
  CHECK(nclaimed, 1);
  CHECK(claimed[0], UART_IRQ);
  CHECK(CSR_READ(mip) & (1u << IRQ_M_EXT), 0);
  /* Nothing left to claim. */
  CHECK(MMIO32(PLIC_CLAIM(0)), 0);
  /* Threshold at the source's priority masks it. */
  MMIO32(PLIC_THRESHOLD(0)) = 1;
  MMIO8(UART_IER) = 0x02;
  for (int i = 0; i < 1000; i++) asm volatile("nop");
  CHECK(CSR_READ(mip) & (1u << IRQ_M_EXT), 0);
  MMIO8(UART_IER) = 0;
  MMIO32(PLIC_THRESHOLD(0)) = 0;
  CSR_WRITE(mie, 0);
  /* S context, delegated. */
  nlog = 0;
  nclaimed = 0;
  plic_setup(1);
  CSR_WRITE(mideleg, 1u << IRQ_S_EXT);
  CSR_WRITE(mie, 1u << IRQ_S_EXT);
  MMIO8(UART_IER) = 0x02;
  CHECK(isa_call_in_mode(PRV_S, s_wait_fn, 1, 0), 1);
  CHECK(log[0], ((u64)PRV_S << 60) | IRQ_S_EXT);
  CHECK(claimed[0], (1ul << 32) | UART_IRQ);
  CSR_WRITE(mie, 0);
  CSR_WRITE(mideleg, 0);
  MMIO32(PLIC_ENABLE(1)) = 0;
}

static void wfi_wakeup(void) {
  /* MIE off: wfi returns once the timer is pending, no trap. */
  nlog = 0;
  CSR_WRITE(mie, 1u << IRQ_M_TIMER);
  MMIO64(CLINT_MTIMECMP) = MMIO64(CLINT_MTIME) + 100;
  for (int i = 0; i < 100 && !(CSR_READ(mip) & (1u << IRQ_M_TIMER)); i++) asm volatile("wfi");
  CHECK(CSR_READ(mip) & (1u << IRQ_M_TIMER), 1u << IRQ_M_TIMER);
  CHECK(nlog, 0);
  MMIO64(CLINT_MTIMECMP) = ~0ul;
  /* MIE on: the interrupt is taken and execution resumes after wfi. If the
   * first one lands before the wfi, the re-armed second one wakes it. */
  timer_rearm = 1;
  MMIO64(CLINT_MTIMECMP) = MMIO64(CLINT_MTIME) + 100;
  CSR_SET(mstatus, MSTATUS_MIE);
  for (int i = 0; i < 100 && nlog == 0; i++) asm volatile("wfi");
  CSR_CLEAR(mstatus, MSTATUS_MIE);
  CHECK_TRUE(nlog >= 1);
  CHECK(log[0] & 0xff, IRQ_M_TIMER);
  timer_rearm = 0;
  MMIO64(CLINT_MTIMECMP) = ~0ul;
  /* Woken by msip. */
  nlog = 0;
  CSR_WRITE(mie, 1u << IRQ_M_SOFT);
  MMIO32(CLINT_MSIP) = 1;
  asm volatile("wfi");
  CHECK(CSR_READ(mip) & (1u << IRQ_M_SOFT), 1u << IRQ_M_SOFT);
  MMIO32(CLINT_MSIP) = 0;
  CSR_WRITE(mie, 0);
}

int main(void) {
  MMIO64(CLINT_MTIMECMP) = ~0ul;
  isa_irq_hook = irq_hook;
  isa_exc_hook = exc_hook;
  machine_timer();
  timer_from_lower_modes();
  machine_software();
  priority();
  supervisor_timer();
  external();
  wfi_wakeup();
  return 0;
}
