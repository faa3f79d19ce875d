// The stand-in node (see standin_node.h).
#include "sim/standin_node.h"

#include <fmt/format.h>

#include <algorithm>

namespace ftvm::sim {
namespace {
constexpr Time kClaimTimeout = 50 * kMillisecond;
constexpr size_t kTapQueueFrames = 256;
// The guest runs at 1 instruction per ns of simulated time while busy.
constexpr Time kNsPerInstruction = 1;
}  // namespace

StandInNode::StandInNode(World& world, int id, uint64_t epoch, bool ignore_denial)
    : world_(world), id_(id), epoch_(epoch), ignore_denial_(ignore_denial) {
  claimant_ = fmt::format("host-{}/{:016x}", id, world_.fork_rng().next());
  port_ = world_.lan().attach(kGuestMac, [this](const Frame& f) { on_frame(f); });
  world_.lan().set_up(port_, false);
}

std::string StandInNode::describe() const {
  return fmt::format("stand-in node {} (epoch {}, {}{})", id_, epoch_,
                     alive_ ? (live_ ? "serving" : "claiming") : "down",
                     world_.events().now() < frozen_until_ ? ", frozen" : "");
}

void StandInNode::start() {
  alive_ = true;
  live_ = false;
  ++incarnation_;
  if (guest_) instructions_ += guest_->instructions();
  guest_ = std::make_unique<GuestRunner>(world_.image(), world_.events().now());
  guest_->set_output([this](uint64_t index, uint64_t, std::vector<uint8_t> bytes) {
    outputs_.emplace_back(index, std::move(bytes));
  });
  world_.lan().set_up(port_, true);
  world_.trace(fmt::format("node {}: starts, claims epoch {}", id_, epoch_));
  claim();
}

void StandInNode::claim() {
  const uint64_t incarnation = incarnation_;
  world_.arbiter().claim(World::kVmId, epoch_, claimant_, kClaimTimeout,
                         [this, incarnation](std::optional<ArbiterAnswer> a) {
                           if (incarnation != incarnation_ || !alive_) return;
                           if (!a) {
                             world_.trace(fmt::format("node {}: claim timed out, retrying", id_));
                             claim();
                             return;
                           }
                           world_.trace(fmt::format("node {}: epoch {} {} (held: {} by {})", id_,
                                                    epoch_, a->won ? "granted" : "denied",
                                                    a->held_epoch, a->holder));
                           if (a->won || ignore_denial_) {
                             live_ = true;
                             std::deque<std::vector<uint8_t>> q;
                             q.swap(tap_queue_);
                             for (auto& f : q) handle(f);
                           } else {
                             // The VM has moved on: halt (exit 4 in ftvm).
                             alive_ = false;
                             world_.lan().set_up(port_, false);
                           }
                         });
}

void StandInNode::on_frame(const Frame& frame) {
  if (!alive_) return;
  if (!live_ || world_.events().now() < frozen_until_) {
    if (tap_queue_.size() < kTapQueueFrames) tap_queue_.push_back(frame.bytes);
    return;
  }
  handle(frame.bytes);
}

void StandInNode::handle(const std::vector<uint8_t>& bytes) {
  const Time now = world_.events().now();
  Result<uint64_t> r = guest_->advance_to(now);
  if (!r) return guest_failed(r.error());
  busy_until_ = std::max(busy_until_, now);
  const uint64_t before = guest_->instructions();
  r = guest_->deliver(bytes);
  if (!r) return guest_failed(r.error());
  // The outputs leave once the guest, running at one instruction per ns,
  // has got through this frame; in guest order.
  busy_until_ += static_cast<Time>(guest_->instructions() - before) * kNsPerInstruction;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> outs;
  outs.swap(outputs_);
  for (auto& [index, b] : outs) release(index, std::move(b), busy_until_);
}

void StandInNode::release(uint64_t index, std::vector<uint8_t> bytes, Time at) {
  const uint64_t incarnation = incarnation_;
  world_.events().at(std::max(at, world_.events().now()),
                     [this, incarnation, index, bytes = std::move(bytes)]() mutable {
                       if (incarnation != incarnation_ || !alive_) return;
                       world_.audit().produced(id_, epoch_, index, bytes, /*released=*/true);
                       world_.note(index);
                       Frame f{std::move(bytes), id_, epoch_, index};
                       world_.lan().send(port_, std::move(f));
                     });
}

void StandInNode::freeze(Time duration) {
  if (!alive_) return;
  const Time until = world_.events().now() + duration;
  frozen_until_ = std::max(frozen_until_, until);
  world_.trace(fmt::format("node {}: frozen for {} ms", id_, duration / kMillisecond));
  const uint64_t incarnation = incarnation_;
  world_.events().at(until, [this, incarnation] {
    if (incarnation != incarnation_ || !alive_ || world_.events().now() < frozen_until_) return;
    world_.trace(fmt::format("node {}: thawed, {} frames queued", id_, tap_queue_.size()));
    if (!live_) return;
    std::deque<std::vector<uint8_t>> q;
    q.swap(tap_queue_);
    for (auto& f : q) handle(f);
  });
}

void StandInNode::crash() {
  if (!alive_) return;
  world_.trace(fmt::format("node {}: crashes", id_));
  alive_ = false;
  live_ = false;
  ++incarnation_;
  tap_queue_.clear();
  frozen_until_ = 0;
  world_.lan().set_up(port_, false);
}

void StandInNode::restart() {
  if (alive_) return;
  ++epoch_;
  busy_until_ = 0;
  start();
}

void StandInNode::guest_failed(const std::string& why) {
  world_.invariants().fail("guest-runs", fmt::format("node {}: {}", id_, why));
  crash();
}

}  // namespace ftvm::sim
