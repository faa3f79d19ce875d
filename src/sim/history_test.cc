// Tests of the linearizability and acknowledged-write checkers on
// hand-written histories.
#include "sim/history.h"

#include <gtest/gtest.h>

namespace ftvm::sim {
namespace {

constexpr Time ms = kMillisecond;

Operation op(uint32_t client, KvOp kind, int64_t arg, Time invoked, std::optional<Time> completed,
             int64_t result, uint32_t key = 0) {
  return Operation{client, key, kind, arg, invoked, completed, result};
}

TEST(Linearizable, SequentialRegisterAndCounter) {
  History h = {op(1, KvOp::kSet, 5, 0, 1 * ms, 5), op(1, KvOp::kGet, 0, 2 * ms, 3 * ms, 5),
               op(1, KvOp::kIncr, 1, 4 * ms, 5 * ms, 6), op(2, KvOp::kGet, 0, 6 * ms, 7 * ms, 6)};
  EXPECT_TRUE(check_linearizable(h).ok) << check_linearizable(h).problem;
}

TEST(Linearizable, ConcurrentOperationsMayTakeEitherOrder) {
  // The GET overlaps the SET: it may see the old value or the new.
  History old_value = {op(1, KvOp::kSet, 7, 0, 10 * ms, 7), op(2, KvOp::kGet, 0, 1 * ms, 2 * ms, 0)};
  History new_value = {op(1, KvOp::kSet, 7, 0, 10 * ms, 7), op(2, KvOp::kGet, 0, 1 * ms, 2 * ms, 7)};
  EXPECT_TRUE(check_linearizable(old_value).ok);
  EXPECT_TRUE(check_linearizable(new_value).ok);
}

TEST(Linearizable, AStaleReadAfterAnAcknowledgedWriteIsNot) {
  History h = {op(1, KvOp::kSet, 7, 0, 1 * ms, 7), op(2, KvOp::kGet, 0, 2 * ms, 3 * ms, 0)};
  const CheckResult r = check_linearizable(h);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("no linearization"), std::string::npos) << r.problem;
}

TEST(Linearizable, ADoubledIncrementIsNot) {
  // Two increments acknowledged as 1 and 3: one was applied twice.
  History h = {op(1, KvOp::kIncr, 1, 0, 1 * ms, 1), op(1, KvOp::kIncr, 1, 2 * ms, 3 * ms, 3)};
  EXPECT_FALSE(check_linearizable(h).ok);
}

TEST(Linearizable, AnOperationWithoutReplyMayOrMayNotHaveHappened) {
  // The INCR got no reply: a later read may see it...
  History seen = {op(1, KvOp::kIncr, 1, 0, std::nullopt, 0), op(2, KvOp::kGet, 0, 5 * ms, 6 * ms, 1)};
  // ...or not...
  History unseen = {op(1, KvOp::kIncr, 1, 0, std::nullopt, 0),
                    op(2, KvOp::kGet, 0, 5 * ms, 6 * ms, 0)};
  EXPECT_TRUE(check_linearizable(seen).ok);
  EXPECT_TRUE(check_linearizable(unseen).ok);
  // ...but not twice, and not before it was invoked.
  History twice = {op(1, KvOp::kIncr, 1, 0, std::nullopt, 0), op(2, KvOp::kGet, 0, 5 * ms, 6 * ms, 2)};
  History early = {op(2, KvOp::kGet, 0, 0, 1 * ms, 1), op(1, KvOp::kIncr, 1, 2 * ms, std::nullopt, 0)};
  EXPECT_FALSE(check_linearizable(twice).ok);
  EXPECT_FALSE(check_linearizable(early).ok);
}

TEST(Linearizable, KeysAreCheckedSeparately) {
  History h = {op(1, KvOp::kSet, 1, 0, 1 * ms, 1, /*key=*/0),
               op(1, KvOp::kSet, 2, 0, 1 * ms, 2, /*key=*/1),
               op(2, KvOp::kGet, 0, 2 * ms, 3 * ms, 2, /*key=*/0)};
  const CheckResult r = check_linearizable(h);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("key 0"), std::string::npos) << r.problem;
}

TEST(Linearizable, ReadsThatDisagreeOnOrderAreNot) {
  // Two writes overlap; two later reads see them in opposite orders.
  History h = {op(1, KvOp::kSet, 1, 0, 10 * ms, 1), op(2, KvOp::kSet, 2, 0, 10 * ms, 2),
               op(3, KvOp::kGet, 0, 11 * ms, 12 * ms, 1), op(4, KvOp::kGet, 0, 13 * ms, 14 * ms, 2)};
  EXPECT_FALSE(check_linearizable(h).ok);
  h[3].result = 1;
  EXPECT_TRUE(check_linearizable(h).ok);
}

TEST(Linearizable, ASearchOverItsBudgetIsAFailureNotAPass) {
  // Many concurrent increments with no reply, then a read that sees none of
  // them: decidable, but not within a budget of 5 steps.
  History h;
  for (uint32_t c = 0; c < 12; ++c) h.push_back(op(c, KvOp::kIncr, 1, 0, std::nullopt, 0));
  h.push_back(op(99, KvOp::kGet, 0, 1 * ms, 2 * ms, 5));
  const CheckResult r = check_linearizable(h, /*search_budget=*/5);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("undecided"), std::string::npos) << r.problem;
  EXPECT_TRUE(check_linearizable(h).ok);
}

TEST(AcknowledgedWrites, CountersHoldEveryAcknowledgedIncrement) {
  History h = {op(1, KvOp::kIncr, 1, 0, 1 * ms, 1), op(1, KvOp::kIncr, 1, 2 * ms, 3 * ms, 2),
               op(2, KvOp::kIncr, 1, 2 * ms, std::nullopt, 0)};
  EXPECT_TRUE(check_acknowledged_writes(h, {{0, 2}}).ok);
  EXPECT_TRUE(check_acknowledged_writes(h, {{0, 3}}).ok);
  EXPECT_FALSE(check_acknowledged_writes(h, {{0, 1}}).ok);  // one acknowledged INCR lost
  EXPECT_FALSE(check_acknowledged_writes(h, {{0, 4}}).ok);  // more than ever invoked
}

TEST(AcknowledgedWrites, RegistersHoldTheLastAcknowledgedWriteOrALaterOne) {
  History h = {op(1, KvOp::kSet, 10, 0, 1 * ms, 10), op(1, KvOp::kSet, 11, 2 * ms, 3 * ms, 11),
               op(2, KvOp::kSet, 12, 2500 * 1000, std::nullopt, 0)};
  EXPECT_TRUE(check_acknowledged_writes(h, {{0, 11}}).ok);
  EXPECT_TRUE(check_acknowledged_writes(h, {{0, 12}}).ok);   // maybe happened, after 11
  EXPECT_FALSE(check_acknowledged_writes(h, {{0, 10}}).ok);  // 11 lost
  EXPECT_FALSE(check_acknowledged_writes(h, {{0, 0}}).ok);   // everything lost
}

}  // namespace
}  // namespace ftvm::sim
