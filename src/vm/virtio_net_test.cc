// The virtio network device, one edge case per test, driven as Linux's
// virtio_net driver drives it: both queues set up, receive buffers of
// 12 + 1518 bytes in one descriptor each, transmit chains with the header
// in front of the frame (in the same descriptor or its own).
#include "vm/virtio_net.h"

#include <gtest/gtest.h>

#include "vm/virtio_rng.h"
#include "vm/virtio_test_driver.h"

namespace ftvm::vm {
namespace {

using namespace ftvm::vm::testing;

constexpr uint32_t kHdr = VirtioNet::kHeaderBytes;
constexpr uint32_t kLinuxRxBuf = kHdr + 1518;  // hdr_len + GOOD_PACKET_LEN
constexpr uint64_t kRx = kBufArea;             // receive buffers, 0x800 apart
constexpr uint64_t kTx = kBufArea + 0x10000;   // transmit buffers
constexpr MacAddress kMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

std::vector<uint8_t> frame_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 3);
  return v;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  VirtioNetTest() {
    net_.attach(&dev_);
    net_.set_frame_sink([this](std::span<const uint8_t> f) {
      sent_.emplace_back(f.begin(), f.end());
      sent_while_notify_running_.push_back(in_notify_);
    });
  }

  // virtnet_probe: features, rx and tx queues, DRIVER_OK.
  void bring_up() {
    ASSERT_TRUE(drv_.negotiate());
    rxq_ = drv_.setup_queue(VirtioNet::kRxQueue);
    txq_ = drv_.setup_queue(VirtioNet::kTxQueue);
    drv_.driver_ok();
  }
  // try_fill_recv: `n` buffers of Linux's size, then a kick.
  void post_rx(unsigned n, uint32_t len = kLinuxRxBuf) {
    for (unsigned i = 0; i < n; ++i) {
      rxq_.add(ram_, {{kRx + 0x800ull * (rx_posted_ % 32), len, true}});
      ++rx_posted_;
    }
    drv_.notify(VirtioNet::kRxQueue);
  }
  // start_xmit with any_header_sg: the header pushed in front of the frame,
  // one descriptor.
  void send(const std::vector<uint8_t>& frame, uint64_t at = kTx) {
    std::vector<uint8_t> buf(kHdr, 0);
    buf.insert(buf.end(), frame.begin(), frame.end());
    ram_.put(at, buf.data(), buf.size());
    txq_.add(ram_, {{at, static_cast<uint32_t>(buf.size()), false}});
    notify_tx();
  }
  void notify_tx() {
    in_notify_ = true;
    drv_.notify(VirtioNet::kTxQueue);
    in_notify_ = false;
  }
  uint32_t config_u8(uint32_t off) {
    uint64_t v = 0;
    EXPECT_TRUE(dev_.read(kConfig + off, 1, v));
    return static_cast<uint32_t>(v);
  }
  uint32_t config_u16(uint32_t off) {
    uint64_t v = 0;
    EXPECT_TRUE(dev_.read(kConfig + off, 2, v));
    return static_cast<uint32_t>(v);
  }

  TestRam ram_;
  FakeLine line_;
  VirtioNet net_{kMac};
  VirtioMmio dev_{ram_.memory(), &line_, &net_};
  TestDriver drv_{dev_, ram_};
  TestQueue rxq_, txq_;
  unsigned rx_posted_ = 0;
  bool in_notify_ = false;
  std::vector<std::vector<uint8_t>> sent_;
  std::vector<bool> sent_while_notify_running_;
};

// ---- identity and configuration ----

TEST_F(VirtioNetTest, IsDeviceOneWithMacStatusAndVersion1) {
  EXPECT_EQ(drv_.rd(kDeviceId), 1u);
  EXPECT_EQ(drv_.device_features(), (1ull << kVirtioFVersion1) | (1ull << VirtioNet::kFMac) |
                                        (1ull << VirtioNet::kFStatus));
}

TEST_F(VirtioNetTest, HasReceiveAndTransmitQueuesOnly) {
  for (uint32_t q : {0u, 1u}) {
    drv_.wr(kQueueSel, q);
    EXPECT_EQ(drv_.rd(kQueueNumMax), 256u) << q;
  }
  drv_.wr(kQueueSel, 2);  // where a control queue would be
  EXPECT_EQ(drv_.rd(kQueueNumMax), 0u);
}

