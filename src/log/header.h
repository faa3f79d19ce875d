// The event-log header: format version and the description of the machine a
// log was recorded on (docs/log-format.md "Header").
//
// Pure functions, safe on any input bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "log/record.h"
#include "util/result.h"

namespace ftvm::log {

inline constexpr uint8_t kMagic[8] = {0x89, 'F', 'T', 'V', 'M', 'L', 'O', 'G'};
// The format version this code writes, and the oldest it still reads.
// Version 2 added the disk-error record; a version-1 log is version 2
// without it.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr size_t kHeaderPrefixSize = 16;  // magic, version, body_length
inline constexpr size_t kMinHeaderBodySize = 144;
inline constexpr size_t kMaxHeaderBodySize = size_t{1} << 20;

// Size and content hash of an image file (kernel, initrd, disk).
struct ImageDigest {
  uint64_t size = 0;
  Sha256 sha256{};
  bool operator==(const ImageDigest&) const = default;
};

struct Header {
  uint64_t ram_size = 0;
  std::string cmdline;
  ImageDigest kernel;
  std::optional<ImageDigest> initrd;
  std::optional<ImageDigest> disk;
  // Free-form, for people and tools (e.g. "ftvm.version"); keys non-empty.
  // Not compared by check_same_machine.
  std::map<std::string, std::string> metadata;

  bool operator==(const Header&) const = default;
};

// The header's encoding, stamped with format `version` (the layout is the
// same in every readable version; an older stamp re-encodes an older log
// byte for byte). Fails if a metadata key is empty, the body would exceed
// kMaxHeaderBodySize, or `version` is not one this code reads.
Result<std::string> encode_header(const Header& header, uint32_t version = kFormatVersion);

// Checks magic, version and body length at the start of `bytes` and returns
// the header's whole encoded size. nullopt: too few bytes to tell yet.
Result<std::optional<size_t>> peek_header_size(std::span<const uint8_t> bytes);

struct DecodedHeader {
  Header header;
  size_t size = 0;  // bytes consumed; the first record starts here
  uint32_t version = kFormatVersion;
};

// Whether a log of format `version` may hold records of `type` (the
// disk-error record is new in version 2).
bool version_has_record_type(uint32_t version, RecordType type);

// Decodes the header at the start of `bytes`; later bytes are ignored.
// nullopt: `bytes` is a valid prefix of a header but not all of it.
Result<std::optional<DecodedHeader>> decode_header(std::span<const uint8_t> bytes);

// Whether `recorded` (from a log) describes the same machine as `current`:
// RAM size, command line, and each image's presence, size and hash. The error
// names every field that differs, with both values.
Status check_same_machine(const Header& recorded, const Header& current);

}  // namespace ftvm::log
