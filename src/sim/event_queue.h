// Simulated time and the simulator's single-threaded event queue.
//
// Time is an integer count of nanoseconds since the start of a run. Events
// run in order of (time, sequence number): two events due at the same time
// run in the order they were scheduled, so a run is a pure function of its
// seed. An event may schedule more events, at the current time or later
// (never earlier: that is a programming error, checked).
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace ftvm::sim {

using Time = int64_t;  // nanoseconds of simulated time
inline constexpr Time kMicrosecond = 1'000;
inline constexpr Time kMillisecond = 1'000'000;
inline constexpr Time kSecond = 1'000'000'000;

class EventQueue {
 public:
  using Action = std::function<void()>;

  Time now() const { return now_; }
  // Runs `action` at `at` (>= now()). Returns the event's sequence number,
  // which cancel() takes.
  uint64_t at(Time at, Action action);
  uint64_t after(Time delay, Action action) { return at(now_ + delay, std::move(action)); }
  // The event does not run (no-op if it already ran or was cancelled).
  void cancel(uint64_t id);

  // Runs the next due event, advancing now(); false if none is left or the
  // next one is after `limit`.
  bool step(Time limit);
  // Runs events until none is left, the next is after `limit`, or stop()
  // was called; now() ends at `limit` unless stopped.
  void run_until(Time limit);
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  size_t pending() const { return heap_.size(); }
  uint64_t executed() const { return executed_; }

 private:
  struct Event {
    Time at;
    uint64_t seq;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> heap_;
  std::vector<Action> actions_;  // by seq - base_; empty once run or cancelled
  uint64_t next_seq_ = 0;
  Time now_ = 0;
  bool stopped_ = false;
  uint64_t executed_ = 0;
};

}  // namespace ftvm::sim
