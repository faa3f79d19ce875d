/* Never ends by itself: `ftvm run --max-instructions N` must stop it with
 * exit status 124 (ftvm only; QEMU has no instruction limit). */
#include "runtime.h"

int main(void) {
  isa_printf("spin: looping until the instruction limit\n");
  for (;;) asm volatile("nop");
}
