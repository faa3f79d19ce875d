// The platform-level interrupt controller, laid out as QEMU virt's SiFive
// PLIC: 96 sources (source 0 reserved, 1..95 usable), 3-bit priorities, and
// one hart with two contexts, 0 for M-mode and 1 for S-mode.
//
// Sources are level-triggered. A source is pending while its line is high
// and it is not claimed; a claim (reading a context's claim register) takes
// the highest-priority pending source enabled for that context whose
// priority exceeds the context's threshold (ties go to the lower id), and
// that source stays out of the pending set until a context it is enabled
// for writes its id to the complete register. If the line is still high
// then, the source is pending again at once. Pending bits are read-only.
//
// Each context drives one output line (M and S external interrupt): high
// while some source could be claimed by it. Outputs are driven after every
// change to anything they depend on, and may be driven again with an
// unchanged level.
#pragma once

#include <array>
#include <cstdint>

#include "vm/device.h"

namespace ftvm::vm {

class Plic final : public Device {
 public:
  static constexpr uint64_t kBase = 0xc00'0000;
  static constexpr uint64_t kSize = 0x60'0000;
  static constexpr unsigned kNumSources = 96;  // ids 0..95; 0 means "none"
  static constexpr unsigned kNumContexts = 2;  // 0: hart 0 M-mode, 1: hart 0 S-mode
  static constexpr unsigned kWords = kNumSources / 32;
  static constexpr uint32_t kPriorityMask = 7;

  // Everything the PLIC holds; plain data, so snapshots can copy it. Bit n
  // of a bitmap is bit n%32 of word n/32.
  struct State {
    std::array<uint32_t, kNumSources> priority{};  // priority[0] stays 0
    std::array<uint32_t, kWords> level{};          // input lines as last driven
    std::array<uint32_t, kWords> claimed{};        // claimed, not yet completed
    std::array<std::array<uint32_t, kWords>, kNumContexts> enable{};
    std::array<uint32_t, kNumContexts> threshold{};
    bool operator==(const State&) const = default;
  };

  // `m_ext` and `s_ext` receive the contexts' outputs and must outlive the
  // PLIC; both are driven low by the constructor.
  Plic(IrqLine* m_ext, IrqLine* s_ext);
  Plic(const Plic&) = delete;
  Plic& operator=(const Plic&) = delete;

  // 4-byte accesses only; any other size is refused. Offsets in the window
  // that hold no register read 0 and ignore writes.
  [[nodiscard]] bool read(uint64_t offset, unsigned size, uint64_t& value) override;
  [[nodiscard]] bool write(uint64_t offset, unsigned size, uint64_t value) override;

  // The input line of source `n`, 1 <= n < kNumSources (checked). The
  // pointer stays valid as long as the PLIC.
  IrqLine* source(unsigned n);

  // The level each context's output was last driven with.
  bool output(unsigned context) const;
  // The value the pending register would read: bit n set if source n is
  // pending.
  bool pending(unsigned n) const;

  State state() const { return s_; }
  // Replaces the whole state (sanitised: source 0 stays inert, priorities and
  // thresholds are masked) and drives both outputs to match.
  void restore(const State& state);

 private:
  class SourceLine final : public IrqLine {
   public:
    void set_level(bool high) override;
    Plic* plic = nullptr;
    unsigned n = 0;
  };

  void set_source_level(unsigned n, bool high);
  uint32_t pending_word(unsigned w) const;
  unsigned best_claimable(unsigned context) const;  // 0 if none
  uint32_t claim(unsigned context);
  void complete(unsigned context, uint32_t id);
  void sanitise();
  void update();

  IrqLine* outputs_[kNumContexts];
  std::array<SourceLine, kNumSources> lines_;
  std::array<bool, kNumContexts> output_level_{};
  State s_;
};

}  // namespace ftvm::vm
