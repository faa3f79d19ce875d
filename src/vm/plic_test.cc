// PLIC behaviour: gateway (level, claim, complete), priorities and
// thresholds, enables per context, register layout, and output lines.
#include "vm/plic.h"

#include <gtest/gtest.h>

namespace ftvm::vm {
namespace {

constexpr uint64_t kPending = 0x1000;
constexpr uint64_t kEnable = 0x2000;
constexpr uint64_t kContext = 0x200000;
constexpr unsigned kM = 0, kS = 1;

struct FakeLine final : IrqLine {
  void set_level(bool high) override { level = high; }
  bool level = true;  // the constructor must drive it low
};

class PlicTest : public ::testing::Test {
 protected:
  uint32_t rd(uint64_t off) {
    uint64_t v = 0xdeadbeef;
    EXPECT_TRUE(plic_.read(off, 4, v));
    return static_cast<uint32_t>(v);
  }
  void wr(uint64_t off, uint32_t v) { EXPECT_TRUE(plic_.write(off, 4, v)); }
  void priority(unsigned n, uint32_t p) { wr(4 * n, p); }
  void enable(unsigned ctx, unsigned n) {
    const uint64_t off = kEnable + 0x80 * ctx + 4 * (n / 32);
    wr(off, rd(off) | (1u << (n % 32)));
  }
  void disable(unsigned ctx, unsigned n) {
    const uint64_t off = kEnable + 0x80 * ctx + 4 * (n / 32);
    wr(off, rd(off) & ~(1u << (n % 32)));
  }
  void threshold(unsigned ctx, uint32_t t) { wr(kContext + 0x1000 * ctx, t); }
  uint32_t claim(unsigned ctx) { return rd(kContext + 0x1000 * ctx + 4); }
  void complete(unsigned ctx, uint32_t id) { wr(kContext + 0x1000 * ctx + 4, id); }
  // Source n wired to context ctx with priority 1, threshold 0.
  void route(unsigned ctx, unsigned n) {
    priority(n, 1);
    enable(ctx, n);
  }

  FakeLine m_, s_;
  Plic plic_{&m_, &s_};
};

TEST_F(PlicTest, ResetOutputsLowAndNothingToClaim) {
  EXPECT_FALSE(m_.level);
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(claim(kM), 0u);
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, RaisedLineIsPendingEvenWithPriorityZero) {
  plic_.source(10)->set_level(true);
  EXPECT_EQ(rd(kPending), 1u << 10);
  enable(kS, 10);
  EXPECT_FALSE(s_.level);  // priority 0 never interrupts
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, EnabledSourceRaisesOnlyItsContext) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  EXPECT_TRUE(s_.level);
  EXPECT_FALSE(m_.level);
}

TEST_F(PlicTest, ClaimReturnsIdAndClearsPending) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  EXPECT_EQ(claim(kS), 10u);
  EXPECT_EQ(rd(kPending), 0u);
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, ClaimedSourceWaitsForCompleteEvenIfLineStaysHigh) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  ASSERT_EQ(claim(kS), 10u);
  plic_.source(10)->set_level(true);  // re-driven while in service
  EXPECT_FALSE(s_.level);
  complete(kS, 10);
  EXPECT_TRUE(s_.level);  // still high: pending again at once
  EXPECT_EQ(claim(kS), 10u);
}

TEST_F(PlicTest, LineDroppedDuringServiceIsNotPendingAfterComplete) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  ASSERT_EQ(claim(kS), 10u);
  plic_.source(10)->set_level(false);
  complete(kS, 10);
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, LineDroppedBeforeClaimWithdrawsRequest) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  plic_.source(10)->set_level(false);
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, ThresholdMasksPriorityAtOrBelowIt) {
  priority(5, 3);
  enable(kM, 5);
  threshold(kM, 3);
  plic_.source(5)->set_level(true);
  EXPECT_FALSE(m_.level);
  EXPECT_EQ(claim(kM), 0u);
  threshold(kM, 2);
  EXPECT_TRUE(m_.level);
  EXPECT_EQ(claim(kM), 5u);
}

