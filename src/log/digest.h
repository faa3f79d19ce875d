// SHA-256 helpers for what the log records: image hashes for the header and
// the running output digest (docs/log-format.md "The output digest").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "log/header.h"
#include "log/record.h"
#include "util/result.h"

namespace ftvm::log {

Sha256 sha256_of(std::span<const uint8_t> bytes);

// Lower-case hex, two digits per byte, no separators.
std::string to_hex(std::span<const uint8_t> bytes);

// Size and SHA-256 of the file at `path`, read in full. The error names the
// path and the system's message.
Result<ImageDigest> digest_file(const std::string& path);

// Accumulates the outputs of a machine, in the order it produced them, into
// the running digest a kOutputDigest record holds. Movable, not copyable (a
// moved-from digester may only be destroyed or assigned to); not thread-safe.
class OutputDigester {
 public:
  OutputDigester();
  ~OutputDigester();
  OutputDigester(OutputDigester&&) noexcept;
  OutputDigester& operator=(OutputDigester&&) noexcept;

  // Console bytes, however they were grouped into writes.
  void add_console(std::span<const uint8_t> bytes);
  // One transmitted frame.
  void add_frame(std::span<const uint8_t> frame);

  // The digest of everything added so far; adding may continue afterwards.
  OutputDigest digest() const;

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  uint64_t console_bytes_ = 0;
  uint64_t frames_ = 0;
  uint64_t frame_bytes_ = 0;
};

}  // namespace ftvm::log
