// The RISC-V compressed (C) extension for RV64GC: each 16-bit instruction
// expands to the 32-bit instruction it stands for.
#pragma once

#include <cstdint>

namespace ftvm::vm {

// Returns the 32-bit equivalent of the compressed instruction `insn` (whose two
// low bits are not 0b11), or 0 when `insn` is illegal or reserved in RV64GC
// (including the all-zero instruction and reserved encodings such as
// c.addi4spn with a zero immediate, c.lui with a zero immediate or rd=x0 hints
// that are reserved, c.ldsp/c.lwsp with rd=x0, c.jr with rs1=x0). HINT
// encodings that the specification defines as HINTs expand to instructions
// with rd=x0, which have no effect.
uint32_t expand_compressed(uint16_t insn);

}  // namespace ftvm::vm
