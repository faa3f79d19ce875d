// Live state transfer: how a new backup joins a primary that is already
// running (re-protection, DESIGN.md §5, docs/ft-protocol.md "Joining a
// running primary").
//
// The primary copies its RAM pages and the blocks of its writable disk to
// the joining backup while its guest keeps running (iterative pre-copy):
// round 1 sends every page and every disk block the backup's copy does not
// already hold (the backup first sends the SHA-256 of each of its blocks);
// each later round sends what the guest wrote since the round before. When
// what is left is small, or after a bounded number of rounds, the primary
// pauses its guest between two slices, sends the rest and the machine's
// state (MachineState, encoded as a snapshot's state section), and starts
// streaming the log from that instret. The backup writes pages into its
// RAM and blocks into its copy as they arrive, restores the state at the
// end and replays from there.
//
// Messages: MsgType::kTransfer (primary -> backup) carries units (pages or
// blocks: u32 index and a zero flag each, then 4 KiB of data for each unit
// that is not all zeros) or the final state; MsgType::kTransferReply
// (backup -> primary) carries the backup's block hashes and how many
// transfer messages it has applied, which bounds what the primary keeps in
// flight. Both travel on the authenticated channel like every message.
//
// TransferSender and TransferReceiver are the two sides without sockets:
// the node's main loop drives them between guest slices. Not thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::ft {

inline constexpr size_t kTransferUnitSize = 4096;     // a RAM page or a disk block
// Units per message, and units with data (all-zero units carry none).
inline constexpr uint32_t kMaxUnitsPerMessage = 16384;
inline constexpr uint32_t kMaxDataUnitsPerMessage = 256;  // 1 MiB of data at most
inline constexpr uint32_t kMaxHashesPerMessage = 65536;

enum class TransferKind : uint8_t { kPages = 1, kBlocks = 2, kFinal = 3 };

// kPages / kBlocks: u8 kind | u32 round | u32 count (1..16384) | count x
// (u32 index | u8 zero) | 4096 bytes for each unit whose zero flag is 0
// (at most 256 of them), in order.
struct TransferUnits {
  TransferKind kind = TransferKind::kPages;
  uint32_t round = 0;
  std::vector<uint32_t> index;
  std::vector<uint8_t> zero;  // 1: the unit is all zeros (no data)
  std::string data;
};
// kFinal: u8 kind | u32 rounds | u64 instret | u64 ram_pages | u64
// disk_blocks | the machine state (vm::kStateSectionSize bytes).
struct TransferFinal {
  uint32_t rounds = 0;
  uint64_t instret = 0;
  uint64_t ram_pages = 0;
  uint64_t disk_blocks = 0;
  vm::MachineState state;
};
std::string encode_transfer_units(const TransferUnits& u);
Result<std::string> encode_transfer_final(const TransferFinal& f);
// The kind of a kTransfer payload (its first byte), or an error.
Result<TransferKind> transfer_kind(std::span<const uint8_t> payload);
Result<TransferUnits> decode_transfer_units(std::span<const uint8_t> payload);
Result<TransferFinal> decode_transfer_final(std::span<const uint8_t> payload);

// kTransferReply: u8 kind, then
//   1 (hashes):  u64 total_blocks | u32 first | u32 count | count x 32 bytes
//   2 (applied): u64 transfer messages applied so far
using BlockHash = std::array<uint8_t, 32>;
struct TransferReply {
  enum class Kind : uint8_t { kHashes = 1, kApplied = 2 };
  Kind kind = Kind::kApplied;
  uint64_t total_blocks = 0;  // kHashes
  uint32_t first = 0;         // kHashes
  std::vector<BlockHash> hashes;
  uint64_t applied = 0;       // kApplied
};
std::string encode_transfer_reply(const TransferReply& r);
Result<TransferReply> decode_transfer_reply(std::span<const uint8_t> payload);

