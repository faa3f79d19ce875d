// The virtio-mmio transport, one edge case per test: the register sequence
// Linux runs, feature negotiation, queue setup, notification, interrupts,
// reset, and split rings a hostile guest has broken.
#include "vm/virtio_mmio.h"

#include <gtest/gtest.h>

#include <array>

#include "vm/virtio_test_driver.h"

namespace ftvm::vm {
namespace {

using namespace ftvm::vm::testing;

// A device that returns every chain it is given, claiming to have written
// all of its writable bytes, and remembers what it saw.
class FakeBackend final : public VirtioDeviceBackend {
 public:
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return features; }
  unsigned num_queues() const override { return 2; }
  uint32_t config_size() const override { return config.size(); }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override {
    std::memcpy(out.data(), config.data() + offset, out.size());
  }
  void write_config(uint32_t offset, std::span<const uint8_t> in) override {
    std::memcpy(config.data() + offset, in.data(), in.size());
  }
  void reset() override { ++resets; }
  void on_notify(Virtqueue& queue) override {
    ++notifies;
    while (std::optional<DescriptorChain> c = queue.pop()) {
      chains.push_back(*c);
      queues.push_back(queue.index());
      queue.push(*c, static_cast<uint32_t>(c->writable_len));
    }
  }

  uint64_t features = (1ull << 0) | (1ull << 5);
  std::array<uint8_t, 12> config = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
                                    0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};
  std::vector<DescriptorChain> chains;
  std::vector<unsigned> queues;
  int resets = 0;
  int notifies = 0;
};

class VirtioMmioTest : public ::testing::Test {
 protected:
  // Negotiates, sets up queue 0 (of `num` entries) and sets DRIVER_OK.
  TestQueue bring_up(uint16_t num = 0) {
    EXPECT_TRUE(drv_.negotiate());
    TestQueue q = drv_.setup_queue(0, num);
    drv_.driver_ok();
    return q;
  }
  // Expects the device to have failed: NEEDS_RESET and a config interrupt.
  void expect_failed() {
    EXPECT_TRUE(drv_.rd(kStatus) & kVirtioStatusNeedsReset);
    EXPECT_EQ(drv_.rd(kIntStatus) & kVirtioIntConfigChange, kVirtioIntConfigChange);
    EXPECT_TRUE(line_.level);
    EXPECT_FALSE(dev_.failure().empty());
  }

  TestRam ram_;
  FakeLine line_;
  FakeBackend backend_;
  VirtioMmio dev_{ram_.memory(), &line_, &backend_};
  TestDriver drv_{dev_, ram_};
};

TEST_F(VirtioMmioTest, ProbeRegistersAsLinuxReadsThem) {
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(drv_.rd(kMagic), 0x74726976u);  // "virt"
  EXPECT_EQ(drv_.rd(kVersion), 2u);
  EXPECT_EQ(drv_.rd(kDeviceId), 42u);
  EXPECT_EQ(drv_.rd(kVendor), 0x554d4551u);
  EXPECT_EQ(drv_.rd(kStatus), 0u);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
}

TEST_F(VirtioMmioTest, EmptySlotIsDeviceIdZeroAndInert) {
  VirtioMmio empty(ram_.memory(), &line_, nullptr);
  TestDriver d(empty, ram_);
  EXPECT_EQ(d.rd(kMagic), 0x74726976u);
  EXPECT_EQ(d.rd(kVersion), 2u);
  EXPECT_EQ(d.rd(kDeviceId), 0u);
  EXPECT_EQ(d.rd(kQueueNumMax), 0u);
  EXPECT_EQ(d.device_features(), 0u);
  d.wr(kStatus, kVirtioStatusAcknowledge);
  EXPECT_EQ(d.rd(kStatus), 0u);
  uint64_t v = 0;
  EXPECT_TRUE(empty.read(kConfig, 4, v));
  EXPECT_EQ(v, 0xffffffffu);
}

