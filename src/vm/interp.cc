// The interpreter: executes pre-decoded instructions from per-page decode
// caches with threaded dispatch (computed goto).
//
// Hot state lives in locals: pc, the current code page and slot, and the
// count of instructions still allowed in this slice. Every instruction that
// completes decrements `remaining`; a trap leaves it alone (the faulting
// instruction does not retire). Slow paths (TLB misses, MMIO, CSRs, traps)
// first write pc and instret back to the hart state (SYNC), so everything
// out of line sees exact values.
#include <cstring>

#include "vm/fp_ops.h"
#include "vm/fpu.h"
#include "vm/hart.h"
#include "vm/int_ops.h"

namespace ftvm::vm {
namespace {

using fp_ops::box_s;
using fp_ops::unbox_s;
using int_ops::sext32;

}  // namespace

SliceEnd Hart::run_slice_interp(uint64_t budget, uint64_t& retired) {
#define FTVM_CAT3(a, b, c) a##b##_##c
#define FTVM_LABEL(name, variant) FTVM_CAT3(L_, name, variant)
  // Handler offsets from `decode`, by [compressed][op].
  static const int32_t kHandlers[2][kOpCount] = {
      {
#define FTVM_OP_OFFSET(name) \
  static_cast<int32_t>(static_cast<const char*>(&&FTVM_LABEL(name, 4)) - static_cast<const char*>(&&decode)),
          FTVM_OPS(FTVM_OP_OFFSET)
#undef FTVM_OP_OFFSET
      },
      {
#define FTVM_OP_OFFSET(name) \
  static_cast<int32_t>(static_cast<const char*>(&&FTVM_LABEL(name, 2)) - static_cast<const char*>(&&decode)),
          FTVM_OPS(FTVM_OP_OFFSET)
#undef FTVM_OP_OFFSET
      },
  };

  uint64_t* const x = s_.x.data();
  uint64_t* const f = s_.f.data();
  uint64_t pc = s_.pc;
  uint64_t remaining = budget;
  const uint64_t start_instret = s_.instret;
  const uint64_t dkey = data_key_;
  CodePage* page = nullptr;
  uint64_t page_va = 0;
  DecodedInsn* insn = nullptr;
  DecodedInsn cross[3];  // an instruction that straddles two pages, then sentinels
  exit_requested_ = false;

#define LIKELY(c) __builtin_expect(!!(c), 1)
#define UNLIKELY(c) __builtin_expect(!!(c), 0)
#define SYNC()                                           \
  do {                                                   \
    s_.pc = pc;                                          \
    s_.instret = start_instret + (budget - remaining);   \
  } while (0)
#define DISPATCH() goto* (static_cast<const char*>(&&decode) + insn->handler)
#define NEXT()                                   \
  do {                                           \
    pc += kLen;                                  \
    insn += kLen >> 1;                           \
    if (UNLIKELY(--remaining == 0)) goto out;    \
    DISPATCH();                                  \
  } while (0)
#define NEXT_EXIT()        \
  do {                     \
    pc += kLen;            \
    --remaining;           \
    goto out_early;        \
  } while (0)
#define JUMP(target)                                      \
  do {                                                    \
    pc = (target);                                        \
    if (UNLIKELY(--remaining == 0)) goto out;             \
    if (LIKELY((pc ^ page_va) < kPageSize)) {             \
      insn = &page->insn[(pc & (kPageSize - 1)) >> 1];    \
      DISPATCH();                                         \
    }                                                     \
    goto refetch;                                         \
  } while (0)
#define RS1 x[insn->rs1]
#define RS2 x[insn->rs2]
#define RD x[insn->rd]
#define IMM static_cast<int64_t>(insn->imm)
#define LOAD(T, va, out)                                                                  \
  do {                                                                                    \
    const uint64_t va_ = (va);                                                            \
    const TlbEntry& e_ = rtlb_[(va_ >> kPageShift) % kTlbSize];                           \
    if (LIKELY(e_.tag == ((va_ >> kPageShift) | dkey) &&                                  \
               (va_ & (kPageSize - 1)) <= kPageSize - sizeof(T))) {                       \
      std::memcpy(&(out), reinterpret_cast<const void*>(va_ + e_.addend), sizeof(T));     \
    } else {                                                                              \
      SYNC();                                                                             \
      uint64_t v_;                                                                        \
      if (!load_slow(va_, sizeof(T), v_)) goto trap_pending;                              \
      std::memcpy(&(out), &v_, sizeof(T));                                                \
    }                                                                                     \
  } while (0)
#define STORE(T, va, value)                                                               \
  do {                                                                                    \
    const uint64_t va_ = (va);                                                            \
    const T t_ = static_cast<T>(value);                                                   \
    const TlbEntry& e_ = wtlb_[(va_ >> kPageShift) % kTlbSize];                           \
    if (LIKELY(e_.tag == ((va_ >> kPageShift) | dkey) &&                                  \
               (va_ & (kPageSize - 1)) <= kPageSize - sizeof(T))) {                       \
      std::memcpy(reinterpret_cast<void*>(va_ + e_.addend), &t_, sizeof(T));              \
    } else {                                                                              \
      SYNC();                                                                             \
      uint64_t v_ = 0;                                                                    \
      std::memcpy(&v_, &t_, sizeof(T));                                                   \
      if (!store_slow(va_, sizeof(T), v_)) goto trap_pending;                             \
      if (exit_requested_) NEXT_EXIT();                                                   \
    }                                                                                     \
  } while (0)
#define LOAD_OP(name, T)                   \
  L(name) : {                             \
    T v;                                   \
    LOAD(T, RS1 + IMM, v);                 \
    RD = static_cast<uint64_t>(static_cast<int64_t>(v)); \
    NEXT();                                \
  }
#define STORE_OP(name, T)        \
  L(name) : {                   \
    STORE(T, RS1 + IMM, RS2);    \
    NEXT();                      \
  }
#define ALU(name, expr)  \
  L(name) : {           \
    RD = (expr);         \
    NEXT();              \
  }
#define BRANCH(name, cond)                 \
  L(name) : {                             \
    if (cond) JUMP(pc + IMM);              \
    NEXT();                                \
  }
// The operands are read before amo_ptr: a write to a page of decoded code
// clears its decoded instructions, this one's included; the slice then ends
// (as after a store), so the code is fetched and decoded again.
#define AMO(name, T, expr)                                             \
  L(name) : {                                                         \
    const unsigned rd_ = insn->rd;                                     \
    const T b = static_cast<T>(RS2);                                   \
    uint8_t* p = amo_ptr(RS1, sizeof(T), false);                       \
    if (p == nullptr) goto trap_pending;                               \
    T a;                                                               \
    std::memcpy(&a, p, sizeof(T));                                     \
    const T r = (expr);                                                \
    std::memcpy(p, &r, sizeof(T));                                     \
    x[rd_] = static_cast<uint64_t>(static_cast<int64_t>(a));           \
    if (exit_requested_) NEXT_EXIT();                                  \
    NEXT();                                                            \
  }
#define FP_ON()                                             \
  do {                                                      \
    if (UNLIKELY((s_.mstatus & mstatus::kFs) == 0)) goto illegal; \
  } while (0)
#define FP_RM()                                           \
  FP_ON();                                                \
  const uint32_t rm = insn->rm == 7 ? s_.frm : insn->rm;  \
  if (UNLIKELY(rm > 4)) goto illegal;                     \
  uint32_t fl = 0
#define FP_WROTE_F()                 \
  do {                               \
    s_.fflags |= fl;                 \
    s_.mstatus |= mstatus::kFs;      \
    NEXT();                          \
  } while (0)
#define FP_WROTE_X()                   \
  do {                                 \
    if (fl) {                          \
      s_.fflags |= fl;                 \
      s_.mstatus |= mstatus::kFs;      \
    }                                  \
    NEXT();                            \
  } while (0)
#define FS1 unbox_s(f[insn->rs1])
#define FS2 unbox_s(f[insn->rs2])
#define FS3 unbox_s(f[insn->rs3])
#define FD1 f[insn->rs1]
#define FD2 f[insn->rs2]
#define FD3 f[insn->rs3]
#define FOP_S(name, expr)            \
  L(name) : {                       \
    FP_RM();                         \
    f[insn->rd] = box_s(expr);       \
    FP_WROTE_F();                    \
  }
#define FOP_D(name, expr)            \
  L(name) : {                       \
    FP_RM();                         \
    f[insn->rd] = (expr);            \
    FP_WROTE_F();                    \
  }
#define FOP_X(name, expr)            \
  L(name) : {                       \
    FP_RM();                         \
    RD = (expr);                     \
    FP_WROTE_X();                    \
  }
// Operations without a rounding mode field.
#define FOPN_S(name, expr)           \
  L(name) : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    f[insn->rd] = box_s(expr);       \
    FP_WROTE_F();                    \
  }
#define FOPN_D(name, expr)           \
  L(name) : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    f[insn->rd] = (expr);            \
    FP_WROTE_F();                    \
  }
