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

#include "vm/fpu.h"
#include "vm/hart.h"

namespace ftvm::vm {
namespace {

inline uint32_t unbox_s(uint64_t v) {
  return (v >> 32) == 0xffffffffu ? static_cast<uint32_t>(v) : 0x7fc00000u;
}
inline uint64_t box_s(uint32_t v) { return 0xffffffff00000000ull | v; }
inline uint64_t sext32(uint64_t v) {
  return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)));
}

}  // namespace

SliceEnd Hart::run_slice(uint64_t budget, uint64_t& retired) {
  static const void* const kLabels[kOpCount] = {
#define FTVM_OP_LABEL(name) &&L_##name,
      FTVM_OPS(FTVM_OP_LABEL)
#undef FTVM_OP_LABEL
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
#define DISPATCH() goto* kLabels[insn->op]
#define NEXT()                                   \
  do {                                           \
    pc += insn->len;                             \
    insn += insn->len >> 1;                      \
    if (UNLIKELY(--remaining == 0)) goto out;    \
    DISPATCH();                                  \
  } while (0)
#define NEXT_EXIT()        \
  do {                     \
    pc += insn->len;       \
    --remaining;           \
    goto out;              \
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
  L_##name : {                             \
    T v;                                   \
    LOAD(T, RS1 + IMM, v);                 \
    RD = static_cast<uint64_t>(static_cast<int64_t>(v)); \
    NEXT();                                \
  }
#define STORE_OP(name, T)        \
  L_##name : {                   \
    STORE(T, RS1 + IMM, RS2);    \
    NEXT();                      \
  }
#define ALU(name, expr)  \
  L_##name : {           \
    RD = (expr);         \
    NEXT();              \
  }
#define BRANCH(name, cond)                 \
  L_##name : {                             \
    if (cond) JUMP(pc + IMM);              \
    NEXT();                                \
  }
#define AMO(name, T, expr)                                             \
  L_##name : {                                                         \
    uint8_t* p = amo_ptr(RS1, sizeof(T), false);                       \
    if (p == nullptr) goto trap_pending;                               \
    T a;                                                               \
    std::memcpy(&a, p, sizeof(T));                                     \
    const T b = static_cast<T>(RS2);                                   \
    const T r = (expr);                                                \
    std::memcpy(p, &r, sizeof(T));                                     \
    RD = static_cast<uint64_t>(static_cast<int64_t>(a));               \
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
  L_##name : {                       \
    FP_RM();                         \
    f[insn->rd] = box_s(expr);       \
    FP_WROTE_F();                    \
  }
#define FOP_D(name, expr)            \
  L_##name : {                       \
    FP_RM();                         \
    f[insn->rd] = (expr);            \
    FP_WROTE_F();                    \
  }
#define FOP_X(name, expr)            \
  L_##name : {                       \
    FP_RM();                         \
    RD = (expr);                     \
    FP_WROTE_X();                    \
  }
// Operations without a rounding mode field.
#define FOPN_S(name, expr)           \
  L_##name : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    f[insn->rd] = box_s(expr);       \
    FP_WROTE_F();                    \
  }
#define FOPN_D(name, expr)           \
  L_##name : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    f[insn->rd] = (expr);            \
    FP_WROTE_F();                    \
  }
#define FOPN_X(name, expr)           \
  L_##name : {                       \
    FP_ON();                         \
    uint32_t fl = 0;                 \
    RD = (expr);                     \
    FP_WROTE_X();                    \
  }

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

L_kDecode : {
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
  DISPATCH();
}

L_kPageEnd:
  goto refetch;

L_kIllegal:
illegal:
  SYNC();
  take_trap(kIllegalInsn, insn->raw, false);
  goto out_pc_set;

trap_pending:
  SYNC();
  take_trap(fault_cause_, fault_tval_, false);
  goto out_pc_set;

L_kNop:
  NEXT();

  ALU(kLui, static_cast<uint64_t>(IMM))
  ALU(kAuipc, pc + IMM)
