// Event-log records: what they hold, and their byte encoding.
//
// A record is one nondeterministic input (a console byte run, a received
// frame, entropy, a time skip), one check (a state hash, an output digest) or
// one stream-control mark (progress, end), or a disk request that failed on
// the recording host, tagged with the instret at which it
// applies. The byte layout is specified in docs/log-format.md; this header is
// the C++ view of it, shared by the file reader/writer and the logging channel.
//
// Every function here is pure (no I/O) and safe on any input bytes: malformed
// input gives an Error naming the byte offset and the problem, never a crash.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/result.h"

namespace ftvm::log {

using Sha256 = std::array<uint8_t, 32>;
using Bytes = std::vector<uint8_t>;

// Record type codes, as stored in the log. Values are part of the format.
enum class RecordType : uint8_t {
  kConsoleInput = 0x01,
  kNetFrame = 0x02,
  kEntropy = 0x03,
  kTimeSkip = 0x04,
  kDiskError = 0x05,
  kStateHash = 0x10,
  kOutputDigest = 0x11,
  kProgress = 0x20,
  kEnd = 0x21,
};

// Bytes received by the console, in order. Non-empty.
struct ConsoleInput {
  Bytes bytes;
  bool operator==(const ConsoleInput&) const = default;
};

// One received Ethernet frame (destination MAC through payload, no FCS). Non-empty.
struct NetFrame {
  Bytes frame;
  bool operator==(const NetFrame&) const = default;
};

// Bytes for the guest's random number generator. Non-empty.
struct Entropy {
  Bytes bytes;
  bool operator==(const Entropy&) const = default;
};

// Virtual time jumps forward to target_mtime.
struct TimeSkip {
  uint64_t target_mtime = 0;
  bool operator==(const TimeSkip&) const = default;
};

// A disk request that failed on the recording host: every copy of the
// machine completes it with an I/O error instead of performing it (a read's
// data bytes are zeroed). For a write, `data` holds the recording host's disk
// contents after the failure over [chunk_offset, chunk_offset + data.size())
// of the request's range; a replica writes them into its own copy, so the
// copies stay equal. A write longer than kMaxDiskErrorChunk takes several
// records at the same instret, in chunk order. `unreadable`: the recording
// host could not read the range back (no data; a replica cannot mirror it).
struct DiskError {
  uint8_t op = 0;  // the virtio-blk request type: 0 read, 1 write, 4 flush
  bool unreadable = false;
  uint64_t sector = 0;   // the request's first 512-byte sector
  uint64_t length = 0;   // the request's data bytes
  uint64_t chunk_offset = 0;
  Bytes data;
  bool operator==(const DiskError&) const = default;
};
inline constexpr size_t kDiskErrorFixedSize = 1 + 1 + 8 + 8 + 8;
inline constexpr size_t kMaxDiskErrorChunk = size_t{256} << 10;

// SHA-256 of the machine state at the record's instret.
struct StateHash {
  Sha256 hash{};
  bool operator==(const StateHash&) const = default;
};

// Running digest of all outputs up to the record's instret; see
// docs/log-format.md "The output digest" and OutputDigester (digest.h).
struct OutputDigest {
  Sha256 sha256{};
  uint64_t console_bytes = 0;
  uint64_t frames = 0;
  uint64_t frame_bytes = 0;
  bool operator==(const OutputDigest&) const = default;
};

// No further record will have an instret below this record's.
struct Progress {
  bool operator==(const Progress&) const = default;
};

// The run ended cleanly at this record's instret with this exit status.
struct End {
  int32_t exit_status = 0;
  bool operator==(const End&) const = default;
};

using Payload = std::variant<ConsoleInput, NetFrame, Entropy, TimeSkip, StateHash, OutputDigest,
                             Progress, End, DiskError>;

struct Record {
  uint64_t instret = 0;
  Payload payload;

  RecordType type() const;
  bool operator==(const Record&) const = default;
};

// Limits and sizes from docs/log-format.md.
inline constexpr size_t kMaxPayloadSize = size_t{1} << 20;
inline constexpr size_t kRecordHeaderSize = 17;   // type, instret, length, header_crc
inline constexpr size_t kRecordTrailerSize = 4;   // record_crc
inline constexpr size_t kRecordOverhead = kRecordHeaderSize + kRecordTrailerSize;

// "console-input", "net-frame", ...; "unknown" for a code outside the enum.
std::string_view record_type_name(RecordType type);

// One line for people and test failures: "instret 1200 console-input 3 bytes 61 62 0a".
std::string to_string(const Record& record);

// Whether `record` may be encoded: byte payloads non-empty and at most
// kMaxPayloadSize. The error names the problem.
Status check_record(const Record& record);

// Appends the encoding of `record` to `out`. On error (check_record fails)
// `out` is unchanged.
Status append_record(std::string& out, const Record& record);

// The encoding of `record` alone, e.g. for one message of the logging channel.
Result<std::string> encode_record(const Record& record);

// Validates the 17-byte record header at the start of `bytes` (checksum, type,
// length) and returns the whole record's encoded size. nullopt: fewer than
// kRecordHeaderSize bytes are present. `offset` is the stream offset of
// bytes[0], used only in error messages.
Result<std::optional<size_t>> peek_record_size(std::span<const uint8_t> bytes,
                                               uint64_t offset = 0);

struct DecodedRecord {
  Record record;
  size_t size = 0;  // bytes consumed from the front of the input
};

// Decodes the record at the start of `bytes`; later bytes are ignored.
// nullopt: `bytes` holds a valid prefix of a record but not all of it (a
// stream should wait for more; a file is truncated). Ordering against other
// records is not checked here: see RecordOrder.
Result<std::optional<DecodedRecord>> decode_record(std::span<const uint8_t> bytes,
                                                   uint64_t offset = 0);

// The stream rules: instrets never decrease, and nothing follows kEnd.
// Feed it every record of one log, in order.
class RecordOrder {
 public:
  // Accepts `record`, found at `offset`, if it may follow the records accepted
  // so far; otherwise returns an error and accepts nothing.
  Status accept(const Record& record, uint64_t offset);

  bool ended() const { return end_offset_.has_value(); }
  std::optional<uint64_t> end_offset() const { return end_offset_; }
  // The instret of the last accepted record; 0 before any.
  uint64_t last_instret() const { return last_instret_; }

 private:
  uint64_t last_instret_ = 0;
  std::optional<uint64_t> end_offset_;
};

}  // namespace ftvm::log
