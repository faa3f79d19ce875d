// A node's guest in simulated time (see guest_runner.h).
#include "sim/guest_runner.h"

#include <fmt/format.h>

#include <algorithm>

namespace ftvm::sim {
namespace {
// A request costs the guest a few thousand instructions; a run this long
// without going idle means the guest is looping.
constexpr uint64_t kMaxBusyInstructions = 20'000'000;
constexpr size_t kMaxQueuedFrames = 256;
}  // namespace

GuestRunner::GuestRunner(const GuestImage& image, Time now)
    : machine_(guest_machine_config()), base_mtime_(image.mtime()), base_time_(now) {
  image.restore_into(machine_);
  outputs_ = machine_.capture().net ? machine_.capture().net->tx_frames : 0;
  machine_.set_frame_sink([this](std::span<const uint8_t> frame) {
    ++outputs_;
    if (output_) output_(outputs_, machine_.instret(), std::vector<uint8_t>(frame.begin(), frame.end()));
  });
}

uint64_t GuestRunner::mtime_at(Time t) const {
  return base_mtime_ + static_cast<uint64_t>(std::max<Time>(0, t - base_time_)) /
                           (kSecond / vm::kTimebaseHz);
}

Status GuestRunner::check(const vm::RunResult& r) {
  if (r.status == vm::RunStatus::kBudget || r.status == vm::RunStatus::kIdle) return {};
  return make_error(fmt::format("the guest stopped (status {}, exit {}{})",
                                static_cast<int>(r.status), machine_.exit_status(),
                                machine_.error().empty() ? "" : ": " + machine_.error()));
}

Result<uint64_t> GuestRunner::advance_to(Time t) {
  const uint64_t target = mtime_at(t);
  uint64_t retired = 0;
  while (machine_.mtime() < target) {
    const uint64_t budget = (target - machine_.mtime()) * vm::kInstretPerTick;
    const vm::RunResult r = machine_.run(budget);
    retired += r.retired;
    if (Status s = check(r); !s) return make_error(s.error());
    if (r.status == vm::RunStatus::kIdle) {
      const std::optional<uint64_t> wake = machine_.next_wakeup();
      machine_.skip_time_to(wake ? std::min(*wake, target) : target);
    }
  }
  instructions_ += retired;
  return retired;
}

Result<uint64_t> GuestRunner::run_until_idle() {
  uint64_t retired = 0;
  for (;;) {
    const vm::RunResult r = machine_.run(kMaxBusyInstructions - retired);
    retired += r.retired;
    if (Status s = check(r); !s) return make_error(s.error());
    if (r.status == vm::RunStatus::kIdle) break;
    if (retired >= kMaxBusyInstructions) {
      return make_error(fmt::format("the guest ran {} instructions without going idle", retired));
    }
  }
  instructions_ += retired;
  return retired;
}

Result<uint64_t> GuestRunner::deliver(std::span<const uint8_t> frame) {
  if (queued_.size() < kMaxQueuedFrames) queued_.emplace_back(frame.begin(), frame.end());
  return drain();
}

Result<uint64_t> GuestRunner::drain() {
  uint64_t retired = 0;
  while (!queued_.empty() && machine_.net_can_receive()) {
    machine_.deliver_frame(queued_.front());
    queued_.pop_front();
    Result<uint64_t> r = run_until_idle();
    if (!r) return r;
    retired += *r;
  }
  return retired;
}

}  // namespace ftvm::sim
