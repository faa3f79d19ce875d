// The Output Rule, one edge case per test (output_gate.h).
#include "ft/output_gate.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

const std::vector<uint8_t> kBytes{1, 2, 3};

std::vector<HeldOutput> take(OutputGate& g) {
  std::vector<HeldOutput> out;
  g.take_releasable(out);
  return out;
}

TEST(OutputGate, BackupDropsEverything) {
  OutputGate g;
  EXPECT_FALSE(g.produce(10, true, kBytes));
  EXPECT_EQ(g.held(), 0u);
}

// The hole this gate closes: an output produced mid-slice, after the last
// record, must wait for a record at or after its own instret, not just for
// the records logged before it. Before, it was tagged with the record count
// at production (here 1) and released as soon as record 0 was acknowledged;
// a backup going live would then replay only to instret 100 and change the
// guest's inputs before instret 150, where the client already saw output.
TEST(OutputGate, OutputWaitsForARecordAtOrAfterItsInstret) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(1, 100);  // record 0 at instret 100 (an input)
  EXPECT_FALSE(g.produce(150, true, kBytes));
  g.on_ack(1);  // the backup holds record 0 only: it could stop at instret 100
  EXPECT_TRUE(take(g).empty());
  g.on_record(2, 200);  // the slice's end: Progress at instret 200
  EXPECT_TRUE(take(g).empty());  // not yet acknowledged
  g.on_ack(2);
  std::vector<HeldOutput> out = take(g);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].instret, 150u);
  EXPECT_EQ(out[0].needs_records, 2u);
  EXPECT_EQ(out[0].bytes, kBytes);
}

TEST(OutputGate, ARecordAtTheSameInstretCoversTheOutput) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(3, 150);
  g.on_ack(3);
  EXPECT_TRUE(g.produce(150, false, kBytes));  // leaves at once
  EXPECT_EQ(g.held(), 0u);
}

TEST(OutputGate, AnEarlierRecordDoesNotCoverTheOutput) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(3, 149);
  g.on_ack(3);
  EXPECT_FALSE(g.produce(150, false, kBytes));
  g.on_record(4, 151);
  g.on_ack(4);
  EXPECT_EQ(take(g).size(), 1u);
}

TEST(OutputGate, OutputsLeaveInProductionOrder) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  EXPECT_FALSE(g.produce(10, true, std::vector<uint8_t>{1}));
  g.on_record(1, 20);
  EXPECT_FALSE(g.produce(30, true, std::vector<uint8_t>{2}));
  g.on_record(2, 40);
  g.on_ack(1);
  std::vector<HeldOutput> out = take(g);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].bytes[0], 1);
  // A later output never overtakes a held one, even if it is covered.
  g.on_ack(2);
  EXPECT_FALSE(g.produce(35, true, std::vector<uint8_t>{3}));
  out = take(g);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes[0], 2);
  EXPECT_EQ(out[1].bytes[0], 3);
}

TEST(OutputGate, AcknowledgementsNeverGoBack) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(5, 50);
  g.on_ack(5);
  g.on_ack(2);
  EXPECT_EQ(g.acked(), 5u);
}

TEST(OutputGate, FencedAcksReleaseNothing) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(4, 40);
  g.on_ack(3);
  g.fence(4);  // woke from a freeze: only an ack of record 3 proves the backup
  EXPECT_TRUE(g.fenced());
  EXPECT_FALSE(g.produce(40, true, kBytes));
  EXPECT_TRUE(take(g).empty());
  g.on_ack(4);
  EXPECT_FALSE(g.fenced());
  EXPECT_EQ(take(g).size(), 1u);
}

// A node that took outputs to send and then found it had been frozen puts
// them back; after its fence only a fresh acknowledgement releases them.
TEST(OutputGate, RequeuedOutputsWaitForTheFence) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  g.on_record(2, 20);
  EXPECT_FALSE(g.produce(10, true, std::vector<uint8_t>{1}));
  EXPECT_FALSE(g.produce(15, true, std::vector<uint8_t>{2}));
  g.on_ack(2);
  std::vector<HeldOutput> out = take(g);
  ASSERT_EQ(out.size(), 2u);
  g.on_record(3, 30);  // the fence's progress mark
  g.fence(3);
  g.requeue_front(std::move(out));
  EXPECT_EQ(g.held(), 2u);
  EXPECT_TRUE(take(g).empty());
  g.on_ack(3);
  out = take(g);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].bytes[0], 1);
  EXPECT_EQ(out[1].bytes[0], 2);
}

TEST(OutputGate, HoldingReleasesNothingUntilDirect) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kPaired);
  EXPECT_FALSE(g.produce(10, true, kBytes));
  g.set_mode(OutputGate::Mode::kHolding);  // claiming: nothing leaves
  g.on_record(1, 20);
  g.on_ack(1);
  EXPECT_TRUE(take(g).empty());
  EXPECT_FALSE(g.produce(30, true, kBytes));
  g.set_mode(OutputGate::Mode::kDirect);  // won the next epoch
  EXPECT_EQ(take(g).size(), 2u);
  EXPECT_TRUE(g.produce(40, true, kBytes));
}

TEST(OutputGate, HaltingDropsWhatIsHeld) {
  OutputGate g;
  g.set_mode(OutputGate::Mode::kHolding);
  EXPECT_FALSE(g.produce(10, true, kBytes));
  EXPECT_EQ(g.held_bytes(), kBytes.size());
  g.set_mode(OutputGate::Mode::kDropped);
  EXPECT_EQ(g.held(), 0u);
  EXPECT_EQ(g.held_bytes(), 0u);
  EXPECT_TRUE(take(g).empty());
}

}  // namespace
}  // namespace ftvm::ft
