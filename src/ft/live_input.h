// What every live run of a guest does between slices, in one place for
// `ftvm run` and the FT node core (`ftvm primary`, `backup` after going
// live, `up`, and the simulator's nodes):
//  - RxQueue: frames read from the TAP wait until the guest's NIC has a
//    receive buffer for them, oldest first; beyond kCapacity they are dropped
//    and counted, as a NIC's FIFO would drop them;
//  - GuestPacer: while the guest idles until its timer, guest time must not
//    run ahead of the wall clock; the pacer says when, at real speed, guest
//    time reaches a given mtime, counted from where pacing last restarted.
// Each delivered frame is an input the caller logs at the machine's instret
// (the recorder of `ftvm run --record`, the log stream of a primary).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "vm/machine.h"

namespace ftvm::ft {

class RxQueue {
 public:
  static constexpr size_t kCapacity = 4096;

  // Takes the frames (leaving `frames` empty); what does not fit is dropped.
  void add(std::vector<std::vector<uint8_t>>& frames);
  // Hands queued frames to the machine's NIC, oldest first, while it takes
  // them; `on_delivered` gets each one after the guest has it, and
  // `another` (when given) is asked before each frame after the first
  // whether to go on now. A machine without a NIC gets nothing and the
  // queue is emptied. Returns how many were delivered.
  size_t deliver(vm::Machine& machine,
                 const std::function<void(std::vector<uint8_t>&&)>& on_delivered,
                 const std::function<bool()>& another = {});

  bool empty() const { return frames_.empty(); }
  size_t size() const { return frames_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  std::deque<std::vector<uint8_t>> frames_;
  uint64_t dropped_ = 0;
};

// TimePoint: a std::chrono time point, or a duration read from a monotonic
// clock (the node core's CoreTime).
template <class TimePoint>
class GuestPacer {
 public:
  void restart(TimePoint now, uint64_t mtime) {
    start_ = now;
    start_mtime_ = mtime;
    started_ = true;
  }
  bool started() const { return started_; }
  // When guest time reaches `mtime` at real speed (an mtime before the
  // restart maps to the restart itself).
  TimePoint wall_time_of(uint64_t mtime) const {
    return start_ + std::chrono::nanoseconds((mtime - std::min(mtime, start_mtime_)) *
                                             (1'000'000'000 / vm::kTimebaseHz));
  }

 private:
  TimePoint start_{};
  uint64_t start_mtime_ = 0;
  bool started_ = false;
};

}  // namespace ftvm::ft
