// Raw image files as virtio-blk disks: open errors, size, read/write/flush
// round trips, read-only images.
#include "hostio/block_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <vector>

namespace ftvm::hostio {
namespace {

class BlockFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftvm-block-file-test-XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path_ = tmpl;
    std::vector<uint8_t> bytes(4096);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 13);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), 4096);
    ::close(fd);
    original_ = bytes;
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::vector<uint8_t> file_bytes() {
    std::ifstream f(path_, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }

  std::string path_;
  std::vector<uint8_t> original_;
};

TEST_F(BlockFileTest, MissingFileIsAnErrorNamingThePath) {
  auto disk = FileBlockBackend::open("/nonexistent/disk.img", false);
  ASSERT_FALSE(disk.ok());
  EXPECT_NE(disk.error().find("/nonexistent/disk.img"), std::string::npos);
  EXPECT_NE(disk.error().find("check the path"), std::string::npos);
}

TEST_F(BlockFileTest, DirectoryIsRefused) {
  auto disk = FileBlockBackend::open("/tmp", true);
  EXPECT_FALSE(disk.ok());
}

TEST_F(BlockFileTest, SizeIsTheFileSize) {
  auto disk = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(disk.ok()) << disk.error();
  EXPECT_EQ((*disk)->size(), 4096u);
  EXPECT_FALSE((*disk)->read_only());
}

TEST_F(BlockFileTest, ReadReturnsFileBytes) {
  auto disk = FileBlockBackend::open(path_, true);
  ASSERT_TRUE(disk.ok());
  std::vector<uint8_t> out(1000);
  ASSERT_TRUE((*disk)->read(3000, out).ok());
  EXPECT_EQ(out, std::vector<uint8_t>(original_.begin() + 3000, original_.begin() + 4000));
}

TEST_F(BlockFileTest, WriteAndFlushReachTheFile) {
  auto disk = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(disk.ok());
  const std::vector<uint8_t> data(512, 0xaa);
  ASSERT_TRUE((*disk)->write(1024, data).ok());
  ASSERT_TRUE((*disk)->flush().ok());
  std::vector<uint8_t> want = original_;
  std::fill(want.begin() + 1024, want.begin() + 1536, 0xaa);
  EXPECT_EQ(file_bytes(), want);
}

TEST_F(BlockFileTest, ReadOnlyImageRefusesWrites) {
  auto disk = FileBlockBackend::open(path_, true);
  ASSERT_TRUE(disk.ok());
  EXPECT_TRUE((*disk)->read_only());
  const std::vector<uint8_t> data(512, 0xaa);
  EXPECT_FALSE((*disk)->write(0, data).ok());
  EXPECT_TRUE((*disk)->flush().ok());
  EXPECT_EQ(file_bytes(), original_);
}

TEST_F(BlockFileTest, ASecondWriterIsRefusedUntilTheFirstIsGone) {
  auto first = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(first.ok()) << first.error();
  auto second = FileBlockBackend::open(path_, false);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().find(path_), std::string::npos) << second.error();
  EXPECT_NE(second.error().find("in use by another process"), std::string::npos)
      << second.error();
  // Readers are not locked out.
  auto reader = FileBlockBackend::open(path_, true);
  ASSERT_TRUE(reader.ok()) << reader.error();
  // The first writer's data is untouched by the refused one.
  const std::vector<uint8_t> data(512, 0x5a);
  ASSERT_TRUE((*first)->write(0, data).ok());
  first->reset();
  auto third = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(third.ok()) << third.error();
  std::vector<uint8_t> out(512);
  ASSERT_TRUE((*third)->read(0, out).ok());
  EXPECT_EQ(out, data);
}

TEST_F(BlockFileTest, ImageThatShrankIsAReadError) {
  auto disk = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(disk.ok());
  ASSERT_EQ(::truncate(path_.c_str(), 1000), 0);
  std::vector<uint8_t> out(512);
  Status s = (*disk)->read(2048, out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("shorter"), std::string::npos);
}

}  // namespace
TEST_F(BlockFileTest, EveryFlushSyncsUnlessLazy) {
  auto disk = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(disk.ok());
  ASSERT_TRUE((*disk)->flush().ok());
  ASSERT_TRUE((*disk)->flush().ok());
  EXPECT_EQ((*disk)->syncs(), 2u);
  // A replica's flushes: no sync while the last one is younger than the
  // interval; sync_now() syncs whatever the mode.
  (*disk)->set_lazy_flush(std::chrono::hours(1));
  ASSERT_TRUE((*disk)->flush().ok());
  EXPECT_EQ((*disk)->syncs(), 2u);
  ASSERT_TRUE((*disk)->sync_now().ok());
  EXPECT_EQ((*disk)->syncs(), 3u);
  (*disk)->set_lazy_flush(std::chrono::milliseconds(0));  // the interval has always passed
  ASSERT_TRUE((*disk)->flush().ok());
  EXPECT_EQ((*disk)->syncs(), 4u);  // begun on a background thread
  // sync_now() waits for it, then syncs once more.
  ASSERT_TRUE((*disk)->sync_now().ok());
  EXPECT_EQ((*disk)->syncs(), 5u);
  (*disk)->set_lazy_flush(std::nullopt);
  EXPECT_FALSE((*disk)->lazy_flush());
}

// A replaying backup must not wait for its disk: a lazy flush starts the
// sync in the background and returns; flushes meanwhile start no second
// one; what was written before is durable once sync_now() returns.
TEST_F(BlockFileTest, ALazyFlushSyncsInTheBackground) {
  auto disk = FileBlockBackend::open(path_, false);
  ASSERT_TRUE(disk.ok());
  (*disk)->set_lazy_flush(std::chrono::milliseconds(0));
  std::vector<uint8_t> data(512);
  for (int i = 0; i < 200; ++i) {
    std::fill(data.begin(), data.end(), static_cast<uint8_t>(i));
    ASSERT_TRUE((*disk)->write(static_cast<uint64_t>(i % 8) * 512, data).ok());
    ASSERT_TRUE((*disk)->flush().ok());
  }
  EXPECT_GE((*disk)->syncs(), 1u);
  EXPECT_LE((*disk)->syncs(), 200u);
  ASSERT_TRUE((*disk)->sync_now().ok());
  std::vector<uint8_t> back(512);
  ASSERT_TRUE((*disk)->read(7 * 512, back).ok());
  EXPECT_EQ(back, data);  // the last write, i = 199
}

}  // namespace ftvm::hostio
