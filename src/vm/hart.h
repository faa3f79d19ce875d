// One RV64GC hart: architectural state, CSRs, traps and interrupts, the Sv39
// MMU with soft TLBs, the decoded-instruction cache, and the interpreter.
//
// Determinism contract: everything the hart does is a function of its state,
// RAM, and device answers. `instret` counts retired instructions exactly, in
// every path (traps, interrupts, exits from a slice). Nothing here reads the
// host clock or host randomness; time comes from the `time_source` callback,
// which the Machine derives from instret and logged skips.
//
// Not thread-safe: a hart is driven by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "vm/bus.h"
#include "vm/decode.h"
#include "vm/jit.h"

namespace ftvm::vm {

enum class Priv : uint8_t { kUser = 0, kSupervisor = 1, kMachine = 3 };

// Exception causes (mcause/scause without the interrupt bit).
enum Exception : uint64_t {
  kInsnMisaligned = 0,
  kInsnAccessFault = 1,
  kIllegalInsn = 2,
  kBreakpoint = 3,
  kLoadMisaligned = 4,
  kLoadAccessFault = 5,
  kStoreMisaligned = 6,
  kStoreAccessFault = 7,
  kEcallU = 8,
  kEcallS = 9,
  kEcallM = 11,
  kInsnPageFault = 12,
  kLoadPageFault = 13,
  kStorePageFault = 15,
};

// Interrupt numbers; bit i of mip/mie.
enum Interrupt : unsigned {
  kSsi = 1, kMsi = 3, kSti = 5, kMti = 7, kSei = 9, kMei = 11,
};

namespace csr {
inline constexpr uint32_t kFflags = 0x001, kFrm = 0x002, kFcsr = 0x003;
inline constexpr uint32_t kCycle = 0xc00, kTime = 0xc01, kInstret = 0xc02;
inline constexpr uint32_t kSstatus = 0x100, kSie = 0x104, kStvec = 0x105, kScounteren = 0x106;
inline constexpr uint32_t kSenvcfg = 0x10a, kSscratch = 0x140, kSepc = 0x141, kScause = 0x142;
inline constexpr uint32_t kStval = 0x143, kSip = 0x144, kSatp = 0x180;
inline constexpr uint32_t kMvendorid = 0xf11, kMarchid = 0xf12, kMimpid = 0xf13;
inline constexpr uint32_t kMhartid = 0xf14, kMconfigptr = 0xf15;
inline constexpr uint32_t kMstatus = 0x300, kMisa = 0x301, kMedeleg = 0x302, kMideleg = 0x303;
inline constexpr uint32_t kMie = 0x304, kMtvec = 0x305, kMcounteren = 0x306, kMenvcfg = 0x30a;
inline constexpr uint32_t kMcountinhibit = 0x320, kMscratch = 0x340, kMepc = 0x341;
inline constexpr uint32_t kMcause = 0x342, kMtval = 0x343, kMip = 0x344;
inline constexpr uint32_t kPmpcfg0 = 0x3a0, kPmpaddr0 = 0x3b0;
inline constexpr uint32_t kMcycle = 0xb00, kMinstret = 0xb02;
inline constexpr uint32_t kTselect = 0x7a0, kTdata1 = 0x7a1;
}  // namespace csr

namespace mstatus {
inline constexpr uint64_t kSie = 1ull << 1, kMie = 1ull << 3, kSpie = 1ull << 5, kMpie = 1ull << 7;
inline constexpr uint64_t kSpp = 1ull << 8, kMppShift = 11, kMpp = 3ull << 11;
inline constexpr uint64_t kFsShift = 13, kFs = 3ull << 13, kMprv = 1ull << 17, kSum = 1ull << 18;
inline constexpr uint64_t kMxr = 1ull << 19, kTvm = 1ull << 20, kTw = 1ull << 21, kTsr = 1ull << 22;
inline constexpr uint64_t kUxl = 3ull << 32, kSxl = 3ull << 34, kSd = 1ull << 63;
}  // namespace mstatus

// The complete architectural state of the hart (part of machine state S).
struct HartState {
  std::array<uint64_t, 33> x{};  // x[32] is the decode-time sink for writes to x0
  std::array<uint64_t, 32> f{};
  uint64_t pc = 0;
  uint64_t instret = 0;
  Priv priv = Priv::kMachine;
  bool wfi = false;
  bool reservation_valid = false;
  uint64_t reservation_addr = 0;
  uint32_t fflags = 0;
  uint32_t frm = 0;
  uint64_t mstatus = 0;
  uint64_t medeleg = 0, mideleg = 0, mie = 0, mip = 0, mtvec = 0, mscratch = 0, mepc = 0;
  uint64_t mcause = 0, mtval = 0, mcounteren = 0, menvcfg = 0, mcountinhibit = 0;
  uint64_t stvec = 0, sscratch = 0, sepc = 0, scause = 0, stval = 0, satp = 0;
  uint64_t scounteren = 0, senvcfg = 0;
  // mcycle/minstret as software sees them: the machine's instret plus an
  // offset (software may write them), or a frozen value while mcountinhibit
  // stops them. Index 0 is the cycle counter, 1 the instret counter.
  std::array<uint64_t, 2> counter_offset{};
  std::array<uint64_t, 2> counter_frozen{};
  bool seip_external = false;  // the PLIC's S-context line, ORed into mip.SEIP on read
  std::array<uint64_t, 16> pmpaddr{};
  std::array<uint8_t, 16> pmpcfg{};
};

// Why run_slice returned.
enum class SliceEnd : uint8_t {
  kBudget,     // executed the whole budget
  kRecheck,    // stopped early: interrupts, time or machine state may need attention
};

class JitCompiler;

class Hart {
 public:
  explicit Hart(Bus& bus);
  ~Hart();
  Hart(const Hart&) = delete;
  Hart& operator=(const Hart&) = delete;

