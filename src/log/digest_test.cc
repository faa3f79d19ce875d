// Tests for the SHA-256 helpers and the output digest.
#include "log/digest.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "log/coding.h"

namespace ftvm::log {
namespace {

std::span<const uint8_t> B(const std::string& s) { return internal::as_bytes(s); }

TEST(Crc32, CheckValueIsTheStandardOne) {
  EXPECT_EQ(internal::crc32_of(B("123456789")), 0xCBF43926u);
}

TEST(Crc32, EmptyInputIsZero) { EXPECT_EQ(internal::crc32_of({}), 0u); }

TEST(Sha256, KnownVector) {
  EXPECT_EQ(to_hex(sha256_of(B("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, EmptyInput) {
  EXPECT_EQ(to_hex(sha256_of({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DigestFile, SizeAndHashOfTheContents) {
  const std::string path = ::testing::TempDir() + "ftvm_log_digest_file";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("abc", f);
  std::fclose(f);
  auto d = digest_file(path);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->size, 3u);
  EXPECT_EQ(d->sha256, sha256_of(B("abc")));
  std::remove(path.c_str());
}

TEST(DigestFile, MissingFileNamesThePath) {
  auto d = digest_file("/nonexistent/ftvm-kernel");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("/nonexistent/ftvm-kernel"), std::string::npos) << d.error();
}

TEST(OutputDigester, NothingAddedIsTheHashOfNothing) {
  OutputDigester d;
  const OutputDigest got = d.digest();
  EXPECT_EQ(got.sha256, sha256_of({}));
  EXPECT_EQ(got.console_bytes, 0u);
  EXPECT_EQ(got.frames, 0u);
  EXPECT_EQ(got.frame_bytes, 0u);
}

TEST(OutputDigester, ConsoleBytesAreHashedOneItemPerByte) {
  OutputDigester d;
  d.add_console(B("hi"));
  EXPECT_EQ(d.digest().sha256, sha256_of(B(std::string("\x01h\x01i", 4))));
  EXPECT_EQ(d.digest().console_bytes, 2u);
}

TEST(OutputDigester, ConsoleGroupingDoesNotMatter) {
  const std::string text(3000, 'x');  // longer than the internal batch
  OutputDigester whole, pieces;
  whole.add_console(B(text));
  for (char c : text) pieces.add_console(B(std::string(1, c)));
  EXPECT_EQ(whole.digest(), pieces.digest());
}

TEST(OutputDigester, FrameIsTaggedAndLengthPrefixed) {
  OutputDigester d;
  d.add_frame(B("abc"));
  EXPECT_EQ(d.digest().sha256, sha256_of(B(std::string("\x02\x03\x00\x00\x00" "abc", 8))));
  EXPECT_EQ(d.digest().frames, 1u);
  EXPECT_EQ(d.digest().frame_bytes, 3u);
}

TEST(OutputDigester, OrderOfConsoleAndFramesMatters) {
  OutputDigester a, b;
  a.add_console(B("x"));
  a.add_frame(B("f"));
  b.add_frame(B("f"));
  b.add_console(B("x"));
  EXPECT_NE(a.digest().sha256, b.digest().sha256);
  EXPECT_EQ(a.digest().console_bytes, b.digest().console_bytes);
}

TEST(OutputDigester, DigestDoesNotStopAccumulation) {
  OutputDigester a, b;
  a.add_console(B("one"));
  (void)a.digest();
  a.add_console(B("two"));
  b.add_console(B("onetwo"));
  EXPECT_EQ(a.digest(), b.digest());
}

}  // namespace
}  // namespace ftvm::log