// What a transfer has done so far, for status and logs.
struct TransferProgress {
  std::string phase = "starting";  // disk-hashes, precopy, final, done, failed
  uint32_t rounds = 0;
  uint64_t bytes = 0;         // payload bytes sent (primary) or received (backup)
  uint64_t pages = 0;         // RAM pages sent / written
  uint64_t blocks = 0;        // disk blocks sent / written
  uint64_t blocks_equal = 0;  // disk blocks the backup already held
  double pause_ms = 0;        // the guest's pause for the final copy
  double elapsed_ms = 0;
};
nlohmann::json to_json(const TransferProgress& p);

struct SenderOptions {
  // In-flight transfer messages (sent, not yet applied by the backup).
  uint32_t window = 16;
  // Pre-copy ends once a round leaves at most this many units to copy...
  size_t converged_units = 2048;
  // ... or after this many rounds, whatever the guest keeps writing.
  uint32_t max_rounds = 8;
  // Payload bytes one pump() may queue (the guest runs between pumps).
  size_t bytes_per_pump = size_t{4} << 20;
  // The transfer's average rate, in bytes per second (0: as fast as the
  // channel takes it), so a join does not starve the log or the clients.
  double max_bytes_per_s = 0;
};

// The primary's side. `disk` is the machine's writable disk backend (null
// without one); both must outlive the sender.
class TransferSender {
 public:
  TransferSender(vm::Machine& machine, vm::BlockBackend* disk, SenderOptions o = {});
  ~TransferSender();

  // A kTransferReply from the backup.
  Status on_reply(std::span<const uint8_t> payload);
  // Appends the next messages to send to `out` (within the window and the
  // byte budget). Returns true once pre-copy has converged: call finish()
  // now, between two guest slices.
  Result<bool> pump(std::vector<std::string>& out);
  // The pause: everything still dirty and the final state, as messages
  // (sent in order). Ends dirty tracking.
  Result<std::vector<std::string>> finish();
  // Ends dirty tracking of a transfer that will not finish.
  void abandon();
  const TransferProgress& progress() const { return progress_; }

 private:
  bool next_round();
  // Adds units from todo_ to `out` as one message; false when none were left.
  Result<bool> next_message(std::vector<std::string>& out, bool final);

  vm::Machine& machine_;
  vm::BlockBackend* disk_;
  SenderOptions o_;
  TransferProgress progress_;
  bool waiting_for_hashes_;
  std::vector<BlockHash> peer_hashes_;
  uint64_t peer_total_blocks_ = 0;
  uint64_t hashes_received_ = 0;
  uint64_t sent_messages_ = 0;
  uint64_t applied_ = 0;
  // The round being sent: pages, then blocks.
  std::vector<uint32_t> pages_, blocks_;
  size_t page_pos_ = 0, block_pos_ = 0;
  bool converged_ = false;
  bool tracking_ = false;
  std::chrono::steady_clock::time_point start_;
};

// The backup's side: writes into the machine's RAM and into `disk` (its
// writable copy, or null), then restores the state.
class TransferReceiver {
 public:
  TransferReceiver(vm::Machine& machine, vm::BlockBackend* disk);
  // The hashes of this host's copy of the disk, as replies to send first
  // (none without a writable disk). Reads the whole copy.
  Result<std::vector<std::string>> disk_hash_replies();
  // Applies one kTransfer payload; true once the final state is restored.
  // Any error (a malformed message, an index out of range, a disk write
  // that failed) leaves the machine unusable: the caller gives up.
  Result<bool> apply(std::span<const uint8_t> payload);
  // An Applied reply, when one is due: every few messages, at the end, and
  // whenever `drained` (the caller has applied every message it received so
  // far), so that a sender whose window is smaller than that batch never
  // waits for a reply that would not come.
  std::optional<std::string> take_reply(bool drained = false);
  const TransferProgress& progress() const { return progress_; }
  uint64_t final_instret() const { return final_instret_; }

 private:
  vm::Machine& machine_;
  vm::BlockBackend* disk_;
  TransferProgress progress_;
  uint64_t applied_ = 0;
  uint64_t replied_ = 0;
  bool done_ = false;
  uint64_t final_instret_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ftvm::ft