TEST_F(VirtioMmioTest, FeaturesOfferVersion1InTheHighWord) {
  drv_.wr(kDevFeaturesSel, 0);
  EXPECT_EQ(drv_.rd(kDevFeatures), (1u << 0) | (1u << 5));
  drv_.wr(kDevFeaturesSel, 1);
  EXPECT_EQ(drv_.rd(kDevFeatures), 1u);  // bit 32: VIRTIO_F_VERSION_1
  drv_.wr(kDevFeaturesSel, 2);
  EXPECT_EQ(drv_.rd(kDevFeatures), 0u);
}

TEST_F(VirtioMmioTest, BackendCannotOfferTransportFeatures) {
  backend_.features |= (1ull << 28) | (1ull << 29) | (1ull << 34);  // indirect, event idx, packed
  EXPECT_EQ(drv_.device_features(), (1ull << 32) | (1ull << 0) | (1ull << 5));
}

TEST_F(VirtioMmioTest, FeaturesOkKeptWithVersion1) {
  EXPECT_TRUE(drv_.negotiate((1ull << 32) | (1ull << 5)));
  EXPECT_EQ(dev_.state().driver_features, (1ull << 32) | (1ull << 5));
  EXPECT_EQ(drv_.rd(kStatus), kVirtioStatusAcknowledge | kVirtioStatusDriver |
                                  kVirtioStatusFeaturesOk);
}

TEST_F(VirtioMmioTest, FeaturesOkRefusedWithoutVersion1) {
  EXPECT_FALSE(drv_.negotiate(1ull << 5));
  EXPECT_EQ(drv_.rd(kStatus), kVirtioStatusAcknowledge | kVirtioStatusDriver);
}

TEST_F(VirtioMmioTest, FeaturesOkRefusedForFeatureNotOffered) {
  EXPECT_FALSE(drv_.negotiate((1ull << 32) | (1ull << 7)));
}

TEST_F(VirtioMmioTest, DriverFeaturesFixedOnceFeaturesOk) {
  ASSERT_TRUE(drv_.negotiate((1ull << 32) | (1ull << 5)));
  drv_.set_driver_features((1ull << 32) | (1ull << 0));
  EXPECT_EQ(dev_.state().driver_features, (1ull << 32) | (1ull << 5));
}

TEST_F(VirtioMmioTest, QueueNumMaxForEachQueueAndZeroBeyond) {
  drv_.wr(kQueueSel, 0);
  EXPECT_EQ(drv_.rd(kQueueNumMax), 256u);
  drv_.wr(kQueueSel, 1);
  EXPECT_EQ(drv_.rd(kQueueNumMax), 256u);
  drv_.wr(kQueueSel, 2);
  EXPECT_EQ(drv_.rd(kQueueNumMax), 0u);
  drv_.wr(kQueueReady, 1);
  EXPECT_EQ(drv_.rd(kQueueReady), 0u);
}

TEST_F(VirtioMmioTest, QueueRegistersTakeSixtyFourBitAddresses) {
  drv_.wr(kQueueSel, 1);
  drv_.wr(kDescLow, 0x89abcdef);
  drv_.wr(kDescHigh, 0x01234567);
  drv_.wr(kAvailLow, 0x1000);
  drv_.wr(kUsedHigh, 0x2);
  EXPECT_EQ(drv_.rd(kDescLow), 0x89abcdefu);
  EXPECT_EQ(drv_.rd(kDescHigh), 0x01234567u);
  EXPECT_EQ(dev_.state().queues[1].desc, 0x0123456789abcdefull);
  EXPECT_EQ(dev_.state().queues[1].avail, 0x1000u);
  EXPECT_EQ(dev_.state().queues[1].used, 0x2'0000'0000ull);
  EXPECT_EQ(dev_.state().queues[0].desc, 0u);
}

