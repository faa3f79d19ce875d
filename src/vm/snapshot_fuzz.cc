// libFuzzer target for the snapshot decoders: decode_snapshot_info,
// decode_snapshot and decode_snapshot_into.
//
// Beyond "no crash, no sanitizer report, no allocation past the declared
// RAM", it checks that
//   - both full decoders agree, on success and on the error;
//   - whatever decodes re-encodes (with the same chunk size) to the same
//     bytes up to the first RAM chunk: the description, state and RAM
//     sections are canonical (chunks are not: zstd output depends on the
//     level), and to a snapshot that decodes to the same RAM.
//
// Checksums would keep the fuzzer out of everything behind them, so each
// input is also run with its checksums made correct (walking the section
// lengths it claims, the embedded event-log header's checksum included):
// mutations then reach the field checks. Built with FTVM_FUZZ=ON; run by
// scripts/fuzz-smoke.sh.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "vm/snapshot.h"

namespace ftvm::vm {
namespace {

// Decoding a snapshot fills a vector of its RAM size: keep that small here
// (the decoders' own limit is tested by the unit tests).
constexpr uint64_t kFuzzMaxRam = 16 << 20;

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}

// Stores at `at` the CRC-32 of s[from, at).
void put_crc(std::string& s, size_t from, size_t at) {
  const uint32_t crc = static_cast<uint32_t>(
      ::crc32(::crc32(0, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data() + from),
              static_cast<uInt>(at - from)));
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(crc >> (8 * i));
}

// `in` with every checksum it has room for made correct.
std::string fixed(std::span<const uint8_t> in) {
  std::string s(reinterpret_cast<const char*>(in.data()), in.size());
  size_t pos = kSnapshotPrefixSize;
  bool first = true;
  while (s.size() >= pos + kSectionHeaderSize) {
    put_crc(s, pos, pos + 8);
    const uint64_t length = get_u32(s, pos + 4);
    if (length + kSectionOverhead > s.size() - pos) break;
    if (first && length >= 8 + 16 + 4) {
      // The description: its event-log header's own checksum first.
      const size_t header = pos + kSectionHeaderSize + 8;
      const uint64_t body = get_u32(s, header + 12);
      if (16 + body + 4 <= length - 8) put_crc(s, header, header + 16 + body);
    }
    first = false;
    put_crc(s, pos, pos + kSectionHeaderSize + length);
    pos += kSectionOverhead + length;
  }
  return s;
}

// The file offset where the first RAM chunk starts, and the chunk size, in
// a snapshot that decoded.
std::pair<size_t, uint32_t> ram_layout(const std::string& s) {
  const size_t state_at = kSnapshotPrefixSize + kSectionOverhead + get_u32(s, 16);
  const size_t ram_at = state_at + kSectionOverhead + kStateSectionSize;
  return {ram_at + kSectionOverhead + 16, get_u32(s, ram_at + kSectionHeaderSize + 8)};
}

void fuzz(const std::string& s) {
  const std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  auto info = decode_snapshot_info(in, "f");
  if (!info) {
    FTVM_CHECK(info.error().rfind("f: offset ", 0) == 0);
    FTVM_CHECK(!decode_snapshot(in, "f").ok());
    return;
  }
  FTVM_CHECK(info->machine.ram_size >= 1 && info->machine.ram_size <= kMaxSnapshotRamSize);
  if (info->machine.ram_size > kFuzzMaxRam) return;

  auto decoded = decode_snapshot(in, "f");
  std::vector<uint8_t> ram(info->machine.ram_size, 0xa5);
  auto into = decode_snapshot_into(in, ram, "f");
  FTVM_CHECK(decoded.ok() == into.ok());
  if (!decoded) {
    FTVM_CHECK(decoded.error() == into.error());
    FTVM_CHECK(decoded.error().rfind("f: offset ", 0) == 0);
    return;
  }
  FTVM_CHECK(decoded->info == *info && into->info == *info);
  FTVM_CHECK(decoded->ram == ram);
  FTVM_CHECK(decoded->info.instret == decoded->state.hart.instret);

  const auto [chunks_at, chunk_size] = ram_layout(s);
  SnapshotOptions options;
  options.zstd_level = 1;
  options.chunk_size = chunk_size;
  auto again = encode_snapshot(decoded->info, decoded->state, decoded->ram, options);
  FTVM_CHECK(again.ok());
  FTVM_CHECK(again->size() >= chunks_at && s.size() >= chunks_at);
  // Byte for byte up to the RAM, unless the description's event-log header
  // has an older version stamp: it re-encodes at the current version (and
  // so with other checksums).
  const uint32_t header_version = get_u32(s, kSnapshotPrefixSize + kSectionHeaderSize + 8 + 8);
  if (header_version == log::kFormatVersion) {
    FTVM_CHECK(std::memcmp(again->data(), s.data(), chunks_at) == 0);
  } else {
    FTVM_CHECK(header_version >= log::kOldestReadableVersion && header_version < log::kFormatVersion);
  }
  auto redecoded =
      decode_snapshot({reinterpret_cast<const uint8_t*>(again->data()), again->size()}, "again");
  FTVM_CHECK(redecoded.ok());
  FTVM_CHECK(redecoded->info == decoded->info);
  FTVM_CHECK(redecoded->ram == decoded->ram);
}

}  // namespace
}  // namespace ftvm::vm

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  ftvm::vm::fuzz(std::string(reinterpret_cast<const char*>(data), size));
  ftvm::vm::fuzz(ftvm::vm::fixed(in));
  return 0;
}
