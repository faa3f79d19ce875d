// The pair as a whole, for `ftvm status`: who is primary and backup now,
// whether they are a protected pair, and the pair's history -- one entry
// for every epoch a node took (how and when).
//
// The history lives in a JSON-lines file beside the arbiter's store (`ftvm
// up` gives each node `--history STATE/history.jsonl`): a node appends its
// entry when it takes an epoch, durably (fdatasync), so the history
// survives `ftvm down`/`up` and reboots as the grants do. Entries:
//   {"epoch":N,"host":"host-a","kind":K,"at_unix_ms":T}
// with K one of start (a primary paired with its first backup at a new
// epoch), failover (a backup took over from a lost primary), solo (a
// primary lost its backup and went on alone at the next epoch), reprotect
// (a new backup joined a running primary by state transfer; the primary
// keeps its epoch, so this entry repeats the epoch of the one before),
// migrate (a backup took over from a primary that handed over: `ftvm
// migrate`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.h"

namespace ftvm::ft {

enum class HistoryKind : uint8_t { kStart, kFailover, kSolo, kReprotect, kMigrate };
std::string_view history_kind_name(HistoryKind k);

struct HistoryEntry {
  uint64_t epoch = 0;
  std::string host;
  HistoryKind kind = HistoryKind::kStart;
  int64_t at_unix_ms = 0;
};

// Appends one line to `path` (created if missing) and syncs it.
Status append_history(const std::string& path, const HistoryEntry& entry);

// The entries of `path` in file order, as JSON objects; a missing file is
// an empty history, and a line that does not parse (a write torn by a
// crash) is skipped and counted in `*skipped`.
nlohmann::json read_history(const std::string& path, size_t* skipped = nullptr);

// A copy of a writable disk records the last epoch its node took (went
// live at: start, failover, solo), beside it in DISK.epoch.json:
//   {"epoch":N,"host":H,"kind":K,"instret":I,"at_unix_ms":T}
// written to a temporary file, synced and renamed, so it is whole or the
// previous one. Only a node that takes an epoch writes it; a backup's copy
// is a prefix of its primary's run, so among the copies of a pair the one
// with the highest epoch is the most advanced.
std::string disk_mark_path(const std::string& disk_path);
Status write_disk_mark(const std::string& disk_path, const HistoryEntry& entry, uint64_t instret);
// Removes a copy's mark (a backup about to overwrite its copy by state
// transfer: a half-made copy must never look advanced). Missing is fine.
Status remove_disk_mark(const std::string& disk_path);
// The epoch in a copy's mark; nullopt when it has none (or it does not parse).
std::optional<uint64_t> read_disk_mark_epoch(const std::string& disk_path);

// Which of the two hosts' copies ("a" or "b") a restarted pair starts from:
// the one with the higher mark (a tie, which only copies made equal have,
// goes to a); without marks, the host the history names as holder of its
// highest epoch ("host-a"/"host-b"); else a. `why` says which rule decided.
struct CopyChoice {
  std::string host;
  std::string why;
};
CopyChoice most_advanced_copy(std::optional<uint64_t> mark_a, std::optional<uint64_t> mark_b,
                              const nlohmann::json& history);

// What `ftvm status` knows of one host of the pair.
struct HostView {
  std::string key;  // "a", "b"
  bool running = false;
  nlohmann::json status;  // the node's own status document; null when it did not answer
};

// The pair-level fields of `ftvm status --json`:
//   epoch    the highest epoch a running, answering, not halted node is at
//            (null if none)
//   primary  the host id (the node's "host") of the running node whose role
//            is primary at that epoch, in a state that serves or will
//            (waiting_for_backup, paired, solo); null if none
//   backup   the host id of a running backup at the same epoch, joining or
//            replaying; null if none
//   paired   true when the primary is `paired` and the backup `replaying`
//            at the same epoch and at least one state hash has matched
//            since the backup joined
//   history  the history file's entries
//   transfer the join in progress (transfer.h's progress: phase, rounds,
//            bytes, pages, blocks, pause_ms, ...), as the joining backup or
//            else the primary reports it; null when none runs
nlohmann::json pair_summary(const std::vector<HostView>& hosts, const nlohmann::json& history);

}  // namespace ftvm::ft