TEST_F(VirtioMmioTest, NotifyCompletesChainBeforeTheWriteReturns) {
  TestQueue q = bring_up();
  const uint16_t head = q.add(ram_, {{kBufArea, 16, false}, {kBufArea + 0x100, 64, true}});
  drv_.notify(0);
  ASSERT_EQ(backend_.chains.size(), 1u);
  const DescriptorChain& c = backend_.chains[0];
  EXPECT_EQ(c.head, head);
  EXPECT_EQ(c.readable, (std::vector<GuestRange>{{kBufArea, 16}}));
  EXPECT_EQ(c.writable, (std::vector<GuestRange>{{kBufArea + 0x100, 64}}));
  EXPECT_EQ(c.readable_len, 16u);
  EXPECT_EQ(c.writable_len, 64u);
  EXPECT_EQ(q.used_idx(ram_), 1u);
  EXPECT_EQ(q.used_elem(ram_, 0), (std::pair<uint32_t, uint32_t>{head, 64}));
}

TEST_F(VirtioMmioTest, SeveralChainsInOneNotifyInAvailOrder) {
  TestQueue q = bring_up();
  const uint16_t a = q.add(ram_, {{kBufArea, 8, true}});
  const uint16_t b = q.add(ram_, {{kBufArea + 8, 8, true}});
  const uint16_t c = q.add(ram_, {{kBufArea + 16, 8, true}});
  drv_.notify(0);
  ASSERT_EQ(backend_.chains.size(), 3u);
  EXPECT_EQ(q.used_idx(ram_), 3u);
  EXPECT_EQ(q.used_elem(ram_, 0).first, a);
  EXPECT_EQ(q.used_elem(ram_, 1).first, b);
  EXPECT_EQ(q.used_elem(ram_, 2).first, c);
}

TEST_F(VirtioMmioTest, NotifyNamesTheQueue) {
  ASSERT_TRUE(drv_.negotiate());
  drv_.setup_queue(0);
  TestQueue q1 = drv_.setup_queue(1);
  drv_.driver_ok();
  q1.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_TRUE(backend_.chains.empty());
  drv_.notify(1);
  ASSERT_EQ(backend_.queues, (std::vector<unsigned>{1}));
}

TEST_F(VirtioMmioTest, NotifyOfMissingOrUnreadyQueueIsIgnored) {
  ASSERT_TRUE(drv_.negotiate());
  drv_.setup_queue(0);
  drv_.driver_ok();
  const int before = backend_.notifies;
  drv_.notify(1);  // exists, never made ready
  drv_.notify(7);  // does not exist
  drv_.notify(0xffff);
  EXPECT_EQ(backend_.notifies, before);
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioMmioTest, NothingIsProcessedBeforeDriverOk) {
  ASSERT_TRUE(drv_.negotiate());
  TestQueue q = drv_.setup_queue(0);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_TRUE(backend_.chains.empty());
  EXPECT_EQ(q.used_idx(ram_), 0u);
}

TEST_F(VirtioMmioTest, DriverOkTakesBuffersMadeAvailableBefore) {
  ASSERT_TRUE(drv_.negotiate());
  TestQueue q = drv_.setup_queue(0);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.driver_ok();
  EXPECT_EQ(backend_.chains.size(), 1u);
  EXPECT_EQ(q.used_idx(ram_), 1u);
  EXPECT_TRUE(line_.level);
}

TEST_F(VirtioMmioTest, CompletionRaisesInterruptAndAckClearsIt) {
  TestQueue q = bring_up();
  EXPECT_FALSE(line_.level);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(drv_.rd(kIntStatus), kVirtioIntUsedBuffer);
  drv_.wr(kIntAck, kVirtioIntUsedBuffer);
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
}

TEST_F(VirtioMmioTest, AckOfOneBitLeavesTheOther) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  dev_.config_changed();
  EXPECT_EQ(drv_.rd(kIntStatus), kVirtioIntUsedBuffer | kVirtioIntConfigChange);
  drv_.wr(kIntAck, kVirtioIntUsedBuffer);
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntConfigChange);
  EXPECT_FALSE(line_.level);
}

TEST_F(VirtioMmioTest, NotifyWithNothingAvailableRaisesNoInterrupt) {
  bring_up();
  const int before = backend_.notifies;
  drv_.notify(0);
  EXPECT_EQ(backend_.notifies, before + 1);
  EXPECT_FALSE(line_.level);
}

