// The Output Rule: see output_gate.h.
#include "ft/output_gate.h"

#include <algorithm>

namespace ftvm::ft {

void OutputGate::set_mode(Mode mode) {
  mode_ = mode;
  if (mode == Mode::kDropped) drop_all();
}

void OutputGate::on_record(uint64_t count, uint64_t instret) {
  records_ = count;
  last_record_instret_ = instret;
  any_record_ = true;
  // Held outputs are in production (instret) order, so the unassigned ones
  // are a suffix; a record at or after an output's instret covers it.
  for (auto it = held_.rbegin(); it != held_.rend() && it->needs_records == kUnassigned; ++it) {
    if (it->instret <= instret) it->needs_records = count;
  }
}

void OutputGate::on_ack(uint64_t records) { acked_ = std::max(acked_, records); }

void OutputGate::fence(uint64_t records) { fence_ = std::max(fence_, records); }

bool OutputGate::releasable(const HeldOutput& o) const {
  switch (mode_) {
    case Mode::kDirect:
      return true;
    case Mode::kPaired:
      return o.needs_records != kUnassigned && trusted_acked() >= o.needs_records;
    case Mode::kHolding:
    case Mode::kDropped:
      return false;
  }
  return false;
}

bool OutputGate::produce(uint64_t instret, bool frame, std::span<const uint8_t> bytes) {
  if (mode_ == Mode::kDropped) return false;
  HeldOutput o;
  o.instret = instret;
  o.frame = frame;
  // A record already appended at this very instret (an input delivered
  // just before the guest produced the output) covers it.
  o.needs_records = any_record_ && last_record_instret_ >= instret ? records_ : kUnassigned;
  if (held_.empty() && releasable(o)) return true;
  o.bytes.assign(bytes.begin(), bytes.end());
  held_bytes_ += o.bytes.size();
  held_.push_back(std::move(o));
  held_max_ = std::max(held_max_, held_.size());
  return false;
}

void OutputGate::take_releasable(std::vector<HeldOutput>& out) {
  while (!held_.empty() && releasable(held_.front())) {
    held_bytes_ -= held_.front().bytes.size();
    out.push_back(std::move(held_.front()));
    held_.pop_front();
  }
}

void OutputGate::requeue_front(std::vector<HeldOutput> outputs) {
  if (mode_ == Mode::kDropped) return;
  for (auto it = outputs.rbegin(); it != outputs.rend(); ++it) {
    held_bytes_ += it->bytes.size();
    held_.push_front(std::move(*it));
  }
  held_max_ = std::max(held_max_, held_.size());
}

void OutputGate::drop_all() {
  held_.clear();
  held_bytes_ = 0;
}

}  // namespace ftvm::ft
