// Tests of the receive queue and pacer every live run shares (live_input.h).
#include "ft/live_input.h"

#include <gtest/gtest.h>

#include <chrono>

namespace ftvm::ft {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

std::vector<std::vector<uint8_t>> frames(size_t n) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < n; ++i) out.push_back(std::vector<uint8_t>(60, static_cast<uint8_t>(i)));
  return out;
}

TEST(RxQueue, HoldsAtMostItsCapacityAndCountsTheRest) {
  RxQueue q;
  auto f = frames(RxQueue::kCapacity + 7);
  q.add(f);
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(q.size(), RxQueue::kCapacity);
  EXPECT_EQ(q.dropped(), 7u);
}

// A NIC whose driver has posted no receive buffers yet (the guest is still
// booting) takes nothing: every frame stays queued, in order, none is lost.
TEST(RxQueue, FramesWaitForTheGuestsBuffers) {
  vm::MachineConfig c;
  c.ram_size = 16u << 20;
  c.net_mac = vm::MacAddress{0x52, 0x54, 0, 0x77, 0, 0x0f};
  vm::Machine m(c);
  RxQueue q;
  auto f = frames(3);
  q.add(f);
  size_t seen = 0;
  EXPECT_EQ(q.deliver(m, [&](std::vector<uint8_t>&&) { ++seen; }), 0u);
  EXPECT_EQ(seen, 0u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.dropped(), 0u);
}

TEST(RxQueue, AMachineWithoutANicDropsAndCountsWhatWasQueued) {
  vm::MachineConfig c;
  c.ram_size = 16u << 20;
  vm::Machine m(c);
  RxQueue q;
  auto f = frames(5);
  q.add(f);
  EXPECT_EQ(q.deliver(m, [](std::vector<uint8_t>&&) { FAIL() << "delivered without a NIC"; }), 0u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.dropped(), 5u);
}

TEST(GuestPacer, GuestTimeRunsAtWallClockSpeedFromTheRestart) {
  GuestPacer<nanoseconds> p;
  EXPECT_FALSE(p.started());
  p.restart(milliseconds(1000), /*mtime=*/50'000);
  EXPECT_TRUE(p.started());
  // 10 MHz timebase: 10,000 ticks are 1 ms.
  EXPECT_EQ(p.wall_time_of(60'000), milliseconds(1001));
  EXPECT_EQ(p.wall_time_of(50'000), milliseconds(1000));
  // A wake-up before the restart is due at once, never in the past of it.
  EXPECT_EQ(p.wall_time_of(10), milliseconds(1000));
}

}  // namespace
}  // namespace ftvm::ft
