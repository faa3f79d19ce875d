// The shared secret of an FT pair and the HMAC-SHA256 that authenticates
// every channel and arbiter message (DESIGN.md §5 "Security").
//
// A secret file holds at least 16 bytes; when its content is hex text (the
// form `generate_secret_file` writes, and what an operator types), the
// decoded bytes are the key, otherwise the raw bytes are. Trailing newlines
// are ignored.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"

namespace ftvm::auth {

inline constexpr size_t kMacSize = 32;
inline constexpr size_t kMinSecretBytes = 16;
using Mac = std::array<uint8_t, kMacSize>;

class Secret {
 public:
  // Reads the key from `path`. Errors name the file and what to do (missing,
  // unreadable, shorter than kMinSecretBytes).
  static Result<Secret> load(const std::string& path);
  static Secret from_bytes(std::span<const uint8_t> key);

  // HMAC-SHA256 over the concatenation of `parts`.
  Mac mac(std::initializer_list<std::span<const uint8_t>> parts) const;
  Mac mac(std::span<const uint8_t> data) const { return mac({data}); }
  // Constant-time comparison of `mac` with the HMAC of `parts`.
  bool verify(std::initializer_list<std::span<const uint8_t>> parts,
              std::span<const uint8_t> mac) const;

  size_t size() const { return key_.size(); }

 private:
  explicit Secret(std::vector<uint8_t> key) : key_(std::move(key)) {}
  std::vector<uint8_t> key_;
};

// Writes 32 random bytes as hex to `path` with mode 0600 unless the file
// already exists (then it is left alone).
Status generate_secret_file(const std::string& path);

}  // namespace ftvm::auth
