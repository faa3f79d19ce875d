// Header encoding and decoding; the layout is docs/log-format.md "Header".
#include "log/header.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "log/coding.h"
#include "log/digest.h"

namespace ftvm::log {

namespace {

using internal::get_u32;
using internal::get_u64;
using internal::put_bytes;
using internal::put_u32;
using internal::put_u64;

constexpr uint32_t kFlagInitrd = 1u << 0;
constexpr uint32_t kFlagDisk = 1u << 1;

std::string hex_bytes(std::span<const uint8_t> b) {
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) s += fmt::format("{}{:02x}", i ? " " : "", b[i]);
  return s;
}

void put_image(std::string& out, const std::optional<ImageDigest>& image) {
  const ImageDigest zero;
  const ImageDigest& d = image ? *image : zero;
  put_u64(out, d.size);
  put_bytes(out, d.sha256);
}

// Reads the fields of a header body in order, tracking file offsets. Every
// take_* checks the bytes exist before reading them.
class BodyReader {
 public:
  // `data` is the whole header from offset 0; the body is [16, 16 + body_length).
  BodyReader(const uint8_t* data, size_t body_end) : data_(data), end_(body_end) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return end_ - pos_; }

  Result<uint32_t> take_u32(std::string_view what) {
    if (remaining() < 4) return overrun(what, 4);
    uint32_t v = get_u32(data_ + pos_);
    pos_ += 4;
    return v;
  }
  Result<uint64_t> take_u64(std::string_view what) {
    if (remaining() < 8) return overrun(what, 8);
    uint64_t v = get_u64(data_ + pos_);
    pos_ += 8;
    return v;
  }
  Result<Sha256> take_sha256(std::string_view what) {
    Sha256 h{};
    if (remaining() < h.size()) return overrun(what, h.size());
    std::memcpy(h.data(), data_ + pos_, h.size());
    pos_ += h.size();
    return h;
  }
  Result<std::string> take_string(std::string_view what, uint32_t length) {
    if (remaining() < length) return overrun(what, length);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  Error overrun(std::string_view what, size_t need) const {
    return make_error(fmt::format(
        "offset {}: {} needs {} bytes but the header body ends at offset {} ({} bytes left)", pos_,
        what, need, end_, remaining()));
  }

  const uint8_t* data_;
  size_t end_;
  size_t pos_ = kHeaderPrefixSize;
};

#define FTVM_LOG_TAKE(var, expr)               \
  auto var##_result = (expr);                  \
  if (!var##_result) return make_error(var##_result.error()); \
  auto var = std::move(var##_result).value()

// Reads one image's size and hash; `present` from the flags.
Result<std::optional<ImageDigest>> take_image(BodyReader& r, std::string_view name, bool present) {
  const size_t at = r.pos();
  FTVM_LOG_TAKE(size, r.take_u64(fmt::format("{} size", name)));
  FTVM_LOG_TAKE(hash, r.take_sha256(fmt::format("{} sha256", name)));
  if (present) return std::optional<ImageDigest>{ImageDigest{size, hash}};
  if (size != 0 || hash != Sha256{}) {
    return make_error(fmt::format(
        "offset {}: the flags say there is no {} but its size or hash is not zero", at, name));
  }
  return std::optional<ImageDigest>{};
}

Result<Header> parse_body(const uint8_t* data, size_t body_end) {
  BodyReader r(data, body_end);
  Header h;
  FTVM_LOG_TAKE(ram_size, r.take_u64("ram_size"));
  h.ram_size = ram_size;
  FTVM_LOG_TAKE(flags, r.take_u32("flags"));
  if (flags & ~(kFlagInitrd | kFlagDisk)) {
    return make_error(fmt::format("offset {}: header flags {:#x} have unknown bits set",
                                  r.pos() - 4, flags));
  }
  FTVM_LOG_TAKE(reserved, r.take_u32("reserved"));
  if (reserved != 0) {
    return make_error(fmt::format("offset {}: reserved header field is {:#x}, must be zero",
                                  r.pos() - 4, reserved));
  }
  FTVM_LOG_TAKE(kernel, take_image(r, "kernel", true));
  h.kernel = *kernel;
  FTVM_LOG_TAKE(initrd, take_image(r, "initrd", flags & kFlagInitrd));
  h.initrd = initrd;
  FTVM_LOG_TAKE(disk, take_image(r, "disk", flags & kFlagDisk));
  h.disk = disk;
  FTVM_LOG_TAKE(cmdline_length, r.take_u32("cmdline_length"));
  FTVM_LOG_TAKE(cmdline, r.take_string("cmdline", cmdline_length));
  h.cmdline = std::move(cmdline);
  FTVM_LOG_TAKE(count, r.take_u32("metadata_count"));
  for (uint32_t i = 0; i < count; ++i) {
    const size_t at = r.pos();
    FTVM_LOG_TAKE(key_length, r.take_u32(fmt::format("metadata entry {} key_length", i)));
    if (key_length == 0) {
      return make_error(fmt::format("offset {}: metadata entry {} has an empty key", at, i));
    }
    FTVM_LOG_TAKE(key, r.take_string(fmt::format("metadata entry {} key", i), key_length));
    if (!h.metadata.empty() && !(h.metadata.rbegin()->first < key)) {
      return make_error(fmt::format(
          "offset {}: metadata key \"{}\" is not after \"{}\" (keys must be sorted and unique)",
          at, key, h.metadata.rbegin()->first));
    }
    FTVM_LOG_TAKE(value_length, r.take_u32(fmt::format("metadata \"{}\" value_length", key)));
    FTVM_LOG_TAKE(value, r.take_string(fmt::format("metadata \"{}\" value", key), value_length));
    h.metadata.emplace_hint(h.metadata.end(), std::move(key), std::move(value));
  }
  if (r.remaining() != 0) {
    return make_error(fmt::format("offset {}: {} bytes left over after the header's last field",
                                  r.pos(), r.remaining()));
  }
  return h;
}

#undef FTVM_LOG_TAKE

std::string describe_image(const std::optional<ImageDigest>& d) {
  if (!d) return "none";
  return fmt::format("{} bytes, sha256 {}", d->size, to_hex(d->sha256));
}

}  // namespace

Result<std::string> encode_header(const Header& header, uint32_t version) {
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return make_error(fmt::format("cannot write log format version {}: this ftvm writes versions {} to {}",
                                  version, kOldestReadableVersion, kFormatVersion));
  }
  std::string body;
  put_u64(body, header.ram_size);
  put_u32(body, (header.initrd ? kFlagInitrd : 0) | (header.disk ? kFlagDisk : 0));
  put_u32(body, 0);
  put_image(body, header.kernel);
  put_image(body, header.initrd);
  put_image(body, header.disk);
  // Each piece is checked against the body limit before it is added (and its
  // length narrowed to u32).
  auto fits = [&body](size_t more) { return more <= kMaxHeaderBodySize - body.size(); };
  auto too_big = [] {
    return make_error(fmt::format(
        "cannot log this header: command line and metadata exceed the header limit of {} bytes",
        kMaxHeaderBodySize));
  };
  if (!fits(size_t{8} + header.cmdline.size())) return too_big();
  put_u32(body, static_cast<uint32_t>(header.cmdline.size()));
  body += header.cmdline;
  put_u32(body, static_cast<uint32_t>(header.metadata.size()));
  for (const auto& [key, value] : header.metadata) {
    if (key.empty()) return make_error("cannot log metadata with an empty key");
    if (!fits(8 + key.size() + value.size())) return too_big();
    put_u32(body, static_cast<uint32_t>(key.size()));
    body += key;
    put_u32(body, static_cast<uint32_t>(value.size()));
    body += value;
  }
  std::string out;
  out.reserve(kHeaderPrefixSize + body.size() + 4);
  put_bytes(out, kMagic);
  put_u32(out, version);
  put_u32(out, static_cast<uint32_t>(body.size()));
  out += body;
  put_u32(out, internal::crc32_of(internal::as_bytes(out)));
  return out;
}

Result<std::optional<size_t>> peek_header_size(std::span<const uint8_t> bytes) {
  const size_t magic_bytes = std::min(bytes.size(), sizeof kMagic);
  if (magic_bytes > 0 && std::memcmp(bytes.data(), kMagic, magic_bytes) != 0) {
    return make_error(fmt::format("offset 0: not an ftvm event log (starts with {}, expected {})",
                                  hex_bytes(bytes.first(magic_bytes)),
                                  hex_bytes(std::span<const uint8_t>(kMagic, magic_bytes))));
  }
  if (bytes.size() < 12) return std::optional<size_t>{};
  const uint32_t version = get_u32(bytes.data() + 8);
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return make_error(fmt::format(
        "offset 8: unsupported log format version {}: this ftvm reads versions {} to {}{}",
        version, kOldestReadableVersion, kFormatVersion,
        version > kFormatVersion ? " (the log was written by a newer ftvm)" : ""));
  }
  if (bytes.size() < kHeaderPrefixSize) return std::optional<size_t>{};
  const uint32_t body_length = get_u32(bytes.data() + 12);
  if (body_length < kMinHeaderBodySize || body_length > kMaxHeaderBodySize) {
    return make_error(fmt::format("offset 12: header body length {} is outside [{}, {}]",
                                  body_length, kMinHeaderBodySize, kMaxHeaderBodySize));
  }
  return std::optional<size_t>{kHeaderPrefixSize + size_t{body_length} + 4};
}