TEST_F(VirtioNetTest, ConfigHoldsMacByteByByteAndLinkUp) {
  for (uint32_t i = 0; i < 6; ++i) EXPECT_EQ(config_u8(i), kMac[i]) << i;
  EXPECT_EQ(config_u16(6), VirtioNet::kStatusLinkUp);
  EXPECT_EQ(config_u8(VirtioNet::kConfigSize), 0xffu);  // max_virtqueue_pairs: not offered
}

TEST_F(VirtioNetTest, ConfigWritesAreIgnored) {
  EXPECT_TRUE(dev_.write(kConfig, 1, 0xaa));
  EXPECT_TRUE(dev_.write(kConfig + 6, 2, 0));
  EXPECT_EQ(config_u8(0), kMac[0]);
  EXPECT_EQ(config_u16(6), VirtioNet::kStatusLinkUp);
}

TEST_F(VirtioNetTest, LinuxFeatureSetIsAccepted) {
  EXPECT_TRUE(drv_.negotiate((1ull << kVirtioFVersion1) | (1ull << VirtioNet::kFMac) |
                             (1ull << VirtioNet::kFStatus)));
}

TEST_F(VirtioNetTest, OffloadsAndMergeableBuffersAreRefused) {
  constexpr uint64_t kBase = 1ull << kVirtioFVersion1;
  EXPECT_FALSE(drv_.negotiate(kBase | (1ull << 15)));  // VIRTIO_NET_F_MRG_RXBUF
  EXPECT_FALSE(drv_.negotiate(kBase | (1ull << 0)));   // VIRTIO_NET_F_CSUM
  EXPECT_FALSE(drv_.negotiate(kBase | (1ull << 17)));  // VIRTIO_NET_F_CTRL_VQ
}

TEST_F(VirtioNetTest, LinkDownIsAConfigurationChange) {
  bring_up();
  const uint32_t generation = drv_.rd(kConfigGen);
  net_.set_link_up(false);
  EXPECT_FALSE(net_.link_up());
  EXPECT_EQ(config_u16(6), 0u);
  EXPECT_EQ(drv_.rd(kConfigGen), generation + 1);
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntConfigChange);
  net_.set_link_up(false);  // no change, no interrupt
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  net_.set_link_up(true);
  EXPECT_EQ(config_u16(6), VirtioNet::kStatusLinkUp);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntConfigChange);
}

// ---- transmit ----

TEST_F(VirtioNetTest, TransmitStripsTheHeaderInsideTheNotify) {
  bring_up();
  const std::vector<uint8_t> frame = frame_of(60, 1);
  send(frame);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], frame);
  EXPECT_TRUE(sent_while_notify_running_[0]);
  EXPECT_EQ(txq_.used_idx(ram_), 1u);
  EXPECT_EQ(txq_.used_elem(ram_, 0).second, 0u);  // the device wrote nothing
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntUsedBuffer);
  EXPECT_EQ(net_.state().tx_frames, 1u);
  EXPECT_EQ(net_.state().tx_bytes, 60u);
}

TEST_F(VirtioNetTest, TransmitWithHeaderInItsOwnDescriptorAndFrameScattered) {
  bring_up();
  const std::vector<uint8_t> frame = frame_of(1514, 7);
  ram_.put(kTx, std::vector<uint8_t>(kHdr, 0).data(), kHdr);
  ram_.put(kTx + 0x1000, frame.data(), 100);
  ram_.put(kTx + 0x2000, frame.data() + 100, 1414);
  txq_.add(ram_, {{kTx, kHdr, false}, {kTx + 0x1000, 100, false}, {kTx + 0x2000, 1414, false}});
  notify_tx();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], frame);
}

TEST_F(VirtioNetTest, HeaderSplitAcrossDescriptorsIsFine) {
  bring_up();
  const std::vector<uint8_t> frame = frame_of(64, 9);
  std::vector<uint8_t> buf(kHdr, 0);
  buf.insert(buf.end(), frame.begin(), frame.end());
  ram_.put(kTx, buf.data(), 5);
  ram_.put(kTx + 0x100, buf.data() + 5, buf.size() - 5);
  txq_.add(ram_, {{kTx, 5, false}, {kTx + 0x100, static_cast<uint32_t>(buf.size() - 5), false}});
  notify_tx();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], frame);
}

