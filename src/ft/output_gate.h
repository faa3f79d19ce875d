// The Output Rule (DESIGN.md §5, docs/ft-protocol.md "The Output Rule").
//
// Every output the guest produces (a transmitted frame, console bytes) is
// held until the backup holds a log entry at or after the instret where the
// output was produced. A backup that goes live then re-executes, with no new
// input, at least up to every output a client may have seen, and reproduces
// each byte for byte.
//
// The gate does not know about sockets or threads: the log stream tells it
// each record it appends (its number and instret), the channel tells it how
// many records the backup acknowledged, and the caller takes what may leave.
// Not thread-safe; pure and deterministic (no clock).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <span>
#include <vector>

namespace ftvm::ft {

struct HeldOutput {
  uint64_t instret = 0;   // where the guest produced it
  // The number of log records the backup must hold before it may leave: one
  // more than the number of the first record at or after `instret`.
  // kUnassigned until such a record has been appended.
  uint64_t needs_records = 0;
  bool frame = false;     // a frame (else console bytes)
  std::vector<uint8_t> bytes;
};

class OutputGate {
 public:
  static constexpr uint64_t kUnassigned = std::numeric_limits<uint64_t>::max();

  enum class Mode : uint8_t {
    kDropped,  // a backup replaying, or a halted node: outputs are discarded
    kPaired,   // the Output Rule: held until acknowledged
    kHolding,  // claiming or deciding: everything is held, nothing leaves
    kDirect,   // solo (the arbiter granted us the VM alone): outputs leave at once
  };

  Mode mode() const { return mode_; }
  // Switching to kDirect makes every held output releasable; to kDropped
  // discards what is held.
  void set_mode(Mode mode);

  // The log stream appended record number `count - 1` (so `count` records
  // now exist) at `instret`. Records arrive in nondecreasing instret order.
  void on_record(uint64_t count, uint64_t instret);
  // The backup acknowledged receipt of `records` records (monotonic; lower
  // values are ignored).
  void on_ack(uint64_t records);
  // Acknowledgements below `records` are not trusted any more: this node
  // was frozen and cannot tell whether its backup took over meanwhile. Only
  // an acknowledgement of `records` (a record written after waking) proves
  // the backup is still ours.
  void fence(uint64_t records);
  bool fenced() const { return acked_ < fence_; }

  // The guest produced an output at `instret`. Returns true when it may
  // leave at once (then it is not held: the caller sends it); false when
  // it is held (or dropped, in kDropped mode).
  bool produce(uint64_t instret, bool frame, std::span<const uint8_t> bytes);

  // Moves every output that may leave now, in production order, to `out`.
  void take_releasable(std::vector<HeldOutput>& out);
  // Puts outputs taken (or produced) but not sent back in front of what is
  // held, in order: the caller found, just before sending, that it had
  // been frozen and must fence first.
  void requeue_front(std::vector<HeldOutput> outputs);
  // Discards everything held (a node that halts never sends them).
  void drop_all();

  size_t held() const { return held_.size(); }
  uint64_t held_bytes() const { return held_bytes_; }
  size_t held_max() const { return held_max_; }
  uint64_t acked() const { return acked_; }
  uint64_t records() const { return records_; }
  // The instret of the last record appended.
  uint64_t last_record_instret() const { return last_record_instret_; }

 private:
  bool releasable(const HeldOutput& o) const;
  uint64_t trusted_acked() const { return acked_ >= fence_ ? acked_ : 0; }

  Mode mode_ = Mode::kDropped;
  std::deque<HeldOutput> held_;
  uint64_t held_bytes_ = 0;
  size_t held_max_ = 0;
  uint64_t records_ = 0;
  uint64_t last_record_instret_ = 0;
  bool any_record_ = false;
  uint64_t acked_ = 0;
  uint64_t fence_ = 0;
};

}  // namespace ftvm::ft
