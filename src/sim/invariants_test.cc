// Tests of the invariant registry and the output audit, and of the
// liveness invariant on a world whose node never serves.
#include "sim/invariants.h"

#include <gtest/gtest.h>

#include "sim/guest_image.h"
#include "sim/sim_node.h"
#include "sim/world.h"

namespace ftvm::sim {
namespace {

std::vector<uint8_t> bytes(uint8_t v) { return std::vector<uint8_t>(62, v); }

TEST(Invariants, TheFirstBreachIsKeptAndStopsTheRun) {
  EventQueue q;
  Invariants inv(q);
  int checks = 0;
  inv.add("never", [&]() -> std::optional<std::string> {
    ++checks;
    return std::nullopt;
  });
  inv.add("after-5ms", [&]() -> std::optional<std::string> {
    if (q.now() >= 5 * kMillisecond) return "too late";
    return std::nullopt;
  });
  for (int i = 1; i <= 10; ++i) q.at(i * kMillisecond, [] {});
  while (!q.stopped() && q.step(kSecond)) inv.check_step();
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.breach()->invariant, "after-5ms");
  EXPECT_EQ(inv.breach()->detail, "too late");
  EXPECT_EQ(inv.breach()->at, 5 * kMillisecond);
  EXPECT_EQ(checks, 5);
  inv.fail("later", "ignored");
  EXPECT_EQ(inv.breach()->invariant, "after-5ms");
}

TEST(OutputAudit, OneNodePerEpochAndNoOldEpochAfterANewOne) {
  EventQueue q;
  Invariants inv(q);
  OutputAudit audit(inv);
  audit.produced(0, 1, 1, bytes(1), true);
  audit.produced(1, 1, 1, bytes(1), false);  // a backup replaying: held, fine
  audit.produced(1, 2, 2, bytes(2), true);   // the new epoch takes over
  EXPECT_TRUE(inv.ok());
  audit.produced(0, 1, 2, bytes(2), true);   // the old primary wakes up and emits
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.breach()->invariant, "stale-epoch-output");
}

TEST(OutputAudit, TwoNodesInOneEpochAreCaught) {
  EventQueue q;
  Invariants inv(q);
  OutputAudit audit(inv);
  audit.produced(0, 3, 1, bytes(1), true);
  audit.produced(1, 3, 2, bytes(2), true);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.breach()->invariant, "single-emitter");
}

TEST(OutputAudit, WhatAClientSawMustBeReproducedByteForByte) {
  EventQueue q;
  Invariants inv(q);
  OutputAudit audit(inv);
  audit.produced(0, 1, 1, bytes(1), true);
  audit.received(0, 1, 1, bytes(1));
  audit.produced(1, 1, 1, bytes(1), false);  // the backup's replay agrees
  audit.produced(1, 2, 2, bytes(9), true);   // output 2 was never seen: anything goes
  EXPECT_TRUE(inv.ok());
  audit.produced(2, 2, 1, bytes(7), false);  // a replay that disagrees with output 1
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.breach()->invariant, "output-reproduced");
}

// A node that is up but never serves: the liveness invariant must fire.
class SilentNode final : public SimNode {
 public:
  void start() override { alive_ = true; }
  void freeze(Time) override {}
  void crash() override { alive_ = false; }
  void restart() override { alive_ = true; }
  bool alive() const override { return alive_; }
  bool serving() const override { return false; }
  std::string describe() const override { return "silent node"; }
  uint64_t guest_instructions() const override { return 0; }

 private:
  bool alive_ = false;
};

TEST(World, ANodeThatNeverServesBreaksLiveness) {
  auto image = GuestImage::boot();
  ASSERT_TRUE(image);
  WorldOptions o;
  o.seed = 5;
  o.make_nodes = [](World&) {
    NodeSet set;
    set.nodes.push_back(std::make_unique<SilentNode>());
    return set;
  };
  const RunOutcome out = run_seed(**image, o);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.breach->invariant, "primary-serves") << out.breach->detail;
  EXPECT_GT(out.breach->at, o.fault_end + o.liveness_window);
  EXPECT_LE(out.breach->at, o.fault_end + o.liveness_window + 50 * kMillisecond);
}

}  // namespace
}  // namespace ftvm::sim
