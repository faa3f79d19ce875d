// The RISC-V compressed (C) extension for RV64GC: each 16-bit instruction
// expands to the 32-bit instruction it stands for.
#pragma once

#include <cstdint>

namespace ftvm::vm {

// Returns the 32-bit equivalent of the compressed instruction `insn`, or 0
// when `insn` is illegal or reserved in RV64GC: the all-zero instruction;
// c.addi4spn, c.addi16sp and c.lui with a zero immediate; c.addiw, c.lwsp and
// c.ldsp with rd=x0; c.jr with rs1=x0; quadrant 0 with funct3=100; the two
// reserved encodings beside c.subw/c.addw. A value whose two low bits are
// 0b11 is not a compressed instruction and also gives 0. HINT encodings
// expand to the instruction they are written as, which has no architectural
// effect: rd=x0 (c.addi, c.li, c.lui, c.mv, c.add, c.slli), c.addi with a
// zero immediate, or a shift by zero (c.slli64, c.srli64, c.srai64).
// A pure function: safe to call from any thread.
uint32_t expand_compressed(uint16_t insn);

}  // namespace ftvm::vm
