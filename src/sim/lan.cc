// The simulated LAN (see lan.h).
#include "sim/lan.h"

#include <fmt/format.h>

#include <memory>

namespace ftvm::sim {

std::string LanFaults::describe() const {
  return fmt::format("loss {}ppm dup {}ppm reorder {}ppm delay {}-{}us (+{}us)", loss_ppm, dup_ppm,
                     reorder_ppm, min_delay / kMicrosecond, max_delay / kMicrosecond,
                     reorder_delay / kMicrosecond);
}

Lan::Lan(EventQueue& events, Rng rng, LanFaults faults)
    : events_(events), rng_(rng), faults_(faults) {}

int Lan::attach(const vm::MacAddress& mac, Receiver receiver) {
  ports_.push_back(Port{mac, std::move(receiver)});
  return static_cast<int>(ports_.size()) - 1;
}

void Lan::set_up(int port, bool up) {
  Port& p = ports_[port];
  if (p.up && !up) ++p.generation;
  p.up = up;
}

void Lan::send(int from_port, Frame frame) {
  if (frame.bytes.size() < 14) return;
  ++sent_;
  const bool broadcast = frame.bytes[0] & 1;
  auto shared = std::make_shared<const Frame>(std::move(frame));
  for (int port = 0; port < static_cast<int>(ports_.size()); ++port) {
    if (port == from_port) continue;
    const Port& p = ports_[port];
    if (!broadcast && !std::equal(p.mac.begin(), p.mac.end(), shared->bytes.begin())) continue;
    if (calm_) {
      deliver_copy(port, *shared, faults_.min_delay);
      continue;
    }
    if (rng_.chance(faults_.loss_ppm)) {
      ++lost_;
      continue;
    }
    const int copies = rng_.chance(faults_.dup_ppm) ? 2 : 1;
    if (copies == 2) ++duplicated_;
    for (int c = 0; c < copies; ++c) {
      Time delay = rng_.range(faults_.min_delay, faults_.max_delay);
      if (faults_.reorder_delay > 0 && rng_.chance(faults_.reorder_ppm)) {
        delay += rng_.range(0, faults_.reorder_delay);
      }
      deliver_copy(port, *shared, delay);
    }
  }
}

void Lan::deliver_copy(int port, const Frame& frame, Time delay) {
  const uint64_t generation = ports_[port].generation;
  events_.after(delay, [this, port, generation, frame] {
    Port& p = ports_[port];
    if (!p.up || p.generation != generation) return;
    if (observer_) observer_(port, frame);
    p.receiver(frame);
  });
}

}  // namespace ftvm::sim