TEST_F(VirtioMmioTest, AvailNoInterruptFlagSuppressesTheInterrupt) {
  TestQueue q = bring_up();
  ram_.put_le<uint16_t>(q.avail, kVirtqAvailFNoInterrupt);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_EQ(q.used_idx(ram_), 1u);
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
}

TEST_F(VirtioMmioTest, StatusZeroResetsDeviceQueuesAndInterrupt) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  ASSERT_TRUE(line_.level);
  const int resets = backend_.resets;
  drv_.wr(kStatus, 0);
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(backend_.resets, resets + 1);
  EXPECT_EQ(drv_.rd(kStatus), 0u);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  drv_.wr(kQueueSel, 0);
  EXPECT_EQ(drv_.rd(kQueueReady), 0u);
  EXPECT_EQ(drv_.rd(kDescLow), 0u);
  const VirtioMmio::State s = dev_.state();
  EXPECT_EQ(s.driver_features, 0u);
  EXPECT_EQ(s.queues[0], VirtioMmio::QueueState{});
}

TEST_F(VirtioMmioTest, AfterResetQueuesStartAgainFromIndexZero) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  std::fill(ram_.bytes.begin(), ram_.bytes.end(), 0);
  TestQueue fresh = bring_up();  // negotiate() begins with a reset
  fresh.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_EQ(backend_.chains.size(), 2u);
  EXPECT_EQ(fresh.used_idx(ram_), 1u);
}

TEST_F(VirtioMmioTest, ChainAsLongAsTheQueueIsAccepted) {
  TestQueue q = bring_up(4);
  q.add(ram_, {{kBufArea, 1, false}, {kBufArea + 1, 1, false}, {kBufArea + 2, 1, true},
               {kBufArea + 3, 1, true}});
  drv_.notify(0);
  ASSERT_EQ(backend_.chains.size(), 1u);
  EXPECT_EQ(backend_.chains[0].readable_len, 2u);
  EXPECT_EQ(backend_.chains[0].writable_len, 2u);
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioMmioTest, DescriptorLoopIsDetected) {
  TestQueue q = bring_up(4);
  q.write_desc(ram_, 0, kBufArea, 8, kVirtqDescFNext | kVirtqDescFWrite, 1);
  q.write_desc(ram_, 1, kBufArea, 8, kVirtqDescFNext | kVirtqDescFWrite, 0);
  q.publish(ram_, 0);
  drv_.notify(0);
  expect_failed();
  EXPECT_TRUE(backend_.chains.empty());
  EXPECT_EQ(q.used_idx(ram_), 0u);
}

TEST_F(VirtioMmioTest, SelfLoopIsDetected) {
  TestQueue q = bring_up();
  q.write_desc(ram_, 5, kBufArea, 8, kVirtqDescFNext, 5);
  q.publish(ram_, 5);
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, DescriptorBufferOutsideRamFails) {
  TestQueue q = bring_up();
  q.add(ram_, {{kRamBase + kRamSize, 8, true}});
  drv_.notify(0);
  expect_failed();
  EXPECT_TRUE(backend_.chains.empty());
}

