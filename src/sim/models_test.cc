// Tests of the simulator's building blocks: the PRNG, the event queue, the
// LAN, the channel link and the arbiter model.
#include <gtest/gtest.h>

#include <set>

#include "sim/arbiter_model.h"
#include "sim/event_queue.h"
#include "sim/lan.h"
#include "sim/link.h"
#include "sim/random.h"

namespace ftvm::sim {
namespace {

TEST(Rng, IsAPureFunctionOfItsSeed) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
  }
  // The first output of seed 0 pins the algorithm (xoshiro256** seeded by splitmix64).
  EXPECT_EQ(Rng(0).next(), 0x99ec5f36cb75f2b4ull);
}

TEST(Rng, BelowAndRangeStayInBounds) {
  Rng r(7);
  std::set<int64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    EXPECT_LT(r.below(10), 10u);
    const int64_t v = r.range(-3, 3);
    EXPECT_GE(v, -3);
    EXPECT_LE(v, 3);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(r.below(1), 0u);
  EXPECT_FALSE(r.chance(0));
  EXPECT_TRUE(r.chance(1'000'000));
}

TEST(EventQueue, RunsByTimeThenByOrderScheduled) {
  EventQueue q;
  std::string order;
  q.at(20, [&] { order += "c"; });
  q.at(10, [&] { order += "a"; });
  q.at(10, [&] {
    order += "b";
    q.after(0, [&] { order += "B"; });  // same time, after those already due
  });
  const uint64_t cancelled = q.at(15, [&] { order += "x"; });
  q.cancel(cancelled);
  q.run_until(100);
  EXPECT_EQ(order, "abBc");
  EXPECT_EQ(q.now(), 100);
}

TEST(EventQueue, StopEndsTheRun) {
  EventQueue q;
  int ran = 0;
  q.at(1, [&] { ++ran; q.stop(); });
  q.at(2, [&] { ++ran; });
  q.run_until(10);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(q.now(), 1);
}

constexpr vm::MacAddress kA = {2, 0, 0, 0, 0, 1};
constexpr vm::MacAddress kB = {2, 0, 0, 0, 0, 2};

Frame frame_to(const vm::MacAddress& dst, uint8_t tag) {
  Frame f;
  f.bytes.assign(60, tag);
  std::copy(dst.begin(), dst.end(), f.bytes.begin());
  return f;
}

TEST(Lan, WithoutFaultsFramesArriveOnceInOrderAtTheirDestination) {
  EventQueue q;
  Lan lan(q, Rng(1), LanFaults{});
  std::vector<uint8_t> at_b, at_b2, at_a;
  const int a = lan.attach(kA, [&](const Frame& f) { at_a.push_back(f.bytes[59]); });
  lan.attach(kB, [&](const Frame& f) { at_b.push_back(f.bytes[59]); });
  lan.attach(kB, [&](const Frame& f) { at_b2.push_back(f.bytes[59]); });  // a second NIC, same MAC
  for (uint8_t i = 1; i <= 50; ++i) lan.send(a, frame_to(kB, i));
  q.run_until(kSecond);
  ASSERT_EQ(at_b.size(), 50u);
  for (uint8_t i = 0; i < 50; ++i) EXPECT_EQ(at_b[i], i + 1);
  EXPECT_EQ(at_b2, at_b);
  EXPECT_TRUE(at_a.empty());
}

TEST(Lan, FaultsLoseDuplicateAndReorderAndCalmStopsThem) {
  EventQueue q;
  LanFaults f;
  f.loss_ppm = 100'000;
  f.dup_ppm = 100'000;
  f.reorder_ppm = 300'000;
  f.max_delay = 100 * kMicrosecond;
  f.reorder_delay = 2 * kMillisecond;
  Lan lan(q, Rng(3), f);
  std::vector<uint8_t> got;
  const int a = lan.attach(kA, [](const Frame&) {});
  lan.attach(kB, [&](const Frame& fr) { got.push_back(fr.bytes[59]); });
  for (int i = 0; i < 200; ++i) lan.send(a, frame_to(kB, static_cast<uint8_t>(i)));
  q.run_until(kSecond);
  EXPECT_GT(lan.lost(), 0u);
  EXPECT_GT(lan.duplicated(), 0u);
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));
  got.clear();
  lan.calm();
  for (int i = 0; i < 200; ++i) lan.send(a, frame_to(kB, static_cast<uint8_t>(i)));
  q.run_until(2 * kSecond);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
}

