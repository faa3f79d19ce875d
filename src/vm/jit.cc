// The translator (see jit.h): block compiler, code buffer and the dispatch
// loop of Hart::run_slice_jit. x86-64 only; code is emitted with Xbyak.
//
// The hart's registers live in memory (HartState::x). Within a block, the
// guest registers it uses most are held in host registers (rdi, rsi,
// r8-r11): loaded on entry, and every one the block wrote stored back at
// each of its exits (the end, a slow path, before a helper call), so
// between blocks memory is always current. For as long as blocks chain the
// code holds rbx the register file, r12 the JitContext, r13 the
// instructions the slice may still retire, r14 and r15 the read and write
// TLBs, rbp the data TLB key; rax, rcx and rdx are scratch. Every exit goes
// through one epilogue that stores the next pc (rax) and the remaining
// budget back into the context.
#include "vm/jit.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"
#include "vm/fp_ops.h"
#include "vm/int_ops.h"
#include "vm/jit_compiler.h"

#if defined(__x86_64__)
#include <unistd.h>

#include <xbyak/xbyak.h>
#endif

namespace ftvm::vm {

const char* engine_name(Engine e) { return e == Engine::kJit ? "jit" : "interp"; }

bool parse_engine(const char* text, Engine& out) {
  const std::string_view t(text);
  if (t == "interp") {
    out = Engine::kInterp;
    return true;
  }
  if (t == "jit") {
    out = Engine::kJit;
    return true;
  }
  return false;
}

bool jit_supported() {
#if defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

Engine default_engine() { return jit_supported() ? Engine::kJit : Engine::kInterp; }

void Hart::set_engine(Engine e) {
  FTVM_CHECK(e == Engine::kInterp || jit_supported());
  engine_ = e;
}

JitStats Hart::jit_stats() const { return jit_ ? jit_->stats() : JitStats{}; }

void Hart::drop_jit_blocks() {
  if (!jit_) return;
  for (auto& p : code_pages_) {
    if (p) p->jit.fill(nullptr);
  }
  jit_->reset();
}

SliceEnd Hart::run_slice_jit(uint64_t budget, uint64_t& retired) {
  if (!jit_) jit_ = std::make_unique<JitCompiler>(*this);
  exit_requested_ = false;
  uint64_t remaining = budget;
  SliceEnd end = SliceEnd::kBudget;
  JitContext& c = jit_ctx_;
  c.x = s_.x.data();
  c.rtlb = rtlb_.data();
  c.wtlb = wtlb_.data();
  c.itlb = itlb_.data();
  // A jump the last block left by, to be pointed at the next block (see
  // Emitter::emit_goto), unless the buffer was flushed since.
  uint8_t* patch = nullptr;
  uint64_t flushes = 0;
  while (remaining > 0) {
    const uint64_t pc = s_.pc;
    const void* entry = nullptr;
    // A fetch that faults is left to the interpreter, which takes the trap.
    if (CodePage* page = fetch_page(pc)) {
      const void* slot = page->jit[(pc & (kPageSize - 1)) >> 1];
      entry = slot != nullptr ? slot : jit_->compile(*page, pc);
    }
    if (entry != nullptr && entry != kJitNone) {
      if (patch != nullptr && flushes == jit_->flushes()) jit_->patch(patch, entry);
      c.dkey = data_key_;
      c.ikey = static_cast<uint64_t>(s_.priv) << 56;
      c.page_va = pc & ~(kPageSize - 1);
      c.remaining = remaining;
      c.patch = nullptr;
      jit_->enter(c, entry);
      s_.instret += remaining - c.remaining;
      remaining = c.remaining;
      s_.pc = c.pc;
      patch = c.patch;
      flushes = jit_->flushes();
      if (c.reason == kJitNext || remaining == 0) continue;
    }
    patch = nullptr;
    // One instruction by the interpreter: it ends the slice where it would
    // have ended its own (a trap, xRET, a CSR or MMIO write, WFI, ...).
    uint64_t r = 0;
    const SliceEnd e = run_slice_interp(1, r);
    remaining -= r;
    jit_->count_interpreted(r);
    if (e == SliceEnd::kRecheck) {
      end = SliceEnd::kRecheck;
      break;
    }
  }
  retired = budget - remaining;
  s_.x[kSinkReg] = 0;
  return end;
}

#if defined(__x86_64__)

namespace {

constexpr size_t kCodeCapacity = 32u << 20;
// The most code one block may need: its instructions, their slow paths, and
// the exits (checked before each block is compiled).
constexpr unsigned kMaxBlockInsns = 64;
constexpr size_t kMaxBlockBytes = 16u << 10;

enum class Kind : uint8_t { kNone, kPlain, kBranch, kJal, kJalr };

// The F/D instructions exec_fp executes (all but loads and stores).
bool is_fp_compute(uint16_t op) {
  switch (op) {
#define FTVM_FP_CASE(name, kind, expr) case name:
    FTVM_FP_OPS(FTVM_FP_CASE)
#undef FTVM_FP_CASE
      return true;
    default:
      return false;
  }
}

// What the translator does with an instruction.
Kind kind_of(uint16_t op) {
  switch (op) {
    case kNop: case kFence: case kFenceI:
    case kLui: case kAuipc:
    case kLb: case kLh: case kLw: case kLd: case kLbu: case kLhu: case kLwu:
    case kSb: case kSh: case kSw: case kSd:
    case kAddi: case kSlti: case kSltiu: case kXori: case kOri: case kAndi:
    case kSlli: case kSrli: case kSrai:
    case kAdd: case kSub: case kSll: case kSlt: case kSltu: case kXor: case kSrl: case kSra:
    case kOr: case kAnd:
    case kAddiw: case kSlliw: case kSrliw: case kSraiw:
    case kAddw: case kSubw: case kSllw: case kSrlw: case kSraw:
    case kMul: case kMulh: case kMulhsu: case kMulhu: case kDiv: case kDivu: case kRem:
    case kRemu: case kMulw: case kDivw: case kDivuw: case kRemw: case kRemuw:
    case kLrW: case kLrD: case kScW: case kScD:
    case kAmoswapW: case kAmoaddW: case kAmoxorW: case kAmoandW: case kAmoorW:
    case kAmominW: case kAmomaxW: case kAmominuW: case kAmomaxuW:
    case kAmoswapD: case kAmoaddD: case kAmoxorD: case kAmoandD: case kAmoorD:
    case kAmominD: case kAmomaxD: case kAmominuD: case kAmomaxuD:
    case kFlw: case kFld: case kFsw: case kFsd:
      return Kind::kPlain;
    case kBeq: case kBne: case kBlt: case kBge: case kBltu: case kBgeu:
      return Kind::kBranch;
    case kJal:
      return Kind::kJal;
    case kJalr:
      return Kind::kJalr;
    default:
      return is_fp_compute(op) ? Kind::kPlain : Kind::kNone;
  }
}

// The packed fields of an F/D computational instruction (pack_fp).
bool jit_exec_fp(HartState* s, uint64_t packed) {
  DecodedInsn d;
  d.op = static_cast<uint16_t>(packed);
  d.rd = static_cast<uint8_t>(packed >> 16);
  d.rs1 = static_cast<uint8_t>(packed >> 24);
  d.rs2 = static_cast<uint8_t>(packed >> 32);
  d.rs3 = static_cast<uint8_t>(packed >> 40);
  d.rm = static_cast<uint8_t>(packed >> 48);
  return exec_fp(*s, d);
}

uint64_t pack_fp(const DecodedInsn& d) {
  return d.op | static_cast<uint64_t>(d.rd) << 16 | static_cast<uint64_t>(d.rs1) << 24 |
         static_cast<uint64_t>(d.rs2) << 32 | static_cast<uint64_t>(d.rs3) << 40 |
         static_cast<uint64_t>(d.rm) << 48;
}

}  // namespace

class JitCompiler::Emitter : public Xbyak::CodeGenerator {
 public:
  Emitter() : Xbyak::CodeGenerator(kCodeCapacity) {
    slow_.reserve(kMaxBlockInsns);  // labels must not move while referenced
    emit_trampoline();
  }

  void reset_blocks() {
    // Keep the trampoline: blocks start after it.
    setSize(trampoline_size_);
  }
  size_t used() const { return getSize(); }

  using Enter = void (*)(JitContext*, const void*);
  Enter enter() const { return reinterpret_cast<Enter>(const_cast<uint8_t*>(getCode())); }

  struct Insn {
    DecodedInsn d;
    uint64_t pc;
  };

  // Emits one block; `insns` are its instructions (the last one may be a
  // jump or branch), `next_pc` where it goes on when it does not end in one,
  // `next_interp` whether the instruction there is the interpreter's.
  const void* emit_block(Hart::CodePage& page, const std::vector<Insn>& insns, uint64_t next_pc,
                         bool next_interp) {
    using namespace Xbyak::util;
    const uint8_t* entry = getCurr();
    const uint64_t start_pc = insns.front().pc;
    const uint64_t n = insns.size();
    page_ = &page;
    page_va_ = start_pc & ~(kPageSize - 1);
    slow_.clear();

    Xbyak::Label bail, body, loop_bail;
    cached_ = -1;
    sub(r13, static_cast<uint32_t>(n));
    jb(bail, T_NEAR);  // (bail gives the charge back)
    // A block whose jump or branch goes back to its own start loops
    // without leaving its registers: the back edge charges the block again
    // and jumps to `body`, so any held register may be dirty there.
    const DecodedInsn& last = insns.back().d;
    const Kind last_kind = kind_of(last.op);
    const bool loops = (last_kind == Kind::kBranch || last_kind == Kind::kJal) &&
                       insns.back().pc + static_cast<int64_t>(last.imm) == start_pc;
    hold_registers(insns, loops);
    L(body);
    const uint32_t loop_dirty = dirty_;
    // Charges the block and goes round again, or (out of budget) stores
    // the registers back and leaves for the interpreter at the start.
    auto loop_back = [&] {
      sub(r13, static_cast<uint32_t>(n));
      jb(loop_bail, T_NEAR);
      jmp(body, T_NEAR);
    };

    for (size_t i = 0; i < insns.size(); ++i) {
      const Insn& in = insns[i];
      const DecodedInsn& d = in.d;
      mem_.clear();
      switch (kind_of(d.op)) {
        case Kind::kPlain:
          emit_plain(d, in.pc, n - i);
          break;
        case Kind::kBranch: {
          Xbyak::Label taken;
          if (held_[d.rs1] >= 0 && cached_ != static_cast<int>(d.rs1)) {
            cmp(kHeld[held_[d.rs1]], X(d.rs2));
            cached_ = -1;
          } else {
            rax_from_reg(d.rs1);
            cmp(rax, X(d.rs2));
          }
          const uint32_t dirty = dirty_;
          if (!loops) store_back();  // moves: the flags stay
          switch (d.op) {
            case kBeq: je(taken, T_NEAR); break;
            case kBne: jne(taken, T_NEAR); break;
            case kBlt: jl(taken, T_NEAR); break;
            case kBge: jge(taken, T_NEAR); break;
            case kBltu: jb(taken, T_NEAR); break;
            default: jae(taken, T_NEAR); break;
          }
          if (loops) store_back(dirty);
          emit_goto(in.pc + d.len);
          L(taken);
          if (loops) {
            loop_back();
          } else {
            emit_goto(in.pc + static_cast<int64_t>(d.imm));
          }
          break;
        }
        case Kind::kJal:
          if (d.rd != kSinkReg) {
            emit_pc(rax, in.pc + d.len);
            mov(X(d.rd), rax);
            wrote(d.rd);
          }
          if (loops) {
            loop_back();
          } else {
            store_back();
            emit_goto(in.pc + static_cast<int64_t>(d.imm));
          }
          break;
        case Kind::kJalr:
          rax_from_reg(d.rs1);
          if (d.imm != 0) add(rax, d.imm);
          and_(rax, -2);
          if (d.rd != kSinkReg) {
            emit_pc(rcx, in.pc + d.len);
            mov(X(d.rd), rcx);
            wrote(d.rd);
          }
          store_back();
          emit_jump_rax();
          break;
        case Kind::kNone:
          FTVM_CHECK(false);
      }
    }
    if (kind_of(insns.back().d.op) == Kind::kPlain) {
      store_back();
      if (next_interp) {
        emit_pc(rax, next_pc);
        jmp(exit_interp_, T_NEAR);
      } else {
        emit_goto(next_pc);
      }
    }
    L(bail);
    add(r13, static_cast<uint32_t>(n));
    emit_pc(rax, start_pc);
    jmp(exit_interp_, T_NEAR);
    if (loops) {
      L(loop_bail);
      add(r13, static_cast<uint32_t>(n));
      store_back(loop_dirty);
      emit_pc(rax, start_pc);
      jmp(exit_interp_, T_NEAR);
    }
    for (Slow& s : slow_) {
      L(s.label);
      store_back(s.dirty);
      // The instruction at s.pc did not retire, nor did those after it.
      add(r13, static_cast<uint32_t>(s.unretired));
      emit_pc(rax, s.pc);
      jmp(exit_interp_, T_NEAR);
    }
    return entry;
  }

 private:
  struct Slow {
    Xbyak::Label label;
    uint64_t pc;
    uint64_t unretired;
    uint32_t dirty;  // the held guest registers to store back first
  };

  // Guest register r in memory.
  Xbyak::Address M(unsigned r) const {
    using namespace Xbyak::util;
    return qword[rbx + static_cast<int>(r * 8)];
  }
  // Guest register r where the block keeps it: its host register, or memory.
  const Xbyak::Operand& X(unsigned r) {
    if (held_[r] >= 0) return kHeld[held_[r]];
    mem_.emplace_back(M(r));
    return mem_.back();
  }
  // Its low 32 bits.
  const Xbyak::Operand& X32(unsigned r) {
    using namespace Xbyak::util;
    if (held_[r] >= 0) return kHeld32[held_[r]];
    mem_.emplace_back(dword[rbx + static_cast<int>(r * 8)]);
    return mem_.back();
  }
  // Guest register rd was written (through X(rd)).
  void wrote(unsigned rd) {
    if (held_[rd] >= 0) dirty_ |= 1u << rd;
  }

  // Chooses the guest registers the block holds in host registers: those
  // it uses at least twice, most used first; loads the ones it reads
  // before writing (in a loop, all of them, and the written ones start
  // dirty).
  void hold_registers(const std::vector<Insn>& insns, bool loops) {
    held_.fill(-1);
    dirty_ = 0;
    std::array<unsigned, 32> uses{};
    uint32_t written = 0, read_first = 0;
    auto read = [&](unsigned r) {
      ++uses[r];
      if (!(written & (1u << r))) read_first |= 1u << r;
    };
    for (const Insn& in : insns) {
      const DecodedInsn& d = in.d;
      bool r1 = true, r2 = false, w = true;
      switch (d.op) {
        case kNop: case kFence: case kFenceI: r1 = w = false; break;
        case kLui: case kAuipc: case kJal: r1 = false; break;
        case kSb: case kSh: case kSw: case kSd: r2 = true; w = false; break;
        case kFlw: case kFld: case kFsw: case kFsd: w = false; break;  // rd, rs2: FP registers
        case kBeq: case kBne: case kBlt: case kBge: case kBltu: case kBgeu: r2 = true; w = false; break;
        case kAdd: case kSub: case kSll: case kSlt: case kSltu: case kXor: case kSrl: case kSra:
        case kOr: case kAnd: case kAddw: case kSubw: case kSllw: case kSrlw: case kSraw:
        case kMul: case kMulh: case kMulhsu: case kMulhu: case kDiv: case kDivu: case kRem:
        case kRemu: case kMulw: case kDivw: case kDivuw: case kRemw: case kRemuw: r2 = true; break;
        case kScW: case kScD:
        case kAmoswapW: case kAmoaddW: case kAmoxorW: case kAmoandW: case kAmoorW:
        case kAmominW: case kAmomaxW: case kAmominuW: case kAmomaxuW:
        case kAmoswapD: case kAmoaddD: case kAmoxorD: case kAmoandD: case kAmoorD:
        case kAmominD: case kAmomaxD: case kAmominuD: case kAmomaxuD: r2 = true; break;
        default:
          // exec_fp reads and writes the register file in memory.
          if (is_fp_compute(d.op)) r1 = w = false;
          break;
      }
      if (r1) read(d.rs1);
      if (r2) read(d.rs2);
      if (w && d.rd != kSinkReg) {  // (a write to x0 goes to the sink, x[32])
        ++uses[d.rd];
        written |= 1u << d.rd;
      }
    }
    std::array<unsigned, 32> order;
    for (unsigned r = 0; r < 32; ++r) order[r] = r;
    std::stable_sort(order.begin(), order.end(), [&](unsigned a, unsigned b) { return uses[a] > uses[b]; });
    size_t next = 0;
    for (unsigned r : order) {
      if (next == kHeld.size() || uses[r] < 2) break;
      if (r == 0 || r == kSinkReg) continue;
      held_[r] = static_cast<int8_t>(next++);
      // A loop's registers are all loaded: any may be stored back anywhere.
      if (loops || (read_first & (1u << r))) mov(kHeld[held_[r]], M(r));
      if (loops && (written & (1u << r))) dirty_ |= 1u << r;
    }
  }
  // Stores the held registers in `dirty` back to memory.
  void store_back(uint32_t dirty) {
    for (unsigned r = 1; r < 32; ++r) {
      if (dirty & (1u << r)) mov(M(r), kHeld[held_[r]]);
    }
  }
  // Stores every written held register back; they stay held (and clean).
  void store_back() {
    store_back(dirty_);
    dirty_ = 0;
  }
  // Reloads every held register from memory (after a call).
  void reload_held() {
    for (unsigned r = 1; r < 32; ++r) {
      if (held_[r] >= 0) mov(kHeld[held_[r]], M(r));
    }
  }

  void emit_trampoline() {
    using namespace Xbyak::util;
    // enter(ctx = rdi, code = rsi)
    push(rbx);
    push(rbp);
    push(r12);
    push(r13);
    push(r14);
    push(r15);
    sub(rsp, 8);  // calls from blocks see a 16-byte aligned stack
    mov(r12, rdi);
    mov(rbx, qword[r12 + offsetof(JitContext, x)]);
    mov(r14, qword[r12 + offsetof(JitContext, rtlb)]);
    mov(r15, qword[r12 + offsetof(JitContext, wtlb)]);
    mov(rbp, qword[r12 + offsetof(JitContext, dkey)]);
    mov(r13, qword[r12 + offsetof(JitContext, remaining)]);
    jmp(rsi);
    Xbyak::Label common;
    L(exit_next_);
    mov(dword[r12 + offsetof(JitContext, reason)], static_cast<uint32_t>(kJitNext));
    jmp(common);
    L(exit_interp_);
    mov(dword[r12 + offsetof(JitContext, reason)], static_cast<uint32_t>(kJitInterpret));
    L(common);
    mov(qword[r12 + offsetof(JitContext, pc)], rax);
    mov(qword[r12 + offsetof(JitContext, remaining)], r13);
    add(rsp, 8);
    pop(r15);
    pop(r14);
    pop(r13);
    pop(r12);
    pop(rbp);
    pop(rbx);
    ret();
    trampoline_size_ = getSize();
  }

  // reg = the guest address `pc`, computed from the page the block runs
  // at: one physical page may be mapped at several virtual addresses, and
  // its blocks serve all of them.
  void emit_pc(const Xbyak::Reg64& reg, uint64_t pc) {
    using namespace Xbyak::util;
    mov(reg, qword[r12 + offsetof(JitContext, page_va)]);
    const int64_t delta = static_cast<int64_t>(pc - page_va_);
    if (delta == static_cast<int32_t>(delta)) {
      if (delta != 0) add(reg, static_cast<int32_t>(delta));
    } else {
      mov(rdx, static_cast<uint64_t>(delta));
      add(reg, rdx);
    }
  }

  // All of the block has retired; go on at `target`. On this page: a
  // direct jump to its block, when translated; else a jump that goes back
  // to dispatch until the dispatcher, having the target's block, patches
  // it to go there directly (JitContext::patch). Blocks are dropped a whole
  // page at a time, so a jump between two blocks of one page never outlives
  // its target. Other pages: the fetch TLB decides (emit_jump_rax).
  void emit_goto(uint64_t target) {
    using namespace Xbyak::util;
    if ((target & ~(kPageSize - 1)) == page_va_) {
      const void* entry = page_->jit[(target & (kPageSize - 1)) >> 1];
      if (entry != nullptr && entry != Hart::kJitNone) {
        jmp(entry, T_NEAR);
        return;
      }
      db(0xe9);  // jmp rel32, to the next instruction until patched
      dd(0);
      const uint8_t* site = getCurr() - 4;
      mov(rcx, reinterpret_cast<uint64_t>(site));
      mov(qword[r12 + offsetof(JitContext, patch)], rcx);
      emit_pc(rax, target);
      jmp(exit_next_, T_NEAR);
      return;
    }
    emit_pc(rax, target);
    emit_jump_rax();
  }

  // All of the block has retired; go on at the address in rax: straight
  // into its block when the fetch TLB maps its page (what the dispatcher's
  // fetch_page would find) and the block is translated, else back to
  // dispatch.
  void emit_jump_rax() {
    using namespace Xbyak::util;
    static_assert(sizeof(Hart::FetchEntry) == 16);
    Xbyak::Label miss;
    mov(rcx, rax);
    shr(rcx, kPageShift);
    mov(edx, ecx);
    and_(edx, Hart::kTlbSize - 1);
    shl(edx, 4);
    or_(rcx, qword[r12 + offsetof(JitContext, ikey)]);
    mov(rsi, qword[r12 + offsetof(JitContext, itlb)]);
    cmp(rcx, qword[rsi + rdx]);
    jne(miss, T_NEAR);
    mov(rcx, qword[rsi + rdx + 8]);  // the CodePage
    mov(edx, eax);
    and_(edx, static_cast<uint32_t>(kPageSize - 1));
    shr(edx, 1);
    mov(rcx, qword[rcx + rdx * 8 + static_cast<int>(offsetof(Hart::CodePage, jit))]);
    cmp(rcx, 1);  // nullptr or Hart::kJitNone
    jbe(miss, T_NEAR);
    mov(rdx, rax);
    and_(rdx, ~static_cast<int32_t>(kPageSize - 1));
    mov(qword[r12 + offsetof(JitContext, page_va)], rdx);
    jmp(rcx);
    L(miss);
    jmp(exit_next_, T_NEAR);
  }

  // rax = the effective address; on a TLB hit for `size` bytes within one
  // page, rax = its host address; else to a slow path.
  // With `aligned`, a misaligned address goes to the slow path too.
  void emit_tlb(const Xbyak::Reg64& tlb, unsigned size, uint64_t pc, uint64_t unretired,
                bool aligned = false) {
    using namespace Xbyak::util;
    static_assert(sizeof(Hart::TlbEntry) == 16 && Hart::kTlbSize == 256);
    slow_.push_back(Slow{{}, pc, unretired, dirty_});
    Xbyak::Label& slow = slow_.back().label;
    if (aligned) {
      test(al, static_cast<uint8_t>(size - 1));
      jnz(slow, T_NEAR);
    }
    // The entry is indexed by the first byte's page and its tag compared
    // with the last byte's: an access that crosses into the next page
    // misses.
    static_assert(kPageShift == 12);
    if (size > 1) {
      lea(rcx, qword[rax + static_cast<int>(size - 1)]);
    } else {
      mov(rcx, rax);
    }
    mov(edx, eax);
    shr(edx, kPageShift - 4);
    and_(edx, (Hart::kTlbSize - 1) << 4);
    shr(rcx, kPageShift);
    or_(rcx, rbp);
    cmp(rcx, qword[tlb + rdx]);
    jne(slow, T_NEAR);
    add(rax, qword[tlb + rdx + 8]);
  }

  void emit_plain(const DecodedInsn& d, uint64_t pc, uint64_t unretired) {
    using namespace Xbyak::util;
    const int32_t imm = d.imm;
    const bool sink = d.rd == kSinkReg;
    // rax may still hold the register the previous instruction wrote.
    const int reuse = cached_;
    cached_ = -1;
    const bool rs1_in_rax = static_cast<int>(d.rs1) == reuse;
    switch (d.op) {
      case kNop: case kFence: case kFenceI:
        return;
      case kLui:
        if (!sink) {
          mov(X(d.rd), imm);
          wrote(d.rd);
        }
        return;
      case kAuipc:
        if (!sink) {
          emit_pc(rax, pc + static_cast<int64_t>(imm));
          wrote_rax(d.rd);
        }
        return;
      case kLb: case kLh: case kLw: case kLd: case kLbu: case kLhu: case kLwu: {
        const unsigned size = (d.op == kLb || d.op == kLbu) ? 1
                              : (d.op == kLh || d.op == kLhu) ? 2
                              : (d.op == kLw || d.op == kLwu) ? 4 : 8;
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        if (imm != 0) add(rax, imm);
        emit_tlb(r14, size, pc, unretired);
        const bool direct = !sink && held_[d.rd] >= 0;
        const Xbyak::Reg64 dst = direct ? kHeld[held_[d.rd]] : rax;
        const Xbyak::Reg32 dst32 = dst.cvt32();
        switch (d.op) {
          case kLb: movsx(dst, byte[rax]); break;
          case kLh: movsx(dst, word[rax]); break;
          case kLw: movsxd(dst, dword[rax]); break;
          case kLd: mov(dst, qword[rax]); break;
          case kLbu: movzx(dst32, byte[rax]); break;
          case kLhu: movzx(dst32, word[rax]); break;
          default: mov(dst32, dword[rax]); break;
        }
        if (direct) {
          wrote(d.rd);
        } else if (!sink) {
          wrote_rax(d.rd);
        }
        return;
      }
      case kLrW: case kLrD: {
        // As the interpreter's fast path: load through the read TLB, then
        // the reservation. Misaligned or a miss: the interpreter.
        const unsigned size = d.op == kLrW ? 4 : 8;
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        emit_tlb(r14, size, pc, unretired, true);
        if (size == 4) movsxd(rcx, dword[rax]); else mov(rcx, qword[rax]);
        mov(rdx, X(d.rs1));
        mov(qword[rbx + kReservationAddr], rdx);
        mov(byte[rbx + kReservationValid], 1);
        if (!sink) {
          mov(X(d.rd), rcx);
          wrote(d.rd);
        }
        return;
      }
      case kScW: case kScD: {
        const unsigned size = d.op == kScW ? 4 : 8;
        Xbyak::Label fail, done;
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        cmp(byte[rbx + kReservationValid], 0);
        je(fail, T_NEAR);
        cmp(rax, qword[rbx + kReservationAddr]);
        jne(fail, T_NEAR);
        emit_tlb(r15, size, pc, unretired, true);
        mov(rcx, X(d.rs2));
        if (size == 4) mov(dword[rax], ecx); else mov(qword[rax], rcx);
        mov(byte[rbx + kReservationValid], 0);
        if (!sink) mov(X(d.rd), 0);
        jmp(done, T_NEAR);
        L(fail);
        mov(byte[rbx + kReservationValid], 0);
        if (!sink) mov(X(d.rd), 1);
        L(done);
        if (!sink) wrote(d.rd);
        return;
      }
      case kAmoswapW: case kAmoaddW: case kAmoxorW: case kAmoandW: case kAmoorW:
      case kAmominW: case kAmomaxW: case kAmominuW: case kAmomaxuW:
      case kAmoswapD: case kAmoaddD: case kAmoxorD: case kAmoandD: case kAmoorD:
      case kAmominD: case kAmomaxD: case kAmominuD: case kAmomaxuD: {
        // Through the write TLB, which maps only RAM the hart may read and
        // write and that holds no decoded code. rcx = the old value,
        // rdx = the new one.
        bool word = false;
        switch (d.op) {
          case kAmoswapW: case kAmoaddW: case kAmoxorW: case kAmoandW: case kAmoorW:
          case kAmominW: case kAmomaxW: case kAmominuW: case kAmomaxuW: word = true; break;
          default: break;
        }
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        emit_tlb(r15, word ? 4 : 8, pc, unretired, true);
        if (word) movsxd(rcx, dword[rax]); else mov(rcx, qword[rax]);
        mov(rdx, X(d.rs2));
        const Xbyak::Reg32 a32 = ecx, b32 = edx;
        switch (d.op) {
          case kAmoswapW: case kAmoswapD: break;
          case kAmoaddW: add(b32, a32); break;
          case kAmoaddD: add(rdx, rcx); break;
          case kAmoxorW: case kAmoxorD: xor_(rdx, rcx); break;
          case kAmoandW: case kAmoandD: and_(rdx, rcx); break;
          case kAmoorW: case kAmoorD: or_(rdx, rcx); break;
          // new = the min/max of old (rcx) and rs2 (rdx): keep rdx or take rcx
          case kAmominW: cmp(a32, b32); cmovl(rdx, rcx); break;
          case kAmomaxW: cmp(a32, b32); cmovg(rdx, rcx); break;
          case kAmominuW: cmp(a32, b32); cmovb(rdx, rcx); break;
          case kAmomaxuW: cmp(a32, b32); cmova(rdx, rcx); break;
          case kAmominD: cmp(rcx, rdx); cmovl(rdx, rcx); break;
          case kAmomaxD: cmp(rcx, rdx); cmovg(rdx, rcx); break;
          case kAmominuD: cmp(rcx, rdx); cmovb(rdx, rcx); break;
          default: cmp(rcx, rdx); cmova(rdx, rcx); break;
        }
        if (word) mov(dword[rax], edx); else mov(qword[rax], rdx);
        if (!sink) {
          mov(X(d.rd), rcx);
          wrote(d.rd);
        }
        return;
      }
      case kFlw: case kFld: case kFsw: case kFsd: {
        // Through the TLBs as the integer loads and stores; the FPU being
        // off (mstatus.FS = 0) goes to the interpreter, which traps.
        const bool load = d.op == kFlw || d.op == kFld;
        const unsigned size = d.op == kFlw || d.op == kFsw ? 4 : 8;
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        if (imm != 0) add(rax, imm);
        emit_tlb(load ? r14 : r15, size, pc, unretired);
        test(dword[rbx + kMstatus], static_cast<uint32_t>(mstatus::kFs));
        jz(slow_.back().label, T_NEAR);
        if (!load) {
          mov(rcx, F(d.rs2));
          if (size == 4) mov(dword[rax], ecx); else mov(qword[rax], rcx);
        } else {
          if (size == 4) {
            mov(eax, dword[rax]);
            mov(rcx, 0xffffffff00000000ull);  // NaN-boxed
            or_(rax, rcx);
          } else {
            mov(rax, qword[rax]);
          }
          mov(F(d.rd), rax);
          or_(dword[rbx + kMstatus], static_cast<uint32_t>(mstatus::kFs));
        }
        return;
      }
      case kSb: case kSh: case kSw: case kSd: {
        const unsigned size = d.op == kSb ? 1 : d.op == kSh ? 2 : d.op == kSw ? 4 : 8;
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        if (imm != 0) add(rax, imm);
        emit_tlb(r15, size, pc, unretired);
        Xbyak::Reg64 src = rcx;
        if (held_[d.rs2] >= 0) {
          src = kHeld[held_[d.rs2]];
        } else {
          mov(rcx, X(d.rs2));
        }
        switch (d.op) {
          case kSb: mov(byte[rax], src.cvt8()); break;
          case kSh: mov(word[rax], src.cvt16()); break;
          case kSw: mov(dword[rax], src.cvt32()); break;
          default: mov(qword[rax], src); break;
        }
        return;
      }
      default:
        if (is_fp_compute(d.op)) {
          // exec_fp on the register file in memory; false: illegal now
          // (the FPU off, or a reserved dynamic rounding mode), so the
          // interpreter executes it and traps.
          store_back();
          lea(rdi, qword[rbx - kX]);
          mov(rsi, pack_fp(d));
          mov(rax, reinterpret_cast<uint64_t>(&jit_exec_fp));
          call(rax);
          slow_.push_back(Slow{{}, pc, unretired, 0});
          test(al, al);
          jz(slow_.back().label, T_NEAR);
          reload_held();
          return;
        }
        break;
    }
    if (sink) return;  // the rest only compute a value
    if (emit_direct(d, reuse)) return;
    switch (d.op) {
      case kAddi: case kXori: case kOri: case kAndi:
      case kSlli: case kSrli: case kSrai:
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        alu(d, rax);
        wrote_rax(d.rd);
        return;
      case kSlti: case kSltiu:
        xor_(ecx, ecx);
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        cmp(rax, imm);
        if (d.op == kSlti) setl(cl); else setb(cl);
        mov(X(d.rd), rcx);
        wrote(d.rd);
        return;
      case kAdd: case kSub: case kXor: case kOr: case kAnd: case kMul:
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        alu(d, rax);
        wrote_rax(d.rd);
        return;
      case kSll: case kSrl: case kSra:
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        mov(rcx, X(d.rs2));
        if (d.op == kSll) shl(rax, cl); else if (d.op == kSrl) shr(rax, cl); else sar(rax, cl);
        wrote_rax(d.rd);
        return;
      case kSlt: case kSltu:
        xor_(ecx, ecx);
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        cmp(rax, X(d.rs2));
        if (d.op == kSlt) setl(cl); else setb(cl);
        mov(X(d.rd), rcx);
        wrote(d.rd);
        return;
      case kAddiw: case kSlliw: case kSrliw: case kSraiw:
        if (!rs1_in_rax) mov(eax, X32(d.rs1));
        alu(d, rax);
        wrote_rax(d.rd);
        return;
      case kAddw: case kSubw: case kMulw:
        if (!rs1_in_rax) mov(eax, X32(d.rs1));
        alu(d, rax);
        wrote_rax(d.rd);
        return;
      case kSllw: case kSrlw: case kSraw:
        if (!rs1_in_rax) mov(eax, X32(d.rs1));
        mov(ecx, X32(d.rs2));
        if (d.op == kSllw) shl(eax, cl); else if (d.op == kSrlw) shr(eax, cl); else sar(eax, cl);
        movsxd(rax, eax);
        wrote_rax(d.rd);
        return;
      case kMulh: case kMulhu:
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        if (d.op == kMulh) imul(X(d.rs2)); else mul(X(d.rs2));
        mov(X(d.rd), rdx);
        wrote(d.rd);
        return;
      case kMulhsu:
        // hi(signed a * unsigned b) = hi(unsigned a * b) - (a < 0 ? b : 0)
        if (!rs1_in_rax) mov(rax, X(d.rs1));
        mov(rcx, rax);
        mul(X(d.rs2));
        sar(rcx, 63);
        and_(rcx, X(d.rs2));
        sub(rdx, rcx);
        mov(X(d.rd), rdx);
        wrote(d.rd);
        return;
      case kDiv: case kDivu: case kRem: case kRemu:
      case kDivw: case kDivuw: case kRemw: case kRemuw: {
        uint64_t (*fn)(uint64_t, uint64_t) =
            d.op == kDiv ? int_ops::div : d.op == kDivu ? int_ops::divu
            : d.op == kRem ? int_ops::rem : d.op == kRemu ? int_ops::remu
            : d.op == kDivw ? int_ops::divw : d.op == kDivuw ? int_ops::divuw
            : d.op == kRemw ? int_ops::remw : int_ops::remuw;
        // The held registers are the call's to clobber.
        mov(rax, X(d.rs1));
        mov(rcx, X(d.rs2));
        store_back();
        mov(rdi, rax);
        mov(rsi, rcx);
        mov(rax, reinterpret_cast<uint64_t>(fn));
        call(rax);
        reload_held();
        wrote_rax(d.rd);
        return;
      }
      default:
        FTVM_CHECK(false);
    }
  }

  // Computes x[rd] in its host register, when the block holds rd and the
  // operation is one of the common ones; returns false otherwise.
  // r = r OP (imm or x[rs2]) for the ALU operations both code paths share;
  // the 32-bit ones work on r's low half (already x[rs1]'s) and
  // sign-extend.
  void alu(const DecodedInsn& d, const Xbyak::Reg64& r) {
    const Xbyak::Reg32 r32 = r.cvt32();
    const int32_t imm = d.imm;
    switch (d.op) {
      case kAddi: if (imm != 0) add(r, imm); return;
      case kXori: xor_(r, imm); return;
      case kOri: or_(r, imm); return;
      case kAndi: and_(r, imm); return;
      case kSlli: shl(r, imm); return;
      case kSrli: shr(r, imm); return;
      case kSrai: sar(r, imm); return;
      case kAdd: add(r, X(d.rs2)); return;
      case kSub: sub(r, X(d.rs2)); return;
      case kXor: xor_(r, X(d.rs2)); return;
      case kOr: or_(r, X(d.rs2)); return;
      case kAnd: and_(r, X(d.rs2)); return;
      case kMul: imul(r, X(d.rs2)); return;
      default: break;
    }
    switch (d.op) {
      case kAddiw: if (imm != 0) add(r32, imm); break;
      case kSlliw: shl(r32, imm); break;
      case kSrliw: shr(r32, imm); break;
      case kSraiw: sar(r32, imm); break;
      case kAddw: add(r32, X32(d.rs2)); break;
      case kSubw: sub(r32, X32(d.rs2)); break;
      case kMulw: imul(r32, X32(d.rs2)); break;
      default: FTVM_CHECK(false);
    }
    movsxd(r, r32);
  }

  // `in_rax` is the guest register rax holds, or -1.
  bool emit_direct(const DecodedInsn& d, int in_rax) {
    using namespace Xbyak::util;
    if (held_[d.rd] < 0) return false;
    const bool rs1_in_rax = static_cast<int>(d.rs1) == in_rax;
    const Xbyak::Reg64 dst = kHeld[held_[d.rd]];
    const Xbyak::Reg32 dst32 = dst.cvt32();
    const bool same = d.rd == d.rs1;
    // dst = x[rs1] (64 or 32 bits)
    auto first = [&](bool wide) {
      if (same) return;
      if (rs1_in_rax) {
        if (wide) mov(dst, rax); else mov(dst32, eax);
      } else {
        if (wide) mov(dst, X(d.rs1)); else mov(dst32, X32(d.rs1));
      }
    };
    switch (d.op) {
      case kAddi: case kXori: case kOri: case kAndi: case kSlli: case kSrli: case kSrai:
        first(true);
        alu(d, dst);
        break;
      case kAddiw: case kSlliw: case kSrliw: case kSraiw:
        first(false);
        alu(d, dst);
        break;
      case kAdd: case kSub: case kXor: case kOr: case kAnd: case kMul:
      case kAddw: case kSubw: case kMulw: {
        // dst = x[rs1] first would clobber x[rs2] when rd == rs2 != rs1:
        // swap the operands of a commutative operation, else use rax.
        if (!same && d.rd == d.rs2) {
          if (d.op == kSub || d.op == kSubw) return false;
          DecodedInsn swapped = d;
          std::swap(swapped.rs1, swapped.rs2);
          return emit_direct(swapped, in_rax);
        }
        first(d.op != kAddw && d.op != kSubw && d.op != kMulw);
        alu(d, dst);
        break;
      }
      default:
        return false;
    }
    wrote(d.rd);
    return true;
  }

  // x[rd] = rax, which then holds x[rd] for the next instruction.
  void wrote_rax(unsigned rd) {
    mov(X(rd), rax);
    wrote(rd);
    cached_ = static_cast<int>(rd);
  }
  // Loads x[r] into rax unless it is there already; ends the reuse.
  void rax_from_reg(unsigned r) {
    if (static_cast<int>(r) != cached_) mov(rax, X(r));
    cached_ = -1;
  }

  using Op = Xbyak::Operand;
  // The reservation (LR/SC), from the register file.
  static constexpr int kReservationValid =
      static_cast<int>(offsetof(HartState, reservation_valid) - offsetof(HartState, x));
  static constexpr int kReservationAddr =
      static_cast<int>(offsetof(HartState, reservation_addr) - offsetof(HartState, x));
  // The register file's place in the hart state; mstatus and f from it.
  static constexpr int kX = static_cast<int>(offsetof(HartState, x));
  static constexpr int kMstatus = static_cast<int>(offsetof(HartState, mstatus)) - kX;
  static constexpr int kF = static_cast<int>(offsetof(HartState, f)) - kX;
  // FP register r in memory.
  Xbyak::Address F(unsigned r) const {
    using namespace Xbyak::util;
    return qword[rbx + kF + static_cast<int>(r * 8)];
  }
  static inline const std::array<Xbyak::Reg64, 6> kHeld{
      Xbyak::Reg64(Op::RDI), Xbyak::Reg64(Op::RSI), Xbyak::Reg64(Op::R8),
      Xbyak::Reg64(Op::R9), Xbyak::Reg64(Op::R10), Xbyak::Reg64(Op::R11)};
  static inline const std::array<Xbyak::Reg32, 6> kHeld32{
      Xbyak::Reg32(Op::EDI), Xbyak::Reg32(Op::ESI), Xbyak::Reg32(Op::R8D),
      Xbyak::Reg32(Op::R9D), Xbyak::Reg32(Op::R10D), Xbyak::Reg32(Op::R11D)};
  std::array<int8_t, 33> held_{};  // guest register (or the sink) -> kHeld index, or -1
  uint32_t dirty_ = 0;             // held registers written since stored back
  std::deque<Xbyak::Address> mem_;  // operands X() returned for this instruction
  int cached_ = -1;  // the guest register rax holds, between two instructions
  size_t trampoline_size_ = 0;
  Xbyak::Label exit_next_, exit_interp_;
  Hart::CodePage* page_ = nullptr;
  uint64_t page_va_ = 0;
  std::vector<Slow> slow_;
};

JitCompiler::JitCompiler(Hart& hart) : hart_(hart), emitter_(std::make_unique<Emitter>()) {
  enter_ = emitter_->enter();
  stats_.code_capacity = kCodeCapacity;
  if (const char* v = std::getenv("FTVM_JIT_PERF_MAP"); v != nullptr && *v != '\0') {
    const std::string path = "/tmp/perf-" + std::to_string(getpid()) + ".map";
    perf_map_ = std::fopen(path.c_str(), "a");
  }
}

JitCompiler::~JitCompiler() {
  if (perf_map_ != nullptr) std::fclose(perf_map_);
}

void JitCompiler::reset() {
  emitter_->reset_blocks();
  ++stats_.flushes;
}

void JitCompiler::patch(uint8_t* site, const void* entry) {
  const intptr_t rel = reinterpret_cast<intptr_t>(entry) - reinterpret_cast<intptr_t>(site + 4);
  FTVM_CHECK(rel == static_cast<int32_t>(rel));
  const int32_t rel32 = static_cast<int32_t>(rel);
  std::memcpy(site, &rel32, 4);
}

JitStats JitCompiler::stats() const {
  JitStats s = stats_;
  s.code_bytes = emitter_->used();
  return s;
}

const void* JitCompiler::compile(Hart::CodePage& page, uint64_t pc) {
  std::vector<Emitter::Insn> insns;
  insns.reserve(16);
  uint64_t at = pc;
  bool next_interp = false;
  while (insns.size() < kMaxBlockInsns) {
    const uint64_t off = at & (kPageSize - 1);
    if (at != pc && off == 0) break;  // the page ended
    uint16_t lo;
    std::memcpy(&lo, page.host + off, 2);
    DecodedInsn d;
    if ((lo & 3) != 3) {
      d = decode(lo);
    } else if (off + 4 <= kPageSize) {
      uint32_t word;
      std::memcpy(&word, page.host + off, 4);
      d = decode(word);
    } else {
      next_interp = true;  // straddles two pages
      break;
    }
    const Kind k = kind_of(d.op);
    if (k == Kind::kNone) {
      next_interp = true;
      break;
    }
    insns.push_back({d, at});
    at += d.len;
    if (k != Kind::kPlain) break;
  }
  const void*& slot = page.jit[(pc & (kPageSize - 1)) >> 1];
  if (insns.empty()) {
    slot = Hart::kJitNone;
    return slot;
  }
  if (emitter_->used() + kMaxBlockBytes > kCodeCapacity) {
    // Drops this page's table too; `slot` stays valid (the page is kept).
    hart_.drop_jit_blocks();
  }
  const size_t before = emitter_->used();
  slot = emitter_->emit_block(page, insns, at, next_interp);
  if (perf_map_ != nullptr) {
    std::fprintf(perf_map_, "%" PRIxPTR " %zx guest_%" PRIx64 "_%zu\n", reinterpret_cast<uintptr_t>(slot),
                 emitter_->used() - before, pc, insns.size());
    std::fflush(perf_map_);
  }
  ++stats_.blocks_compiled;
  stats_.instructions += insns.size();
  return slot;
}

#else  // !__x86_64__

class JitCompiler::Emitter {};
JitCompiler::JitCompiler(Hart& hart) : hart_(hart) {}
JitCompiler::~JitCompiler() = default;
void JitCompiler::reset() {}
JitStats JitCompiler::stats() const { return stats_; }
void JitCompiler::patch(uint8_t*, const void*) {}
const void* JitCompiler::compile(Hart::CodePage& page, uint64_t pc) {
  const void*& slot = page.jit[(pc & (kPageSize - 1)) >> 1];
  slot = Hart::kJitNone;
  return slot;
}

#endif

}  // namespace ftvm::vm