L_kJal : {
  const uint64_t target = pc + IMM;
  RD = pc + insn->len;
  JUMP(target);
}
L_kJalr : {
  const uint64_t target = (RS1 + IMM) & ~1ull;
  RD = pc + insn->len;
  JUMP(target);
}
  BRANCH(kBeq, RS1 == RS2)
  BRANCH(kBne, RS1 != RS2)
  BRANCH(kBlt, static_cast<int64_t>(RS1) < static_cast<int64_t>(RS2))
  BRANCH(kBge, static_cast<int64_t>(RS1) >= static_cast<int64_t>(RS2))
  BRANCH(kBltu, RS1 < RS2)
  BRANCH(kBgeu, RS1 >= RS2)

  LOAD_OP(kLb, int8_t)
  LOAD_OP(kLh, int16_t)
  LOAD_OP(kLw, int32_t)
  LOAD_OP(kLd, uint64_t)
  LOAD_OP(kLbu, uint8_t)
  LOAD_OP(kLhu, uint16_t)
  LOAD_OP(kLwu, uint32_t)
  STORE_OP(kSb, uint8_t)
  STORE_OP(kSh, uint16_t)
  STORE_OP(kSw, uint32_t)
  STORE_OP(kSd, uint64_t)

  ALU(kAddi, RS1 + IMM)
  ALU(kSlti, static_cast<int64_t>(RS1) < IMM ? 1 : 0)
  ALU(kSltiu, RS1 < static_cast<uint64_t>(IMM) ? 1 : 0)
  ALU(kXori, RS1 ^ IMM)
  ALU(kOri, RS1 | IMM)
  ALU(kAndi, RS1 & IMM)
  ALU(kSlli, RS1 << insn->imm)
  ALU(kSrli, RS1 >> insn->imm)
  ALU(kSrai, static_cast<uint64_t>(static_cast<int64_t>(RS1) >> insn->imm))
  ALU(kAdd, RS1 + RS2)
  ALU(kSub, RS1 - RS2)
  ALU(kSll, RS1 << (RS2 & 63))
  ALU(kSlt, static_cast<int64_t>(RS1) < static_cast<int64_t>(RS2) ? 1 : 0)
  ALU(kSltu, RS1 < RS2 ? 1 : 0)
  ALU(kXor, RS1 ^ RS2)
  ALU(kSrl, RS1 >> (RS2 & 63))
  ALU(kSra, static_cast<uint64_t>(static_cast<int64_t>(RS1) >> (RS2 & 63)))
  ALU(kOr, RS1 | RS2)
  ALU(kAnd, RS1 & RS2)
  ALU(kAddiw, sext32(RS1 + IMM))
  ALU(kSlliw, sext32(static_cast<uint32_t>(RS1) << insn->imm))
  ALU(kSrliw, sext32(static_cast<uint32_t>(RS1) >> insn->imm))
  ALU(kSraiw, sext32(static_cast<uint32_t>(static_cast<int32_t>(RS1) >> insn->imm)))
  ALU(kAddw, sext32(RS1 + RS2))
  ALU(kSubw, sext32(RS1 - RS2))
  ALU(kSllw, sext32(static_cast<uint32_t>(RS1) << (RS2 & 31)))
  ALU(kSrlw, sext32(static_cast<uint32_t>(RS1) >> (RS2 & 31)))
  ALU(kSraw, sext32(static_cast<uint32_t>(static_cast<int32_t>(RS1) >> (RS2 & 31))))

  ALU(kMul, RS1 * RS2)
  ALU(kMulh, static_cast<uint64_t>((static_cast<__int128>(static_cast<int64_t>(RS1)) *
                                    static_cast<__int128>(static_cast<int64_t>(RS2))) >> 64))
  ALU(kMulhsu, static_cast<uint64_t>((static_cast<__int128>(static_cast<int64_t>(RS1)) *
                                      static_cast<__int128>(RS2)) >> 64))
  ALU(kMulhu, static_cast<uint64_t>((static_cast<unsigned __int128>(RS1) *
                                     static_cast<unsigned __int128>(RS2)) >> 64))
L_kDiv : {
  const int64_t a = static_cast<int64_t>(RS1), b = static_cast<int64_t>(RS2);
  RD = b == 0 ? ~0ull : (a == INT64_MIN && b == -1) ? static_cast<uint64_t>(a)
                                                     : static_cast<uint64_t>(a / b);
  NEXT();
}
L_kDivu : {
  const uint64_t a = RS1, b = RS2;
  RD = b == 0 ? ~0ull : a / b;
  NEXT();
}
L_kRem : {
  const int64_t a = static_cast<int64_t>(RS1), b = static_cast<int64_t>(RS2);
  RD = b == 0 ? static_cast<uint64_t>(a)
              : (a == INT64_MIN && b == -1) ? 0 : static_cast<uint64_t>(a % b);
  NEXT();
}
L_kRemu : {
  const uint64_t a = RS1, b = RS2;
  RD = b == 0 ? a : a % b;
  NEXT();
}
  ALU(kMulw, sext32(static_cast<uint32_t>(RS1) * static_cast<uint32_t>(RS2)))
