/* Start-up code and trap entry points of the bare-metal ISA test runtime.
 *
 * _start runs in M-mode on hart 0 (other harts park in wfi). It installs the
 * M- and S-mode trap vectors, gives each its own stack through mscratch and
 * sscratch, opens PMP so that S and U can reach all memory, turns the FPU on
 * (mstatus.FS = Initial), clears .bss and calls main(). main's return value is
 * passed to isa_finish(), which reports and ends the run.
 *
 * The trap entries save all 31 registers in a struct isa_frame (runtime.h) on
 * their own stack and call isa_trap_m / isa_trap_s (runtime.c), which may edit
 * the frame and the xEPC/xSTATUS CSRs before the registers are restored.
 */
#include "runtime.h"

  .section .text.init, "ax"
  .globl _start
_start:
  csrr t0, mhartid
  bnez t0, park

  la sp, __stack_top

  /* PMP: one NAPOT entry covering everything, RWX. Skipped on a machine
     without PMP: the trap lands on the next instruction. */
  la t0, 1f
  csrw mtvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  .align 2
1:
  la t0, isa_trap_m_entry
  csrw mtvec, t0
  la t0, isa_trap_s_entry
  csrw stvec, t0
  la t0, __mtrap_stack_top
  csrw mscratch, t0
  la t0, __strap_stack_top
  csrw sscratch, t0

  li t0, MSTATUS_FS_INITIAL
  csrs mstatus, t0
  csrwi fcsr, 0

  la t0, __bss_start
  la t1, __bss_end
2:
  bgeu t0, t1, 3f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 2b
3:
  call main
  tail isa_finish

park:
  wfi
  j park

/* Trap entry shared by M and S. \x is m or s, \ret the return instruction. */
.macro TRAP_ENTRY x, ret
  .align 4
  .globl isa_trap_\x\()_entry
isa_trap_\x\()_entry:
  csrrw sp, \x\()scratch, sp
  addi sp, sp, -FRAME_SIZE
  sd x1, 1*8(sp)
  sd x3, 3*8(sp)
  sd x4, 4*8(sp)
  sd x5, 5*8(sp)
  sd x6, 6*8(sp)
  sd x7, 7*8(sp)
  sd x8, 8*8(sp)
  sd x9, 9*8(sp)
  sd x10, 10*8(sp)
  sd x11, 11*8(sp)
  sd x12, 12*8(sp)
  sd x13, 13*8(sp)
  sd x14, 14*8(sp)
  sd x15, 15*8(sp)
  sd x16, 16*8(sp)
  sd x17, 17*8(sp)
  sd x18, 18*8(sp)
  sd x19, 19*8(sp)
  sd x20, 20*8(sp)
  sd x21, 21*8(sp)
  sd x22, 22*8(sp)
  sd x23, 23*8(sp)
  sd x24, 24*8(sp)
  sd x25, 25*8(sp)
  sd x26, 26*8(sp)
  sd x27, 27*8(sp)
  sd x28, 28*8(sp)
  sd x29, 29*8(sp)
  sd x30, 30*8(sp)
  sd x31, 31*8(sp)
  csrr t0, \x\()scratch
  sd t0, 2*8(sp)
  /* A trap taken inside the handler pushes its frame below this one. */
  csrw \x\()scratch, sp
  mv a0, sp
  call isa_trap_\x
  addi t0, sp, FRAME_SIZE
  csrw \x\()scratch, t0
  ld x1, 1*8(sp)
  ld x3, 3*8(sp)
  ld x4, 4*8(sp)
  ld x5, 5*8(sp)
  ld x6, 6*8(sp)
  ld x7, 7*8(sp)
  ld x8, 8*8(sp)
  ld x9, 9*8(sp)
  ld x10, 10*8(sp)
  ld x11, 11*8(sp)
  ld x12, 12*8(sp)
  ld x13, 13*8(sp)
  ld x14, 14*8(sp)
  ld x15, 15*8(sp)
  ld x16, 16*8(sp)
  ld x17, 17*8(sp)
  ld x18, 18*8(sp)
  ld x19, 19*8(sp)
  ld x20, 20*8(sp)
  ld x21, 21*8(sp)
  ld x22, 22*8(sp)
  ld x23, 23*8(sp)
  ld x24, 24*8(sp)
  ld x25, 25*8(sp)
  ld x26, 26*8(sp)
  ld x27, 27*8(sp)
  ld x28, 28*8(sp)
  ld x29, 29*8(sp)
  ld x30, 30*8(sp)
  ld x31, 31*8(sp)
  ld sp, 2*8(sp)
  \ret
.endm

  .text
  TRAP_ENTRY m, mret
  TRAP_ENTRY s, sret

/* u64 isa_call_in_mode(int mode, u64 (*fn)(u64), u64 arg, u64 va_offset)
 * Runs fn(arg) in privilege `mode` (0 = U, 1 = S, 3 = M) with pc, sp and fn
 * lowered by va_offset (for code that runs through an alias mapping), and
 * returns fn's result in M-mode with mstatus.MIE as it was. mstatus.MPIE is
 * left to the caller (it becomes MIE in the lower mode). fn returns through an ecall with
 * a7 = ISA_ECALL_RETURN, which isa_trap_m turns into a return to
 * isa_call_in_mode_return on the saved M-mode stack. */
  .globl isa_call_in_mode
isa_call_in_mode:
  addi sp, sp, -112
  sd ra, 0(sp)
  sd s0, 8(sp)
  sd s1, 16(sp)
  sd s2, 24(sp)
  sd s3, 32(sp)
  sd s4, 40(sp)
  sd s5, 48(sp)
  sd s6, 56(sp)
  sd s7, 64(sp)
  sd s8, 72(sp)
  sd s9, 80(sp)
  sd s10, 88(sp)
  sd s11, 96(sp)
  la t0, isa_mode_ctx_sp
  sd sp, 0(t0)
  csrr t1, mstatus
  la t0, isa_mode_ctx_mstatus
  sd t1, 0(t0)
  li t0, MSTATUS_MPP
  csrc mstatus, t0
  andi a0, a0, 3
  slli t1, a0, 11
  csrs mstatus, t1
  la t0, isa_mode_trampoline
  sub t0, t0, a3
  csrw mepc, t0
  sub s0, a1, a3
  sub sp, sp, a3
  addi sp, sp, -16
  mv a0, a2
  mret
isa_mode_trampoline:
  jalr s0
  li a7, ISA_ECALL_RETURN
  ecall
1:j 1b
  .globl isa_call_in_mode_return
isa_call_in_mode_return:
  ld ra, 0(sp)
  ld s0, 8(sp)
  ld s1, 16(sp)
  ld s2, 24(sp)
  ld s3, 32(sp)
  ld s4, 40(sp)
  ld s5, 48(sp)
  ld s6, 56(sp)
  ld s7, 64(sp)
  ld s8, 72(sp)
  ld s9, 80(sp)
  ld s10, 88(sp)
  ld s11, 96(sp)
  addi sp, sp, 112
  ret
