// Copies of disk images for recordings of runs with a writable disk.
#include "hostio/disk_copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace ftvm::hostio {
namespace {

std::string temp_dir() {
  std::string t = ::testing::TempDir() + "/ftvm-disk-copy-XXXXXX";
  EXPECT_NE(mkdtemp(t.data()), nullptr);
  return t;
}

std::vector<char> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A sparse image: data at the start and at 3 MiB, a hole between, and a
// tail that is a hole too.
TEST(CopyDiskImage, TheCopyHasTheSameBytesAndTheSourceIsUntouched) {
  const std::string dir = temp_dir();
  const std::string src = dir + "/disk.img", dst = dir + "/run.log.disk";
  {
    const int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4 << 20), 0);
    std::string a(10000, 'a'), b(5000, 'b');
    ASSERT_EQ(::pwrite(fd, a.data(), a.size(), 0), static_cast<ssize_t>(a.size()));
    ASSERT_EQ(::pwrite(fd, b.data(), b.size(), 3 << 20), static_cast<ssize_t>(b.size()));
    ::close(fd);
  }
  const std::vector<char> before = slurp(src);
  Result<DiskCopy> c = copy_disk_image(src, dst);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->bytes, 4u << 20);
  EXPECT_EQ(slurp(dst), before);
  EXPECT_EQ(slurp(src), before);
  EXPECT_FALSE(std::filesystem::exists(dst + ".partial"));
  if (!c->reflinked) EXPECT_LT(c->copied_bytes, 4u << 20) << "holes were copied as data";
  std::filesystem::remove_all(dir);
}

TEST(CopyDiskImage, AMissingSourceIsAnErrorAndLeavesNothing) {
  const std::string dir = temp_dir();
  Result<DiskCopy> c = copy_disk_image(dir + "/nope.img", dir + "/x.disk");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("nope.img"), std::string::npos) << c.error();
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  std::filesystem::remove_all(dir);
}

TEST(CopyDiskImage, NotARegularFileIsRefused) {
  const std::string dir = temp_dir();
  Result<DiskCopy> c = copy_disk_image("/dev/null", dir + "/x.disk");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("--disk-read-only"), std::string::npos) << c.error();
  std::filesystem::remove_all(dir);
}

// A filesystem without room for the data: refused before anything is
// written, with what to do, and no partial file left behind.
TEST(CopyDiskImage, NoRoomIsRefusedUpFront) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
  const std::string dir = temp_dir();
  const std::string small = dir + "/small";
  std::filesystem::create_directory(small);
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  const std::string src = dir + "/disk.img";
  {
    std::ofstream out(src, std::ios::binary);
    out << std::string(2 << 20, 'x');
  }
  Result<DiskCopy> c = copy_disk_image(src, small + "/run.log.disk");
  const bool empty = std::filesystem::is_empty(small);
  ::umount2(small.c_str(), MNT_DETACH);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("no room"), std::string::npos) << c.error();
  EXPECT_TRUE(empty) << "a partial copy was left";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ftvm::hostio
