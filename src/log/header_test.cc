// Tests for the log header: round trips, the byte layout, then one malformed
// header per test.
#include "log/header.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "log/coding.h"

namespace ftvm::log {
namespace {

std::span<const uint8_t> S(const std::string& s) { return internal::as_bytes(s); }

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

Sha256 Pattern(uint8_t start) {
  Sha256 h;
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint8_t>(start + i);
  return h;
}

Header FullHeader() {
  Header h;
  h.ram_size = 256ull << 20;
  h.cmdline = "console=ttyS0 earlycon=sbi quiet";
  h.kernel = {12345678, Pattern(0x10)};
  h.initrd = ImageDigest{4096, Pattern(0x40)};
  h.disk = ImageDigest{1ull << 33, Pattern(0x80)};
  h.metadata = {{"ftvm.version", "0.1.0"}, {"host", "primary"}, {"z", ""}};
  return h;
}

// The minimal header: nothing optional, empty command line, no metadata.
Header MinimalHeader() {
  Header h;
  h.ram_size = 1 << 20;
  h.kernel = {100, Pattern(1)};
  return h;
}

std::string Encode(const Header& h) {
  auto e = encode_header(h);
  EXPECT_TRUE(e.ok()) << e.error();
  return e.ok() ? *e : std::string();
}

uint32_t GetU32(const std::string& s, size_t at) { return internal::get_u32(S(s).data() + at); }

void PutU32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

void PutU64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// Recomputes body_length and header_crc after a test edited the body of a
// string holding exactly one header.
void Refresh(std::string& h) {
  PutU32(h, 12, static_cast<uint32_t>(h.size() - 20));
  PutU32(h, h.size() - 4, internal::crc32_of(S(h).first(h.size() - 4)));
}

std::string DecodeError(const std::string& bytes) {
  auto d = decode_header(S(bytes));
  if (d.ok()) return d->has_value() ? "decoded" : "incomplete";
  return d.error();
}

// --- round trips and layout ---

TEST(HeaderRoundTrip, Full) {
  const std::string bytes = Encode(FullHeader());
  auto d = decode_header(S(bytes));
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->header, FullHeader());
  EXPECT_EQ((*d)->size, bytes.size());
}

TEST(HeaderRoundTrip, Minimal) {
  const std::string bytes = Encode(MinimalHeader());
  EXPECT_EQ(bytes.size(), kHeaderPrefixSize + kMinHeaderBodySize + 4);
  auto d = decode_header(S(bytes));
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->header, MinimalHeader());
}

TEST(HeaderRoundTrip, InitrdWithoutDisk) {
  Header h = MinimalHeader();
  h.initrd = ImageDigest{1, Pattern(9)};
  auto d = decode_header(S(Encode(h)));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ((*d)->header, h);
}

TEST(HeaderRoundTrip, FieldOffsetsAreTheSpecs) {
  const std::string b = Encode(FullHeader());
  EXPECT_EQ(b.substr(0, 8), std::string("\x89" "FTVMLOG", 8));
  EXPECT_EQ(GetU32(b, 8), 2u);
  EXPECT_EQ(GetU32(b, 12), b.size() - 20);
  EXPECT_EQ(internal::get_u64(S(b).data() + 16), 256ull << 20);
  EXPECT_EQ(GetU32(b, 24), 3u);  // initrd and disk
  EXPECT_EQ(GetU32(b, 28), 0u);
  EXPECT_EQ(internal::get_u64(S(b).data() + 32), 12345678u);
  EXPECT_EQ(static_cast<uint8_t>(b[40]), 0x10);
  EXPECT_EQ(internal::get_u64(S(b).data() + 72), 4096u);
  EXPECT_EQ(static_cast<uint8_t>(b[80]), 0x40);
  EXPECT_EQ(internal::get_u64(S(b).data() + 112), 1ull << 33);
  EXPECT_EQ(static_cast<uint8_t>(b[120]), 0x80);
  const std::string cmdline = FullHeader().cmdline;
  EXPECT_EQ(GetU32(b, 152), cmdline.size());
  EXPECT_EQ(b.substr(156, cmdline.size()), cmdline);
  EXPECT_EQ(GetU32(b, 156 + cmdline.size()), 3u);
  EXPECT_EQ(GetU32(b, 160 + cmdline.size()), 12u);  // "ftvm.version"
  EXPECT_EQ(GetU32(b, b.size() - 4), internal::crc32_of(S(b).first(b.size() - 4)));
}

TEST(HeaderDecode, EveryProperPrefixIsIncomplete) {
  const std::string bytes = Encode(FullHeader());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DecodeError(bytes.substr(0, n)), "incomplete") << "prefix of " << n << " bytes";
  }
}

// --- malformed headers, one per test ---

