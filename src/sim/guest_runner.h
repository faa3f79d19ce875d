// A node's guest: a real vm::Machine restored from the pre-booted KV guest,
// driven in simulated time.
//
// Guest virtual time follows simulated time (one mtime tick per 100 ns):
// advance_to() executes the guest until its mtime reaches the target,
// skipping idle stretches to its next timer wakeup as the live drivers do,
// so every timer tick between two events runs. deliver() hands a frame to
// the NIC (queued while the guest has no receive buffer posted) and runs
// the guest until it is idle again; its outputs go to the output callback
// numbered from 1 in guest order, with the instret at which they left.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "sim/event_queue.h"
#include "sim/guest_image.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::sim {

class GuestRunner {
 public:
  using Output = std::function<void(uint64_t index, uint64_t instret, std::vector<uint8_t> bytes)>;

  // A machine holding `image`'s pre-booted guest whose virtual time reads
  // the snapshot's mtime at simulated time `now`.
  GuestRunner(const GuestImage& image, Time now);

  void set_output(Output output) { output_ = std::move(output); }
  // The guest's mtime that corresponds to simulated time `t`.
  uint64_t mtime_at(Time t) const;
  // Runs the guest up to virtual time mtime_at(t). Returns the instructions
  // retired; an error if the guest stopped (powered off, failed).
  Result<uint64_t> advance_to(Time t);
  // Hands `frame` to the guest at its current instret (after advance_to)
  // and runs it until idle. Returns the instructions retired.
  Result<uint64_t> deliver(std::span<const uint8_t> frame);
  // Runs frames queued for lack of a receive buffer.
  Result<uint64_t> drain();

  vm::Machine& machine() { return machine_; }
  uint64_t outputs() const { return outputs_; }
  uint64_t instructions() const { return instructions_; }

 private:
  Result<uint64_t> run_until_idle();
  Status check(const vm::RunResult& r);

  vm::Machine machine_;
  uint64_t base_mtime_;
  Time base_time_;
  Output output_;
  uint64_t outputs_ = 0;
  uint64_t instructions_ = 0;
  std::deque<std::vector<uint8_t>> queued_;
};

}  // namespace ftvm::sim
