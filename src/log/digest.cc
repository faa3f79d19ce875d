// SHA-256 through OpenSSL's EVP interface.
#include "log/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace ftvm::log {

namespace {

class Sha256Context {
 public:
  Sha256Context() : md(EVP_MD_CTX_new()) {
    FTVM_CHECK(md != nullptr);
    FTVM_CHECK(EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1);
  }
  ~Sha256Context() { EVP_MD_CTX_free(md); }
  Sha256Context(const Sha256Context&) = delete;
  Sha256Context& operator=(const Sha256Context&) = delete;
  void update(const void* p, size_t n) { FTVM_CHECK(EVP_DigestUpdate(md, p, n) == 1); }
  Sha256 final_copy() const {
    EVP_MD_CTX* copy = EVP_MD_CTX_new();
    FTVM_CHECK(copy != nullptr);
    FTVM_CHECK(EVP_MD_CTX_copy_ex(copy, md) == 1);
    Sha256 out{};
    unsigned int len = 0;
    FTVM_CHECK(EVP_DigestFinal_ex(copy, out.data(), &len) == 1 && len == out.size());
    EVP_MD_CTX_free(copy);
    return out;
  }

 private:
  EVP_MD_CTX* md;
};

}  // namespace

struct OutputDigester::Ctx : Sha256Context {};

Sha256 sha256_of(std::span<const uint8_t> bytes) {
  Sha256Context ctx;
  ctx.update(bytes.data(), bytes.size());
  return ctx.final_copy();
}

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

Result<ImageDigest> digest_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  Sha256Context ctx;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return make_error(fmt::format("cannot read {}: {}", path, std::strerror(err)));
    }
    if (n == 0) break;
    ctx.update(buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return ImageDigest{size, ctx.final_copy()};
}

OutputDigester::OutputDigester() : ctx_(std::make_unique<Ctx>()) {}
OutputDigester::~OutputDigester() = default;
OutputDigester::OutputDigester(OutputDigester&&) noexcept = default;
OutputDigester& OutputDigester::operator=(OutputDigester&&) noexcept = default;

void OutputDigester::add_console(std::span<const uint8_t> bytes) {
  // Item per byte: 01 b. Batched so long runs cost one update.
  uint8_t pairs[512];
  size_t i = 0;
  while (i < bytes.size()) {
    size_t n = 0;
    for (; n < sizeof pairs / 2 && i < bytes.size(); ++n, ++i) {
      pairs[2 * n] = 0x01;
      pairs[2 * n + 1] = bytes[i];
    }
    ctx_->update(pairs, 2 * n);
  }
  console_bytes_ += bytes.size();
}

void OutputDigester::add_frame(std::span<const uint8_t> frame) {
  FTVM_CHECK(frame.size() <= UINT32_MAX);
  const uint32_t len = static_cast<uint32_t>(frame.size());
  const uint8_t prefix[5] = {0x02, static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
                             static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
  ctx_->update(prefix, sizeof prefix);
  ctx_->update(frame.data(), frame.size());
  ++frames_;
  frame_bytes_ += frame.size();
}

OutputDigest OutputDigester::digest() const {
  return OutputDigest{ctx_->final_copy(), console_bytes_, frames_, frame_bytes_};
}

}  // namespace ftvm::log
