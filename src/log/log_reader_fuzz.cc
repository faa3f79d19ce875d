// libFuzzer target for every parser of log bytes: the whole-log reader, the
// single-record decoder (the logging channel's) and the header decoder.
//
// Beyond "no crash, no sanitizer report", it checks that decoding is
// canonical: whatever decodes re-encodes to exactly the bytes it came from,
// so no two byte strings mean the same log. Built with FTVM_FUZZ=ON; run by
// scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "log/header.h"
#include "log/log_reader.h"
#include "log/record.h"

namespace ftvm::log {
namespace {

bool same_bytes(const std::string& encoded, std::span<const uint8_t> original) {
  return encoded.size() == original.size() &&
         std::memcmp(encoded.data(), original.data(), original.size()) == 0;
}

void fuzz_reader(std::span<const uint8_t> in) {
  LogReader reader =
      LogReader::from_bytes(std::string(reinterpret_cast<const char*>(in.data()), in.size()));
  auto header = reader.header();
  if (!header) {
    FTVM_CHECK(!header.error().empty());
    return;
  }
  auto encoded_header = encode_header(*header);
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
  auto encoded = encode_header((*decoded)->header);
  FTVM_CHECK(encoded.ok());
  FTVM_CHECK(same_bytes(*encoded, in.first((*decoded)->size)));
}

}  // namespace
}  // namespace ftvm::log

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  ftvm::log::fuzz_reader(in);
  ftvm::log::fuzz_record(in);
  ftvm::log::fuzz_header(in);
  return 0;
}
