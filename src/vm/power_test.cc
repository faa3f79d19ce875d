// Test-finisher commands and the accesses it refuses.
#include "vm/power.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ftvm::vm {
namespace {

class PowerTest : public ::testing::Test {
 protected:
  std::vector<std::pair<PowerAction, uint32_t>> got_;
  PowerDevice dev_{[this](PowerAction a, uint32_t s) { got_.emplace_back(a, s); }};
};

TEST_F(PowerTest, PassPowersOffWithZero) {
  ASSERT_TRUE(dev_.write(0, 4, 0x5555));
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0], std::make_pair(PowerAction::kPowerOff, 0u));
}

TEST_F(PowerTest, FailCarriesCode) {
  ASSERT_TRUE(dev_.write(0, 4, (3u << 16) | 0x3333));
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0], std::make_pair(PowerAction::kPowerOff, 3u));
}

TEST_F(PowerTest, FailCodeUsesAllSixteenBits) {
  ASSERT_TRUE(dev_.write(0, 4, 0xffff'3333));
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].second, 0xffffu);
}

TEST_F(PowerTest, ResetRequest) {
  ASSERT_TRUE(dev_.write(0, 4, 0x7777));
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0], std::make_pair(PowerAction::kReset, 0u));
}

TEST_F(PowerTest, TwoByteWriteWorks) {
  ASSERT_TRUE(dev_.write(0, 2, 0x5555));
  EXPECT_EQ(got_.size(), 1u);
}

TEST_F(PowerTest, OtherValuesAreIgnored) {
  ASSERT_TRUE(dev_.write(0, 4, 0x1234));
  ASSERT_TRUE(dev_.write(0, 4, 0));
  EXPECT_TRUE(got_.empty());
}

TEST_F(PowerTest, OtherOffsetsAreIgnored) {
  ASSERT_TRUE(dev_.write(4, 4, 0x5555));
  EXPECT_TRUE(got_.empty());
}

TEST_F(PowerTest, ByteAndDoublewordAccessesFault) {
  uint64_t v = 0;
  EXPECT_FALSE(dev_.write(0, 1, 0x55));
  EXPECT_FALSE(dev_.write(0, 8, 0x5555));
  EXPECT_FALSE(dev_.read(0, 8, v));
  EXPECT_TRUE(got_.empty());
}

TEST_F(PowerTest, ReadsReturnZero) {
  uint64_t v = 0xdead;
  ASSERT_TRUE(dev_.read(0, 4, v));
  EXPECT_EQ(v, 0u);
}

}  // namespace
}  // namespace ftvm::vm
