// Hart state, CSRs, traps, interrupts and the Sv39 MMU (see hart.h). The
// interpreter loop itself is in interp.cc.
#include "vm/hart.h"

#include <algorithm>
#include <cstring>

#include "util/result.h"
#include "vm/jit_compiler.h"

namespace ftvm::vm {
namespace {

constexpr uint64_t kMisa = (2ull << 62) | (1u << ('A' - 'A')) | (1u << ('C' - 'A')) |
                           (1u << ('D' - 'A')) | (1u << ('F' - 'A')) | (1u << ('I' - 'A')) |
                           (1u << ('M' - 'A')) | (1u << ('S' - 'A')) | (1u << ('U' - 'A'));

constexpr uint64_t kMstatusWritable =
    mstatus::kSie | mstatus::kMie | mstatus::kSpie | mstatus::kMpie | mstatus::kSpp |
    mstatus::kMpp | mstatus::kFs | mstatus::kMprv | mstatus::kSum | mstatus::kMxr |
    mstatus::kTvm | mstatus::kTw | mstatus::kTsr;
constexpr uint64_t kSstatusMask = mstatus::kSie | mstatus::kSpie | mstatus::kSpp | mstatus::kFs |
                                  mstatus::kSum | mstatus::kMxr | mstatus::kUxl | mstatus::kSd;
constexpr uint64_t kSstatusWritable =
    mstatus::kSie | mstatus::kSpie | mstatus::kSpp | mstatus::kFs | mstatus::kSum | mstatus::kMxr;
// Fields whose change alters address translation or pending interrupts.
constexpr uint64_t kMstatusTranslation = mstatus::kMprv | mstatus::kSum | mstatus::kMxr |
                                         mstatus::kMpp;

constexpr uint64_t kSupervisorInterrupts = (1u << kSsi) | (1u << kSti) | (1u << kSei);
constexpr uint64_t kAllInterrupts = kSupervisorInterrupts | (1u << kMsi) | (1u << kMti) |
                                    (1u << kMei);
constexpr uint64_t kDelegableExceptions = 0xb3ff;  // all but ecall from M and reserved causes

constexpr uint64_t kPteV = 1, kPteR = 2, kPteW = 4, kPteX = 8, kPteU = 16, kPteA = 64,
                   kPteD = 128;
constexpr uint64_t kPpnMask = (1ull << 44) - 1;

}  // namespace

Hart::Hart(Bus& bus) : bus_(bus) {
  s_.mstatus = (2ull << 32) | (2ull << 34);  // UXL = SXL = 64-bit
  code_pages_.resize(bus.ram_size() / kPageSize);
  update_data_key();
}

Hart::~Hart() = default;

// ---- privilege and translation keys ----

Priv Hart::data_priv() const {
  if (s_.priv == Priv::kMachine && (s_.mstatus & mstatus::kMprv)) {
    return static_cast<Priv>((s_.mstatus >> mstatus::kMppShift) & 3);
  }
  return s_.priv;
}

void Hart::update_data_key() {
  data_key_ = (static_cast<uint64_t>(data_priv()) << 56) |
              ((s_.mstatus & mstatus::kSum) ? (1ull << 58) : 0) |
              ((s_.mstatus & mstatus::kMxr) ? (1ull << 59) : 0);
}

void Hart::set_priv(Priv p) {
  s_.priv = p;
  update_data_key();
}

void Hart::flush_tlb() {
  rtlb_.fill(TlbEntry{});
  wtlb_.fill(TlbEntry{});
  itlb_.fill(FetchEntry{});
}

void Hart::reset_caches() {
  flush_tlb();
  drop_jit_blocks();
  for (auto& p : code_pages_) p.reset();
  update_data_key();
  exit_requested_ = true;
}

void Hart::invalidate_code(uint64_t pa, uint64_t len) {
  const uint64_t ram_end = bus_.ram_base() + bus_.ram_size();
  const uint64_t lo = std::max(pa, bus_.ram_base());
  const uint64_t hi = len > ram_end - std::min(pa, ram_end) ? ram_end : pa + len;
  if (len == 0 || lo >= hi) return;
  const uint64_t first = (lo - bus_.ram_base()) >> kPageShift;
  const uint64_t last = (hi - 1 - bus_.ram_base()) >> kPageShift;
  bool any = false;
  for (uint64_t i = first; i <= last && i < code_pages_.size(); ++i) {
    CodePage* page = code_pages_[i].get();
    if (page == nullptr || !page->active) continue;
    for (unsigned k = 0; k < kSlotsPerPage; ++k) page->insn[k] = DecodedInsn{};
    page->jit.fill(nullptr);
    page->active = false;
    any = true;
  }
  if (any) {
    itlb_.fill(FetchEntry{});
    exit_requested_ = true;
  }
}

bool Hart::read_phys(uint64_t pa, void* out, uint64_t len) {
  const uint8_t* p = bus_.ram_ptr(pa, len);
  if (p == nullptr) return false;
  std::memcpy(out, p, len);
  return true;
}

// ---- Sv39 ----

bool Hart::translate(uint64_t va, Access access, uint64_t& pa) {
  const Priv p = access == Access::kFetch ? s_.priv : data_priv();
  const uint64_t mode = s_.satp >> 60;
  if (p == Priv::kMachine || mode == 0) {
    pa = va;
    return true;
  }
  const uint64_t page_fault = access == Access::kFetch  ? kInsnPageFault
                              : access == Access::kRead ? kLoadPageFault
                                                        : kStorePageFault;
  const uint64_t access_fault = access == Access::kFetch  ? kInsnAccessFault
                                : access == Access::kRead ? kLoadAccessFault
                                                          : kStoreAccessFault;
  if (static_cast<uint64_t>(static_cast<int64_t>(va << 25) >> 25) != va) {
    fail(page_fault, va);
    return false;
  }
  uint64_t table = (s_.satp & kPpnMask) << kPageShift;
  for (int level = 2; level >= 0; --level) {
    const uint64_t index = (va >> (kPageShift + 9 * level)) & 511;
    uint8_t* pte_ptr = bus_.ram_ptr(table + index * 8, 8);
    if (pte_ptr == nullptr) {
      fail(access_fault, va);
      return false;
    }
    uint64_t pte;
    std::memcpy(&pte, pte_ptr, 8);
    if (!(pte & kPteV) || (!(pte & kPteR) && (pte & kPteW)) || (pte >> 54) != 0) {
      fail(page_fault, va);
      return false;
    }
    const uint64_t ppn = (pte >> 10) & kPpnMask;
    if (!(pte & (kPteR | kPteX))) {
      table = ppn << kPageShift;
      continue;
    }
    // A leaf: check permissions.
    bool ok;
    if (p == Priv::kUser) {
      ok = (pte & kPteU) != 0;
    } else {
      ok = !(pte & kPteU) || (access != Access::kFetch && (s_.mstatus & mstatus::kSum));
    }
    switch (access) {
      case Access::kFetch: ok = ok && (pte & kPteX); break;
      case Access::kRead:
        ok = ok && ((pte & kPteR) || ((s_.mstatus & mstatus::kMxr) && (pte & kPteX)));
        break;
      case Access::kWrite: ok = ok && (pte & kPteW); break;
    }
    const uint64_t low_ppn_mask = (1ull << (9 * level)) - 1;
    if (!ok || (ppn & low_ppn_mask) != 0) {
      fail(page_fault, va);
      return false;
    }
    const uint64_t updated = pte | kPteA | (access == Access::kWrite ? kPteD : 0);
    if (updated != pte) {
      std::memcpy(pte_ptr, &updated, 8);
      bus_.mark_dirty(table + index * 8, 8);
      invalidate_code(table + index * 8, 8);
    }
    const uint64_t offset_mask = (1ull << (kPageShift + 9 * level)) - 1;
    pa = ((ppn << kPageShift) & ~offset_mask) | (va & offset_mask);
    return true;
  }
  fail(page_fault, va);
  return false;
}

// ---- slow memory paths ----

bool Hart::load_phys_one(uint64_t va, uint64_t pa, unsigned size, uint64_t& value) {
  if (const uint8_t* p = bus_.ram_ptr(pa, size)) {
    value = 0;
    std::memcpy(&value, p, size);
    return true;
  }
  if (!bus_.mmio_read(pa, size, value)) {
    fail(kLoadAccessFault, va);
    return false;
  }
  return true;
}

bool Hart::store_phys_one(uint64_t va, uint64_t pa, unsigned size, uint64_t value) {
  if (uint8_t* p = bus_.ram_ptr(pa, size)) {
    bus_.mark_dirty(pa, size);
    const uint64_t page = (pa - bus_.ram_base()) >> kPageShift;
    const CodePage* cp = code_pages_[page].get();
    if (cp != nullptr && cp->active) invalidate_code(pa, size);
    std::memcpy(p, &value, size);
    return true;
  }
  if (!bus_.mmio_write(pa, size, value)) {
    fail(kStoreAccessFault, va);
    return false;
  }
  exit_requested_ = true;  // a device may have changed interrupts or power state
  return true;
}

bool Hart::load_slow(uint64_t va, unsigned size, uint64_t& value) {
  const uint64_t offset = va & (kPageSize - 1);
  if (offset + size > kPageSize) {
    // Crosses a page: translate both halves before touching anything.
    uint64_t pa0, pa1;
    const uint64_t va1 = (va | (kPageSize - 1)) + 1;
    if (!translate(va, Access::kRead, pa0) || !translate(va1, Access::kRead, pa1)) {
      fault_tval_ = va;
      return false;
    }
    value = 0;
    for (unsigned i = 0; i < size; ++i) {
      const uint64_t a = va + i;
      const uint64_t pa = a < va1 ? pa0 + i : pa1 + (a - va1);
      uint64_t b;
      if (!load_phys_one(va, pa, 1, b)) return false;
      value |= b << (8 * i);
    }
    return true;
  }
  uint64_t pa;
  if (!translate(va, Access::kRead, pa)) return false;
  if (uint8_t* page = bus_.ram_ptr(pa & ~(kPageSize - 1), kPageSize)) {
    TlbEntry& e = rtlb_[(va >> kPageShift) % kTlbSize];
    e.tag = (va >> kPageShift) | data_key_;
    e.addend = reinterpret_cast<uintptr_t>(page) - (va & ~(kPageSize - 1));
    value = 0;
    std::memcpy(&value, page + offset, size);
    return true;
  }
  if ((pa & (size - 1)) != 0) {
    // Misaligned device access: split into bytes.
    value = 0;
    for (unsigned i = 0; i < size; ++i) {
      uint64_t b;
      if (!load_phys_one(va, pa + i, 1, b)) return false;
      value |= b << (8 * i);
    }
    return true;
  }
  return load_phys_one(va, pa, size, value);
}

bool Hart::store_slow(uint64_t va, unsigned size, uint64_t value) {
  const uint64_t offset = va & (kPageSize - 1);
  if (offset + size > kPageSize) {
    uint64_t pa0, pa1;
    const uint64_t va1 = (va | (kPageSize - 1)) + 1;
    if (!translate(va, Access::kWrite, pa0) || !translate(va1, Access::kWrite, pa1)) {
      fault_tval_ = va;
      return false;
    }
    for (unsigned i = 0; i < size; ++i) {
      const uint64_t a = va + i;
      const uint64_t pa = a < va1 ? pa0 + i : pa1 + (a - va1);
      if (!store_phys_one(va, pa, 1, (value >> (8 * i)) & 0xff)) return false;
    }
    return true;
  }
  uint64_t pa;
  if (!translate(va, Access::kWrite, pa)) return false;
  if (uint8_t* page = bus_.ram_ptr(pa & ~(kPageSize - 1), kPageSize)) {
    // The page is dirty from here on, including every store through the
    // write-TLB entry installed below (drop_write_tlb ends that).
    bus_.mark_dirty(pa, size);
    const uint64_t index = (pa - bus_.ram_base()) >> kPageShift;
    const CodePage* cp = code_pages_[index].get();
    if (cp != nullptr && cp->active) {
      invalidate_code(pa, size);
    } else {
      TlbEntry& e = wtlb_[(va >> kPageShift) % kTlbSize];
      e.tag = (va >> kPageShift) | data_key_;
      e.addend = reinterpret_cast<uintptr_t>(page) - (va & ~(kPageSize - 1));
    }
    std::memcpy(page + offset, &value, size);
    return true;
  }
  if ((pa & (size - 1)) != 0) {
    for (unsigned i = 0; i < size; ++i) {
      if (!store_phys_one(va, pa + i, 1, (value >> (8 * i)) & 0xff)) return false;
    }
    return true;
  }
  return store_phys_one(va, pa, size, value);
}

uint8_t* Hart::amo_ptr(uint64_t va, unsigned size, bool is_load_reserved) {
  if ((va & (size - 1)) != 0) {
    fail(is_load_reserved ? kLoadMisaligned : kStoreMisaligned, va);
    return nullptr;
  }
  // Aligned, so within one page: the TLB entry a load (LR) or a store (the
  // rest) would use, when there is one, says all a page walk would.
  std::array<TlbEntry, kTlbSize>& tlb = is_load_reserved ? rtlb_ : wtlb_;
  TlbEntry& e = tlb[(va >> kPageShift) % kTlbSize];
  if (e.tag == ((va >> kPageShift) | data_key_)) return reinterpret_cast<uint8_t*>(va + e.addend);
  uint64_t pa;
  if (!translate(va, is_load_reserved ? Access::kRead : Access::kWrite, pa)) return nullptr;
  uint8_t* p = bus_.ram_ptr(pa, size);
  if (p == nullptr) {
    fail(is_load_reserved ? kLoadAccessFault : kStoreAccessFault, va);
    return nullptr;
  }
  bool fill = true;
  if (!is_load_reserved) {
    // As store_slow: dirty from here on, and no write entry for a page
    // that holds decoded code.
    bus_.mark_dirty(pa, size);
    const CodePage* cp = code_pages_[(pa - bus_.ram_base()) >> kPageShift].get();
    if (cp != nullptr && cp->active) {
      invalidate_code(pa, size);
      fill = false;
    }
  }
  if (fill) {
    e.tag = (va >> kPageShift) | data_key_;
    e.addend = reinterpret_cast<uintptr_t>(p - (pa & (kPageSize - 1))) - (va & ~(kPageSize - 1));
  }
  return p;
}

Hart::CodePage* Hart::fetch_page(uint64_t va) {
  const uint64_t tag = (va >> kPageShift) | (static_cast<uint64_t>(s_.priv) << 56);
  FetchEntry& e = itlb_[(va >> kPageShift) % kTlbSize];
  if (e.tag == tag) return e.page;
  uint64_t pa;
  if (!translate(va, Access::kFetch, pa)) return nullptr;
  uint8_t* host = bus_.ram_ptr(pa & ~(kPageSize - 1), kPageSize);
  if (host == nullptr) {
    fail(kInsnAccessFault, va);
    return nullptr;
  }
  auto& slot = code_pages_[(pa - bus_.ram_base()) >> kPageShift];
  if (!slot) {
    slot = std::make_unique<CodePage>();
    slot->insn[kSlotsPerPage].op = kPageEnd;
    slot->insn[kSlotsPerPage + 1].op = kPageEnd;
    slot->host = host;
  }
  if (!slot->active) {
    slot->active = true;
    wtlb_.fill(TlbEntry{});  // stores to this page must now see the code
  }
  e.tag = tag;
  e.page = slot.get();
  return e.page;
}

bool Hart::fetch_u16(uint64_t va, uint16_t& out) {
  CodePage* page = fetch_page(va);
  if (page == nullptr) return false;
  std::memcpy(&out, page->host + (va & (kPageSize - 1)), 2);
  return true;
}

// ---- traps and interrupts ----

void Hart::take_trap(uint64_t cause, uint64_t tval, bool interrupt) {
  s_.wfi = false;
  const uint64_t bit = 1ull << cause;
  const bool delegate =
      s_.priv != Priv::kMachine && ((interrupt ? s_.mideleg : s_.medeleg) & bit) != 0;
  const uint64_t xcause = cause | (interrupt ? (1ull << 63) : 0);
  if (delegate) {
    s_.scause = xcause;
    s_.sepc = s_.pc;
    s_.stval = tval;
    uint64_t st = s_.mstatus;
    st = (st & ~mstatus::kSpie) | ((st & mstatus::kSie) ? mstatus::kSpie : 0);
    st &= ~mstatus::kSie;
    st = (st & ~mstatus::kSpp) | (s_.priv == Priv::kSupervisor ? mstatus::kSpp : 0);
    s_.mstatus = st;
    set_priv(Priv::kSupervisor);
    s_.pc = (s_.stvec & ~3ull) + (((s_.stvec & 1) && interrupt) ? 4 * cause : 0);
    return;
  }
  if (m_trap_hook_) {
    m_trap_hook_(xcause, tval);
    exit_requested_ = true;
    return;
  }
  s_.mcause = xcause;
  s_.mepc = s_.pc;
  s_.mtval = tval;
  uint64_t st = s_.mstatus;
  st = (st & ~mstatus::kMpie) | ((st & mstatus::kMie) ? mstatus::kMpie : 0);
  st &= ~mstatus::kMie;
  st = (st & ~mstatus::kMpp) | (static_cast<uint64_t>(s_.priv) << mstatus::kMppShift);
  s_.mstatus = st;
  set_priv(Priv::kMachine);
  s_.pc = (s_.mtvec & ~3ull) + (((s_.mtvec & 1) && interrupt) ? 4 * cause : 0);
}

void Hart::raise_exception(uint64_t cause, uint64_t tval) { take_trap(cause, tval, false); }

bool Hart::check_interrupts() {
  const uint64_t pending = effective_mip() & s_.mie;
  if (pending == 0) return false;
  s_.wfi = false;
  const bool m_enabled =
      s_.priv != Priv::kMachine || (s_.mstatus & mstatus::kMie) != 0;
  const bool s_enabled = s_.priv == Priv::kUser ||
                         (s_.priv == Priv::kSupervisor && (s_.mstatus & mstatus::kSie) != 0);
  uint64_t candidates = 0;
  if (m_enabled) candidates |= pending & ~s_.mideleg;
  if (s_enabled) candidates |= pending & s_.mideleg;
  if (candidates == 0) return false;
  static constexpr unsigned kOrder[] = {kMei, kMsi, kMti, kSei, kSsi, kSti};
  // Machine-level interrupts outrank supervisor-level ones.
  for (bool machine_level : {true, false}) {
    const uint64_t level = candidates & (machine_level ? ~s_.mideleg : s_.mideleg);
    for (unsigned irq : kOrder) {
      if (level & (1ull << irq)) {
        take_trap(irq, 0, true);
        return true;
      }
    }
  }
  return false;
}

void Hart::do_mret() {
  uint64_t st = s_.mstatus;
  const Priv prev = static_cast<Priv>((st >> mstatus::kMppShift) & 3);
  st = (st & ~mstatus::kMie) | ((st & mstatus::kMpie) ? mstatus::kMie : 0);
  st |= mstatus::kMpie;
  st &= ~mstatus::kMpp;
  if (prev != Priv::kMachine) st &= ~mstatus::kMprv;
  s_.mstatus = st;
  set_priv(prev);
  s_.pc = s_.mepc;
}

void Hart::do_sret() {
  uint64_t st = s_.mstatus;
  const Priv prev = (st & mstatus::kSpp) ? Priv::kSupervisor : Priv::kUser;
  st = (st & ~mstatus::kSie) | ((st & mstatus::kSpie) ? mstatus::kSie : 0);
  st |= mstatus::kSpie;
  st &= ~mstatus::kSpp;
  st &= ~mstatus::kMprv;
  s_.mstatus = st;
  set_priv(prev);
  s_.pc = s_.sepc;
}

// ---- CSRs ----

bool Hart::csr_allowed(uint32_t num, bool write) const {
  const unsigned level = (num >> 8) & 3;
  if (static_cast<unsigned>(s_.priv) < level) return false;
  if (write && (num >> 10) == 3) return false;
  if (num == csr::kSatp && s_.priv == Priv::kSupervisor && (s_.mstatus & mstatus::kTvm)) {
    return false;
  }
  if (num >= 0xc00 && num <= 0xc1f) {
    const uint64_t bit = 1ull << (num - 0xc00);
    if (s_.priv < Priv::kMachine && !(s_.mcounteren & bit)) return false;
    if (s_.priv == Priv::kUser && !(s_.scounteren & bit)) return false;
  }
  if ((num == csr::kFflags || num == csr::kFrm || num == csr::kFcsr) &&
      (s_.mstatus & mstatus::kFs) == 0) {
    return false;
  }
  return true;
}

bool Hart::csr_read(uint32_t num, uint64_t& v) {
  switch (num) {
    case csr::kFflags: v = s_.fflags; return true;
    case csr::kFrm: v = s_.frm; return true;
    case csr::kFcsr: v = (s_.frm << 5) | s_.fflags; return true;
    case csr::kCycle: case csr::kMcycle: v = read_counter(0); return true;
    case csr::kInstret: case csr::kMinstret: v = read_counter(1); return true;
    case csr::kTime: v = time_source_ ? time_source_() : 0; return true;
    case csr::kSstatus: {
      uint64_t st = s_.mstatus & kSstatusMask;
      if ((s_.mstatus & mstatus::kFs) == mstatus::kFs) st |= mstatus::kSd;
      v = st;
      return true;
    }
    case csr::kSie: v = s_.mie & s_.mideleg; return true;
    case csr::kStvec: v = s_.stvec; return true;
    case csr::kScounteren: v = s_.scounteren; return true;
    case csr::kSenvcfg: v = s_.senvcfg; return true;
    case csr::kSscratch: v = s_.sscratch; return true;
    case csr::kSepc: v = s_.sepc; return true;
    case csr::kScause: v = s_.scause; return true;
    case csr::kStval: v = s_.stval; return true;
    case csr::kSip: v = effective_mip() & s_.mideleg; return true;
    case csr::kSatp: v = s_.satp; return true;
    case csr::kMvendorid: case csr::kMarchid: case csr::kMimpid: case csr::kMhartid:
    case csr::kMconfigptr:
      v = 0;
      return true;
    case csr::kMstatus: {
      uint64_t st = s_.mstatus;
      if ((st & mstatus::kFs) == mstatus::kFs) st |= mstatus::kSd;
      v = st;
      return true;
    }
    case csr::kMisa: v = kMisa; return true;
    case csr::kMedeleg: v = s_.medeleg; return true;
    case csr::kMideleg: v = s_.mideleg; return true;
    case csr::kMie: v = s_.mie; return true;
    case csr::kMtvec: v = s_.mtvec; return true;
    case csr::kMcounteren: v = s_.mcounteren; return true;
    case csr::kMenvcfg: v = s_.menvcfg; return true;
    case csr::kMcountinhibit: v = s_.mcountinhibit; return true;
    case csr::kMscratch: v = s_.mscratch; return true;
    case csr::kMepc: v = s_.mepc; return true;
    case csr::kMcause: v = s_.mcause; return true;
    case csr::kMtval: v = s_.mtval; return true;
    case csr::kMip: v = effective_mip(); return true;
  }
  if (num >= csr::kPmpcfg0 && num < csr::kPmpcfg0 + 4) {
    if (num & 1) return false;  // odd pmpcfg registers do not exist on RV64
    const unsigned base = (num - csr::kPmpcfg0) * 4;
    v = 0;
    for (unsigned i = 0; i < 8; ++i) v |= static_cast<uint64_t>(s_.pmpcfg[base + i]) << (8 * i);
    return true;
  }
  if (num >= csr::kPmpaddr0 && num < csr::kPmpaddr0 + 16) {
    v = s_.pmpaddr[num - csr::kPmpaddr0];
    return true;
  }
  // Unimplemented hardware performance counters read as zero.
  if ((num >= 0xc03 && num <= 0xc1f) || (num >= 0xb03 && num <= 0xb1f) ||
      (num >= 0x323 && num <= 0x33f)) {
    v = 0;
    return true;
  }
  return false;
}

bool Hart::csr_write(uint32_t num, uint64_t v) {
  switch (num) {
    case csr::kFflags:
      s_.fflags = v & 0x1f;
      s_.mstatus |= mstatus::kFs;
      return true;
    case csr::kFrm:
      s_.frm = v & 7;
      s_.mstatus |= mstatus::kFs;
      return true;
    case csr::kFcsr:
      s_.fflags = v & 0x1f;
      s_.frm = (v >> 5) & 7;
      s_.mstatus |= mstatus::kFs;
      return true;
    case csr::kMcycle: write_counter(0, v); return true;
    case csr::kMinstret: write_counter(1, v); return true;
    case csr::kSstatus:
      s_.mstatus = (s_.mstatus & ~kSstatusWritable) | (v & kSstatusWritable);
      update_data_key();
      exit_requested_ = true;
      return true;
    case csr::kSie:
      s_.mie = (s_.mie & ~s_.mideleg) | (v & s_.mideleg);
      exit_requested_ = true;
      return true;
    case csr::kStvec: s_.stvec = v & ~2ull; return true;
    case csr::kScounteren: s_.scounteren = v & 0xffffffff; return true;
    case csr::kSenvcfg: s_.senvcfg = v & 1; return true;
    case csr::kSscratch: s_.sscratch = v; return true;
    case csr::kSepc: s_.sepc = v & ~1ull; return true;
    case csr::kScause: s_.scause = v; return true;
    case csr::kStval: s_.stval = v; return true;
    case csr::kSip: {
      const uint64_t mask = (1u << kSsi) & s_.mideleg;
      s_.mip = (s_.mip & ~mask) | (v & mask);
      exit_requested_ = true;
      return true;
    }
    case csr::kSatp: {
      const uint64_t mode = v >> 60;
      if (mode != 0 && mode != 8) return true;  // unsupported mode: no effect
      s_.satp = v & ((0xfull << 60) | kPpnMask);  // no ASID bits
      flush_tlb();
      exit_requested_ = true;
      return true;
    }
    case csr::kMstatus: {
      uint64_t nv = (s_.mstatus & ~kMstatusWritable) | (v & kMstatusWritable);
      if (((nv >> mstatus::kMppShift) & 3) == 2) nv &= ~mstatus::kMpp;
      const bool translation = ((nv ^ s_.mstatus) & kMstatusTranslation) != 0;
      s_.mstatus = nv;
      if (translation) update_data_key();
      exit_requested_ = true;
      return true;
    }
    case csr::kMisa: return true;
    case csr::kMedeleg: s_.medeleg = v & kDelegableExceptions; return true;
    case csr::kMideleg:
      s_.mideleg = v & kSupervisorInterrupts;
      exit_requested_ = true;
      return true;
    case csr::kMie:
      s_.mie = v & kAllInterrupts;
      exit_requested_ = true;
      return true;
    case csr::kMtvec: s_.mtvec = v & ~2ull; return true;
    case csr::kMcounteren: s_.mcounteren = v & 0xffffffff; return true;
    case csr::kMenvcfg: s_.menvcfg = v & 1; return true;
    case csr::kMcountinhibit: {
      // Freeze or thaw the software views; the machine's instret never stops.
      const uint64_t old = s_.mcountinhibit;
      for (unsigned which : {0u, 1u}) {
        const uint64_t bit = which == 0 ? 1 : 4;
        if ((v & bit) && !(old & bit)) s_.counter_frozen[which] = read_counter(which);
        if (!(v & bit) && (old & bit)) {
          s_.mcountinhibit &= ~bit;
          write_counter(which, s_.counter_frozen[which]);
        }
      }
      s_.mcountinhibit = v & 0xfffffffd;
      return true;
    }
    case csr::kMscratch: s_.mscratch = v; return true;
    case csr::kMepc: s_.mepc = v & ~1ull; return true;
    case csr::kMcause: s_.mcause = v; return true;
    case csr::kMtval: s_.mtval = v; return true;
    case csr::kMip: {
      const uint64_t mask = kSupervisorInterrupts;
      s_.mip = (s_.mip & ~mask) | (v & mask);
      exit_requested_ = true;
      return true;
    }
  }
  if (num >= csr::kPmpcfg0 && num < csr::kPmpcfg0 + 4) {
    if (num & 1) return false;
    const unsigned base = (num - csr::kPmpcfg0) * 4;
    for (unsigned i = 0; i < 8; ++i) {
      if (s_.pmpcfg[base + i] & 0x80) continue;  // locked
      s_.pmpcfg[base + i] = static_cast<uint8_t>((v >> (8 * i)) & 0x9f);
    }
    return true;
  }
  if (num >= csr::kPmpaddr0 && num < csr::kPmpaddr0 + 16) {
    s_.pmpaddr[num - csr::kPmpaddr0] = v & ((1ull << 54) - 1);
    return true;
  }
  if ((num >= 0xb03 && num <= 0xb1f) || (num >= 0x323 && num <= 0x33f)) return true;
  return false;
}

uint64_t Hart::read_counter(unsigned which) const {
  const uint64_t bit = which == 0 ? 1 : 4;
  if (s_.mcountinhibit & bit) return s_.counter_frozen[which];
  return s_.instret + s_.counter_offset[which];
}

void Hart::write_counter(unsigned which, uint64_t value) {
  const uint64_t bit = which == 0 ? 1 : 4;
  if (s_.mcountinhibit & bit) {
    s_.counter_frozen[which] = value;
    return;
  }
  // The write takes effect after the writing instruction retires: the next
  // instruction reads `value`.
  s_.counter_offset[which] = value - (s_.instret + 1);
}

bool Hart::execute_csr(const DecodedInsn& d, uint64_t& result, bool& exit_after) {
  const uint32_t num = static_cast<uint32_t>(d.imm) & 0xfff;
  const bool imm_form = d.op == kCsrrwi || d.op == kCsrrsi || d.op == kCsrrci;
  const uint64_t operand = imm_form ? d.rs1 : s_.x[d.rs1];
  const bool is_write_op = d.op == kCsrrw || d.op == kCsrrwi;
  // csrrs/csrrc with x0 / zero immediate do not write.
  const bool writes = is_write_op || d.rs1 != 0;
  const bool reads = !is_write_op || d.rd != kSinkReg;
  if (!csr_allowed(num, writes)) return false;
  uint64_t old = 0;
  if (reads || !is_write_op) {
    if (!csr_read(num, old)) return false;
  } else {
    uint64_t probe;
    if (!csr_read(num, probe)) return false;
  }
  if (writes) {
    uint64_t nv = operand;
    if (d.op == kCsrrs || d.op == kCsrrsi) nv = old | operand;
    if (d.op == kCsrrc || d.op == kCsrrci) nv = old & ~operand;
    if (!csr_write(num, nv)) return false;
  }
  result = old;
  exit_after = exit_requested_;
  return true;
}

}  // namespace ftvm::vm
