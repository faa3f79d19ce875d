// Secret files and HMAC-SHA256 (see secret.h).
#include "auth/secret.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file.h"

namespace ftvm::auth {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Secret> Secret::load(const std::string& path) {
  Result<std::vector<uint8_t>> raw = read_file(path, "secret");
  if (!raw) return make_error(raw.error());
  std::vector<uint8_t> bytes = std::move(*raw);
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
  bool hex = !bytes.empty() && bytes.size() % 2 == 0;
  for (uint8_t b : bytes) hex = hex && hex_value(static_cast<char>(b)) >= 0;
  std::vector<uint8_t> key;
  if (hex) {
    for (size_t i = 0; i < bytes.size(); i += 2) {
      key.push_back(static_cast<uint8_t>(hex_value(static_cast<char>(bytes[i])) * 16 +
                                         hex_value(static_cast<char>(bytes[i + 1]))));
    }
  } else {
    key = std::move(bytes);
  }
  if (key.size() < kMinSecretBytes) {
    return make_error(fmt::format("secret file '{}' holds {} bytes of key; it needs at least {} "
                                  "(e.g. `head -c 32 /dev/urandom | xxd -p -c 64 > {}`)",
                                  path, key.size(), kMinSecretBytes, path));
  }
  return Secret(std::move(key));
}

Secret Secret::from_bytes(std::span<const uint8_t> key) {
  return Secret(std::vector<uint8_t>(key.begin(), key.end()));
}

Mac Secret::mac(std::initializer_list<std::span<const uint8_t>> parts) const {
  // EVP_MAC is OpenSSL 3's interface; fetching the algorithm once is enough.
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  FTVM_CHECK(hmac != nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(hmac);
  FTVM_CHECK(ctx != nullptr);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
  FTVM_CHECK(EVP_MAC_init(ctx, key_.data(), key_.size(), params) == 1);
  for (std::span<const uint8_t> p : parts) {
    FTVM_CHECK(EVP_MAC_update(ctx, p.data(), p.size()) == 1);
  }
  Mac out{};
  size_t len = 0;
  FTVM_CHECK(EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == kMacSize);
  EVP_MAC_CTX_free(ctx);
  return out;
}

bool Secret::verify(std::initializer_list<std::span<const uint8_t>> parts,
                    std::span<const uint8_t> mac_bytes) const {
  if (mac_bytes.size() != kMacSize) return false;
  const Mac expected = mac(parts);
  return CRYPTO_memcmp(expected.data(), mac_bytes.data(), kMacSize) == 0;
}

Status generate_secret_file(const std::string& path) {
  std::array<uint8_t, 32> key{};
  FTVM_CHECK(RAND_bytes(key.data(), static_cast<int>(key.size())) == 1);
  std::string text;
  for (uint8_t b : key) text += fmt::format("{:02x}", b);
  text += '\n';
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return {};
    return make_error(fmt::format("cannot create secret file '{}': {}", path, std::strerror(errno)));
  }
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!ok || !synced) {
    unlink(path.c_str());
    return make_error(fmt::format("cannot write secret file '{}'", path));
  }
  return {};
}

}  // namespace ftvm::auth
