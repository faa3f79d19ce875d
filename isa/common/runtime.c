/* Console, exit, checks and trap handling of the ISA test runtime; see
 * runtime.h for the contract. */
#include "runtime.h"

struct isa_trap_state isa_trap;
void (*volatile isa_irq_hook)(u64 mode, u64 cause, struct isa_frame *f);
int (*volatile isa_exc_hook)(u64 mode, u64 cause, struct isa_frame *f);
u64 isa_checks;
u64 isa_mode_ctx_sp;
u64 isa_mode_ctx_mstatus;

extern char __strap_stack_top[];
extern char isa_call_in_mode_return[];

void *memset(void *d, int c, size_t n) {
  volatile u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}

void *memcpy(void *d, const void *s, size_t n) {
  volatile u8 *p = d;
  const volatile u8 *q = s;
  while (n--) *p++ = *q++;
  return d;
}

void isa_putc(char c) {
  while (!(MMIO8(UART_BASE + 5) & 0x20)) {
  }
  MMIO8(UART_BASE) = (u8)c;
}

void isa_puts(const char *s) {
  while (*s) isa_putc(*s++);
}

static void put_num(u64 v, unsigned base, int width, int zero, int negative) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  if (negative) buf[n++] = '-';
  while (n < width) {
    isa_putc(zero ? '0' : ' ');
    width--;
  }
  while (n) isa_putc(buf[--n]);
}

void isa_printf(const char *fmt, ...) {
  __builtin_va_list ap;
  __builtin_va_start(ap, fmt);
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      isa_putc(*fmt);
      continue;
    }
    fmt++;
    int zero = 0, width = 0, longs = 0;
    if (*fmt == '0') {
      zero = 1;
      fmt++;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l') {
      longs++;
      fmt++;
    }
    switch (*fmt) {
      case 's': isa_puts(__builtin_va_arg(ap, const char *)); break;
      case 'c': isa_putc((char)__builtin_va_arg(ap, int)); break;
      case 'd': {
        i64 v = longs ? __builtin_va_arg(ap, i64) : __builtin_va_arg(ap, int);
        put_num(v < 0 ? -(u64)v : (u64)v, 10, width, zero, v < 0);
        break;
      }
      case 'u': put_num(longs ? __builtin_va_arg(ap, u64) : __builtin_va_arg(ap, u32), 10, width, zero, 0); break;
      case 'x': put_num(longs ? __builtin_va_arg(ap, u64) : __builtin_va_arg(ap, u32), 16, width, zero, 0); break;
      case 'p': put_num((u64)__builtin_va_arg(ap, void *), 16, 16, 1, 0); break;
      case '%': isa_putc('%'); break;
      default: isa_putc('?'); break;
    }
  }
  __builtin_va_end(ap);
}

void isa_exit(int code) {
  /* Drain the UART: the finisher must not overtake the last byte. */
  while (!(MMIO8(UART_BASE + 5) & 0x40)) {
  }
  MMIO32(FINISHER_BASE) = code == 0 ? 0x5555 : ((u32)code << 16) | 0x3333;
  for (;;) asm volatile("wfi");
}

void isa_finish(int main_result) {
  if (main_result != 0) {
    isa_printf("FAIL: main returned %d\n", main_result);
    isa_exit(main_result);
  }
  isa_printf("PASS: %lu checks\n", isa_checks);
  isa_exit(0);
}

static __attribute__((noreturn)) void fail_check(int line, const char *what) {
  int code = isa_checks < 250 ? (int)isa_checks : 250;
  isa_printf("FAIL: check %lu (line %d) %s", isa_checks, line, what);
  (void)code;
  isa_puts("\n");
  isa_exit(code);
}

void isa_check(int line, const char *what, u64 got, u64 expected) {
  isa_checks++;
  if (got == expected) return;
  isa_printf("FAIL: check %lu (line %d) %s: got 0x%lx expected 0x%lx\n", isa_checks, line, what,
             got, expected);
  isa_exit(isa_checks < 250 ? (int)isa_checks : 250);
}

void isa_check_true(int line, const char *what, int ok) {
  isa_checks++;
  if (!ok) fail_check(line, what);
}