TEST_F(PlicTest, HighestPriorityWins) {
  priority(3, 1);
  priority(40, 6);
  priority(7, 4);
  for (unsigned n : {3u, 40u, 7u}) {
    enable(kS, n);
    plic_.source(n)->set_level(true);
  }
  EXPECT_EQ(claim(kS), 40u);
  EXPECT_EQ(claim(kS), 7u);
  EXPECT_EQ(claim(kS), 3u);
}

TEST_F(PlicTest, EqualPriorityGoesToLowestId) {
  for (unsigned n : {70u, 9u, 33u}) {
    route(kS, n);
    plic_.source(n)->set_level(true);
  }
  EXPECT_EQ(claim(kS), 9u);
  EXPECT_EQ(claim(kS), 33u);
  EXPECT_EQ(claim(kS), 70u);
}

TEST_F(PlicTest, SourceEnabledInBothContextsIsClaimedOnce) {
  route(kS, 8);
  enable(kM, 8);
  plic_.source(8)->set_level(true);
  EXPECT_TRUE(m_.level);
  EXPECT_TRUE(s_.level);
  EXPECT_EQ(claim(kM), 8u);
  EXPECT_FALSE(m_.level);
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(claim(kS), 0u);
}

TEST_F(PlicTest, CompleteOfSourceNotEnabledForContextIsIgnored) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  ASSERT_EQ(claim(kS), 10u);
  complete(kM, 10);  // not enabled for M
  EXPECT_FALSE(s_.level);
  EXPECT_EQ(plic_.state().claimed[0], 1u << 10);
}

// Linux's plic_irq_eoi for a disabled interrupt: enable, complete, disable.
TEST_F(PlicTest, LinuxEoiOfDisabledSourceCompletes) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  ASSERT_EQ(claim(kS), 10u);
  disable(kS, 10);
  complete(kS, 10);  // ignored: disabled
  EXPECT_EQ(plic_.state().claimed[0], 1u << 10);
  enable(kS, 10);
  complete(kS, 10);
  disable(kS, 10);
  EXPECT_EQ(plic_.state().claimed[0], 0u);
  EXPECT_FALSE(s_.level);
  EXPECT_TRUE(plic_.pending(10));
}

TEST_F(PlicTest, CompleteOutOfRangeIsIgnored) {
  complete(kS, 0);
  complete(kS, 96);
  complete(kS, 0xffffffff);
  EXPECT_EQ(plic_.state(), Plic::State{});
}

TEST_F(PlicTest, PriorityIsThreeBits) {
  priority(1, 0xff);
  EXPECT_EQ(rd(4), 7u);
}

TEST_F(PlicTest, SourceZeroPriorityIsHardwiredZero) {
  wr(0, 5);
  EXPECT_EQ(rd(0), 0u);
}

TEST_F(PlicTest, ThresholdIsThreeBits) {
  threshold(kS, 0xffffffff);
  EXPECT_EQ(rd(kContext + 0x1000), 7u);
}

TEST_F(PlicTest, EnableBitZeroIsHardwiredZero) {
  wr(kEnable, 0xffffffff);
  EXPECT_EQ(rd(kEnable), 0xfffffffeu);
  wr(kEnable + 0x80 + 8, 0xffffffff);
  EXPECT_EQ(rd(kEnable + 0x80 + 8), 0xffffffffu);  // sources 64..95
}

TEST_F(PlicTest, EnableWordsPastLastSourceReadZero) {
  wr(kEnable + 12, 0xffffffff);
  EXPECT_EQ(rd(kEnable + 12), 0u);
}