  HartState& state() { return s_; }
  const HartState& state() const { return s_; }

  // Executes at most `budget` instructions (budget > 0). Returns early after a
  // trap, WFI, xRET, a write to an interrupt/translation CSR, an MMIO store,
  // or an environment call handled by the host. `retired` receives the number
  // of instructions retired in this call (also added to state().instret).
  // Runs on the engine set by set_engine; both give identical results.
  SliceEnd run_slice(uint64_t budget, uint64_t& retired) {
    return engine_ == Engine::kJit ? run_slice_jit(budget, retired)
                                   : run_slice_interp(budget, retired);
  }

  // Chooses the engine; kJit needs jit_supported(). May be called at any
  // time between slices.
  void set_engine(Engine e);
  Engine engine() const { return engine_; }
  // The translator's counters (zero when it has not run).
  JitStats jit_stats() const;

  // Takes the highest-priority pending and enabled interrupt, if any, and
  // clears WFI if any interrupt is pending (enabled or not, as WFI requires).
  // Returns true if a trap was taken.
  bool check_interrupts();
  bool interrupt_pending_for_wfi() const { return (effective_mip() & s_.mie) != 0; }

  void set_mip_bit(unsigned bit, bool on) {
    if (on) s_.mip |= 1ull << bit; else s_.mip &= ~(1ull << bit);
  }
  void set_seip_external(bool on) { s_.seip_external = on; }

  // Traps to the handler for exception `cause` with trap value `tval`, at pc.
  void raise_exception(uint64_t cause, uint64_t tval);

  // A host hook for ECALL from S-mode (the machine's SBI implementation).
  // Returns true if it handled the call; the hart then advances past ECALL.
  using EcallHook = std::function<bool(Hart&)>;
  void set_ecall_hook(EcallHook hook) { ecall_hook_ = std::move(hook); }
  // The machine's mtime, read by the time CSR.
  void set_time_source(std::function<uint64_t()> fn) { time_source_ = std::move(fn); }
  // A trap the machine has no M-mode software for: when set, called instead
  // of trapping to M-mode; returns false to stop (the machine records why).
  using MachineTrapHook = std::function<void(uint64_t cause, uint64_t tval)>;
  void set_machine_trap_hook(MachineTrapHook hook) { m_trap_hook_ = std::move(hook); }

  // Requests that the current slice end after the current instruction.
  void request_exit() { exit_requested_ = true; }

  // Physical memory access on behalf of the hart or the host (for SBI calls
  // that pass buffers). Returns false if [pa, pa+len) is not RAM.
  bool read_phys(uint64_t pa, void* out, uint64_t len);

