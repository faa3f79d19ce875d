// The invariant registry and the output audit (see invariants.h).
#include "sim/invariants.h"

#include <fmt/format.h>

namespace ftvm::sim {

void Invariants::check_step() {
  if (breach_) return;
  for (const auto& [name, check] : checks_) {
    if (std::optional<std::string> problem = check()) {
      fail(name, *problem);
      return;
    }
  }
}

void Invariants::fail(const std::string& invariant, const std::string& detail) {
  if (breach_) return;
  breach_ = Breach{invariant, detail, events_.now()};
  events_.stop();
}

void OutputAudit::produced(int node, uint64_t epoch, uint64_t index,
                           const std::vector<uint8_t>& bytes, bool released) {
  if (!released) {
    match(index, bytes, fmt::format("node {} (epoch {})", node, epoch));
    return;
  }
  ++released_;
  last_release_ = inv_.now();
  if (epoch < newest_epoch_) {
    inv_.fail("stale-epoch-output",
              fmt::format("node {} of epoch {} released output #{} after epoch {} had released "
                          "output",
                          node, epoch, index, newest_epoch_));
    return;
  }
  auto [it, fresh] = emitter_.emplace(epoch, node);
  if (!fresh && it->second != node) {
    inv_.fail("single-emitter", fmt::format("nodes {} and {} both released output in epoch {} "
                                            "(output #{})",
                                            it->second, node, epoch, index));
    return;
  }
  newest_epoch_ = epoch;
  match(index, bytes, fmt::format("node {} (epoch {})", node, epoch));
}

void OutputAudit::received(int node, uint64_t epoch, uint64_t index,
                           const std::vector<uint8_t>& bytes) {
  match(index, bytes, fmt::format("a client (from node {}, epoch {})", node, epoch));
  seen_.emplace(index, bytes);
}

void OutputAudit::match(uint64_t index, const std::vector<uint8_t>& bytes,
                        const std::string& who) {
  auto it = seen_.find(index);
  if (it == seen_.end() || it->second == bytes) return;
  inv_.fail("output-reproduced",
            fmt::format("guest output #{} as {} produced it differs from the one a client "
                        "received ({} vs {} bytes{})",
                        index, who, bytes.size(), it->second.size(),
                        bytes.size() == it->second.size() ? ", same length" : ""));
}

}  // namespace ftvm::sim