TEST_F(VirtioMmioTest, DescriptorBufferBelowRamFails) {
  TestQueue q = bring_up();
  q.add(ram_, {{0x1000'0000, 8, false}});  // the UART
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, DescriptorBufferStraddlingRamEndFails) {
  TestQueue q = bring_up();
  q.add(ram_, {{kRamBase + kRamSize - 4, 8, true}});
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, DescriptorBufferEndingAtRamEndIsFine) {
  TestQueue q = bring_up();
  q.add(ram_, {{kRamBase + kRamSize - 8, 8, true}});
  drv_.notify(0);
  EXPECT_FALSE(dev_.needs_reset());
  EXPECT_EQ(backend_.chains.size(), 1u);
}

TEST_F(VirtioMmioTest, DescriptorAddressThatWrapsFails) {
  TestQueue q = bring_up();
  q.add(ram_, {{~0ull - 3, 0x100, true}});
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, NextIndexOutsideQueueFails) {
  TestQueue q = bring_up(8);
  q.write_desc(ram_, 0, kBufArea, 8, kVirtqDescFNext, 8);
  q.publish(ram_, 0);
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, HeadIndexOutsideQueueFails) {
  TestQueue q = bring_up(8);
  q.publish(ram_, 200);
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, AvailIndexJumpingPastQueueSizeFails) {
  TestQueue q = bring_up(8);
  q.add(ram_, {{kBufArea, 8, true}});
  ram_.put_le<uint16_t>(q.avail + 2, 9);  // 9 entries claimed in a queue of 8
  drv_.notify(0);
  expect_failed();
  EXPECT_TRUE(backend_.chains.empty());
}

TEST_F(VirtioMmioTest, AvailIndexMovingBackwardsFails) {
  TestQueue q = bring_up(8);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  ram_.put_le<uint16_t>(q.avail + 2, 0);  // seen as 65535 new entries
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, IndirectDescriptorFailsSinceNotOffered) {
  TestQueue q = bring_up();
  q.write_desc(ram_, 0, kBufArea, 16, kVirtqDescFIndirect, 0);
  q.publish(ram_, 0);
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, ReadableAfterWritableFails) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}, {kBufArea + 8, 8, false}});
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, RingsOutsideRamFail) {
  ASSERT_TRUE(drv_.negotiate());
  drv_.wr(kQueueSel, 0);
  drv_.wr(kQueueNum, 256);
  drv_.wr(kDescLow, static_cast<uint32_t>(kRamBase + kRamSize - 0x800));  // table runs off the end
  drv_.wr(kAvailLow, static_cast<uint32_t>(kRingArea));
  drv_.wr(kUsedLow, static_cast<uint32_t>(kRingArea + 0x1000));
  drv_.wr(kQueueReady, 1);
  drv_.driver_ok();
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, UsedRingOutsideRamFails) {
  ASSERT_TRUE(drv_.negotiate());
  TestQueue q = drv_.setup_queue(0);
  drv_.wr(kUsedHigh, 1);  // used ring at 4 GiB above where the driver meant
  drv_.driver_ok();
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, QueueSizeNotAPowerOfTwoFails) {
  TestQueue q = bring_up(6);
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, QueueSizeAboveMaximumFails) {
  ASSERT_TRUE(drv_.negotiate());
  drv_.setup_queue(0);
  drv_.wr(kQueueNum, 512);
  drv_.driver_ok();
  drv_.notify(0);
  expect_failed();
}

TEST_F(VirtioMmioTest, FailedDeviceProcessesNothingUntilReset) {
  TestQueue q = bring_up();
  q.add(ram_, {{kRamBase + kRamSize, 8, true}});
  drv_.notify(0);
  ASSERT_TRUE(dev_.needs_reset());
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  EXPECT_TRUE(backend_.chains.empty());
  // The driver cannot clear NEEDS_RESET by writing Status.
  drv_.wr(kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk |
                       kVirtioStatusDriverOk);
  EXPECT_TRUE(drv_.rd(kStatus) & kVirtioStatusNeedsReset);
  drv_.wr(kStatus, 0);
  EXPECT_FALSE(dev_.needs_reset());
  EXPECT_FALSE(line_.level);
}

TEST_F(VirtioMmioTest, ProcessQueueDoesNotRunBeforeDriverOk) {
  ASSERT_TRUE(drv_.negotiate());
  drv_.setup_queue(0);
  int calls = 0;
  EXPECT_FALSE(dev_.process_queue(0, [&](Virtqueue&) { ++calls; }));
  EXPECT_EQ(calls, 0);
}

