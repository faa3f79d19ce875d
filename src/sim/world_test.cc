// End-to-end tests of the simulator: seeds pass, replay identically, and
// deliberately broken worlds are caught.
#include <gtest/gtest.h>

#include "sim/guest_image.h"
#include "sim/world.h"
#include "util/buggify.h"

namespace ftvm::sim {
namespace {

const GuestImage& image() {
  static const std::unique_ptr<GuestImage> img = [] {
    auto r = GuestImage::boot();
    EXPECT_TRUE(r) << (r ? "" : r.error());
    return r ? std::move(*r) : nullptr;
  }();
  return *img;
}

RunOutcome run(uint64_t seed, Bug bug = Bug::kNone, NodeKind nodes = NodeKind::kFtPair) {
  WorldOptions o;
  o.seed = seed;
  o.bug = bug;
  o.nodes = nodes;
  return run_seed(image(), o);
}

TEST(World, SeedsPassWithTheStandInNode) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const RunOutcome out = run(seed, Bug::kNone, NodeKind::kStandIn);
    ASSERT_TRUE(out.ok()) << "seed " << seed << ": " << out.breach->invariant << ": "
                          << out.breach->detail;
    EXPECT_GT(out.stats.completed, 100u);
    EXPECT_GT(out.stats.guest_instructions, 0u);
  }
}

TEST(World, SeedsPassWithTheFtPair) {
  uint64_t completed = 0, failovers = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const RunOutcome out = run(seed);
    if (out.stats.newest_epoch > 1) ++failovers;
    ASSERT_TRUE(out.ok()) << "seed " << seed << ": " << out.breach->invariant << ": "
                          << out.breach->detail;
    // Flow control holds the primary while the backup or the channel
    // stalls, so a seed may serve little; but the audit read always ends it.
    EXPECT_GT(out.stats.completed, 4u) << "seed " << seed;
    completed += out.stats.completed;
  }
  EXPECT_GT(completed, 40u * 200);
  // Crashes, resets and long partitions made a node take over (or go on
  // alone) in a later epoch and serve in some of these seeds.
  EXPECT_GT(failovers, 5u);
}

// Seeds that broke an invariant once, each for a bug since fixed.
TEST(World, SeedsThatOnceFailedPass) {
  // 4335, 4428: the channel's connection was reset while the backup was
  // still connecting, and the simulator never let it connect again
  // (primary-serves).
  for (uint64_t seed : {4335ull, 4428ull}) {
    const RunOutcome out = run(seed);
    EXPECT_TRUE(out.ok()) << "seed " << seed << ": " << out.breach->invariant << ": "
                          << out.breach->detail;
  }
}

TEST(World, AResetWhileTheBackupConnectsIsRetried) {
  // The connection is reset 100 us into the 200 us connect: the backup must
  // connect again (before the fix it never did, and nothing was served).
  for (uint64_t seed : {1ull, 2ull, 3ull}) {
    WorldOptions o;
    o.seed = seed;
    o.setup = [](World& w) {
      w.events().at(100 * kMicrosecond, [&w] { w.link().reset_now(); });
    };
    const RunOutcome out = run_seed(image(), o);
    EXPECT_TRUE(out.ok()) << "seed " << seed << ": " << out.breach->invariant << ": "
                          << out.breach->detail;
    EXPECT_GT(out.stats.completed, 4u);
  }
}

TEST(World, ASeedReplaysIdentically) {
  for (uint64_t seed : {2ull, 3ull, 17ull, 123456789ull}) {
    const RunOutcome a = run(seed);
    const RunOutcome b = run(seed);
    EXPECT_EQ(a.fingerprint, b.fingerprint) << "seed " << seed;
    EXPECT_EQ(a.stats.events, b.stats.events);
    EXPECT_EQ(a.stats.guest_instructions, b.stats.guest_instructions);
    EXPECT_EQ(a.stats.end, b.stats.end);
  }
  EXPECT_NE(run(3).fingerprint, run(4).fingerprint);
  const RunOutcome a = run(5, Bug::kNone, NodeKind::kStandIn);
  EXPECT_EQ(a.fingerprint, run(5, Bug::kNone, NodeKind::kStandIn).fingerprint);
}

TEST(World, SomeSeedsHaveFaults) {
  uint64_t lost = 0, retransmitted = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const RunOutcome out = run(seed);
    lost += out.stats.frames_lost;
    retransmitted += out.stats.retransmissions;
  }
  EXPECT_GT(lost, 0u);
  EXPECT_GT(retransmitted, 0u);
}

TEST(World, ANodeThatLosesAcknowledgedWritesIsCaught) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const RunOutcome out = run(seed, Bug::kLoseWrites);
    ASSERT_FALSE(out.ok()) << "seed " << seed;
    // The restarted guest numbers its outputs from 1 again with different
    // bytes; where no client saw the old ones, the history shows the loss.
    const std::string& name = out.breach->invariant;
    EXPECT_TRUE(name == "output-reproduced" || name == "linearizable" ||
                name == "acknowledged-writes")
        << name;
  }
}

TEST(World, TwoNodesServingAtOnceAreCaught) {
  const RunOutcome out = run(1, Bug::kSplitBrain);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.breach->invariant, "single-emitter") << out.breach->detail;
}

TEST(World, AnArbiterThatGrantsAStaleEpochIsCaught) {
  const RunOutcome out = run(1, Bug::kForgetfulArbiter);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.breach->invariant, "arbiter-grants-stale-epoch") << out.breach->detail;
  EXPECT_EQ(out.breach->at, 400 * kMillisecond + out.breach->at % kMillisecond)
      << "caught when the claim is answered";
}

TEST(World, BugNamesRoundTrip) {
  for (Bug b : {Bug::kNone, Bug::kLoseWrites, Bug::kSplitBrain, Bug::kForgetfulArbiter}) {
    EXPECT_EQ(parse_bug(to_string(b)), b);
  }
  EXPECT_FALSE(parse_bug("nonsense"));
}

#ifdef FTVM_SIM_BUGGIFY
#error "the simulator's tests are built as production code is: FTVM_BUGGIFY is off here"
#endif

TEST(Buggify, IsConstantFalseWithoutTheSimulatorBuild) {
  static_assert(!FTVM_BUGGIFY(1.0), "FTVM_BUGGIFY must be the constant false");
}

}  // namespace
}  // namespace ftvm::sim
