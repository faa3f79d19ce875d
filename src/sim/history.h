// What the clients saw, and the checkers that judge it.
//
// A history is a list of operations on integer registers (one per key):
// SET k v, GET k, INCR k d, each with the client that issued it, the
// simulated time it was invoked and, if a reply came, the time it completed
// and the value it returned. An operation without a reply may or may not
// have taken effect ("maybe happened").
//
// check_linearizable: per key (registers compose), a Wing–Gong search with
// memoisation of (operations linearised, value) for an order of the
// operations that respects real time (an operation that completed before
// another was invoked comes first) and the register's semantics (GET returns
// the latest value, INCR the sum, SET its argument). Operations without a
// reply may be placed anywhere after their invocation or left out. A search
// that exceeds its step budget is a failure ("undecided"), never a pass.
//
// check_acknowledged_writes: for a final value read of each key after the
// run, that every acknowledged write is present: a counter key (INCRs only)
// holds at least the acknowledged increments and at most all invoked; a
// register key (SETs of distinct values) holds a value that no acknowledged
// SET invoked after its writer completed could have overwritten.
//
// Thread-safe: pure functions over their arguments.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/event_queue.h"
#include "sim/kv_protocol.h"

namespace ftvm::sim {

struct Operation {
  uint32_t client = 0;
  uint32_t key = 0;
  KvOp op = KvOp::kGet;
  int64_t arg = 0;
  Time invoked = 0;
  std::optional<Time> completed;  // nullopt: no reply ("maybe happened")
  int64_t result = 0;             // meaningful only when completed
};

using History = std::vector<Operation>;

struct CheckResult {
  bool ok = true;
  std::string problem;  // empty when ok
};

inline constexpr uint64_t kDefaultSearchBudget = 2'000'000;

CheckResult check_linearizable(const History& history,
                               uint64_t search_budget = kDefaultSearchBudget);

// `final_values`: key -> the value a read after the run returned.
CheckResult check_acknowledged_writes(const History& history,
                                      const std::map<uint32_t, int64_t>& final_values);

std::string describe(const Operation& op);

}  // namespace ftvm::sim