#define FOPN_X(name, expr)           \
  L(name) : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    RD = (expr);                     \
    FP_WROTE_X();                    \
  }
// FTVM_FP_OPS's kinds (_S, N_S, ...) name the macros above.
#define FTVM_FP_INTERP(name, kind, expr) FOP##kind(name, expr)

  goto refetch;

refetch:
  page = fetch_page(pc);
  if (UNLIKELY(page == nullptr)) {
    SYNC();
    take_trap(fault_cause_, fault_tval_, false);
    goto out_pc_set;
  }
  page_va = pc & ~(kPageSize - 1);
  insn = &page->insn[(pc & (kPageSize - 1)) >> 1];
  DISPATCH();

decode : {
  // An undecoded slot (handler offset 0) or a page-end sentinel.
  if (insn->op == kPageEnd) goto refetch;
  const uint64_t off = pc & (kPageSize - 1);
  uint16_t lo;
  std::memcpy(&lo, page->host + off, 2);
  if ((lo & 3) != 3) {
    *insn = decode(lo);
  } else if (off + 4 <= kPageSize) {
    uint32_t word;
    std::memcpy(&word, page->host + off, 4);
    *insn = decode(word);
  } else {
    // The upper half lives on the next page: decode into a scratch slot.
    uint16_t hi;
    SYNC();
    if (!fetch_u16(pc + 2, hi)) {
      take_trap(fault_cause_, fault_tval_, false);
      goto out_pc_set;
    }
    cross[0] = decode(lo | (static_cast<uint32_t>(hi) << 16));
    cross[1].op = kPageEnd;
    cross[2].op = kPageEnd;
    insn = &cross[0];
    page_va = ~0ull;  // jumps must re-fetch
  }
  insn->handler = kHandlers[insn->len == 2][insn->op];
  DISPATCH();
}

