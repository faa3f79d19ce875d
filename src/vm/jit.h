// The translator: RV64 basic blocks compiled to x86-64, behind Hart::run_slice.
//
// Determinism contract (the same as the interpreter's, which stays the oracle
// and the fallback): a slice retires exactly its budget unless an instruction
// the interpreter would end the slice on comes first; instret is exact at
// every slice end, trap and interrupt; nothing here depends on host timing,
// and whether a block is translated changes no guest-visible result. The
// state of a machine on either engine is identical at every instret.
//
// What is translated: integer ALU (RV64I, M), lui/auipc, jumps, branches,
// loads and stores through the soft TLBs (a miss or a fault leaves the block
// and the interpreter runs that one instruction), fence and fence.i. A block
// ends at a jump or branch, at a page end, and before any other instruction
// (CSRs, traps, AMOs, floating point), which the interpreter executes. A
// block is charged its instruction count once, on entry, when the budget
// covers it; an exit in the middle gives back what did not retire.
//
// Blocks live in one bounded code buffer, indexed by the slot of their first
// instruction in the hart's decoded-code page; a write to a code page drops
// that page's blocks with its decoded instructions; a full buffer drops all.
// Jumps to a block on the same page go through that page's slot table, so a
// dropped block is never entered.
//
// Not thread-safe: owned and driven by one Hart.
#pragma once

#include <cstdint>
#include <memory>

namespace ftvm::vm {

enum class Engine : uint8_t { kInterp, kJit };

// "interp" or "jit".
const char* engine_name(Engine e);
// Parses "interp" or "jit"; false for anything else.
bool parse_engine(const char* text, Engine& out);
// The engine a machine uses unless told otherwise: the translator on x86-64
// hosts, the interpreter elsewhere.
Engine default_engine();
// Whether this build can run the translator (x86-64 hosts only).
bool jit_supported();

struct JitStats {
  uint64_t blocks_compiled = 0;   // blocks translated since the machine started
  uint64_t instructions = 0;      // guest instructions in those blocks
  uint64_t flushes = 0;           // times the full code buffer was dropped
  // Instructions the interpreter ran in a translator's slices: those not
  // translated, slow paths (TLB misses, MMIO, faults), and budgets too
  // small for the next block.
  uint64_t interpreted = 0;
  uint64_t code_bytes = 0;        // bytes of the buffer in use now
  uint64_t code_capacity = 0;     // the buffer's size (the bound)
};

// The block calling convention's context; laid out for the generated code.
struct JitContext {
  uint64_t* x = nullptr;            // the hart's integer registers
  const void* rtlb = nullptr;       // read TLB entries (tag, addend)
  const void* wtlb = nullptr;       // write TLB entries
  uint64_t dkey = 0;                // the data TLB key of the current mode
  uint64_t page_va = 0;             // the virtual page the running block runs at
  const void* itlb = nullptr;       // fetch TLB entries (tag, code page)
  uint64_t ikey = 0;                // the fetch TLB key of the current privilege
  uint64_t pc = 0;                  // out: where execution goes on
  uint64_t remaining = 0;           // in/out: instructions the slice may still retire
  uint32_t reason = 0;              // out: JitExit
  uint8_t* patch = nullptr;         // out: a jump's rel32 to point at pc's block
};

enum JitExit : uint32_t {
  kJitNext = 0,        // go on at pc
  kJitInterpret = 1,   // the interpreter must execute the instruction at pc
};

}  // namespace ftvm::vm