TEST_F(VirtioNetTest, FramesLeaveInAvailOrder) {
  bring_up();
  for (uint8_t i = 0; i < 3; ++i) {
    std::vector<uint8_t> buf(kHdr, 0);
    const std::vector<uint8_t> f = frame_of(20 + i, i);
    buf.insert(buf.end(), f.begin(), f.end());
    ram_.put(kTx + 0x100 * i, buf.data(), buf.size());
    txq_.add(ram_, {{kTx + 0x100ull * i, static_cast<uint32_t>(buf.size()), false}});
  }
  notify_tx();
  ASSERT_EQ(sent_.size(), 3u);
  for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(sent_[i], frame_of(20 + i, i));
  EXPECT_EQ(txq_.used_idx(ram_), 3u);
}

TEST_F(VirtioNetTest, HeaderLargerThanTheChainNeedsReset) {
  bring_up();
  txq_.add(ram_, {{kTx, kHdr - 1, false}});
  notify_tx();
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(txq_.used_idx(ram_), 0u);
}

TEST_F(VirtioNetTest, RuntFrameIsDroppedAndCounted) {
  bring_up();
  send(frame_of(VirtioNet::kEthHeaderBytes - 1, 0));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(net_.state().tx_dropped, 1u);
  EXPECT_EQ(txq_.used_idx(ram_), 1u);  // still handed back
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioNetTest, HeaderOnlyChainIsDroppedAndCounted) {
  bring_up();
  send({});
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(net_.state().tx_dropped, 1u);
}

TEST_F(VirtioNetTest, FrameAtTheSizeLimitIsSent) {
  bring_up();
  send(frame_of(VirtioNet::kMaxFrameBytes, 5));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].size(), VirtioNet::kMaxFrameBytes);
}

TEST_F(VirtioNetTest, FrameOverTheSizeLimitIsDropped) {
  bring_up();
  send(frame_of(VirtioNet::kMaxFrameBytes + 1, 5));
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(net_.state().tx_dropped, 1u);
  EXPECT_EQ(txq_.used_idx(ram_), 1u);
}

TEST_F(VirtioNetTest, NoSinkDiscardsButCounts) {
  net_.set_frame_sink({});
  bring_up();
  send(frame_of(60, 1));
  EXPECT_EQ(net_.state().tx_frames, 1u);
  EXPECT_EQ(txq_.used_idx(ram_), 1u);
}

TEST_F(VirtioNetTest, WritableDescriptorsOfATransmitChainAreIgnored) {
  bring_up();
  const std::vector<uint8_t> frame = frame_of(40, 2);
  std::vector<uint8_t> buf(kHdr, 0);
  buf.insert(buf.end(), frame.begin(), frame.end());
  ram_.put(kTx, buf.data(), buf.size());
  ram_.put_le<uint32_t>(kTx + 0x1000, 0x11223344);
  txq_.add(ram_, {{kTx, static_cast<uint32_t>(buf.size()), false}, {kTx + 0x1000, 4, true}});
  notify_tx();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], frame);
  EXPECT_EQ(ram_.get_le<uint32_t>(kTx + 0x1000), 0x11223344u);
}

TEST_F(VirtioNetTest, NothingIsSentBeforeDriverOk) {
  ASSERT_TRUE(drv_.negotiate());
  rxq_ = drv_.setup_queue(VirtioNet::kRxQueue);
  txq_ = drv_.setup_queue(VirtioNet::kTxQueue);
  send(frame_of(60, 1));
  EXPECT_TRUE(sent_.empty());
  drv_.driver_ok();  // DRIVER_OK processes what was made available
  EXPECT_EQ(sent_.size(), 1u);
}

// ---- receive ----

