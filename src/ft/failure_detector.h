// Failure detection (DESIGN.md §5, docs/ft-protocol.md "Failure detection").
//
// A peer has failed when it has been silent (no message at all) for the
// failure timeout, or when it keeps talking but its guest does not advance:
// every heartbeat and acknowledgement carries the sender's instret and
// whether its guest should be running now (not idle waiting for a timer,
// not held by flow control, not waiting for log). A node whose guest
// should run but whose instret has not moved for the timeout is as dead as
// a silent one: its channel thread may live on while its main loop is
// stuck (say, blocked writing console output nobody reads).
//
// Pure: time comes in as an argument (any monotonic clock, simulated or
// real). Not thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ftvm::ft {

// What a node reports of its own main loop in every heartbeat and ack.
struct Progress {
  uint64_t instret = 0;
  bool should_run = false;  // the guest has work and nothing holds it back
};

class FailureDetector {
 public:
  using Time = std::chrono::nanoseconds;  // since any fixed origin

  FailureDetector(std::chrono::milliseconds timeout, Time now) : timeout_(timeout), heard_(now) {}

  // A message arrived from the peer.
  void heard(Time now) {
    longest_silence_ = std::max(longest_silence_, now - heard_);
    heard_ = now;
  }
  // The peer reported its progress (in a message just heard).
  void progress(Time now, const Progress& p);
  // Restarts the clocks (a node that was itself frozen must not blame its
  // peer for its own stall).
  void reset(Time now);

  // Why the peer counts as failed, or nullopt while it does not.
  std::optional<std::string> verdict(Time now, const char* peer) const;

  Time last_heard() const { return heard_; }
  // The longest the peer was silent between two of its messages (restarts
  // excluded): how close it came to the timeout.
  std::chrono::nanoseconds longest_silence() const { return longest_silence_; }
  // How long the peer's guest has been stuck while it should run (0: not).
  std::chrono::nanoseconds stuck_for(Time now) const;

 private:
  std::chrono::milliseconds timeout_;
  Time heard_;
  std::chrono::nanoseconds longest_silence_{0};
  bool have_progress_ = false;
  uint64_t instret_ = 0;
  bool should_run_ = false;
  Time since_{0};  // when the peer's instret was last seen to change (or it stopped wanting to run)
};

}  // namespace ftvm::ft