TEST(Lan, APortThatGoesDownLosesFramesInFlight) {
  EventQueue q;
  Lan lan(q, Rng(1), LanFaults{});
  int got = 0;
  const int a = lan.attach(kA, [](const Frame&) {});
  const int b = lan.attach(kB, [&](const Frame&) { ++got; });
  lan.send(a, frame_to(kB, 1));
  lan.set_up(b, false);
  lan.set_up(b, true);
  q.run_until(kSecond);
  EXPECT_EQ(got, 0);
}

struct LinkLog {
  std::vector<std::string> events;
  Link::Endpoint endpoint(const std::string& name) {
    return Link::Endpoint{
        [this, name](uint64_t c) { events.push_back(name + " connected " + std::to_string(c)); },
        [this, name](uint64_t, const std::vector<uint8_t>& m) {
          events.push_back(name + " got " + std::string(m.begin(), m.end()));
        },
        [this, name](uint64_t c) { events.push_back(name + " closed " + std::to_string(c)); }};
  }
};

std::vector<uint8_t> msg(const std::string& s) { return {s.begin(), s.end()}; }

TEST(Link, DeliversInOrderDespiteRandomDelays) {
  EventQueue q;
  LinkFaults f;
  f.max_delay = 5 * kMillisecond;
  Link link(q, Rng(9), f);
  LinkLog log;
  link.set_endpoint(0, log.endpoint("a"));
  link.set_endpoint(1, log.endpoint("b"));
  link.connect(0);
  const uint64_t c = link.connection();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(link.send(0, c, msg(std::to_string(i))));
  q.run_until(kSecond);
  std::vector<std::string> want = {"a connected 1", "b connected 1"};
  for (int i = 0; i < 20; ++i) want.push_back("b got " + std::to_string(i));
  EXPECT_EQ(log.events, want);
}

TEST(Link, AMessageOnAnEstablishedConnectionTakesTheLinkDelayOnly) {
  EventQueue q;
  LinkFaults f;  // 50 us per message, 200 us to connect
  Link link(q, Rng(9), f);
  Time arrived = 0;
  link.set_endpoint(0, Link::Endpoint{});
  link.set_endpoint(1, Link::Endpoint{nullptr, [&](uint64_t, const std::vector<uint8_t>&) {
                                        arrived = q.now();
                                      }, nullptr});
  link.connect(0);
  q.run_until(kMillisecond);
  ASSERT_TRUE(link.send(0, link.connection(), msg("x")));
  q.run_until(2 * kMillisecond);
  EXPECT_EQ(arrived, kMillisecond + f.min_delay);
}

TEST(Link, AResetEndsTheConnectionOnBothSidesAndDropsWhatIsInFlight) {
  EventQueue q;
  Link link(q, Rng(9), LinkFaults{});
  LinkLog log;
  link.set_endpoint(0, log.endpoint("a"));
  link.set_endpoint(1, log.endpoint("b"));
  link.connect(0);
  const uint64_t c = link.connection();
  q.run_until(kMillisecond);
  ASSERT_TRUE(link.send(0, c, msg("lost")));
  link.reset_now();
  EXPECT_FALSE(link.send(0, c, msg("refused")));
  q.run_until(kSecond);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "a closed 1"), 1);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "b closed 1"), 1);
  EXPECT_EQ(std::count(log.events.begin(), log.events.end(), "b got lost"), 0);
}

