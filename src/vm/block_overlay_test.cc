// The in-memory copy-on-write overlay replays use for writable disks.
#include "vm/block_overlay.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftvm::vm {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

TEST(OverlayBlockBackend, WritesLandInTheOverlayAndNeverInTheBase) {
  const std::vector<uint8_t> original = pattern(3 * 4096 + 1000, 1);  // a partial last block
  MemoryBlockBackend base(original, /*read_only=*/true);
  OverlayBlockBackend o(&base);
  EXPECT_FALSE(o.read_only());
  EXPECT_EQ(o.size(), original.size());
  // A write across blocks 0 and 1, and one into the partial last block.
  const std::vector<uint8_t> a = pattern(600, 77), b = pattern(900, 99);
  ASSERT_TRUE(o.write(4096 - 300, a).ok());
  ASSERT_TRUE(o.write(3 * 4096 + 50, b).ok());
  EXPECT_EQ(o.blocks_written(), 3u);
  EXPECT_EQ(base.bytes(), original) << "the base was written";
  std::vector<uint8_t> expect = original;
  std::copy(a.begin(), a.end(), expect.begin() + 4096 - 300);
  std::copy(b.begin(), b.end(), expect.begin() + 3 * 4096 + 50);
  std::vector<uint8_t> got(original.size());
  ASSERT_TRUE(o.read(0, got).ok());
  EXPECT_EQ(got, expect);
  // An unaligned read spanning overlay and base blocks.
  std::vector<uint8_t> part(5000);
  ASSERT_TRUE(o.read(2000, part).ok());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), expect.begin() + 2000));
  EXPECT_TRUE(o.flush().ok());
}

TEST(OverlayBlockBackend, ABaseThatCannotBeReadIsAnError) {
  MemoryBlockBackend base(pattern(8192, 3), /*read_only=*/true);
  OverlayBlockBackend o(&base);
  base.set_failing(true);
  std::vector<uint8_t> out(100);
  EXPECT_FALSE(o.read(0, out).ok());
  EXPECT_FALSE(o.write(10, out).ok()) << "a first write must read the block it changes";
}

}  // namespace
}  // namespace ftvm::vm