TEST_F(VirtioMmioTest, UsedIndexWrapsAroundSixteenBits) {
  TestQueue q = bring_up(8);
  VirtioMmio::State s = dev_.state();
  s.queues[0].last_avail = 0xffff;
  s.queues[0].used_idx = 0xffff;
  dev_.restore(s);
  q.avail_idx = 0xffff;
  const uint16_t a = q.add(ram_, {{kBufArea, 8, true}});
  const uint16_t b = q.add(ram_, {{kBufArea + 8, 8, true}});
  drv_.notify(0);
  ASSERT_EQ(backend_.chains.size(), 2u);
  EXPECT_EQ(q.used_idx(ram_), 1u);
  EXPECT_EQ(q.used_elem(ram_, 0xffff).first, a);
  EXPECT_EQ(q.used_elem(ram_, 0).first, b);
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioMmioTest, ConfigReadsAtEachWidthAsLinuxDoes) {
  uint64_t v = 0;
  ASSERT_TRUE(dev_.read(kConfig + 1, 1, v));
  EXPECT_EQ(v, 0x22u);
  ASSERT_TRUE(dev_.read(kConfig + 2, 2, v));
  EXPECT_EQ(v, 0x4433u);
  ASSERT_TRUE(dev_.read(kConfig + 4, 4, v));
  EXPECT_EQ(v, 0x88776655u);
  ASSERT_TRUE(dev_.read(kConfig, 8, v));
  EXPECT_EQ(v, 0x8877665544332211u);
}

TEST_F(VirtioMmioTest, ConfigPastTheEndReadsOnesAndIgnoresWrites) {
  uint64_t v = 0;
  ASSERT_TRUE(dev_.read(kConfig + 10, 4, v));  // 2 of 4 bytes exist: refused whole
  EXPECT_EQ(v, 0xffffffffu);
  ASSERT_TRUE(dev_.read(kConfig + 0xe00, 2, v));
  EXPECT_EQ(v, 0xffffu);
  EXPECT_TRUE(dev_.write(kConfig + 10, 4, 0));
  EXPECT_EQ(backend_.config[10], 0xbb);
}

TEST_F(VirtioMmioTest, ConfigWritesGoToTheBackend) {
  EXPECT_TRUE(dev_.write(kConfig + 2, 2, 0xbeef));
  EXPECT_EQ(backend_.config[2], 0xef);
  EXPECT_EQ(backend_.config[3], 0xbe);
}

TEST_F(VirtioMmioTest, CommonRegistersNeedWordAccess) {
  uint64_t v = 1;
  EXPECT_TRUE(dev_.read(kMagic, 1, v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(dev_.read(kMagic, 8, v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(dev_.write(kStatus, 1, kVirtioStatusAcknowledge));
  EXPECT_EQ(drv_.rd(kStatus), 0u);
}

TEST_F(VirtioMmioTest, WriteOnlyRegistersReadZero) {
  drv_.wr(kQueueSel, 1);
  drv_.wr(kDevFeaturesSel, 1);
  EXPECT_EQ(drv_.rd(kQueueSel), 0u);
  EXPECT_EQ(drv_.rd(kDevFeaturesSel), 0u);
  EXPECT_EQ(drv_.rd(kQueueNum), 0u);
  EXPECT_EQ(drv_.rd(kQueueNotify), 0u);
}

TEST_F(VirtioMmioTest, ConfigChangeBumpsGenerationAndInterruptsOnceDriverIsUp) {
  dev_.config_changed();
  EXPECT_EQ(drv_.rd(kConfigGen), 1u);
  EXPECT_FALSE(line_.level);
  bring_up();
  dev_.config_changed();
  EXPECT_EQ(drv_.rd(kConfigGen), 2u);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntConfigChange);
  EXPECT_FALSE(line_.level);
}

TEST_F(VirtioMmioTest, ProcessQueueRunsOnlyOnLiveQueues) {
  TestQueue q = bring_up();
  int calls = 0;
  EXPECT_FALSE(dev_.process_queue(1, [&](Virtqueue&) { ++calls; }));
  q.add(ram_, {{kBufArea, 8, true}});
  EXPECT_TRUE(dev_.process_queue(0, [&](Virtqueue& vq) {
    ++calls;
    std::optional<DescriptorChain> c = vq.pop();
    ASSERT_TRUE(c.has_value());
    vq.push(*c, 3);
  }));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(q.used_elem(ram_, 0).second, 3u);
  EXPECT_TRUE(line_.level);
}

TEST_F(VirtioMmioTest, DeviceWritesAreReportedToTheObserver) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}});
  ram_.observed.clear();
  drv_.notify(0);
  // The used element and used->idx.
  EXPECT_EQ(ram_.observed,
            (std::vector<GuestRange>{{q.used + 4, 4}, {q.used + 8, 4}, {q.used + 2, 2}}));
}

