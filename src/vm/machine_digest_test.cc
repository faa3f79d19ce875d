// The machine's state digest over a writable disk: its contents are guest
// state, so two machines whose disk copies differ never hash equal, and the
// incremental digest agrees with one computed from scratch.
#include <gtest/gtest.h>

#include <vector>

#include "vm/machine.h"
#include "vm/virtio_blk.h"

namespace ftvm::vm {
namespace {

std::vector<uint8_t> disk_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

MachineConfig config_with(BlockBackend* disk) {
  MachineConfig c;
  c.ram_size = 4u << 20;
  c.disk = disk;
  return c;
}

TEST(MachineDigest, WritableDiskCopiesThatDifferHashDifferently) {
  MemoryBlockBackend one(disk_bytes(64 * 1024 + 512, 1));  // a partial last block too
  std::vector<uint8_t> other = disk_bytes(64 * 1024 + 512, 1);
  other.back() ^= 1;  // one bit, in the partial block
  MemoryBlockBackend two(other);
  MemoryBlockBackend same(disk_bytes(64 * 1024 + 512, 1));
  Machine a(config_with(&one)), b(config_with(&two)), c(config_with(&same));
  EXPECT_NE(a.state_digest(), b.state_digest());
  EXPECT_EQ(a.state_digest(), c.state_digest());
  EXPECT_EQ(a.state_digest(), a.state_digest_uncached());
  EXPECT_EQ(b.state_digest(), b.state_digest_uncached());
}

TEST(MachineDigest, AnUnreadableBlockNeverHashesLikeAReadableOne) {
  MemoryBlockBackend good(disk_bytes(8192, 5));
  MemoryBlockBackend bad(disk_bytes(8192, 5));
  Machine a(config_with(&good)), b(config_with(&bad));
  bad.set_failing(true);
  EXPECT_NE(a.state_digest(), b.state_digest());
}

}  // namespace
}  // namespace ftvm::vm
