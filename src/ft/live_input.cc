// The receive queue of a live guest (see live_input.h).
#include "ft/live_input.h"

#include <utility>

namespace ftvm::ft {

void RxQueue::add(std::vector<std::vector<uint8_t>>& frames) {
  for (std::vector<uint8_t>& f : frames) {
    if (frames_.size() < kCapacity) {
      frames_.push_back(std::move(f));
    } else {
      ++dropped_;
    }
  }
  frames.clear();
}

size_t RxQueue::deliver(vm::Machine& machine,
                        const std::function<void(std::vector<uint8_t>&&)>& on_delivered,
                        const std::function<bool()>& another) {
  if (!machine.has_net()) {
    dropped_ += frames_.size();
    frames_.clear();
    return 0;
  }
  size_t n = 0;
  while (!frames_.empty() && (n == 0 || !another || another()) &&
         machine.deliver_frame(frames_.front())) {
    std::vector<uint8_t> f = std::move(frames_.front());
    frames_.pop_front();
    ++n;
    on_delivered(std::move(f));
  }
  return n;
}

}  // namespace ftvm::ft