/* Length of the instruction at `epc` as seen from the handler's mode. */
static u64 insn_length(u64 mode, u64 epc) {
  if (epc < 0x80000000ul || epc >= 0x90000000ul) return 4;
  u16 half;
  if (mode == PRV_S) {
    u64 saved = CSR_READ(sstatus);
    CSR_SET(sstatus, MSTATUS_SUM | MSTATUS_MXR);
    half = *(volatile u16 *)epc;
    CSR_WRITE(sstatus, saved);
  } else {
    half = *(volatile u16 *)epc;
  }
  return (half & 3) == 3 ? 4 : 2;
}

static __attribute__((noreturn)) void unexpected(u64 mode, u64 cause, u64 epc, u64 tval) {
  isa_printf("FAIL: unexpected trap in %c-mode handler: cause 0x%lx epc 0x%lx tval 0x%lx\n",
             mode == PRV_M ? 'M' : 'S', cause, epc, tval);
  isa_exit(253);
}

static void handle(u64 mode, struct isa_frame *f) {
  u64 cause, epc, tval, status, from;
  if (mode == PRV_M) {
    cause = CSR_READ(mcause);
    epc = CSR_READ(mepc);
    tval = CSR_READ(mtval);
    status = CSR_READ(mstatus);
    from = (status >> 11) & 3;
  } else {
    cause = CSR_READ(scause);
    epc = CSR_READ(sepc);
    tval = CSR_READ(stval);
    status = CSR_READ(sstatus);
    from = (status >> 8) & 1;
  }
  int is_irq = (cause >> 63) != 0;
  if (!is_irq && (cause == CAUSE_USER_ECALL || cause == CAUSE_SUPERVISOR_ECALL ||
                  cause == CAUSE_MACHINE_ECALL) &&
      f->x[17] == ISA_ECALL_RETURN) {
    if (mode == PRV_M) {
      f->x[2] = isa_mode_ctx_sp;
      CSR_WRITE(mepc, (u64)isa_call_in_mode_return);
      CSR_SET(mstatus, MSTATUS_MPP);
      if (isa_mode_ctx_mstatus & MSTATUS_MIE)
        CSR_SET(mstatus, MSTATUS_MPIE);
      else
        CSR_CLEAR(mstatus, MSTATUS_MPIE);
      CSR_WRITE(sscratch, (u64)__strap_stack_top);
      return;
    }
    /* Delegated to S: pass the result on to M. */
    register u64 a0 asm("a0") = f->x[10];
    register u64 a7 asm("a7") = ISA_ECALL_RETURN;
    asm volatile("ecall" ::"r"(a0), "r"(a7));
    for (;;) {
    }
  }
  isa_trap.count++;
  isa_trap.cause = cause;
  isa_trap.epc = epc;
  isa_trap.tval = tval;
  isa_trap.handler = mode;
  isa_trap.from = from;
  isa_trap.status = status;
  if (is_irq) {
    if (!isa_irq_hook) unexpected(mode, cause, epc, tval);
    isa_irq_hook(mode, cause, f);
    return;
  }
  if (isa_exc_hook && isa_exc_hook(mode, cause, f)) return;
  if (!isa_trap.expect) unexpected(mode, cause, epc, tval);
  u64 next;
  if (isa_trap.resume) {
    next = isa_trap.resume;
    isa_trap.resume = 0;
  } else {
    next = epc + insn_length(mode, epc);
  }
  if (mode == PRV_M)
    CSR_WRITE(mepc, next);
  else
    CSR_WRITE(sepc, next);
}

void isa_trap_m(struct isa_frame *f) { handle(PRV_M, f); }
void isa_trap_s(struct isa_frame *f) { handle(PRV_S, f); }

void fp_check(int line, const char *what, u64 got, u64 exp, u64 got_flags, u64 exp_flags) {
  isa_checks++;
  if (got == exp && got_flags == exp_flags) return;
  isa_printf("FAIL: check %lu (line %d) %s: got 0x%lx flags 0x%lx expected 0x%lx flags 0x%lx\n",
             isa_checks, line, what, got, got_flags, exp, exp_flags);
  isa_exit(isa_checks < 250 ? (int)isa_checks : 250);
}
