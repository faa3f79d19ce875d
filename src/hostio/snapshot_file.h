// Snapshot files on the host's file system (the format is
// docs/snapshot-format.md; vm/snapshot.h encodes and decodes it).
//
// Saving is atomic: the snapshot is written to a temporary file in the
// target's directory, synced, renamed over the target and the directory
// synced, so after a crash the path holds either the old file or the whole
// new one. Not thread-safe with respect to the same path.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"
#include "vm/snapshot.h"

namespace ftvm::hostio {

// Writes a snapshot to `path` atomically (above). The file is created
// readable and writable by its owner only: it holds guest memory. On error
// nothing is left behind and an existing file at `path` is unchanged; the
// message names the path and the system's reason.
Status save_snapshot(const std::string& path, const vm::SnapshotInfo& info,
                     const vm::MachineState& state, std::span<const uint8_t> ram,
                     const vm::SnapshotOptions& options = {});

// Reads the regular file at `path` in full. It must be no larger than the
// largest snapshot a 64 GiB machine can have.
Result<std::vector<uint8_t>> read_snapshot_file(const std::string& path);

// Reads and decodes the snapshot at `path`; errors start with the path.
Result<vm::DecodedSnapshot> load_snapshot(const std::string& path);

// Reads the snapshot at `path` and decodes it into a machine built with the
// snapshot's RAM size (and the same devices): its RAM, then its state. On
// error the machine's RAM may be partly overwritten and its state is not.
Result<vm::SnapshotInfo> load_snapshot_into(const std::string& path, vm::Machine& machine);

}  // namespace ftvm::hostio
