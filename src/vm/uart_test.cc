// Register and interrupt behaviour of the ns16550a, one edge case per test,
// including the sequences Linux's 8250 driver runs at startup.
#include "vm/uart.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftvm::vm {
namespace {

constexpr uint64_t kRbr = 0, kThr = 0, kDll = 0, kIer = 1, kDlm = 1, kIir = 2, kFcr = 2,
                   kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;

struct FakeLine final : IrqLine {
  void set_level(bool high) override {
    level = high;
    ++calls;
  }
  bool level = true;  // the constructor must drive it low
  int calls = 0;
};

class UartTest : public ::testing::Test {
 protected:
  uint8_t rd(uint64_t reg) {
    uint64_t v = 0xdead;
    EXPECT_TRUE(uart_.read(reg, 1, v));
    EXPECT_LT(v, 0x100u);
    return static_cast<uint8_t>(v);
  }
  void wr(uint64_t reg, uint8_t v) { EXPECT_TRUE(uart_.write(reg, 1, v)); }

  std::vector<uint8_t> out_;
  FakeLine line_;
  Uart16550 uart_{[this](uint8_t b) { out_.push_back(b); }, &line_};
};

TEST_F(UartTest, ResetValues) {
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(rd(kIer), 0x00);
  EXPECT_EQ(rd(kIir), 0x01);  // no interrupt, FIFOs off
  EXPECT_EQ(rd(kLcr), 0x00);
  EXPECT_EQ(rd(kMcr), 0x08);  // OUT2
  EXPECT_EQ(rd(kLsr), 0x60);  // THRE | TEMT
  EXPECT_EQ(rd(kMsr), 0xb0);  // DCD | DSR | CTS
  EXPECT_EQ(rd(kScr), 0x00);
}

TEST_F(UartTest, ThrWriteEmitsByteAtOnce) {
  wr(kThr, 'h');
  wr(kThr, 'i');
  EXPECT_EQ(out_, (std::vector<uint8_t>{'h', 'i'}));
  EXPECT_EQ(rd(kLsr) & 0x60, 0x60);
}

TEST_F(UartTest, DlabSelectsDivisorLatches) {
  wr(kLcr, 0x83);
  wr(kDll, 0x01);
  wr(kDlm, 0x02);
  EXPECT_EQ(rd(kDll), 0x01);
  EXPECT_EQ(rd(kDlm), 0x02);
  EXPECT_TRUE(out_.empty());  // the DLL write did not transmit
  EXPECT_EQ(uart_.state().ier, 0);
  wr(kLcr, 0x03);
  EXPECT_EQ(rd(kIer), 0x00);
  EXPECT_EQ(uart_.state().dll, 0x01);
  EXPECT_EQ(uart_.state().dlm, 0x02);
}

TEST_F(UartTest, IerKeepsLowFourBits) {
  wr(kIer, 0xff);
  EXPECT_EQ(rd(kIer), 0x0f);
}

TEST_F(UartTest, McrKeepsLowFiveBits) {
  wr(kMcr, 0xff);
  EXPECT_EQ(rd(kMcr), 0x1f);
}

TEST_F(UartTest, ScratchHoldsAnyByte) {
  wr(kScr, 0xa5);
  EXPECT_EQ(rd(kScr), 0xa5);
}

TEST_F(UartTest, LsrAndMsrIgnoreWrites) {
  wr(kLsr, 0x00);
  wr(kMsr, 0x00);
  EXPECT_EQ(rd(kLsr), 0x60);
  EXPECT_EQ(rd(kMsr), 0xb0);
}

TEST_F(UartTest, ReceivedByteSetsDataReady) {
  ASSERT_TRUE(uart_.push_rx('x'));
  EXPECT_EQ(rd(kLsr), 0x61);
  EXPECT_EQ(rd(kRbr), 'x');
  EXPECT_EQ(rd(kLsr), 0x60);
}

TEST_F(UartTest, ReadingEmptyRbrGivesZero) { EXPECT_EQ(rd(kRbr), 0); }

TEST_F(UartTest, WithoutFifoOnlyOneByteFits) {
  EXPECT_TRUE(uart_.rx_has_room());
  ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_FALSE(uart_.rx_has_room());
  EXPECT_FALSE(uart_.push_rx('b'));
  EXPECT_EQ(rd(kRbr), 'a');
  EXPECT_TRUE(uart_.rx_has_room());
}

TEST_F(UartTest, FifoHoldsSixteenBytesInOrder) {
  wr(kFcr, 0x01);
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(uart_.push_rx(static_cast<uint8_t>(i)));
  EXPECT_FALSE(uart_.rx_has_room());
  EXPECT_FALSE(uart_.push_rx(99));
  EXPECT_EQ(rd(kLsr) & 0x02, 0);  // a refused push is not an overrun
  for (int i = 0; i < 16; ++i) EXPECT_EQ(rd(kRbr), i);
  EXPECT_EQ(rd(kLsr) & 0x01, 0);
}

TEST_F(UartTest, IirShowsFifoEnabledBits) {
  wr(kFcr, 0x01);
  EXPECT_EQ(rd(kIir), 0xc1);
  wr(kFcr, 0x00);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, FcrClearRxEmptiesFifo) {
  wr(kFcr, 0x01);
  ASSERT_TRUE(uart_.push_rx('a'));
  ASSERT_TRUE(uart_.push_rx('b'));
  wr(kFcr, 0x03);
  EXPECT_EQ(rd(kLsr) & 0x01, 0);
  EXPECT_EQ(uart_.state().rx_count, 0);
}

TEST_F(UartTest, TogglingFifoEnableFlushesRx) {
  ASSERT_TRUE(uart_.push_rx('a'));
  wr(kFcr, 0x01);
  EXPECT_EQ(rd(kLsr) & 0x01, 0);
}

TEST_F(UartTest, FcrKeepsOnlyStickyBits) {
  wr(kFcr, 0xcf);
  EXPECT_EQ(uart_.state().fcr, 0xc9);
}

TEST_F(UartTest, RxInterruptNeedsIerRdi) {
  ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(rd(kIir), 0x01);
  wr(kIer, 0x01);
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(rd(kIir), 0x04);
}

TEST_F(UartTest, RxInterruptClearsWhenFifoDrained) {
  wr(kIer, 0x01);
  ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(rd(kRbr), 'a');
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, BelowTriggerLevelReportsCharacterTimeout) {
  wr(kFcr, 0x81);  // FIFO on, trigger at 8 bytes
  wr(kIer, 0x01);
  ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_TRUE(line_.level);  // no clock, so the timeout is immediate
  EXPECT_EQ(rd(kIir), 0xcc);
}

TEST_F(UartTest, AtTriggerLevelReportsDataAvailable) {
  wr(kFcr, 0x41);  // trigger at 4 bytes
  wr(kIer, 0x01);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_EQ(rd(kIir), 0xc4);
  EXPECT_EQ(rd(kRbr), 'a');
  EXPECT_EQ(rd(kIir), 0xcc);  // three left, below the trigger
}

TEST_F(UartTest, EnablingThriRaisesInterrupt) {
  wr(kIer, 0x02);
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(rd(kIir) & 0x0f, 0x02);
}

TEST_F(UartTest, ReadingIirAcknowledgesThri) {
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x02);
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, ThrWriteReassertsThri) {
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x02);
  wr(kThr, 'z');
  EXPECT_TRUE(line_.level);
  EXPECT_EQ(rd(kIir), 0x02);
}

