// PLIC register decoding, claim/complete and output computation; see plic.h.
#include "vm/plic.h"

#include "util/result.h"

namespace ftvm::vm {
namespace {

constexpr uint64_t kPriorityBase = 0x0;
constexpr uint64_t kPendingBase = 0x1000;
constexpr uint64_t kEnableBase = 0x2000;
constexpr uint64_t kEnableStride = 0x80;
constexpr uint64_t kContextBase = 0x20'0000;
constexpr uint64_t kContextStride = 0x1000;
constexpr uint64_t kThresholdOffset = 0x0;
constexpr uint64_t kClaimOffset = 0x4;

bool test_bit(const std::array<uint32_t, Plic::kWords>& bits, unsigned n) {
  return (bits[n / 32] >> (n % 32)) & 1;
}

void assign_bit(std::array<uint32_t, Plic::kWords>& bits, unsigned n, bool value) {
  const uint32_t mask = uint32_t{1} << (n % 32);
  bits[n / 32] = value ? (bits[n / 32] | mask) : (bits[n / 32] & ~mask);
}

}  // namespace

void Plic::SourceLine::set_level(bool high) { plic->set_source_level(n, high); }

Plic::Plic(IrqLine* m_ext, IrqLine* s_ext) : outputs_{m_ext, s_ext} {
  FTVM_CHECK(m_ext != nullptr && s_ext != nullptr);
  for (unsigned n = 0; n < kNumSources; ++n) {
    lines_[n].plic = this;
    lines_[n].n = n;
  }
  update();
}

IrqLine* Plic::source(unsigned n) {
  FTVM_CHECK(n >= 1 && n < kNumSources);
  return &lines_[n];
}

bool Plic::output(unsigned context) const {
  FTVM_CHECK(context < kNumContexts);
  return output_level_[context];
}

bool Plic::pending(unsigned n) const {
  FTVM_CHECK(n < kNumSources);
  return (pending_word(n / 32) >> (n % 32)) & 1;
}

bool Plic::read(uint64_t offset, unsigned size, uint64_t& value) {
  if (size != 4) return false;
  value = 0;
  if (offset < kPriorityBase + 4 * kNumSources) {
    value = s_.priority[offset / 4];
  } else if (offset >= kPendingBase && offset < kPendingBase + 4 * kWords) {
    value = pending_word(static_cast<unsigned>((offset - kPendingBase) / 4));
  } else if (offset >= kEnableBase && offset < kEnableBase + kEnableStride * kNumContexts) {
    const uint64_t context = (offset - kEnableBase) / kEnableStride;
    const uint64_t word = (offset - kEnableBase) % kEnableStride / 4;
    if (word < kWords) value = s_.enable[context][word];
  } else if (offset >= kContextBase && offset < kContextBase + kContextStride * kNumContexts) {
    const auto context = static_cast<unsigned>((offset - kContextBase) / kContextStride);
    const uint64_t reg = (offset - kContextBase) % kContextStride;
    if (reg == kThresholdOffset) value = s_.threshold[context];
    if (reg == kClaimOffset) value = claim(context);
  }
  return true;
}

bool Plic::write(uint64_t offset, unsigned size, uint64_t value) {
  if (size != 4) return false;
  const auto v = static_cast<uint32_t>(value);
  if (offset < kPriorityBase + 4 * kNumSources) {
    if (offset / 4 != 0) s_.priority[offset / 4] = v & kPriorityMask;
  } else if (offset >= kEnableBase && offset < kEnableBase + kEnableStride * kNumContexts) {
    const uint64_t context = (offset - kEnableBase) / kEnableStride;
    const uint64_t word = (offset - kEnableBase) % kEnableStride / 4;
    if (word < kWords) s_.enable[context][word] = word == 0 ? (v & ~uint32_t{1}) : v;
  } else if (offset >= kContextBase && offset < kContextBase + kContextStride * kNumContexts) {
    const auto context = static_cast<unsigned>((offset - kContextBase) / kContextStride);
    const uint64_t reg = (offset - kContextBase) % kContextStride;
    if (reg == kThresholdOffset) s_.threshold[context] = v & kPriorityMask;
    if (reg == kClaimOffset) complete(context, v);
  } else {
    return true;  // pending bits and holes: ignored
  }
  update();
  return true;
}

void Plic::restore(const State& state) {
  s_ = state;
  sanitise();
  update();
}

void Plic::set_source_level(unsigned n, bool high) {
  assign_bit(s_.level, n, high);
  update();
}

uint32_t Plic::pending_word(unsigned w) const { return s_.level[w] & ~s_.claimed[w]; }

unsigned Plic::best_claimable(unsigned context) const {
  unsigned best = 0;
  uint32_t best_priority = s_.threshold[context];
  for (unsigned w = 0; w < kWords; ++w) {
    uint32_t candidates = pending_word(w) & s_.enable[context][w];
    while (candidates != 0) {
      const unsigned n = 32 * w + static_cast<unsigned>(__builtin_ctz(candidates));
      candidates &= candidates - 1;
      if (s_.priority[n] > best_priority) {
        best = n;
        best_priority = s_.priority[n];
      }
    }
  }
  return best;
}

uint32_t Plic::claim(unsigned context) {
  const unsigned n = best_claimable(context);
  if (n != 0) {
    assign_bit(s_.claimed, n, true);
    update();
  }
  return n;
}

void Plic::complete(unsigned context, uint32_t id) {
  // As the PLIC specification says: an id that is out of range, or not
  // enabled for the completing context, is ignored.
  if (id == 0 || id >= kNumSources) return;
  if (!test_bit(s_.enable[context], id)) return;
  assign_bit(s_.claimed, id, false);
}

void Plic::sanitise() {
  s_.priority[0] = 0;
  for (auto& p : s_.priority) p &= kPriorityMask;
  for (auto& t : s_.threshold) t &= kPriorityMask;
  assign_bit(s_.level, 0, false);
  assign_bit(s_.claimed, 0, false);
  for (auto& e : s_.enable) assign_bit(e, 0, false);
}

void Plic::update() {
  for (unsigned c = 0; c < kNumContexts; ++c) {
    output_level_[c] = best_claimable(c) != 0;
    outputs_[c]->set_level(output_level_[c]);
  }
}

}  // namespace ftvm::vm