TEST_F(VirtioNetTest, DeliverFillsHeaderAndFrameAndInterrupts) {
  bring_up();
  post_rx(1);
  std::fill(ram_.at(kRx), ram_.at(kRx) + kLinuxRxBuf, 0xee);
  EXPECT_FALSE(line_.level);
  const std::vector<uint8_t> frame = frame_of(98, 4);
  ASSERT_TRUE(net_.deliver(frame));
  // virtio_net_hdr_v1: everything zero but num_buffers (le16 at 10) = 1.
  std::vector<uint8_t> want_hdr(kHdr, 0);
  want_hdr[10] = 1;
  EXPECT_EQ(ram_.get(kRx, kHdr), want_hdr);
  EXPECT_EQ(ram_.get(kRx + kHdr, frame.size()), frame);
  EXPECT_EQ(ram_.get_le<uint8_t>(kRx + kHdr + frame.size()), 0xee);  // nothing past the frame
  EXPECT_EQ(rxq_.used_idx(ram_), 1u);
  EXPECT_EQ(rxq_.used_elem(ram_, 0), (std::pair<uint32_t, uint32_t>{0, kHdr + 98}));
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntUsedBuffer);
  EXPECT_EQ(net_.state().rx_frames, 1u);
  EXPECT_EQ(net_.state().rx_bytes, 98u);
}

TEST_F(VirtioNetTest, PostingBuffersConsumesNothing) {
  bring_up();
  post_rx(4);
  EXPECT_EQ(rxq_.used_idx(ram_), 0u);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  EXPECT_TRUE(net_.can_receive());
}

TEST_F(VirtioNetTest, DeliverWithNoBufferPostedIsRefused) {
  bring_up();
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  EXPECT_EQ(net_.state(), (VirtioNet::State{.mac = kMac}));
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioNetTest, DeliverBeforeDriverOkIsRefused) {
  ASSERT_TRUE(drv_.negotiate());
  rxq_ = drv_.setup_queue(VirtioNet::kRxQueue);
  rxq_.add(ram_, {{kRx, kLinuxRxBuf, true}});
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(rxq_.used_idx(ram_), 0u);
}

TEST_F(VirtioNetTest, DeliverOnAFreshDeviceIsRefused) {
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
}

TEST_F(VirtioNetTest, BuffersAreUsedInOrderUntilNoneIsLeft) {
  bring_up();
  post_rx(2);
  EXPECT_TRUE(net_.deliver(frame_of(60, 1)));
  EXPECT_TRUE(net_.can_receive());
  EXPECT_TRUE(net_.deliver(frame_of(61, 2)));
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(62, 3)));  // the caller keeps it
  EXPECT_EQ(ram_.get(kRx + kHdr, 60), frame_of(60, 1));
  EXPECT_EQ(ram_.get(kRx + 0x800 + kHdr, 61), frame_of(61, 2));
  post_rx(1);  // the guest refills; the frame goes in now
  EXPECT_TRUE(net_.deliver(frame_of(62, 3)));
  EXPECT_EQ(ram_.get(kRx + 0x1000 + kHdr, 62), frame_of(62, 3));
  EXPECT_EQ(rxq_.used_idx(ram_), 3u);
}

TEST_F(VirtioNetTest, HeaderAndFrameMayGoToSeparateDescriptors) {
  bring_up();
  rxq_.add(ram_, {{kRx, kHdr, true}, {kRx + 0x1000, 50, true}, {kRx + 0x2000, 1500, true}});
  const std::vector<uint8_t> frame = frame_of(120, 8);
  ASSERT_TRUE(net_.deliver(frame));
  EXPECT_EQ(ram_.get_le<uint16_t>(kRx + 10), 1u);
  EXPECT_EQ(ram_.get(kRx + 0x1000, 50), std::vector<uint8_t>(frame.begin(), frame.begin() + 50));
  EXPECT_EQ(ram_.get(kRx + 0x2000, 70), std::vector<uint8_t>(frame.begin() + 50, frame.end()));
  EXPECT_EQ(rxq_.used_elem(ram_, 0).second, kHdr + 120);
}

TEST_F(VirtioNetTest, FrameExactlyFillingTheBufferIsDelivered) {
  bring_up();
  post_rx(1);
  EXPECT_TRUE(net_.deliver(frame_of(1518, 3)));
  EXPECT_EQ(rxq_.used_elem(ram_, 0).second, kLinuxRxBuf);
}

TEST_F(VirtioNetTest, FrameLargerThanTheBufferIsDroppedAndTheBufferStays) {
  bring_up();
  post_rx(1);
  EXPECT_TRUE(net_.deliver(frame_of(1519, 3)));  // taken: dropped, not retried
  EXPECT_EQ(net_.state().rx_dropped, 1u);
  EXPECT_EQ(net_.state().rx_frames, 0u);
  EXPECT_EQ(rxq_.used_idx(ram_), 0u);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  EXPECT_FALSE(dev_.needs_reset());
  EXPECT_TRUE(net_.can_receive());
  ASSERT_TRUE(net_.deliver(frame_of(60, 4)));  // the same buffer takes the next frame
  EXPECT_EQ(rxq_.used_elem(ram_, 0), (std::pair<uint32_t, uint32_t>{0, kHdr + 60}));
  EXPECT_EQ(ram_.get(kRx + kHdr, 60), frame_of(60, 4));
}