TEST_F(UartTest, DisablingThriDropsInterrupt) {
  wr(kIer, 0x02);
  wr(kIer, 0x00);
  EXPECT_FALSE(line_.level);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, RewritingSameIerDoesNotReassertAcknowledgedThri) {
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x02);
  wr(kIer, 0x02);  // THRI did not change
  EXPECT_FALSE(line_.level);
}

TEST_F(UartTest, ThriLatchedWhileMaskedIsForgottenOnEnable) {
  wr(kThr, 'a');  // latches THR-empty while IER.THRI is off
  EXPECT_FALSE(line_.level);
  wr(kIer, 0x02);  // re-sampled on the rising edge: THR is empty, so pending
  EXPECT_TRUE(line_.level);
}

TEST_F(UartTest, RxTakesPriorityOverThri) {
  wr(kIer, 0x03);
  ASSERT_TRUE(uart_.push_rx('a'));
  EXPECT_EQ(rd(kIir), 0x04);  // reading IIR here does not acknowledge THRI
  EXPECT_EQ(rd(kRbr), 'a');
  EXPECT_EQ(rd(kIir), 0x02);
  EXPECT_EQ(rd(kIir), 0x01);
}

TEST_F(UartTest, FcrClearTxLatchesThri) {
  wr(kIer, 0x02);
  EXPECT_EQ(rd(kIir), 0x02);
  wr(kFcr, 0x07);
  EXPECT_EQ(rd(kIir), 0xc2);
}

// serial8250_do_startup's THRE re-assertion test: a UART that fails it is
// driven by a polling timer instead of interrupts.
TEST_F(UartTest, LinuxThreTestSeesReassertion) {
  wr(kIer, 0x02);
  const uint8_t iir1 = rd(kIir);
  wr(kIer, 0x00);
  wr(kIer, 0x02);
  const uint8_t iir = rd(kIir);
  wr(kIer, 0x00);
  EXPECT_FALSE(iir1 & 0x01);
  EXPECT_FALSE(iir & 0x01);
  EXPECT_FALSE(line_.level);
}

