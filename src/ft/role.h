// The primary and backup roles as explicit state machines (DESIGN.md §5,
// docs/ft-protocol.md "States").
//
// A RoleMachine takes the events a node observes (an arbiter's answer, the
// peer's failure, the end of the replayed tail, ...) and returns the action
// the node must carry out next. It holds no sockets, threads or clocks, so
// the same transitions run in `ftvm primary`/`ftvm backup` and in the
// simulator. Illegal events in a state are bugs in the caller: a check
// that stays on in release builds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ftvm::ft {

enum class Role : uint8_t { kPrimary, kBackup, kHalted };

enum class NodeState : uint8_t {
  kStarting,
  kClaiming,          // asking the arbiter for (vm, epoch); nothing leaves
  kWaitingForBackup,  // primary holds the epoch, no backup yet
  kJoining,           // backup: connecting to the primary
  kPaired,            // primary: streaming the log, Output Rule
  kReplaying,         // backup: executing the log as it arrives
  kReplayingTail,     // backup: the primary failed; replaying what it holds, outputs held
  kGoingLive,         // backup: won the epoch; time brought forward, MAC announced
  kSolo,              // the only live node of its epoch: outputs leave at once
  kHalted,            // lost the arbiter's test-and-set, or found the VM moved on
  kStopped,           // the guest powered off (or the primary's run ended)
  kDiverged,          // the backup's replay differed from the primary
};

std::string_view role_name(Role r);
std::string_view state_name(NodeState s);

// Exit statuses of a node beyond the guest's own (0..255 from a powered-off
// guest): these follow the ftvm run convention.
inline constexpr int kExitNodeBadInput = 2;   // unusable options, images or peer
inline constexpr int kExitNodeDiverged = 3;   // the backup's replay diverged
inline constexpr int kExitDeposed = 4;        // lost the arbiter's test-and-set: halted
inline constexpr int kExitNodeError = 125;    // the machine or the host failed

enum class Action : uint8_t {
  kNone,
  kClaim,           // ask the arbiter for (vm, epoch()) (claim_epoch())
  kListen,          // primary: accept a backup
  kStartGuest,      // run the guest live, outputs by the Output Rule
  kReplayTail,      // backup: apply every record received, outputs held
  kGoLive,          // backup won: advance time, announce the MAC, run live
  kGoSolo,          // primary won the next epoch: release what is held, run alone
  kHalt,            // stop for good; drop everything held (exit_code())
  kExit,            // the run is over (exit_code())
};

class RoleMachine {
 public:
  RoleMachine(Role role, uint64_t epoch)
      : role_(role),
        state_(role == Role::kBackup ? NodeState::kJoining : NodeState::kStarting),
        epoch_(epoch) {}

  Role role() const { return role_; }
  NodeState state() const { return state_; }
  uint64_t epoch() const { return epoch_; }
  // The epoch being claimed while in kClaiming.
  uint64_t claim_epoch() const { return claim_epoch_; }
  int exit_code() const { return exit_code_; }
  // Why the node left its last steady state (the peer's failure, ...).
  const std::string& reason() const { return reason_; }
  // True once this node has been live as primary in some epoch.
  bool has_been_live() const { return live_; }

  // ---- events ----
  // Primary: start by claiming the configured epoch.
  Action start();
  // Backup: connected and handshaken with a primary of `epoch`.
  Action joined(uint64_t epoch);
  // Primary: a backup completed the handshake.
  Action backup_joined();
  // The arbiter answered the claim of claim_epoch(). `held_epoch` is the
  // highest epoch it has granted for the VM (after this claim).
  Action claim_answered(bool won, uint64_t held_epoch);
  // The peer failed (silence, reset, stuck guest, or a channel error).
  Action peer_failed(std::string why);
  // Backup: every received record has been applied.
  Action tail_replayed();
  // Backup: the replay differed from the primary's run.
  Action diverged(std::string why);
  // The guest powered off / the log's End record was applied.
  Action guest_stopped(int exit_code);
  // Backup gone live: time advanced and MAC announced; now solo.
  Action live();
  // Solo primary: a new backup joined it by state transfer (re-protection);
  // the Output Rule holds again from here, at the same epoch.
  Action reprotected();
  // A fatal local error (the machine or the host failed).
  Action failed(int exit_code, std::string why);

 private:
  void require(bool ok, const char* event) const;

  Role role_;
  NodeState state_;
  uint64_t epoch_;
  uint64_t claim_epoch_ = 0;
  int exit_code_ = 0;
  bool live_ = false;
  bool first_claim_ = true;
  std::string reason_;
};

}  // namespace ftvm::ft