TEST_F(VirtioNetTest, ReadableDescriptorsOfAReceiveChainAreNotWritten) {
  bring_up();
  ram_.put_le<uint32_t>(kRx + 0x1000, 0xcafef00d);
  rxq_.add(ram_, {{kRx + 0x1000, 4, false}, {kRx, kLinuxRxBuf, true}});
  ASSERT_TRUE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(ram_.get_le<uint32_t>(kRx + 0x1000), 0xcafef00du);
  EXPECT_EQ(ram_.get(kRx + kHdr, 60), frame_of(60, 1));
}

TEST_F(VirtioNetTest, NoInterruptFlagSuppressesTheReceiveInterrupt) {
  bring_up();
  post_rx(1);
  ram_.put_le<uint16_t>(rxq_.avail, kVirtqAvailFNoInterrupt);  // NAPI polling
  ASSERT_TRUE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(rxq_.used_idx(ram_), 1u);
  EXPECT_EQ(drv_.rd(kIntStatus), 0u);
  EXPECT_FALSE(line_.level);
}

TEST_F(VirtioNetTest, ReceiveBufferOutsideRamFailsTheDevice) {
  bring_up();
  rxq_.add(ram_, {{kRamBase + kRamSize - 100, kLinuxRxBuf, true}});
  EXPECT_TRUE(net_.can_receive());  // it looks available until it is read
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(net_.state().rx_frames + net_.state().rx_dropped, 0u);
}

TEST_F(VirtioNetTest, ResetForgetsPostedBuffers) {
  bring_up();
  post_rx(2);
  drv_.wr(kStatus, 0);
  EXPECT_FALSE(net_.can_receive());
  EXPECT_FALSE(net_.deliver(frame_of(60, 1)));
  EXPECT_EQ(net_.mac(), kMac);  // the MAC is the host's, not the driver's
}

TEST_F(VirtioNetTest, ReceiveIsReportedToTheWriteObserver) {
  bring_up();
  post_rx(1);
  ram_.observed.clear();
  ASSERT_TRUE(net_.deliver(frame_of(60, 1)));
  ASSERT_GE(ram_.observed.size(), 2u);
  EXPECT_EQ(ram_.observed[0], (GuestRange{kRx, kHdr}));
  EXPECT_EQ(ram_.observed[1], (GuestRange{kRx + kHdr, 60}));
}

TEST_F(VirtioNetTest, EchoingGuestRoundTripsFrames) {
  // A guest that sends back what it receives: what leaves is what came in.
  bring_up();
  post_rx(1);
  const std::vector<uint8_t> frame = frame_of(342, 11);  // a DHCP-sized frame
  ASSERT_TRUE(net_.deliver(frame));
  const uint32_t len = rxq_.used_elem(ram_, 0).second;
  txq_.add(ram_, {{kRx, len, false}});  // the same bytes, header included
  notify_tx();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], frame);
}

// ---- state ----

TEST_F(VirtioNetTest, StateRestoredIntoAFreshPairContinuesTheSame) {
  bring_up();
  post_rx(3);
  ASSERT_TRUE(net_.deliver(frame_of(60, 1)));
  send(frame_of(70, 2));
  net_.set_link_up(false);

  TestRam ram2;
  ram2.bytes = ram_.bytes;
  FakeLine line2;
  VirtioNet net2(MacAddress{});
  VirtioMmio dev2(ram2.memory(), &line2, &net2);
  net2.attach(&dev2);
  net2.restore(net_.state());
  dev2.restore(dev_.state());
  EXPECT_EQ(net2.state(), net_.state());
  EXPECT_EQ(net2.mac(), kMac);
  EXPECT_EQ(line2.level, line_.level);

  ASSERT_TRUE(net_.deliver(frame_of(80, 3)));
  ASSERT_TRUE(net2.deliver(frame_of(80, 3)));
  EXPECT_EQ(ram2.bytes, ram_.bytes);
  EXPECT_EQ(dev2.state(), dev_.state());
  EXPECT_EQ(net2.state(), net_.state());
}