// serial8250_do_startup's TX-enable test (UART_BUG_TXEN when it fails).
TEST_F(UartTest, LinuxTxenTestSeesInterrupt) {
  wr(kIer, 0x02);
  const uint8_t lsr = rd(kLsr);
  const uint8_t iir = rd(kIir);
  wr(kIer, 0x00);
  EXPECT_TRUE(lsr & 0x40);
  EXPECT_FALSE(iir & 0x01);
}

TEST_F(UartTest, LoopbackSendsThrToReceiver) {
  wr(kMcr, 0x10);
  wr(kThr, 'q');
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(rd(kLsr) & 0x01, 0x01);
  EXPECT_EQ(rd(kRbr), 'q');
}

TEST_F(UartTest, LoopbackMsrMirrorsMcr) {
  wr(kMcr, 0x10 | 0x01);  // DTR -> DSR
  EXPECT_EQ(rd(kMsr), 0x20);
  wr(kMcr, 0x10 | 0x02);  // RTS -> CTS
  EXPECT_EQ(rd(kMsr), 0x10);
  wr(kMcr, 0x10 | 0x04);  // OUT1 -> RI
  EXPECT_EQ(rd(kMsr), 0x40);
  wr(kMcr, 0x10 | 0x08);  // OUT2 -> DCD
  EXPECT_EQ(rd(kMsr), 0x80);
}

TEST_F(UartTest, LoopbackOverrunSetsOeUntilLsrRead) {
  wr(kMcr, 0x10);
  wr(kThr, 'a');
  wr(kThr, 'b');  // no FIFO: the holding register is full
  EXPECT_EQ(rd(kLsr), 0x63);
  EXPECT_EQ(rd(kLsr), 0x61);
  EXPECT_EQ(rd(kRbr), 'a');
}

TEST_F(UartTest, OverrunRaisesLineStatusInterrupt) {
  wr(kIer, 0x05);
  wr(kMcr, 0x10);
  wr(kThr, 'a');
  wr(kThr, 'b');
  EXPECT_EQ(rd(kIir), 0x06);  // line status outranks data available
  rd(kLsr);
  EXPECT_EQ(rd(kIir), 0x04);
}

TEST_F(UartTest, WideAccessesUseLowByte) {
  EXPECT_TRUE(uart_.write(kScr, 4, 0x12345678));
  uint64_t v = 0;
  EXPECT_TRUE(uart_.read(kScr, 4, v));
  EXPECT_EQ(v, 0x78u);
  EXPECT_TRUE(uart_.read(kLsr, 2, v));
  EXPECT_EQ(v, 0x60u);
  EXPECT_TRUE(uart_.write(kThr, 8, 0xff41));
  EXPECT_EQ(out_, (std::vector<uint8_t>{0x41}));
}

TEST_F(UartTest, OffsetsPastRegistersFault) {
  uint64_t v = 0;
  EXPECT_FALSE(uart_.read(8, 1, v));
  EXPECT_FALSE(uart_.write(0xff, 1, 0));
}

TEST_F(UartTest, WorksWithoutIrqLine) {
  Uart16550 uart([](uint8_t) {}, nullptr);
  EXPECT_TRUE(uart.write(kIer, 1, 0x02));
  EXPECT_TRUE(uart.irq_pending());
}

TEST_F(UartTest, StateRoundTripsIntoFreshUart) {
  wr(kFcr, 0x81);
  wr(kLcr, 0x03);
  wr(kScr, 7);
  wr(kIer, 0x03);
  ASSERT_TRUE(uart_.push_rx('a'));
  ASSERT_TRUE(uart_.push_rx('b'));
  const Uart16550::State saved = uart_.state();

  FakeLine line2;
  Uart16550 other([](uint8_t) {}, &line2);
  other.restore(saved);
  EXPECT_EQ(other.state(), saved);
  EXPECT_TRUE(line2.level);  // restore drives the line
  uint64_t v = 0;
  ASSERT_TRUE(other.read(kRbr, 1, v));
  EXPECT_EQ(v, 'a');
  ASSERT_TRUE(other.read(kRbr, 1, v));
  EXPECT_EQ(v, 'b');
}

TEST_F(UartTest, RestoreClampsCorruptFifoCount) {
  Uart16550::State s;
  s.rx_count = 200;
  uart_.restore(s);
  EXPECT_EQ(uart_.state().rx_count, Uart16550::kFifoSize);
}

}  // namespace
}  // namespace ftvm::vm