TEST_F(PlicTest, PendingWordsCoverAllSources) {
  plic_.source(1)->set_level(true);
  plic_.source(33)->set_level(true);
  plic_.source(95)->set_level(true);
  EXPECT_EQ(rd(kPending), 1u << 1);
  EXPECT_EQ(rd(kPending + 4), 1u << 1);
  EXPECT_EQ(rd(kPending + 8), 1u << 31);
}

TEST_F(PlicTest, PendingIsReadOnly) {
  wr(kPending, 0xffffffff);
  EXPECT_EQ(rd(kPending), 0u);
  plic_.source(4)->set_level(true);
  wr(kPending, 0);
  EXPECT_EQ(rd(kPending), 1u << 4);
}

TEST_F(PlicTest, ThresholdChangeUpdatesOutput) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  EXPECT_TRUE(s_.level);
  threshold(kS, 7);  // what Linux writes to mask a context
  EXPECT_FALSE(s_.level);
  threshold(kS, 0);
  EXPECT_TRUE(s_.level);
}

TEST_F(PlicTest, PriorityZeroMasksSource) {
  route(kS, 10);
  plic_.source(10)->set_level(true);
  priority(10, 0);  // Linux's plic_irq_mask
  EXPECT_FALSE(s_.level);
}

TEST_F(PlicTest, OnlyWordAccessesAreAccepted) {
  uint64_t v = 0;
  EXPECT_FALSE(plic_.read(4, 1, v));
  EXPECT_FALSE(plic_.read(4, 2, v));
  EXPECT_FALSE(plic_.read(kContext + 4, 8, v));
  EXPECT_FALSE(plic_.write(4, 8, 1));
}

TEST_F(PlicTest, HolesReadZeroAndIgnoreWrites) {
  wr(0x800, 1);
  EXPECT_EQ(rd(0x800), 0u);
  wr(kContext + 8, 1);
  EXPECT_EQ(rd(kContext + 8), 0u);
  wr(kContext + 0x2000, 1);  // a third context does not exist
  EXPECT_EQ(rd(kContext + 0x2000), 0u);
  EXPECT_EQ(rd(0x5ffffc), 0u);
  EXPECT_EQ(plic_.state(), Plic::State{});
}

TEST_F(PlicTest, SourceZeroIsNotAnInput) {
  EXPECT_DEATH(plic_.source(0), "check failed");
  EXPECT_DEATH(plic_.source(96), "check failed");
}

TEST_F(PlicTest, StateRoundTripsIntoFreshPlic) {
  route(kS, 10);
  route(kM, 2);
  priority(40, 5);
  threshold(kM, 1);
  plic_.source(10)->set_level(true);
  plic_.source(2)->set_level(true);
  ASSERT_EQ(claim(kS), 10u);
  const Plic::State saved = plic_.state();

  FakeLine m2, s2;
  Plic other(&m2, &s2);
  other.restore(saved);
  EXPECT_EQ(other.state(), saved);
  EXPECT_FALSE(m2.level);  // priority 1 does not beat threshold 1
  EXPECT_FALSE(s2.level);  // 10 is in service
  uint64_t v = 0;
  ASSERT_TRUE(other.write(kContext + 0x1000 + 4, 4, 10));
  EXPECT_TRUE(s2.level);
  ASSERT_TRUE(other.read(kContext + 0x1000 + 4, 4, v));
  EXPECT_EQ(v, 10u);
}

TEST_F(PlicTest, RestoreSanitisesReservedBits) {
  Plic::State s;
  s.priority.fill(0xff);
  s.threshold = {9, 9};
  s.level.fill(0xffffffff);
  s.enable[kS].fill(0xffffffff);
  plic_.restore(s);
  EXPECT_EQ(rd(0), 0u);
  EXPECT_EQ(rd(4), 7u);
  EXPECT_EQ(rd(kContext), 1u);  // 9 & 7
  EXPECT_EQ(rd(kPending), 0xfffffffeu);
  EXPECT_EQ(rd(kEnable + 0x80), 0xfffffffeu);
}

}  // namespace
}  // namespace ftvm::vm
