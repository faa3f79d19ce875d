// A simulated KV client: sends requests to the guest's MAC over the LAN,
// one at a time, retransmitting with the same request id until a reply
// comes, and records each operation in the shared history.
//
// Keys are of two kinds so that the acknowledged-write audit can judge a
// final read (history.h): counter keys get INCR 1 and GET, register keys
// get SET of values unique across the run (client id * 10^6 + n) and GET.
//
// Not thread-safe: part of one simulated world.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/event_queue.h"
#include "sim/history.h"
#include "sim/lan.h"
#include "sim/random.h"

namespace ftvm::sim {

struct ClientConfig {
  uint32_t id = 1;
  std::vector<uint32_t> counter_keys;
  std::vector<uint32_t> register_keys;
  Time think_min = 1 * kMillisecond;
  Time think_max = 10 * kMillisecond;
  Time retransmit = 20 * kMillisecond;
  // Receives one line per invocation and completion (--verbose), or empty.
  std::function<void(const std::string&)> trace;
};

class KvClient {
 public:
  KvClient(EventQueue& events, Lan& lan, Rng rng, History* history, ClientConfig config);

  // Issues operations from now until `stop_at` (the one outstanding then is
  // still retransmitted until answered).
  void start(Time stop_at);
  // Reads every key in `keys` in turn (GET, retransmitted until answered)
  // and calls `done` with the values. The client must be idle.
  void read_all(std::vector<uint32_t> keys, std::function<void(std::map<uint32_t, int64_t>)> done);
  // No operation outstanding.
  bool idle() const { return !outstanding_; }
  uint64_t completed() const { return completed_; }
  uint64_t retransmissions() const { return retransmissions_; }
  const vm::MacAddress& mac() const { return mac_; }

 private:
  void issue_next();
  void send(KvRequest request);
  void on_frame(const Frame& frame);
  void transmit();
  void read_next();

  EventQueue& events_;
  Lan& lan_;
  Rng rng_;
  History* history_;
  ClientConfig config_;
  vm::MacAddress mac_;
  int port_ = -1;
  Time stop_at_ = 0;
  uint64_t next_request_ = 1;
  int64_t next_value_ = 1;
  bool outstanding_ = false;
  KvRequest request_;
  size_t op_index_ = 0;  // in *history_
  uint64_t retransmit_event_ = ~0ull;
  std::function<void(const KvReply&)> on_reply_;
  uint64_t completed_ = 0, retransmissions_ = 0;
  std::vector<uint32_t> read_keys_;
  std::map<uint32_t, int64_t> read_values_;
  std::function<void(std::map<uint32_t, int64_t>)> read_done_;
};

}  // namespace ftvm::sim
