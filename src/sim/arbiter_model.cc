// The simulated arbiter (see arbiter_model.h).
#include "sim/arbiter_model.h"

#include <fmt/format.h>

#include <memory>

namespace ftvm::sim {

void GrantAudit::answered(const std::string& vm, uint64_t epoch, const std::string& claimant,
                          const ArbiterAnswer& a) {
  if (!a.won) return;
  auto it = latest_.find(vm);
  if (it != latest_.end()) {
    const auto& [latest_epoch, holder] = it->second;
    const bool idempotent = epoch == latest_epoch && holder == claimant;
    if (epoch <= latest_epoch && !idempotent) {
      fail_("arbiter-grants-stale-epoch",
            fmt::format("vm {} epoch {} granted to {} after epoch {} was granted to {}", vm, epoch,
                        claimant, latest_epoch, holder));
      return;
    }
  }
  latest_[vm] = {epoch, claimant};
}

ArbiterModel::ArbiterModel(EventQueue& events, Rng rng, GrantAudit* audit)
    : events_(events), rng_(rng), audit_(audit) {}

ArbiterAnswer ArbiterModel::decide(const std::string& vm, uint64_t epoch,
                                   const std::string& claimant) {
  ArbiterAnswer a;
  a.epoch = epoch;
  auto latest = latest_.find(vm);
  if (latest == latest_.end() || epoch > latest->second) {
    grants_[{vm, epoch}] = claimant;
    latest_[vm] = epoch;
    a.won = true;
  } else {
    a.won = epoch == latest->second && grants_[{vm, epoch}] == claimant;
  }
  a.held_epoch = latest_[vm];
  a.holder = grants_[{vm, a.held_epoch}];
  if (audit_ != nullptr) audit_->answered(vm, epoch, claimant, a);
  return a;
}

void ArbiterModel::claim(const std::string& vm, uint64_t epoch, const std::string& claimant,
                         Time timeout, Callback done) {
  auto shared = std::make_shared<Callback>(std::move(done));
  auto finish = [shared](std::optional<ArbiterAnswer> a) {
    if (*shared) {
      Callback cb = std::move(*shared);
      *shared = nullptr;
      cb(std::move(a));
    }
  };
  const Time there = calm_ ? 100 * kMicrosecond : rng_.range(100, 2000) * kMicrosecond;
  const Time back = calm_ ? 100 * kMicrosecond : rng_.range(100, 2000) * kMicrosecond;
  events_.after(there, [this, vm, epoch, claimant, back, finish] {
    if (!up_) return;
    ArbiterAnswer a = decide(vm, epoch, claimant);
    events_.after(back, [this, a, finish] {
      if (up_) finish(a);
    });
  });
  events_.after(timeout, [finish] { finish(std::nullopt); });
}

uint64_t ArbiterModel::latest(const std::string& vm) const {
  auto it = latest_.find(vm);
  return it == latest_.end() ? 0 : it->second;
}

}  // namespace ftvm::sim