L_kDivw : {
  const int32_t a = static_cast<int32_t>(RS1), b = static_cast<int32_t>(RS2);
  RD = b == 0 ? ~0ull : (a == INT32_MIN && b == -1) ? sext32(static_cast<uint32_t>(a))
                                                     : sext32(static_cast<uint32_t>(a / b));
  NEXT();
}
L_kDivuw : {
  const uint32_t a = static_cast<uint32_t>(RS1), b = static_cast<uint32_t>(RS2);
  RD = b == 0 ? ~0ull : sext32(a / b);
  NEXT();
}
L_kRemw : {
  const int32_t a = static_cast<int32_t>(RS1), b = static_cast<int32_t>(RS2);
  RD = b == 0 ? sext32(static_cast<uint32_t>(a))
              : (a == INT32_MIN && b == -1) ? 0 : sext32(static_cast<uint32_t>(a % b));
  NEXT();
}
L_kRemuw : {
  const uint32_t a = static_cast<uint32_t>(RS1), b = static_cast<uint32_t>(RS2);
  RD = b == 0 ? sext32(a) : sext32(a % b);
  NEXT();
}

L_kFence:
L_kFenceI:
  // Stores invalidate decoded code as they happen, so FENCE.I has nothing to do.
  NEXT();

L_kEcall:
  SYNC();
  if (s_.priv == Priv::kSupervisor && ecall_hook_ && ecall_hook_(*this)) {
    pc += insn->len;
    --remaining;
    goto out;
  }
  take_trap(s_.priv == Priv::kUser         ? kEcallU
            : s_.priv == Priv::kSupervisor ? kEcallS
                                           : kEcallM,
            0, false);
  goto out_pc_set;
L_kEbreak:
  SYNC();
  take_trap(kBreakpoint, pc, false);
  goto out_pc_set;
L_kMret:
  if (s_.priv != Priv::kMachine) goto illegal;
  --remaining;
  do_mret();
  goto out_pc_set;
L_kSret:
  if (s_.priv == Priv::kUser ||
      (s_.priv == Priv::kSupervisor && (s_.mstatus & mstatus::kTsr))) {
    goto illegal;
  }
  --remaining;
  do_sret();
  goto out_pc_set;
L_kWfi:
  if (s_.priv == Priv::kUser ||
      (s_.priv == Priv::kSupervisor && (s_.mstatus & mstatus::kTw))) {
    goto illegal;
  }
  s_.wfi = true;
  NEXT_EXIT();
L_kSfenceVma:
  if (s_.priv == Priv::kUser ||
      (s_.priv == Priv::kSupervisor && (s_.mstatus & mstatus::kTvm))) {
    goto illegal;
  }
  flush_tlb();
  NEXT_EXIT();

L_kCsrrw:
L_kCsrrs:
L_kCsrrc:
L_kCsrrwi:
L_kCsrrsi:
L_kCsrrci : {
  SYNC();
  uint64_t result;
  bool exit_after;
  if (!execute_csr(*insn, result, exit_after)) goto illegal;
  RD = result;
  if (exit_after) NEXT_EXIT();
  NEXT();
}

