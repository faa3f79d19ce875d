// The snapshot file: a whole machine (its description, MachineState and RAM)
// at one instret, as bytes (docs/snapshot-format.md).
//
// Encoding and decoding are pure functions, with no host I/O: bytes go to a
// sink or come from a span (hostio/snapshot_file.h reads and writes files).
// Decoding is safe on any input: malformed bytes give an Error of the form
// "NAME: offset N: problem", never a crash, and never an allocation larger
// than the RAM size the file declares (itself at most kMaxSnapshotRamSize),
// and that only once every RAM chunk's framing and checksum has been checked.
//
// Thread-safe: no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "log/header.h"
#include "util/result.h"
#include "vm/machine.h"

namespace ftvm::vm {

inline constexpr uint8_t kSnapshotMagic[8] = {0x89, 'F', 'T', 'V', 'M', 'S', 'N', 'P'};
// The format version this code writes, and the only one it reads.
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr size_t kSnapshotPrefixSize = 12;  // magic, version
inline constexpr size_t kSectionHeaderSize = 12;   // type, length, header_crc
inline constexpr size_t kSectionOverhead = 16;     // plus section_crc
// The state section's payload: every MachineState field, in the order of the
// table in docs/snapshot-format.md.
inline constexpr size_t kStateSectionSize = 3702;
inline constexpr uint64_t kMaxSnapshotRamSize = uint64_t{64} << 30;
inline constexpr uint32_t kMinChunkSize = 4096;
inline constexpr uint32_t kMaxChunkSize = uint32_t{16} << 20;
inline constexpr uint32_t kDefaultChunkSize = uint32_t{1} << 20;

// What the file says besides the state and RAM.
struct SnapshotInfo {
  // The machine the snapshot was taken on, as an event log names it; its
  // ram_size is the size of the RAM image. Compare with
  // log::check_same_machine.
  log::Header machine;
  // Instructions retired at capture; always equal to state.hart.instret.
  uint64_t instret = 0;
  bool operator==(const SnapshotInfo&) const = default;
};

struct SnapshotOptions {
  // zstd compression level, ZSTD_minCLevel() to ZSTD_maxCLevel(); 1 to 3
  // keep up with memory bandwidth, higher levels trade speed for size.
  int zstd_level = 3;
  // RAM bytes per chunk: a power of two in [kMinChunkSize, kMaxChunkSize].
  uint32_t chunk_size = kDefaultChunkSize;
  // If set, called after each RAM chunk with the RAM bytes encoded so far
  // and the total. It must not call back into the encoder.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// Receives the encoding in order, in pieces of at most one section (about
// one chunk); the span is valid only during the call. An error stops the
// encoder, which returns it.
using SnapshotSink = std::function<Status(std::span<const uint8_t>)>;

// Encodes a snapshot piece by piece into `sink`. Fails, before writing
// anything, if `ram` is empty, larger than kMaxSnapshotRamSize or not
// info.machine.ram_size bytes, if info.instret differs from
// state.hart.instret, if `state` holds a value the format cannot carry (see
// the spec's field table: an invalid privilege or power state, rx_count >
// 16, fflags > 0x1f, frm > 7), if the options are out of range, or if the
// description cannot be encoded as an event-log header.
Status encode_snapshot_to(const SnapshotInfo& info, const MachineState& state,
                          std::span<const uint8_t> ram, const SnapshotOptions& options,
                          const SnapshotSink& sink);

// The same into memory.
Result<std::string> encode_snapshot(const SnapshotInfo& info, const MachineState& state,
                                    std::span<const uint8_t> ram,
                                    const SnapshotOptions& options = {});

// MachineState alone, as the snapshot's state section carries it
// (kStateSectionSize bytes, no framing): for a live state transfer, whose
// RAM travels separately. Encoding refuses what a snapshot would; decoding
// checks every field as a snapshot's reader does ("state: FIELD ...").
Result<std::string> encode_machine_state(const MachineState& state);
Result<MachineState> decode_machine_state(std::span<const uint8_t> bytes);

struct DecodedSnapshot {
  SnapshotInfo info;
  MachineState state;
  std::vector<uint8_t> ram;  // info.machine.ram_size bytes
};

// Decodes and verifies a whole snapshot. `name` (usually the file's path)
// starts every error message.
Result<DecodedSnapshot> decode_snapshot(std::span<const uint8_t> file,
                                        std::string_view name = "snapshot");

// Decodes and verifies only the prefix and the description: enough to
// build a machine of the right size before decoding into its RAM. The rest
// of the file is not looked at.
Result<SnapshotInfo> decode_snapshot_info(std::span<const uint8_t> file,
                                          std::string_view name = "snapshot");

struct SnapshotContents {
  SnapshotInfo info;
  MachineState state;
};

// Decodes a whole snapshot with its RAM image going straight into `ram`,
// which must be exactly the snapshot's RAM size (a Machine's bus().ram():
// then call Machine::restore with the state). All-zero chunks leave bytes
// that are already zero untouched, so fresh anonymous memory stays
// unpopulated. On error the contents of `ram` are unspecified (nothing is
// written to it before every chunk's framing and checksum has been checked).
Result<SnapshotContents> decode_snapshot_into(std::span<const uint8_t> file, std::span<uint8_t> ram,
                                              std::string_view name = "snapshot");

}  // namespace ftvm::vm