  // Drops translations and decoded code. Call after anything but the hart
  // changes RAM (device DMA, loading images) or the hart's state is restored.
  void flush_tlb();
  void invalidate_code(uint64_t pa, uint64_t len);
  // Forgets the write translations, so the next store to any page takes the
  // slow path and marks the page dirty (Bus::mark_dirty). A cache, hence const.
  void drop_write_tlb() const { wtlb_.fill(TlbEntry{}); }
  void reset_caches();

  // Interrupts pending as software sees them.
  uint64_t effective_mip() const {
    return s_.mip | (s_.seip_external ? (1ull << kSei) : 0);
  }

  // CSR access as an instruction at the current privilege would do it.
  // Returns false if the access is illegal.
  bool csr_read(uint32_t num, uint64_t& value);
  bool csr_write(uint32_t num, uint64_t value);

 private:
  // TLB tags are (va >> 12) | key, where the key (bits 56 and up) names the
  // effective privilege and SUM/MXR, so privilege changes need no flush.
  struct TlbEntry {
    uint64_t tag = ~0ull;
    uintptr_t addend = 0;  // host address = va + addend
  };
  static constexpr unsigned kTlbSize = 256;
  static constexpr unsigned kSlotsPerPage = kPageSize / 2;
  struct CodePage {
    std::array<DecodedInsn, kSlotsPerPage + 2> insn;  // two kPageEnd sentinels
    // Translated blocks by the slot of their first instruction: nullptr if
    // none yet, kJitNone if the slot's instruction is the interpreter's.
    std::array<const void*, kSlotsPerPage> jit{};
    uint8_t* host = nullptr;
    bool active = false;
  };
  static inline const void* const kJitNone = reinterpret_cast<const void*>(1);
  friend class JitCompiler;
  struct FetchEntry {
    uint64_t tag = ~0ull;
    CodePage* page = nullptr;
  };

  SliceEnd run_slice_interp(uint64_t budget, uint64_t& retired);
  SliceEnd run_slice_jit(uint64_t budget, uint64_t& retired);
  // Drops every translated block (the code buffer and the slot tables).
  void drop_jit_blocks();

  enum class Access : uint8_t { kRead, kWrite, kFetch };
  // Translates `va` for `access`; on failure sets fault_cause_/fault_tval_.
  bool translate(uint64_t va, Access access, uint64_t& pa);
  bool load_slow(uint64_t va, unsigned size, uint64_t& value);
  bool store_slow(uint64_t va, unsigned size, uint64_t value);
  bool load_phys_one(uint64_t va, uint64_t pa, unsigned size, uint64_t& value);
  bool store_phys_one(uint64_t va, uint64_t pa, unsigned size, uint64_t value);
  // Host pointer for an aligned atomic access, or nullptr with the fault set.
  uint8_t* amo_ptr(uint64_t va, unsigned size, bool is_load_reserved);
  CodePage* fetch_page(uint64_t va);
  bool fetch_u16(uint64_t va, uint16_t& out);
  void fail(uint64_t cause, uint64_t tval) {
    fault_cause_ = cause;
    fault_tval_ = tval;
  }
  Priv data_priv() const;
  void update_data_key();
  void set_priv(Priv p);
  void do_mret();
  void do_sret();
  bool csr_allowed(uint32_t num, bool write) const;
  void take_trap(uint64_t cause, uint64_t tval, bool interrupt);
  bool execute_csr(const DecodedInsn& d, uint64_t& result, bool& exit_after);
  uint64_t read_counter(unsigned which) const;
  void write_counter(unsigned which, uint64_t value);

  Bus& bus_;
  HartState s_;
  std::array<TlbEntry, kTlbSize> rtlb_;
  mutable std::array<TlbEntry, kTlbSize> wtlb_;
  std::array<FetchEntry, kTlbSize> itlb_;
  uint64_t data_key_ = 0;  // tag key for rtlb_/wtlb_ under the current mode
  std::vector<std::unique_ptr<CodePage>> code_pages_;  // by RAM page number
  EcallHook ecall_hook_;
  MachineTrapHook m_trap_hook_;
  std::function<uint64_t()> time_source_;
  uint64_t fault_cause_ = 0;
  uint64_t fault_tval_ = 0;
  bool exit_requested_ = false;
  Engine engine_ = Engine::kInterp;
  std::unique_ptr<JitCompiler> jit_;  // created on first use
  JitContext jit_ctx_;
};

}  // namespace ftvm::vm