illegal : {
  // mtval gets the instruction's bits, fetched again (the decoded form
  // does not keep them).
  SYNC();
  uint16_t lo = 0, hi = 0;
  const bool ok = fetch_u16(pc, lo) && (insn->len == 2 || fetch_u16(pc + 2, hi));
  take_trap(kIllegalInsn, ok ? (insn->len == 2 ? lo : lo | (static_cast<uint32_t>(hi) << 16)) : 0,
            false);
  goto out_pc_set;
}

trap_pending:
  SYNC();
  take_trap(fault_cause_, fault_tval_, false);
  goto out_pc_set;

#define L(name) FTVM_LABEL(name, FTVM_VARIANT)
#define FTVM_VARIANT 4
#include "vm/interp_ops.inc"
#undef FTVM_VARIANT
#define FTVM_VARIANT 2
#include "vm/interp_ops.inc"
#undef FTVM_VARIANT
#undef L

out:
  // Only NEXT and JUMP come here: the budget ran out.
  s_.pc = pc;
  retired = budget;
  s_.instret = start_instret + retired;
  x[kSinkReg] = 0;
  return SliceEnd::kBudget;
out_early:
  s_.pc = pc;
out_pc_set:
  // Everything else ends the slice early, even on its last instruction.
  retired = budget - remaining;
  s_.instret = start_instret + retired;
  x[kSinkReg] = 0;
  return SliceEnd::kRecheck;
}

}  // namespace ftvm::vm
