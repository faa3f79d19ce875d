// Tests for the primary's log stream's flow control (log_stream.h).
#include "ft/log_stream.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

constexpr uint64_t kMaxTicks = 1000, kMaxBytes = 1 << 20;

TEST(LogStream, ABackupFurtherBehindThanAllowedHoldsThePrimary) {
  LogStream s(nullptr, 0, 1 << 16);
  s.set_active(true);
  EXPECT_FALSE(s.over_lag(5000, 4500, 0, kMaxTicks, kMaxBytes));
  EXPECT_TRUE(s.over_lag(5000, 3000, 0, kMaxTicks, kMaxBytes));
}

TEST(LogStream, ABackupThatJoinedMidRunIsNotBehindItsJoinPoint) {
  // A backup that joined by state transfer at guest time 1,000,000 may
  // still acknowledge with the position it had before its restore (0): it
  // is no further behind than the join, so the primary runs on.
  LogStream s(nullptr, 0, 1 << 16);
  s.set_active(true);
  s.set_base_mtime(1'000'000);
  EXPECT_FALSE(s.over_lag(1'000'500, 0, 0, kMaxTicks, kMaxBytes));
  EXPECT_TRUE(s.over_lag(1'002'000, 0, 0, kMaxTicks, kMaxBytes));  // it ran too far past it
}

}  // namespace
}  // namespace ftvm::ft
