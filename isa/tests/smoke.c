#include "runtime.h"
int main(void){ CHECK(1+1,2); isa_expect_traps(); asm volatile("ebreak"); CHECK(isa_trap.cause, 3); isa_printf("hello %d %lx %016lx %s\n", -5, 0xabcul, 0x12ul, "x"); return 0;}