TEST(Link, APartitionHoldsMessagesAndALongOneResets) {
  EventQueue q;
  LinkFaults f;
  f.reset_after = 500 * kMillisecond;
  Link link(q, Rng(9), f);
  LinkLog log;
  link.set_endpoint(0, log.endpoint("a"));
  link.set_endpoint(1, log.endpoint("b"));
  link.connect(0);
  q.run_until(kMillisecond);
  link.partition(100 * kMillisecond);
  ASSERT_TRUE(link.send(0, link.connection(), msg("held")));
  q.run_until(50 * kMillisecond);
  EXPECT_EQ(log.events.back(), "b connected 1");
  q.run_until(200 * kMillisecond);
  EXPECT_EQ(log.events.back(), "b got held");
  // A partition past reset_after resets; connecting during it fails.
  link.partition(kSecond);
  q.run_until(700 * kMillisecond);
  EXPECT_FALSE(link.open(1));
  link.connect(1);
  q.run_until(900 * kMillisecond);
  EXPECT_EQ(log.events.back(), "b closed 0");
}

TEST(Arbiter, GrantsOnlyAboveTheLatestEpochAndRetriesOfTheLatest) {
  EventQueue q;
  std::vector<std::string> breaches;
  GrantAudit audit([&](const std::string& n, const std::string&) { breaches.push_back(n); });
  ArbiterModel arb(q, Rng(1), &audit);
  EXPECT_TRUE(arb.decide("vm", 1, "a").won);
  EXPECT_TRUE(arb.decide("vm", 1, "a").won);   // idempotent retry of the latest
  EXPECT_FALSE(arb.decide("vm", 1, "b").won);  // someone else, same epoch
  EXPECT_TRUE(arb.decide("vm", 2, "b").won);
  const ArbiterAnswer stale = arb.decide("vm", 1, "a");  // a's old grant is no longer the latest
  EXPECT_FALSE(stale.won);
  EXPECT_EQ(stale.held_epoch, 2u);
  EXPECT_EQ(stale.holder, "b");
  EXPECT_FALSE(arb.decide("vm", 2, "a").won);
  EXPECT_TRUE(arb.decide("other", 1, "a").won);  // per VM
  EXPECT_TRUE(breaches.empty());
}

TEST(Arbiter, TheAuditCatchesAnArbiterThatForgets) {
  EventQueue q;
  std::vector<std::string> breaches;
  GrantAudit audit([&](const std::string& n, const std::string&) { breaches.push_back(n); });
  ArbiterModel arb(q, Rng(1), &audit);
  EXPECT_TRUE(arb.decide("vm", 3, "a").won);
  arb.forget_everything();
  EXPECT_TRUE(arb.decide("vm", 2, "b").won);
  EXPECT_EQ(breaches, std::vector<std::string>{"arbiter-grants-stale-epoch"});
}

TEST(Arbiter, AClaimDuringAnOutageTimesOutAndARestartKeepsGrants) {
  EventQueue q;
  ArbiterModel arb(q, Rng(1), nullptr);
  std::vector<std::optional<ArbiterAnswer>> answers;
  auto record = [&](std::optional<ArbiterAnswer> a) { answers.push_back(a); };
  arb.claim("vm", 1, "a", 50 * kMillisecond, record);
  q.run_until(100 * kMillisecond);
  arb.set_up(false);
  arb.claim("vm", 1, "b", 50 * kMillisecond, record);
  q.run_until(200 * kMillisecond);
  arb.set_up(true);
  arb.claim("vm", 1, "b", 50 * kMillisecond, record);
  q.run_until(300 * kMillisecond);
  ASSERT_EQ(answers.size(), 3u);
  ASSERT_TRUE(answers[0].has_value());
  EXPECT_TRUE(answers[0]->won);
  EXPECT_FALSE(answers[1].has_value());
  ASSERT_TRUE(answers[2].has_value());
  EXPECT_FALSE(answers[2]->won);
  EXPECT_EQ(answers[2]->holder, "a");
}

}  // namespace
}  // namespace ftvm::sim