L_kLrW : {
  uint8_t* p = amo_ptr(RS1, 4, true);
  if (p == nullptr) goto trap_pending;
  int32_t v;
  std::memcpy(&v, p, 4);
  s_.reservation_valid = true;
  s_.reservation_addr = RS1;
  RD = static_cast<uint64_t>(static_cast<int64_t>(v));
  NEXT();
}
L_kLrD : {
  uint8_t* p = amo_ptr(RS1, 8, true);
  if (p == nullptr) goto trap_pending;
  uint64_t v;
  std::memcpy(&v, p, 8);
  s_.reservation_valid = true;
  s_.reservation_addr = RS1;
  RD = v;
  NEXT();
}
L_kScW:
L_kScD : {
  const unsigned size = insn->op == kScW ? 4 : 8;
  const uint64_t va = RS1;
  if (!s_.reservation_valid || s_.reservation_addr != va) {
    s_.reservation_valid = false;
    RD = 1;
    NEXT();
  }
  uint8_t* p = amo_ptr(va, size, false);
  if (p == nullptr) goto trap_pending;
  const uint64_t v = RS2;
  std::memcpy(p, &v, size);
  s_.reservation_valid = false;
  RD = 0;
  if (exit_requested_) NEXT_EXIT();
  NEXT();
}
  AMO(kAmoswapW, int32_t, b)
  AMO(kAmoaddW, int32_t, static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b)))
  AMO(kAmoxorW, int32_t, a ^ b)
  AMO(kAmoandW, int32_t, a & b)
  AMO(kAmoorW, int32_t, a | b)
  AMO(kAmominW, int32_t, a < b ? a : b)
  AMO(kAmomaxW, int32_t, a > b ? a : b)
  AMO(kAmominuW, int32_t, static_cast<uint32_t>(a) < static_cast<uint32_t>(b) ? a : b)
  AMO(kAmomaxuW, int32_t, static_cast<uint32_t>(a) > static_cast<uint32_t>(b) ? a : b)
  AMO(kAmoswapD, int64_t, b)
  AMO(kAmoaddD, int64_t, static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)))
  AMO(kAmoxorD, int64_t, a ^ b)
  AMO(kAmoandD, int64_t, a & b)
  AMO(kAmoorD, int64_t, a | b)
  AMO(kAmominD, int64_t, a < b ? a : b)
  AMO(kAmomaxD, int64_t, a > b ? a : b)
  AMO(kAmominuD, int64_t, static_cast<uint64_t>(a) < static_cast<uint64_t>(b) ? a : b)
  AMO(kAmomaxuD, int64_t, static_cast<uint64_t>(a) > static_cast<uint64_t>(b) ? a : b)