TEST(HeaderCorruption, BadMagic) {
  std::string b = Encode(MinimalHeader());
  b[1] = 'f';
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 0: not an ftvm event log (starts with 89 66 54")) << e;
}

TEST(HeaderCorruption, TextFileIsNotALog) {
  EXPECT_TRUE(Contains(DecodeError("hello"), "not an ftvm event log"));
}

TEST(HeaderCorruption, EighthBitStripped) {
  std::string b = Encode(MinimalHeader());
  b[0] = 0x09;
  EXPECT_TRUE(Contains(DecodeError(b), "not an ftvm event log"));
}

TEST(HeaderCorruption, NewerVersion) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 8, 3);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 8: unsupported log format version 3: this ftvm reads versions 1 "
                          "to 2 (the log was written by a newer ftvm)"))
      << e;
}

TEST(HeaderCorruption, VersionZero) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 8, 0);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "unsupported log format version 0: this ftvm reads versions 1 to 2")) << e;
  EXPECT_FALSE(Contains(e, "newer"));
}

TEST(HeaderCorruption, VersionIsCheckedBeforeTheChecksum) {
  // A future version may lay out its header differently: it must be reported
  // as a version, not as corruption, even with a checksum this reader
  // would reject.
  std::string b = Encode(MinimalHeader());
  PutU32(b, 8, 7);
  b.back() ^= 1;
  EXPECT_TRUE(Contains(DecodeError(b), "version 7"));
}

TEST(HeaderCorruption, VersionIsReportedFromTheFirstTwelveBytes) {
  std::string b = Encode(MinimalHeader()).substr(0, 12);
  PutU32(b, 8, 9);
  EXPECT_TRUE(Contains(DecodeError(b), "version 9"));
}

TEST(HeaderCorruption, BodyLengthBelowTheMinimum) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 12, kMinHeaderBodySize - 1);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 12: header body length 143 is outside [144, 1048576]")) << e;
}

TEST(HeaderCorruption, BodyLengthOverTheLimitIsRejectedBeforeReading) {
  std::string b = Encode(MinimalHeader()).substr(0, kHeaderPrefixSize);
  PutU32(b, 12, 0xfffffff0u);
  EXPECT_TRUE(Contains(DecodeError(b), "header body length 4294967280 is outside"));
}

TEST(HeaderCorruption, ChecksumMismatch) {
  std::string b = Encode(MinimalHeader());
  b[20] ^= 0x04;  // in ram_size
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 160: header checksum mismatch (stored 0x")) << e;
}

TEST(HeaderCorruption, EverySingleBitFlipIsDetected) {
  const std::string good = Encode(FullHeader());
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] ^= static_cast<char>(1 << bit);
      const std::string e = DecodeError(bad);
      // A flip in body_length may make the header look longer than the
      // input: incomplete, which a reader of a whole file reports as truncated.
      EXPECT_NE(e, "decoded") << "byte " << i << " bit " << bit;
    }
  }
}

TEST(HeaderCorruption, UnknownFlagBits) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 24, 0x4);
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 24: header flags 0x4 have unknown bits set"));
}

TEST(HeaderCorruption, ReservedNotZero) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 28, 1);
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 28: reserved header field is 0x1, must be zero"));
}

TEST(HeaderCorruption, AbsentInitrdWithASize) {
  std::string b = Encode(MinimalHeader());
  PutU64(b, 72, 5);
  Refresh(b);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 72: the flags say there is no initrd but its size or hash is "
                          "not zero"))
      << e;
}

TEST(HeaderCorruption, AbsentDiskWithAHash) {
  std::string b = Encode(MinimalHeader());
  b[130] = 1;
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 112: the flags say there is no disk"));
}

TEST(HeaderCorruption, CmdlineRunsPastTheBody) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 152, 1000);
  Refresh(b);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 156: cmdline needs 1000 bytes but the header body ends at "
                          "offset 160 (4 bytes left)"))
      << e;
}

TEST(HeaderCorruption, MetadataCountRunsPastTheBody) {
  std::string b = Encode(MinimalHeader());
  PutU32(b, 156, 0xffffffffu);
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 160: metadata entry 0 key_length needs 4 bytes"));
}

TEST(HeaderCorruption, MetadataValueRunsPastTheBody) {
  Header h = MinimalHeader();
  h.metadata = {{"k", "v"}};
  std::string b = Encode(h);
  PutU32(b, 165, 2);  // value_length: body 160..: count, key_length, 'k', value_length
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "metadata \"k\" value needs 2 bytes"));
}

