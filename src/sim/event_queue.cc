// The event queue (see event_queue.h).
#include "sim/event_queue.h"

#include <cstdlib>
#include <cstdio>

namespace ftvm::sim {

uint64_t EventQueue::at(Time at, Action action) {
  if (at < now_) {
    std::fprintf(stderr, "ftvm-sim: event scheduled in the past (%lld < %lld)\n",
                 static_cast<long long>(at), static_cast<long long>(now_));
    std::abort();
  }
  const uint64_t seq = next_seq_++;
  actions_.push_back(std::move(action));
  heap_.push(Event{at, seq});
  return seq;
}

void EventQueue::cancel(uint64_t id) {
  if (id < actions_.size()) actions_[id] = nullptr;
}

bool EventQueue::step(Time limit) {
  while (!heap_.empty()) {
    const Event e = heap_.top();
    if (e.at > limit) return false;
    heap_.pop();
    Action action = std::move(actions_[e.seq]);
    actions_[e.seq] = nullptr;
    if (!action) continue;
    now_ = e.at;
    ++executed_;
    action();
    return true;
  }
  return false;
}

void EventQueue::run_until(Time limit) {
  while (!stopped_ && step(limit)) {
  }
  if (!stopped_ && now_ < limit) now_ = limit;
}

}  // namespace ftvm::sim
