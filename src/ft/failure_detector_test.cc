// Failure detection, one edge case per test (failure_detector.h).
#include "ft/failure_detector.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTimeout{500};

TEST(FailureDetector, SilenceBeyondTheTimeoutIsFailure) {
  FailureDetector d(kTimeout, milliseconds(0));
  EXPECT_FALSE(d.verdict(milliseconds(500), "primary"));
  std::optional<std::string> why = d.verdict(milliseconds(501), "primary");
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("silent"), std::string::npos);
}

TEST(FailureDetector, HearingResetsSilence) {
  FailureDetector d(kTimeout, milliseconds(0));
  d.heard(milliseconds(400));
  EXPECT_FALSE(d.verdict(milliseconds(800), "primary"));
}

TEST(FailureDetector, TheLongestSilenceIsRememberedButNotARestart) {
  FailureDetector d(kTimeout, milliseconds(0));
  d.heard(milliseconds(40));
  d.heard(milliseconds(230));  // 190 ms of silence
  d.heard(milliseconds(250));
  EXPECT_EQ(d.longest_silence(), milliseconds(190));
  d.reset(milliseconds(900));  // this node was frozen itself: not the peer's silence
  d.heard(milliseconds(950));
  EXPECT_EQ(d.longest_silence(), milliseconds(190));
}

// The hole: heartbeats came from a thread that lived on while the node's
// main loop was stuck, so a peer that kept talking was never replaced. A
// peer that says its guest should run but whose instret stays put is failed.
TEST(FailureDetector, TalkingButStuckIsFailure) {
  FailureDetector d(kTimeout, milliseconds(0));
  for (int t = 0; t <= 600; t += 50) {
    d.heard(milliseconds(t));
    d.progress(milliseconds(t), {1000, true});
  }
  std::optional<std::string> why = d.verdict(milliseconds(600), "primary");
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("has not advanced"), std::string::npos);
}

TEST(FailureDetector, AnIdleGuestIsNotStuck) {
  FailureDetector d(kTimeout, milliseconds(0));
  for (int t = 0; t <= 2000; t += 50) {
    d.heard(milliseconds(t));
    d.progress(milliseconds(t), {1000, false});  // waiting for a timer, or throttled
  }
  EXPECT_FALSE(d.verdict(milliseconds(2000), "primary"));
}

TEST(FailureDetector, AdvancingGuestIsAlive) {
  FailureDetector d(kTimeout, milliseconds(0));
  for (int t = 0; t <= 2000; t += 50) {
    d.heard(milliseconds(t));
    d.progress(milliseconds(t), {1000 + static_cast<uint64_t>(t), true});
  }
  EXPECT_FALSE(d.verdict(milliseconds(2000), "primary"));
}

TEST(FailureDetector, StuckClockStartsWhenItWantsToRun) {
  FailureDetector d(kTimeout, milliseconds(0));
  d.progress(milliseconds(0), {1000, false});
  d.heard(milliseconds(400));
  d.progress(milliseconds(400), {1000, true});  // from here it should run
  d.heard(milliseconds(850));
  d.progress(milliseconds(850), {1000, true});
  EXPECT_FALSE(d.verdict(milliseconds(850), "backup"));
  d.heard(milliseconds(901));
  d.progress(milliseconds(901), {1000, true});
  EXPECT_TRUE(d.verdict(milliseconds(901), "backup"));
}

TEST(FailureDetector, ResetForgivesOwnStall) {
  FailureDetector d(kTimeout, milliseconds(0));
  d.reset(milliseconds(5000));
  EXPECT_FALSE(d.verdict(milliseconds(5100), "backup"));
}

}  // namespace
}  // namespace ftvm::ft