TEST(HeaderCorruption, MetadataEmptyKey) {
  Header h = MinimalHeader();
  h.metadata = {{"k", "v"}};
  std::string b = Encode(h);
  // Entry at 160: key_length 1, "k", value_length 1, "v" -> key_length 0,
  // value_length 1 ('k' read as its first byte), and a leftover byte.
  PutU32(b, 160, 0);
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 160: metadata entry 0 has an empty key"));
}

TEST(HeaderCorruption, MetadataKeysOutOfOrder) {
  Header h = MinimalHeader();
  h.metadata = {{"a", "1"}, {"b", "2"}};
  std::string b = Encode(h);
  b[164] = 'c';  // first key "a" -> "c"
  Refresh(b);
  const std::string e = DecodeError(b);
  EXPECT_TRUE(Contains(e, "offset 170: metadata key \"b\" is not after \"c\" (keys must be sorted "
                          "and unique)"))
      << e;
}

TEST(HeaderCorruption, MetadataDuplicateKey) {
  Header h = MinimalHeader();
  h.metadata = {{"a", "1"}, {"b", "2"}};
  std::string b = Encode(h);
  b[174] = 'a';  // second key "b" -> "a"
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "metadata key \"a\" is not after \"a\""));
}

TEST(HeaderCorruption, BytesLeftOverInTheBody) {
  std::string b = Encode(MinimalHeader());
  b.insert(b.size() - 4, "xy");
  Refresh(b);
  EXPECT_TRUE(Contains(DecodeError(b), "offset 160: 2 bytes left over after the header's last "
                                       "field"));
}

// --- what may be encoded ---

TEST(HeaderEncode, EmptyMetadataKeyIsRefused) {
  Header h = MinimalHeader();
  h.metadata[""] = "x";
  auto e = encode_header(h);
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(Contains(e.error(), "empty key"));
}

TEST(HeaderEncode, AnOlderVersionReEncodesByteForByte) {
  // A version-1 log's header decodes and encodes back to the same bytes when
  // stamped with the version it was read at (the layout never changed).
  std::string b = Encode(FullHeader());
  PutU32(b, 8, 1);
  Refresh(b);
  auto decoded = decode_header(S(b));
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  ASSERT_TRUE(decoded->has_value());
  EXPECT_EQ((*decoded)->version, 1u);
  auto again = encode_header((*decoded)->header, (*decoded)->version);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(*again, b);
  EXPECT_NE(Encode((*decoded)->header), b);  // the default stamp is the current version
}

TEST(HeaderEncode, AVersionThisCodeDoesNotWriteIsRefused) {
  for (uint32_t v : {0u, kFormatVersion + 1}) {
    auto e = encode_header(MinimalHeader(), v);
    ASSERT_FALSE(e.ok()) << v;
    EXPECT_TRUE(Contains(e.error(), fmt::format("cannot write log format version {}", v))) << e.error();
  }
}

TEST(HeaderEncode, HeaderOverTheLimitIsRefused) {
  Header h = MinimalHeader();
  h.metadata["big"] = std::string(kMaxHeaderBodySize, 'x');
  auto e = encode_header(h);
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(Contains(e.error(), "exceed the header limit of 1048576 bytes")) << e.error();
}

TEST(HeaderEncode, HeaderAtTheLimitIsAccepted) {
  Header h = MinimalHeader();
  h.cmdline = std::string(kMaxHeaderBodySize - kMinHeaderBodySize, 'c');
  const std::string b = Encode(h);
  EXPECT_EQ(GetU32(b, 12), kMaxHeaderBodySize);
  auto d = decode_header(S(b));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ((*d)->header, h);
}

// --- comparing machines ---

TEST(SameMachine, IdenticalHeadersMatchWhateverTheirMetadata) {
  Header a = FullHeader(), b = FullHeader();
  b.metadata["host"] = "backup";
  EXPECT_TRUE(check_same_machine(a, b).ok());
}

TEST(SameMachine, EveryDifferenceIsNamed) {
  Header a = FullHeader(), b = FullHeader();
  b.ram_size *= 2;
  b.kernel.sha256[0] ^= 1;
  b.disk.reset();
  Status s = check_same_machine(a, b);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "RAM size: log 268435456 bytes, this run 536870912 bytes"))
      << s.error();
  EXPECT_TRUE(Contains(s.error(), "kernel: log 12345678 bytes, sha256 1011"));
  EXPECT_TRUE(Contains(s.error(), "disk: log 8589934592 bytes, sha256 8081"));
  EXPECT_TRUE(Contains(s.error(), "this run none"));
  EXPECT_FALSE(Contains(s.error(), "initrd"));
}

TEST(SameMachine, CommandLineDifference) {
  Header a = MinimalHeader(), b = MinimalHeader();
  b.cmdline = "quiet";
  Status s = check_same_machine(a, b);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "kernel command line: log \"\", this run \"quiet\""));
}

}  // namespace
}  // namespace ftvm::log
