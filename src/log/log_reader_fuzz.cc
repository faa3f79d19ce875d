// libFuzzer target for every parser of log bytes: the whole-log reader, the
// single-record decoder (the logging channel's) and the header decoder.
//
// Beyond "no crash, no sanitizer report", it checks that decoding is
// canonical: whatever decodes re-encodes to exactly the bytes it came from,
// so no two byte strings mean the same log.
//
// Checksums would keep the fuzzer out of everything behind them, so each
// input is also run with its checksums made correct (walking the lengths it
// claims, as a log and as a single record): mutations then reach the field
// checks of the header and the payload parsers. Built with FTVM_FUZZ=ON; run
// by scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "log/coding.h"
#include "log/header.h"
#include "log/log_reader.h"
#include "log/record.h"

namespace ftvm::log {
namespace {

bool same_bytes(const std::string& encoded, std::span<const uint8_t> original) {
  return encoded.size() == original.size() &&
         std::memcmp(encoded.data(), original.data(), original.size()) == 0;
}

// Stores at `at` the CRC-32 of s[from, at).
void put_crc(std::string& s, size_t from, size_t at) {
  const uint32_t crc = internal::crc32_of(internal::as_bytes(s).subspan(from, at - from));
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(crc >> (8 * i));
}

// Rewrites the checksums of the records starting at `pos`, as far as their
// claimed lengths fit in `s`.
void fix_record_crcs(std::string& s, size_t pos) {
  while (s.size() - pos >= kRecordHeaderSize) {
    put_crc(s, pos, pos + 13);
    const uint64_t length = internal::get_u32(internal::as_bytes(s).data() + pos + 9);
    if (length + kRecordOverhead > s.size() - pos) return;
    const size_t crc_at = pos + kRecordHeaderSize + length;
    put_crc(s, pos, crc_at);
    pos = crc_at + 4;
  }
}

// `in` with the header checksum and then every record checksum made correct.
std::string fixed_as_log(std::span<const uint8_t> in) {
  std::string s(reinterpret_cast<const char*>(in.data()), in.size());
  if (s.size() < kHeaderPrefixSize) return s;
  const uint64_t body = internal::get_u32(in.data() + 12);
  if (body + kHeaderPrefixSize + 4 > s.size()) return s;
  put_crc(s, 0, kHeaderPrefixSize + body);
  fix_record_crcs(s, kHeaderPrefixSize + body + 4);
  return s;
}

// `in` with checksums made correct for records starting at offset 0.
std::string fixed_as_records(std::span<const uint8_t> in) {
  std::string s(reinterpret_cast<const char*>(in.data()), in.size());
  fix_record_crcs(s, 0);
  return s;
}

void fuzz_reader(std::span<const uint8_t> in) {
  LogReader reader =
      LogReader::from_bytes(std::string(reinterpret_cast<const char*>(in.data()), in.size()));
  auto header = reader.header();
  if (!header) {
    FTVM_CHECK(!header.error().empty());
    return;
  }
  auto encoded_header = encode_header(*header, reader.version());
  FTVM_CHECK(encoded_header.ok());
  FTVM_CHECK(same_bytes(*encoded_header, in.first(reader.offset())));
  uint64_t previous_instret = 0;
  bool ended = false;
  for (;;) {
    const uint64_t at = reader.offset();
    auto record = reader.next();
    if (!record) {
      FTVM_CHECK(record.error().find("offset ") != std::string::npos);
      FTVM_CHECK(reader.offset() == at);
      return;
    }
    if (!record->has_value()) {
      FTVM_CHECK(at == in.size());
      return;
    }
    FTVM_CHECK(!ended);
    const Record& r = **record;
    FTVM_CHECK(r.instret >= previous_instret);
    previous_instret = r.instret;
    ended = r.type() == RecordType::kEnd;
    FTVM_CHECK(reader.ended() == ended);
    auto encoded = encode_record(r);
    FTVM_CHECK(encoded.ok());
    FTVM_CHECK(same_bytes(*encoded, in.subspan(at, reader.offset() - at)));
  }
}

void fuzz_record(std::span<const uint8_t> in) {
  auto size = peek_record_size(in);
  auto decoded = decode_record(in);
  FTVM_CHECK(size.ok() || !decoded.ok());  // a bad record header fails both
  if (!decoded || !decoded->has_value()) return;
  const DecodedRecord& d = **decoded;
  FTVM_CHECK(size->has_value() && **size == d.size && d.size <= in.size());
  FTVM_CHECK(check_record(d.record).ok());
  auto encoded = encode_record(d.record);
  FTVM_CHECK(encoded.ok());
  FTVM_CHECK(same_bytes(*encoded, in.first(d.size)));
}

void fuzz_header(std::span<const uint8_t> in) {
  auto decoded = decode_header(in);
  if (!decoded || !decoded->has_value()) return;
  auto encoded = encode_header((*decoded)->header, (*decoded)->version);
  FTVM_CHECK(encoded.ok());
  FTVM_CHECK(same_bytes(*encoded, in.first((*decoded)->size)));
}

}  // namespace
}  // namespace ftvm::log

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftvm::log;
  const std::span<const uint8_t> in(data, size);
  fuzz_reader(in);
  fuzz_record(in);
  fuzz_header(in);
  const std::string as_log = fixed_as_log(in);
  fuzz_reader(internal::as_bytes(as_log));
  fuzz_header(internal::as_bytes(as_log));
  const std::string as_records = fixed_as_records(in);
  fuzz_record(internal::as_bytes(as_records));
  return 0;
}
