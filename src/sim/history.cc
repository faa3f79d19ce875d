// The history checkers (see history.h).
#include "sim/history.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace ftvm::sim {
namespace {

constexpr Time kNever = std::numeric_limits<Time>::max();

struct KeyOp {
  KvOp op;
  int64_t arg;
  Time invoked;
  Time completed;  // kNever when no reply
  bool has_result;
  int64_t result;
};

struct MemoKey {
  std::vector<uint64_t> done;
  int64_t value;
  bool operator==(const MemoKey&) const = default;
};
struct MemoHash {
  size_t operator()(const MemoKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.value) * 0x9e3779b97f4a7c15ull;
    for (uint64_t w : k.done) h = (h ^ w) * 0xbf58476d1ce4e5b9ull + (h >> 29);
    return h;
  }
};

class Search {
 public:
  Search(std::vector<KeyOp> ops, uint64_t budget) : ops_(std::move(ops)), budget_(budget) {
    done_.assign((ops_.size() + 63) / 64, 0);
    for (const KeyOp& o : ops_) required_ += o.has_result ? 1 : 0;
  }

  // 1: linearizable, 0: not, -1: undecided.
  int run() {
    const int r = dfs(0, 0);
    return exhausted_ ? -1 : r;
  }
  uint64_t steps() const { return steps_; }

 private:
  bool is_done(size_t i) const { return (done_[i / 64] >> (i % 64)) & 1; }
  void flip(size_t i) { done_[i / 64] ^= uint64_t{1} << (i % 64); }

  int dfs(int64_t value, size_t completed_done) {
    if (completed_done == required_) return 1;
    if (++steps_ > budget_) {
      exhausted_ = true;
      return 0;
    }
    if (!seen_.insert(MemoKey{done_, value}).second) return 0;
    // The earliest completion among operations not yet placed: nothing
    // invoked after it can come next.
    Time horizon = kNever;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!is_done(i)) horizon = std::min(horizon, ops_[i].completed);
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (is_done(i)) continue;
      const KeyOp& o = ops_[i];
      if (o.invoked > horizon) break;  // sorted by invocation
      int64_t next = value;
      switch (o.op) {
        case KvOp::kSet: next = o.arg; break;
        case KvOp::kIncr: next = value + o.arg; break;
        case KvOp::kGet: break;
      }
      if (o.has_result && o.result != next) continue;
      flip(i);
      const int r = dfs(next, completed_done + (o.has_result ? 1 : 0));
      flip(i);
      if (r == 1 || exhausted_) return r;
    }
    return 0;
  }

  std::vector<KeyOp> ops_;
  uint64_t budget_;
  size_t required_ = 0;
  std::vector<uint64_t> done_;
  std::unordered_set<MemoKey, MemoHash> seen_;
  uint64_t steps_ = 0;
  bool exhausted_ = false;
};

}  // namespace

std::string describe(const Operation& o) {
  std::string what = fmt::format("client {} {} k{}", o.client, to_string(o.op), o.key);
  if (o.op != KvOp::kGet) what += fmt::format(" {}", o.arg);
  if (o.completed) {
    return fmt::format("{} -> {} [{:.6f}s, {:.6f}s]", what, o.result,
                       static_cast<double>(o.invoked) / kSecond,
                       static_cast<double>(*o.completed) / kSecond);
  }
  return fmt::format("{} -> (no reply) [{:.6f}s, -]", what,
                     static_cast<double>(o.invoked) / kSecond);
}

CheckResult check_linearizable(const History& history, uint64_t search_budget) {
  std::map<uint32_t, std::vector<const Operation*>> by_key;
  for (const Operation& o : history) by_key[o.key].push_back(&o);
  for (auto& [key, ops] : by_key) {
    std::vector<KeyOp> k;
    for (const Operation* o : ops) {
      // A GET without a reply changes nothing and constrains nothing.
      if (o->op == KvOp::kGet && !o->completed) continue;
      k.push_back(KeyOp{o->op, o->arg, o->invoked, o->completed.value_or(kNever),
                        o->completed.has_value(), o->result});
    }
    std::stable_sort(k.begin(), k.end(),
                     [](const KeyOp& a, const KeyOp& b) { return a.invoked < b.invoked; });
    Search search(std::move(k), search_budget);
    const int r = search.run();
    if (r == 1) continue;
    std::string listing;
    size_t shown = 0;
    for (const Operation* o : ops) {
      if (shown++ == 40) {
        listing += fmt::format("\n  ... {} more", ops.size() - 40);
        break;
      }
      listing += "\n  " + describe(*o);
    }
    if (r == -1) {
      return {false, fmt::format("key {}: linearizability undecided after {} steps ({} "
                                 "operations):{}",
                                 key, search.steps(), ops.size(), listing)};
    }
    return {false, fmt::format("key {}: no linearization of {} operations:{}", key, ops.size(),
                               listing)};
  }
  return {};
}

CheckResult check_acknowledged_writes(const History& history,
                                      const std::map<uint32_t, int64_t>& final_values) {
  for (const auto& [key, value] : final_values) {
    int64_t acked_incr = 0, invoked_incr = 0;
    bool has_set = false;
    const Operation* writer = nullptr;  // the SET of `value`
    for (const Operation& o : history) {
      if (o.key != key) continue;
      if (o.op == KvOp::kIncr) {
        invoked_incr += o.arg;
        if (o.completed) acked_incr += o.arg;
      } else if (o.op == KvOp::kSet) {
        has_set = true;
        if (o.arg == value) writer = &o;
      }
    }
    if (!has_set) {
      if (value < acked_incr || value > invoked_incr) {
        return {false, fmt::format("key {} holds {} but {} increments were acknowledged and {} "
                                   "invoked",
                                   key, value, acked_incr, invoked_incr)};
      }
      continue;
    }
    for (const Operation& o : history) {
      if (o.key != key || o.op != KvOp::kSet || !o.completed) continue;
      const bool overwritten =
          writer == nullptr ? value == 0 : (writer->completed && *writer->completed < o.invoked);
      if (overwritten || (writer == nullptr && value != 0)) {
        return {false, fmt::format("key {} holds {}, but the acknowledged write {} came after it",
                                   key, value, describe(o))};
      }
    }
  }
  return {};
}

}  // namespace ftvm::sim