TEST_F(VirtioMmioTest, ChainStreamsReadAndWriteAcrossBuffers) {
  TestQueue q = bring_up();
  const uint8_t src[6] = {1, 2, 3, 4, 5, 6};
  ram_.put(kBufArea, src, 3);
  ram_.put(kBufArea + 0x100, src + 3, 3);
  q.add(ram_, {{kBufArea, 3, false}, {kBufArea + 0x100, 3, false}, {kBufArea + 0x200, 2, true},
               {kBufArea + 0x300, 4, true}});
  dev_.process_queue(0, [&](Virtqueue& vq) {
    std::optional<DescriptorChain> c = vq.pop();
    ASSERT_TRUE(c.has_value());
    uint8_t got[4] = {};
    EXPECT_TRUE(vq.read(*c, 1, got));
    EXPECT_EQ(std::vector<uint8_t>(got, got + 4), (std::vector<uint8_t>{2, 3, 4, 5}));
    EXPECT_FALSE(vq.read(*c, 3, got));  // runs past the 6 readable bytes
    const uint8_t put[3] = {9, 8, 7};
    EXPECT_TRUE(vq.write(*c, 1, put));
    EXPECT_FALSE(vq.write(*c, 4, put));
    vq.push(*c, 4);
  });
  EXPECT_EQ(ram_.get(kBufArea + 0x200, 2), (std::vector<uint8_t>{0, 9}));
  EXPECT_EQ(ram_.get(kBufArea + 0x300, 4), (std::vector<uint8_t>{8, 7, 0, 0}));
}

TEST_F(VirtioMmioTest, SliceRangesCoversAcrossPieces) {
  const std::vector<GuestRange> r = {{100, 4}, {200, 0}, {300, 6}};
  EXPECT_EQ(slice_ranges(r, 2, 5), (std::vector<GuestRange>{{102, 2}, {300, 3}}));
  EXPECT_EQ(slice_ranges(r, 4, 100), (std::vector<GuestRange>{{300, 6}}));
  EXPECT_TRUE(slice_ranges(r, 10, 1).empty());
}

TEST_F(VirtioMmioTest, StateRestoredIntoFreshTransportContinuesTheSame) {
  TestQueue q = bring_up();
  q.add(ram_, {{kBufArea, 8, true}});
  drv_.notify(0);
  const VirtioMmio::State saved = dev_.state();

  TestRam ram2;
  ram2.bytes = ram_.bytes;
  FakeLine line2;
  FakeBackend backend2;
  VirtioMmio dev2(ram2.memory(), &line2, &backend2);
  EXPECT_FALSE(line2.level);
  dev2.restore(saved);
  EXPECT_EQ(dev2.state(), saved);
  EXPECT_TRUE(line2.level);  // the pending interrupt comes back with the state

  TestQueue q2 = q;
  q.add(ram_, {{kBufArea + 8, 8, true}});
  q2.add(ram2, {{kBufArea + 8, 8, true}});
  drv_.notify(0);
  TestDriver(dev2, ram2).notify(0);
  EXPECT_EQ(ram_.bytes, ram2.bytes);
  EXPECT_EQ(dev_.state(), dev2.state());
}

TEST_F(VirtioMmioTest, ForEachFieldVisitsEveryQueue) {
  std::vector<uint64_t> words;
  dev_.state().for_each_field([&](uint64_t v) { words.push_back(v); });
  EXPECT_EQ(words.size(), 7u + 7u * VirtioMmio::kMaxQueues);
}

}  // namespace
}  // namespace ftvm::vm
