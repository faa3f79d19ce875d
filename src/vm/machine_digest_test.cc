// The machine's state digest over a writable disk: its contents are guest
// state, so two machines whose disk copies differ never hash equal, and the
// incremental digest agrees with one computed from scratch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "vm/machine.h"
#include "vm/test_program.h"
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

using testing::Addi;
using testing::Jal0;
using testing::Sd;

bool has(const std::vector<uint32_t>& pages, uint32_t p) {
  return std::find(pages.begin(), pages.end(), p) != pages.end();
}

// The pre-copy rounds of a live state transfer see every page once, then
// exactly the pages written since the last round, whatever the state
// digest does meanwhile.
TEST(MachineTransferTracking, RoundsSeeEveryPageThenOnlyThoseWrittenSince) {
  MachineConfig config;
  config.ram_size = 1u << 20;
  Machine m(config);
  // A loop that stores a count at x6, x6 += 8: 512 stores cover one page.
  const uint32_t program[] = {Addi(5, 5, 1), Sd(5, 6), Addi(6, 6, 8), Jal0(-12)};
  std::memcpy(m.bus().ram(), program, sizeof program);
  MachineState start = m.capture();
  start.hart.pc = kRamBase;
  start.hart.priv = Priv::kMachine;
  start.hart.x[6] = kRamBase + 0x10000;  // page 16
  m.restore(start);

  m.start_transfer_tracking();
  EXPECT_EQ(m.take_transfer_dirty_pages().size(), config.ram_size / 4096);
  EXPECT_TRUE(m.take_transfer_dirty_pages().empty()) << "nothing ran since";

  ASSERT_EQ(m.run(4 * 100).status, RunStatus::kBudget);  // 100 stores, all in page 16
  (void)m.state_digest();  // the digest clears its own flags, not the transfer's
  std::vector<uint32_t> round = m.take_transfer_dirty_pages();
  EXPECT_EQ(round, std::vector<uint32_t>{16});

  // The hart keeps writing the same page through its write TLB: the next
  // round sees it again (the take dropped the TLB entry).
  ASSERT_EQ(m.run(4 * 10).status, RunStatus::kBudget);
  EXPECT_EQ(m.take_transfer_dirty_pages(), std::vector<uint32_t>{16});

  // Stores crossing into the next page, and a device's write elsewhere.
  ASSERT_EQ(m.run(4 * 500).status, RunStatus::kBudget);
  m.bus().mark_dirty(kRamBase + 5 * 4096 + 100, 8);
  round = m.take_transfer_dirty_pages();
  EXPECT_TRUE(has(round, 16) && has(round, 17) && has(round, 5)) << round.size();
  EXPECT_EQ(round.size(), 3u);
  EXPECT_EQ(m.state_digest(), m.state_digest_uncached());
}

}  // namespace
}  // namespace ftvm::vm
