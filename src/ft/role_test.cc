// The role state machines, one transition per test (role.h).
#include "ft/role.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

TEST(RoleMachine, PrimaryClaimsThenWaitsThenPairs) {
  RoleMachine m(Role::kPrimary, 3);
  EXPECT_EQ(m.start(), Action::kClaim);
  EXPECT_EQ(m.state(), NodeState::kClaiming);
  EXPECT_EQ(m.claim_epoch(), 3u);
  EXPECT_EQ(m.claim_answered(true, 3), Action::kListen);
  EXPECT_EQ(m.state(), NodeState::kWaitingForBackup);
  EXPECT_EQ(m.backup_joined(), Action::kStartGuest);
  EXPECT_EQ(m.state(), NodeState::kPaired);
}

TEST(RoleMachine, PrimaryRefusedAtStartHalts) {
  RoleMachine m(Role::kPrimary, 1);
  m.start();
  EXPECT_EQ(m.claim_answered(false, 2), Action::kHalt);
  EXPECT_EQ(m.state(), NodeState::kHalted);
  EXPECT_EQ(m.role(), Role::kHalted);
  EXPECT_EQ(m.exit_code(), kExitDeposed);
}

TEST(RoleMachine, PrimaryLosingItsBackupClaimsTheNextEpoch) {
  RoleMachine m(Role::kPrimary, 1);
  m.start();
  m.claim_answered(true, 1);
  m.backup_joined();
  EXPECT_EQ(m.peer_failed("silent"), Action::kClaim);
  EXPECT_EQ(m.claim_epoch(), 2u);
  EXPECT_EQ(m.claim_answered(true, 2), Action::kGoSolo);
  EXPECT_EQ(m.state(), NodeState::kSolo);
  EXPECT_EQ(m.epoch(), 2u);
}

// The hole: the backup used to claim the next epoch before replaying the
// tail; one that then diverged held the epoch while dead. Now the tail
// comes first and a divergence halts without claiming.
TEST(RoleMachine, BackupReplaysTheTailBeforeClaiming) {
  RoleMachine m(Role::kBackup, 1);
  EXPECT_EQ(m.state(), NodeState::kJoining);
  m.joined(4);
  EXPECT_EQ(m.state(), NodeState::kReplaying);
  EXPECT_EQ(m.peer_failed("silent"), Action::kReplayTail);
  EXPECT_EQ(m.state(), NodeState::kReplayingTail);
  EXPECT_EQ(m.tail_replayed(), Action::kClaim);
  EXPECT_EQ(m.claim_epoch(), 5u);
  EXPECT_EQ(m.claim_answered(true, 5), Action::kGoLive);
  EXPECT_EQ(m.role(), Role::kPrimary);
  EXPECT_EQ(m.state(), NodeState::kGoingLive);
  m.live();
  EXPECT_EQ(m.state(), NodeState::kSolo);
}

TEST(RoleMachine, BackupWhoseTailDivergesNeverClaims) {
  RoleMachine m(Role::kBackup, 1);
  m.joined(1);
  m.peer_failed("silent");
  EXPECT_EQ(m.diverged("state hash differs"), Action::kHalt);
  EXPECT_EQ(m.state(), NodeState::kDiverged);
  EXPECT_EQ(m.exit_code(), kExitNodeDiverged);
  EXPECT_EQ(m.claim_epoch(), 0u);
}

TEST(RoleMachine, BackupLosingTheClaimHalts) {
  RoleMachine m(Role::kBackup, 1);
  m.joined(1);
  m.peer_failed("silent");
  m.tail_replayed();
  EXPECT_EQ(m.claim_answered(false, 2), Action::kHalt);
  EXPECT_EQ(m.role(), Role::kHalted);
  EXPECT_EQ(m.exit_code(), kExitDeposed);
}

TEST(RoleMachine, NamesAreTheStatusStrings) {
  EXPECT_EQ(state_name(NodeState::kWaitingForBackup), "waiting for backup");
  EXPECT_EQ(state_name(NodeState::kReplayingTail), "replaying tail");
  EXPECT_EQ(role_name(Role::kHalted), "halted");
}

TEST(RoleMachineDeathTest, IllegalEventAborts) {
  RoleMachine m(Role::kBackup, 1);
  EXPECT_DEATH(m.backup_joined(), "internal error");
}

}  // namespace
}  // namespace ftvm::ft
