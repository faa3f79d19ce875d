#include "auth/secret.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace ftvm::auth {
namespace {

std::string temp_path(const char* name) {
  return std::string(::testing::TempDir()) + "/" + name + std::to_string(getpid());
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Secret, Rfc4231Case2) {
  const std::string key = "Jefe";
  // RFC 4231 keys may be short; from_bytes does not enforce the file minimum.
  const Secret s = Secret::from_bytes(bytes(key));
  const Mac m = s.mac(bytes("what do ya want for nothing?"));
  std::string hex;
  for (uint8_t b : m) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
  EXPECT_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Secret, PartsEqualConcatenationAndVerify) {
  const Secret s = Secret::from_bytes(bytes("0123456789abcdef0123"));
  const Mac whole = s.mac(bytes("helloworld"));
  EXPECT_EQ(whole, s.mac({bytes("hello"), bytes("world")}));
  EXPECT_TRUE(s.verify({bytes("hello"), bytes("world")}, whole));
  Mac bad = whole;
  bad[5] ^= 1;
  EXPECT_FALSE(s.verify({bytes("helloworld")}, bad));
  EXPECT_FALSE(s.verify({bytes("helloworld")}, std::span<const uint8_t>(whole.data(), 31)));
}

TEST(Secret, GeneratedFileLoadsAsHexAndIsNotOverwritten) {
  const std::string path = temp_path("secret");
  std::remove(path.c_str());
  ASSERT_TRUE(generate_secret_file(path));
  Result<Secret> a = Secret::load(path);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->size(), 32u);
  ASSERT_TRUE(generate_secret_file(path));
  Result<Secret> b = Secret::load(path);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->mac(bytes("x")), b->mac(bytes("x")));
  std::remove(path.c_str());
}

TEST(Secret, ShortMissingFilesAreErrors) {
  const std::string path = temp_path("short");
  std::ofstream(path) << "abcd\n";
  Result<Secret> s = Secret::load(path);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("at least 16"), std::string::npos) << s.error();
  std::remove(path.c_str());
  EXPECT_FALSE(Secret::load(path));
}

}  // namespace
}  // namespace ftvm::auth