Result<std::optional<DecodedHeader>> decode_header(std::span<const uint8_t> bytes) {
  auto size = peek_header_size(bytes);
  if (!size) return make_error(size.error());
  if (!size->has_value() || bytes.size() < **size) return std::optional<DecodedHeader>{};
  const size_t n = **size;
  const size_t crc_at = n - 4;
  const uint32_t stored = get_u32(bytes.data() + crc_at);
  const uint32_t computed = internal::crc32_of(bytes.first(crc_at));
  if (stored != computed) {
    return make_error(
        fmt::format("offset {}: header checksum mismatch (stored {:#010x}, computed {:#010x})",
                    crc_at, stored, computed));
  }
  auto header = parse_body(bytes.data(), crc_at);
  if (!header) return make_error(header.error());
  return std::optional<DecodedHeader>{
      DecodedHeader{std::move(header).value(), n, get_u32(bytes.data() + 8)}};
}

bool version_has_record_type(uint32_t version, RecordType type) {
  return type != RecordType::kDiskError || version >= 2;
}

Status check_same_machine(const Header& recorded, const Header& current) {
  std::vector<std::string> diffs;
  if (recorded.ram_size != current.ram_size) {
    diffs.push_back(fmt::format("RAM size: log {} bytes, this run {} bytes", recorded.ram_size,
                                current.ram_size));
  }
  if (recorded.cmdline != current.cmdline) {
    diffs.push_back(fmt::format("kernel command line: log \"{}\", this run \"{}\"",
                                recorded.cmdline, current.cmdline));
  }
  auto image = [&diffs](std::string_view name, const std::optional<ImageDigest>& a,
                        const std::optional<ImageDigest>& b) {
    if (a != b) {
      diffs.push_back(fmt::format("{}: log {}, this run {}", name, describe_image(a),
                                  describe_image(b)));
    }
  };
  image("kernel", recorded.kernel, current.kernel);
  image("initrd", recorded.initrd, current.initrd);
  image("disk", recorded.disk, current.disk);
  if (diffs.empty()) return {};
  std::string message = "the log was recorded on a different machine:";
  for (const auto& d : diffs) message += "\n  " + d;
  return make_error(std::move(message));
}

}  // namespace ftvm::log
