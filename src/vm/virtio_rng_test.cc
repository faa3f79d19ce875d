// The virtio entropy device: what reaches the guest is exactly what the
// EntropySource gave, one source call per request.
#include "vm/virtio_rng.h"

#include <gtest/gtest.h>

#include "vm/virtio_test_driver.h"

namespace ftvm::vm {
namespace {

using namespace ftvm::vm::testing;

// Hands out 1, 2, 3, ... and records every call.
class CountingSource final : public EntropySource {
 public:
  void fill(std::span<uint8_t> out) override {
    calls.push_back(out.size());
    for (uint8_t& b : out) {
      b = next++;
      given.push_back(b);
    }
  }
  uint8_t next = 1;
  std::vector<size_t> calls;
  std::vector<uint8_t> given;
};

class VirtioRngTest : public ::testing::Test {
 protected:
  TestQueue bring_up() {
    EXPECT_TRUE(drv_.negotiate());
    TestQueue q = drv_.setup_queue(0);
    drv_.driver_ok();
    return q;
  }

  TestRam ram_;
  FakeLine line_;
  CountingSource source_;
  VirtioRng rng_{&source_};
  VirtioMmio dev_{ram_.memory(), &line_, &rng_};
  TestDriver drv_{dev_, ram_};
};

TEST_F(VirtioRngTest, IsDeviceFourWithOneQueueAndNoDeviceFeatures) {
  EXPECT_EQ(drv_.rd(kDeviceId), 4u);
  EXPECT_EQ(drv_.device_features(), 1ull << kVirtioFVersion1);
  drv_.wr(kQueueSel, 0);
  EXPECT_EQ(drv_.rd(kQueueNumMax), 256u);
  drv_.wr(kQueueSel, 1);
  EXPECT_EQ(drv_.rd(kQueueNumMax), 0u);
}

TEST_F(VirtioRngTest, GuestGetsExactlyTheSourceBytes) {
  TestQueue q = bring_up();
  // Linux's virtio-rng posts one 64-byte buffer (SMP_CACHE_BYTES).
  const uint16_t head = q.add(ram_, {{kBufArea, 64, true}});
  drv_.notify(0);
  EXPECT_EQ(source_.calls, (std::vector<size_t>{64}));
  EXPECT_EQ(ram_.get(kBufArea, 64), source_.given);
  EXPECT_EQ(q.used_elem(ram_, 0), (std::pair<uint32_t, uint32_t>{head, 64}));
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntUsedBuffer);
}

TEST_F(VirtioRngTest, SplitBufferIsOneSourceCallInChainOrder) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea + 0x100, 5, true}, {kBufArea, 3, true}});
  drv_.notify(0);
  EXPECT_EQ(source_.calls, (std::vector<size_t>{8}));
  EXPECT_EQ(ram_.get(kBufArea + 0x100, 5), (std::vector<uint8_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(ram_.get(kBufArea, 3), (std::vector<uint8_t>{6, 7, 8}));
}

TEST_F(VirtioRngTest, LongBufferGetsAtMostMaxRequestBytes) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 3 * VirtioRng::kMaxRequestBytes, true}});
  drv_.notify(0);
  EXPECT_EQ(source_.calls, (std::vector<size_t>{VirtioRng::kMaxRequestBytes}));
  EXPECT_EQ(q.used_elem(ram_, 0).second, VirtioRng::kMaxRequestBytes);
  EXPECT_EQ(ram_.get(kBufArea + VirtioRng::kMaxRequestBytes, 1), (std::vector<uint8_t>{0}));
}

TEST_F(VirtioRngTest, ChainWithoutWritableBufferGetsNothing) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 16, false}});
  drv_.notify(0);
  EXPECT_TRUE(source_.calls.empty());
  EXPECT_EQ(q.used_idx(ram_), 1u);
  EXPECT_EQ(q.used_elem(ram_, 0).second, 0u);
}

TEST_F(VirtioRngTest, EachRequestIsItsOwnCall) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 4, true}});
  q.add(ram_, {{kBufArea + 4, 2, true}});
  drv_.notify(0);
  EXPECT_EQ(source_.calls, (std::vector<size_t>{4, 2}));
  EXPECT_EQ(ram_.get(kBufArea, 6), (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(VirtioRngTest, NoEntropyIsTakenBeforeTheDriverIsUp) {
  ASSERT_TRUE(drv_.negotiate());
  TestQueue q = drv_.setup_queue(0);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_TRUE(source_.calls.empty());
}

TEST_F(VirtioRngTest, BadBufferTakesNoEntropy) {
  TestQueue q = bring_up();
  q.add(ram_, {{kRamBase + kRamSize - 4, 64, true}});
  drv_.notify(0);
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_TRUE(source_.calls.empty());
}

TEST(SeededEntropy, SameSeedSameBytes) {
  SeededEntropy a(7), b(7), c(8);
  std::vector<uint8_t> x(33), y(33), z(33);
  a.fill(x);
  b.fill(y);
  c.fill(z);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(SeededEntropy, StreamDoesNotDependOnCallSizes) {
  SeededEntropy a(1), b(1);
  std::vector<uint8_t> whole(20), p1(3), p2(9), p3(8);
  a.fill(whole);
  b.fill(p1);
  b.fill(p2);
  b.fill(p3);
  std::vector<uint8_t> joined = p1;
  joined.insert(joined.end(), p2.begin(), p2.end());
  joined.insert(joined.end(), p3.begin(), p3.end());
  EXPECT_EQ(whole, joined);
}

TEST(SeededEntropy, FirstWordIsSplitMix64) {
  // SplitMix64 from seed 0 begins 0xe220a8397b1dcdaf.
  SeededEntropy e(0);
  std::vector<uint8_t> b(8);
  e.fill(b);
  EXPECT_EQ(b, (std::vector<uint8_t>{0xaf, 0xcd, 0x1d, 0x7b, 0x39, 0xa8, 0x20, 0xe2}));
}

}  // namespace
}  // namespace ftvm::vm
