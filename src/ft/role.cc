// The role state machines: see role.h.
#include "ft/role.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace ftvm::ft {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kPrimary: return "primary";
    case Role::kBackup: return "backup";
    case Role::kHalted: return "halted";
  }
  return "?";
}

std::string_view state_name(NodeState s) {
  switch (s) {
    case NodeState::kStarting: return "starting";
    case NodeState::kClaiming: return "claiming";
    case NodeState::kWaitingForBackup: return "waiting for backup";
    case NodeState::kJoining: return "joining";
    case NodeState::kPaired: return "paired";
    case NodeState::kReplaying: return "replaying";
    case NodeState::kReplayingTail: return "replaying tail";
    case NodeState::kGoingLive: return "going live";
    case NodeState::kSolo: return "solo";
    case NodeState::kHalted: return "halted";
    case NodeState::kStopped: return "stopped";
    case NodeState::kDiverged: return "diverged";
  }
  return "?";
}

void RoleMachine::require(bool ok, const char* event) const {
  if (ok) return;
  std::fprintf(stderr, "ftvm: internal error: event %s in state %s of the %s role\n", event,
               std::string(state_name(state_)).c_str(), std::string(role_name(role_)).c_str());
  std::abort();
}

Action RoleMachine::start() {
  require(role_ == Role::kPrimary && state_ == NodeState::kStarting, "start");
  state_ = NodeState::kClaiming;
  claim_epoch_ = epoch_;
  return Action::kClaim;
}

Action RoleMachine::joined(uint64_t epoch) {
  require(role_ == Role::kBackup &&
              (state_ == NodeState::kStarting || state_ == NodeState::kJoining),
          "joined");
  epoch_ = epoch;
  state_ = NodeState::kReplaying;
  return Action::kNone;
}

Action RoleMachine::backup_joined() {
  require(role_ == Role::kPrimary && state_ == NodeState::kWaitingForBackup, "backup_joined");
  state_ = NodeState::kPaired;
  return Action::kStartGuest;
}

Action RoleMachine::claim_answered(bool won, uint64_t held_epoch) {
  require(state_ == NodeState::kClaiming, "claim_answered");
  const bool first = first_claim_;
  first_claim_ = false;
  if (!won) {
    reason_ = fmt::format("the arbiter refused epoch {}: the vm is at epoch {}", claim_epoch_,
                          held_epoch);
    role_ = Role::kHalted;
    state_ = NodeState::kHalted;
    exit_code_ = kExitDeposed;
    return Action::kHalt;
  }
  epoch_ = claim_epoch_;
  if (role_ == Role::kPrimary && first) {
    state_ = NodeState::kWaitingForBackup;
    return Action::kListen;
  }
  live_ = true;
  if (role_ == Role::kBackup) {
    role_ = Role::kPrimary;
    state_ = NodeState::kGoingLive;
    return Action::kGoLive;
  }
  state_ = NodeState::kSolo;
  return Action::kGoSolo;
}

Action RoleMachine::peer_failed(std::string why) {
  reason_ = std::move(why);
  if (role_ == Role::kPrimary && state_ == NodeState::kPaired) {
    state_ = NodeState::kClaiming;
    claim_epoch_ = epoch_ + 1;
    return Action::kClaim;
  }
  if (role_ == Role::kBackup && state_ == NodeState::kReplaying) {
    // Replay the tail first (outputs held), then claim: a backup whose tail
    // diverges must not hold the next epoch while it is dead.
    state_ = NodeState::kReplayingTail;
    return Action::kReplayTail;
  }
  require(false, "peer_failed");
  return Action::kNone;
}

Action RoleMachine::tail_replayed() {
  require(role_ == Role::kBackup && state_ == NodeState::kReplayingTail, "tail_replayed");
  state_ = NodeState::kClaiming;
  claim_epoch_ = epoch_ + 1;
  return Action::kClaim;
}

Action RoleMachine::diverged(std::string why) {
  require(role_ == Role::kBackup &&
              (state_ == NodeState::kReplaying || state_ == NodeState::kReplayingTail),
          "diverged");
  reason_ = std::move(why);
  state_ = NodeState::kDiverged;
  exit_code_ = kExitNodeDiverged;
  return Action::kHalt;
}

Action RoleMachine::guest_stopped(int exit_code) {
  exit_code_ = exit_code;
  state_ = NodeState::kStopped;
  return Action::kExit;
}

Action RoleMachine::live() {
  require(state_ == NodeState::kGoingLive, "live");
  state_ = NodeState::kSolo;
  return Action::kNone;
}

Action RoleMachine::reprotected() {
  require(role_ == Role::kPrimary && state_ == NodeState::kSolo, "reprotected");
  state_ = NodeState::kPaired;
  return Action::kStartGuest;
}

Action RoleMachine::failed(int exit_code, std::string why) {
  reason_ = std::move(why);
  exit_code_ = exit_code;
  state_ = NodeState::kStopped;
  return Action::kExit;
}

}  // namespace ftvm::ft
