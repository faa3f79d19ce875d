// CLINT registers: msip, mtimecmp halves, mtime from the machine's clock,
// access sizes, and the change notification the machine relies on.
#include "vm/clint.h"

#include <gtest/gtest.h>

namespace ftvm::vm {
namespace {

class ClintTest : public ::testing::Test {
 protected:
  uint64_t rd(uint64_t off, unsigned size) {
    uint64_t v = 0xdead;
    EXPECT_TRUE(clint_.read(off, size, v));
    return v;
  }
  void wr(uint64_t off, unsigned size, uint64_t v) { EXPECT_TRUE(clint_.write(off, size, v)); }

  uint64_t now_ = 0x1122334455667788;
  int changes_ = 0;
  Clint clint_{[this] { return now_; }, [this] { ++changes_; }};
};

TEST_F(ClintTest, ResetState) {
  EXPECT_FALSE(clint_.msip());
  EXPECT_EQ(clint_.mtimecmp(), ~uint64_t{0});
  EXPECT_EQ(rd(0x4000, 8), ~uint64_t{0});
  EXPECT_EQ(rd(0x0, 4), 0u);
  EXPECT_EQ(changes_, 0);
}

TEST_F(ClintTest, MsipKeepsOnlyBitZero) {
  wr(0x0, 4, 0xffffffff);
  EXPECT_TRUE(clint_.msip());
  EXPECT_EQ(rd(0x0, 4), 1u);
  wr(0x0, 4, 2);
  EXPECT_FALSE(clint_.msip());
}

TEST_F(ClintTest, MtimecmpEightByteWrite) {
  wr(0x4000, 8, 0x0000'0001'0000'0002);
  EXPECT_EQ(clint_.mtimecmp(), 0x0000'0001'0000'0002u);
  EXPECT_EQ(rd(0x4000, 8), 0x0000'0001'0000'0002u);
}

TEST_F(ClintTest, MtimecmpHalvesWriteIndependently) {
  wr(0x4000, 4, 0xaaaa'bbbb);
  EXPECT_EQ(clint_.mtimecmp(), 0xffff'ffff'aaaa'bbbbu);
  wr(0x4004, 4, 0x1234'5678);
  EXPECT_EQ(clint_.mtimecmp(), 0x1234'5678'aaaa'bbbbu);
  EXPECT_EQ(rd(0x4000, 4), 0xaaaa'bbbbu);
  EXPECT_EQ(rd(0x4004, 4), 0x1234'5678u);
}

TEST_F(ClintTest, MtimeReadsMachineClock) {
  EXPECT_EQ(rd(0xbff8, 8), now_);
  EXPECT_EQ(rd(0xbff8, 4), 0x5566'7788u);
  EXPECT_EQ(rd(0xbffc, 4), 0x1122'3344u);
  now_ += 5;
  EXPECT_EQ(rd(0xbff8, 8), 0x112233445566778d);
}

TEST_F(ClintTest, MtimeWritesAreIgnored) {
  wr(0xbff8, 8, 0);
  EXPECT_EQ(rd(0xbff8, 8), now_);
}

TEST_F(ClintTest, EveryWriteNotifies) {
  wr(0x4000, 8, 100);
  EXPECT_EQ(changes_, 1);
  wr(0x0, 4, 1);
  EXPECT_EQ(changes_, 2);
  wr(0x4004, 4, 0);
  EXPECT_EQ(changes_, 3);
}

TEST_F(ClintTest, NarrowAccessesFault) {
  uint64_t v = 0;
  EXPECT_FALSE(clint_.read(0x0, 1, v));
  EXPECT_FALSE(clint_.read(0xbff8, 2, v));
  EXPECT_FALSE(clint_.write(0x4000, 1, 0));
  EXPECT_FALSE(clint_.write(0x4000, 2, 0));
  EXPECT_EQ(clint_.mtimecmp(), ~uint64_t{0});
  EXPECT_EQ(changes_, 0);
}

TEST_F(ClintTest, UnmappedOffsetsReadZero) {
  EXPECT_EQ(rd(0x4, 4), 0u);  // msip of a hart that does not exist
  EXPECT_EQ(rd(0x4008, 8), 0u);
  wr(0x8000, 4, 1);
  EXPECT_EQ(clint_.state(), Clint::State{});
}

TEST_F(ClintTest, RestoreReplacesStateAndNotifies) {
  Clint::State s;
  s.msip = true;
  s.mtimecmp = 42;
  clint_.restore(s);
  EXPECT_EQ(clint_.state(), s);
  EXPECT_TRUE(clint_.msip());
  EXPECT_EQ(clint_.mtimecmp(), 42u);
  EXPECT_EQ(changes_, 1);
}

}  // namespace
}  // namespace ftvm::vm