L_kFlw : {
  FP_ON();
  uint32_t v;
  LOAD(uint32_t, RS1 + IMM, v);
  f[insn->rd] = box_s(v);
  s_.mstatus |= mstatus::kFs;
  NEXT();
}
L_kFld : {
  FP_ON();
  uint64_t v;
  LOAD(uint64_t, RS1 + IMM, v);
  f[insn->rd] = v;
  s_.mstatus |= mstatus::kFs;
  NEXT();
}
L_kFsw : {
  FP_ON();
  STORE(uint32_t, RS1 + IMM, f[insn->rs2]);
  NEXT();
}
L_kFsd : {
  FP_ON();
  STORE(uint64_t, RS1 + IMM, f[insn->rs2]);
  NEXT();
}

  FOP_S(kFmaddS, fpu::fma_s(FS1, FS2, FS3, false, false, rm, fl))
  FOP_S(kFmsubS, fpu::fma_s(FS1, FS2, FS3, false, true, rm, fl))
  FOP_S(kFnmsubS, fpu::fma_s(FS1, FS2, FS3, true, false, rm, fl))
  FOP_S(kFnmaddS, fpu::fma_s(FS1, FS2, FS3, true, true, rm, fl))
  FOP_S(kFaddS, fpu::add_s(FS1, FS2, rm, fl))
  FOP_S(kFsubS, fpu::sub_s(FS1, FS2, rm, fl))
  FOP_S(kFmulS, fpu::mul_s(FS1, FS2, rm, fl))
  FOP_S(kFdivS, fpu::div_s(FS1, FS2, rm, fl))
  FOP_S(kFsqrtS, fpu::sqrt_s(FS1, rm, fl))
  FOPN_S(kFsgnjS, (FS1 & 0x7fffffffu) | (FS2 & 0x80000000u))
  FOPN_S(kFsgnjnS, (FS1 & 0x7fffffffu) | (~FS2 & 0x80000000u))
  FOPN_S(kFsgnjxS, FS1 ^ (FS2 & 0x80000000u))
  FOPN_S(kFminS, fpu::min_s(FS1, FS2, fl))
  FOPN_S(kFmaxS, fpu::max_s(FS1, FS2, fl))
  FOP_X(kFcvtWS, fpu::cvt_w_s(FS1, rm, fl))
  FOP_X(kFcvtWuS, fpu::cvt_wu_s(FS1, rm, fl))
  FOP_X(kFcvtLS, fpu::cvt_l_s(FS1, rm, fl))
  FOP_X(kFcvtLuS, fpu::cvt_lu_s(FS1, rm, fl))
  FOPN_X(kFmvXW, sext32(f[insn->rs1]))
  FOPN_X(kFclassS, fpu::classify_s(FS1))
  FOPN_X(kFeqS, fpu::eq_s(FS1, FS2, fl) ? 1 : 0)
  FOPN_X(kFltS, fpu::lt_s(FS1, FS2, fl) ? 1 : 0)
  FOPN_X(kFleS, fpu::le_s(FS1, FS2, fl) ? 1 : 0)
  FOP_S(kFcvtSW, fpu::cvt_s_w(static_cast<int32_t>(RS1), rm, fl))
  FOP_S(kFcvtSWu, fpu::cvt_s_wu(static_cast<uint32_t>(RS1), rm, fl))
  FOP_S(kFcvtSL, fpu::cvt_s_l(static_cast<int64_t>(RS1), rm, fl))
  FOP_S(kFcvtSLu, fpu::cvt_s_lu(RS1, rm, fl))
  FOPN_S(kFmvWX, static_cast<uint32_t>(RS1))

  FOP_D(kFmaddD, fpu::fma_d(FD1, FD2, FD3, false, false, rm, fl))
  FOP_D(kFmsubD, fpu::fma_d(FD1, FD2, FD3, false, true, rm, fl))
  FOP_D(kFnmsubD, fpu::fma_d(FD1, FD2, FD3, true, false, rm, fl))
  FOP_D(kFnmaddD, fpu::fma_d(FD1, FD2, FD3, true, true, rm, fl))
  FOP_D(kFaddD, fpu::add_d(FD1, FD2, rm, fl))
  FOP_D(kFsubD, fpu::sub_d(FD1, FD2, rm, fl))
  FOP_D(kFmulD, fpu::mul_d(FD1, FD2, rm, fl))
  FOP_D(kFdivD, fpu::div_d(FD1, FD2, rm, fl))
  FOP_D(kFsqrtD, fpu::sqrt_d(FD1, rm, fl))
  FOPN_D(kFsgnjD, (FD1 & ~(1ull << 63)) | (FD2 & (1ull << 63)))
  FOPN_D(kFsgnjnD, (FD1 & ~(1ull << 63)) | (~FD2 & (1ull << 63)))
  FOPN_D(kFsgnjxD, FD1 ^ (FD2 & (1ull << 63)))
  FOPN_D(kFminD, fpu::min_d(FD1, FD2, fl))
  FOPN_D(kFmaxD, fpu::max_d(FD1, FD2, fl))
  FOP_S(kFcvtSD, fpu::cvt_s_d(FD1, rm, fl))
  FOP_D(kFcvtDS, fpu::cvt_d_s(FS1, rm, fl))
  FOP_X(kFcvtWD, fpu::cvt_w_d(FD1, rm, fl))
  FOP_X(kFcvtWuD, fpu::cvt_wu_d(FD1, rm, fl))
  FOP_X(kFcvtLD, fpu::cvt_l_d(FD1, rm, fl))
  FOP_X(kFcvtLuD, fpu::cvt_lu_d(FD1, rm, fl))
  FOPN_X(kFmvXD, FD1)
  FOPN_X(kFclassD, fpu::classify_d(FD1))
  FOPN_X(kFeqD, fpu::eq_d(FD1, FD2, fl) ? 1 : 0)
  FOPN_X(kFltD, fpu::lt_d(FD1, FD2, fl) ? 1 : 0)
  FOPN_X(kFleD, fpu::le_d(FD1, FD2, fl) ? 1 : 0)
  FOP_D(kFcvtDW, fpu::cvt_d_w(static_cast<int32_t>(RS1), rm, fl))
  FOP_D(kFcvtDWu, fpu::cvt_d_wu(static_cast<uint32_t>(RS1), rm, fl))
  FOP_D(kFcvtDL, fpu::cvt_d_l(static_cast<int64_t>(RS1), rm, fl))
  FOP_D(kFcvtDLu, fpu::cvt_d_lu(RS1, rm, fl))
  FOPN_D(kFmvDX, RS1)

out:
  s_.pc = pc;
out_pc_set:
  retired = budget - remaining;
  s_.instret = start_instret + retired;
  x[kSinkReg] = 0;
  return remaining == 0 ? SliceEnd::kBudget : SliceEnd::kRecheck;
}

}  // namespace ftvm::vm
