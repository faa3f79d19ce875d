/* HTIF: a program with a `tohost` symbol ends the run by storing
 * (code << 1) | 1 there, riscv-tests style (ftvm only: QEMU virt has no
 * HTIF). Built twice: HTIF_CODE 0 must exit 0, HTIF_CODE 37 must exit 37.
 * If the store is ignored the program falls through to the finisher with 99. */
#include "runtime.h"

#ifndef HTIF_CODE
#define HTIF_CODE 0
#endif

volatile u64 tohost __attribute__((section(".tohost"), aligned(8)));
volatile u64 fromhost __attribute__((section(".tohost"), aligned(8)));

int main(void) {
  isa_printf("htif: exiting with %d through tohost\n", HTIF_CODE);
  tohost = ((u64)HTIF_CODE << 1) | 1;
  for (volatile int i = 0; i < 1000; i++) {
  }
  isa_printf("FAIL: the tohost store did not end the run\n");
  isa_exit(99);
}