TEST(VirtioNetState, ForEachFieldIsFixedAndCoversEveryField) {
  VirtioNet::State s{.mac = kMac, .link_up = false, .rx_frames = 1, .rx_bytes = 2,
                     .rx_dropped = 3, .tx_frames = 4, .tx_bytes = 5, .tx_dropped = 6};
  std::vector<uint64_t> fields;
  s.for_each_field([&](uint64_t v) { fields.push_back(v); });
  EXPECT_EQ(fields, (std::vector<uint64_t>{0x525400123456, 0, 1, 2, 3, 4, 5, 6}));
}

// ---- MAC text ----

TEST(MacText, ParsesAndFormats) {
  EXPECT_EQ(parse_mac("52:54:00:12:34:56"), kMac);
  EXPECT_EQ(parse_mac("52:54:00:12:34:56"), parse_mac("52:54:00:12:34:56"));
  EXPECT_EQ(parse_mac("AA:bb:0C:dD:e0:Ff"), (MacAddress{0xaa, 0xbb, 0x0c, 0xdd, 0xe0, 0xff}));
  EXPECT_EQ(format_mac(kMac), "52:54:00:12:34:56");
  EXPECT_EQ(format_mac(kDefaultGuestMac), "52:54:00:77:00:0f");
}

TEST(MacText, RejectsAnythingElse) {
  for (const char* bad : {"", "52:54:00:12:34", "52:54:00:12:34:56:", "52-54-00-12-34-56",
                          "52:54:00:12:34:5g", "5:54:00:12:34:567", " 52:54:00:12:34:5"}) {
    EXPECT_FALSE(parse_mac(bad).has_value()) << bad;
  }
}

// Seeded garbage in both rings: the device never touches memory outside RAM
// (the sanitizer build checks), never aborts, and either moves frames or
// fails cleanly.
TEST(VirtioNetRandom, GarbageRingsNeverEscapeRam) {
  SeededEntropy rnd(77);
  auto r32 = [&rnd] {
    uint32_t v;
    rnd.fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  unsigned moved = 0, failed = 0;
  for (int iter = 0; iter < 200; ++iter) {
    TestRam ram;
    FakeLine line;
    VirtioNet net(kMac, [&moved](std::span<const uint8_t>) { ++moved; });
    VirtioMmio dev(ram.memory(), &line, &net);
    net.attach(&dev);
    TestDriver drv(dev, ram);
    ASSERT_TRUE(drv.negotiate());
    TestQueue qs[2] = {drv.setup_queue(0, static_cast<uint16_t>(1u << (r32() % 5))),
                       drv.setup_queue(1, static_cast<uint16_t>(1u << (r32() % 5)))};
    drv.driver_ok();
    for (int round = 0; round < 10 && !dev.needs_reset(); ++round) {
      TestQueue& q = qs[r32() % 2];
      for (uint16_t i = 0; i < q.num; ++i) {
        const uint32_t pick = r32();
        uint64_t addr = kBufArea + r32() % 0x10000;
        if (pick % 16 == 0) addr = kRamBase + kRamSize - r32() % 64;
        if (pick % 16 == 1) addr = ~0ull - r32() % 64;
        const uint32_t len = pick % 8 == 3 ? r32() : r32() % 2000;
        const uint16_t flags = static_cast<uint16_t>(pick % 32 == 4 ? r32() : (r32() & 3));
        q.write_desc(ram, i, addr, len, flags, static_cast<uint16_t>(r32() % (q.num + 1)));
      }
      const uint32_t n = r32() % (q.num + 2);
      for (uint32_t k = 0; k < n; ++k) q.publish(ram, static_cast<uint16_t>(r32() % (q.num + 1)));
      drv.notify(r32() % 2);
      for (int k = 0; k < 3; ++k) {
        if (net.deliver(frame_of(r32() % 1600, static_cast<uint8_t>(k)))) ++moved;
      }
    }
    if (dev.needs_reset()) ++failed;
  }
  // The mix must exercise both outcomes, or the test proves little.
  EXPECT_GT(moved, 50u);
  EXPECT_GT(failed, 20u);
}

}  // namespace
}  // namespace ftvm::vm
