// One end of the logging channel's protocol, without the socket
// (docs/ft-protocol.md "Messages", "Failure detection").
//
// What the channel does beside carrying records lives here, so it runs the
// same over a real TCP connection (node.cc's channel thread) and over a
// simulated link (src/sim): the backup acknowledges every batch of records
// the moment it arrives, before executing it (the primary's outputs wait on
// that); both ends send heartbeats carrying their main loop's progress when
// nothing else went out for a heartbeat interval; both run a
// FailureDetector on what they hear. The node's main loop (NodeCore) reads
// the results: records received (backup), records acknowledged and the
// backup's execution position (primary), and whether the peer failed.
//
// Thread-safe: the link's thread calls on_message/on_tick/on_link_failed
// while the main loop calls the rest.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "ft/channel.h"
#include "ft/failure_detector.h"
#include "log/record.h"

namespace ftvm::ft {

struct QueuedRecord {
  log::Record record;
  size_t size = 0;  // encoded bytes
};

// What a node's main loop tells its endpoint about itself.
struct LocalProgress {
  uint64_t instret = 0;
  uint64_t mtime = 0;
  bool should_run = false;
  uint64_t executed = 0;        // backup: records applied
  uint64_t executed_bytes = 0;  // backup: their bytes
  // Bounded work that is not the guest running (a state hash over all of
  // RAM can take seconds on a loaded host): neither a stuck guest nor an
  // overdue main loop while it lasts.
  bool checkpointing = false;
};

// The backup's execution position, as its acknowledgements say.
struct PeerExec {
  uint64_t records = 0, instret = 0, mtime = 0, bytes = 0;
};

class ChannelEndpoint {
 public:
  using Time = FailureDetector::Time;
  struct Reply {
    MsgType type;
    std::string payload;
  };

  // `primary`: this is the primary's end. `wake` (may be empty) is called
  // whenever something arrived that the main loop should look at.
  ChannelEndpoint(bool primary, std::chrono::milliseconds timeout,
                  std::chrono::milliseconds heartbeat, Time now, std::function<void()> wake);

  // ---- the link's side ----
  // An accepted message from the peer; returns what to send back at once.
  std::optional<Reply> on_message(Time now, const Message& m);
  // Runs failure detection and returns a heartbeat (or the backup's
  // periodic ack) when nothing went out for a heartbeat interval.
  std::optional<Reply> on_tick(Time now);
  // Anything was sent to the peer at `now` (records count as liveness).
  void sent(Time now);
  // The link failed (reset, closed, unframeable stream, stalled output).
  void on_link_failed(std::string why);

  // ---- the main loop's side ----
  // The main loop's progress at `now`; call it at least every heartbeat.
  void set_local(Time now, const LocalProgress& p);
  // Why the peer counts as failed, or nullopt.
  std::optional<std::string> failed() const;
  // Primary: records the backup acknowledged having received.
  uint64_t acked() const { return acked_.load(std::memory_order_acquire); }
  PeerExec peer_exec() const;
  // The state transfer's messages received so far (kTransfer on a backup,
  // kTransferReply on a primary), in order, moved to `out`.
  void take_transfer(std::deque<std::string>& out);
  // Backup: the primary handed over (a planned migration), having sent
  // every record first; nullopt until then.
  std::optional<Handover> handover() const;
  // Backup: moves the records received so far to `out`.
  void take_records(std::deque<QueuedRecord>& out);
  uint64_t received() const { return received_; }
  uint64_t received_bytes() const { return received_bytes_; }
  size_t queue_length() const;
  uint64_t primary_instret_at_last_heartbeat() const { return primary_instret_; }
  Time last_heard() const;
  std::chrono::nanoseconds longest_silence() const;
  std::chrono::nanoseconds peer_stuck_for(Time now) const;

 private:
  Reply ack_locked(Time now);
  // What this node reports of its own progress at `now`: a main loop that
  // has not reported for two heartbeats should have run, whatever it said
  // last (it may be stuck anywhere, even while it was idle).
  bool should_run_locked(Time now) const;
  void fail_locked(std::string why);

  const bool primary_;
  const std::chrono::milliseconds heartbeat_;
  std::function<void()> wake_;
  mutable std::mutex mu_;  // guards everything below but the atomics
  FailureDetector detector_;
  LocalProgress local_;
  Time local_at_;
  Time last_sent_;
  std::optional<std::string> failed_;
  std::deque<QueuedRecord> queue_;
  std::deque<std::string> transfer_;
  std::optional<Handover> handover_;
  PeerExec peer_exec_;
  bool peer_should_run_ = true;
  uint64_t peer_instret_ = 0;
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> received_{0}, received_bytes_{0};
  std::atomic<uint64_t> primary_instret_{0};
};

}  // namespace ftvm::ft
