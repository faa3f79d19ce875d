// The machine's serial console: an ns16550a UART as QEMU's virt machine has it.
//
// Register behaviour follows QEMU's hw/char/serial.c, which Linux's 8250
// driver is known to work with: transmission is instantaneous (a THR write
// hands the byte to the sink at once, so LSR.THRE and LSR.TEMT always read
// set), the THR-empty interrupt is raised again after every write and when
// IER.THRI is turned on, and is cleared by reading IIR while it is the
// reported source. Received bytes enter a 16-byte FIFO (a single holding
// register while FCR.FIFOE is clear) only through push_rx(), which the
// machine calls between instructions. Where QEMU raises the character-timeout
// interrupt after four character times, this UART raises it at once, since
// it has no clock: the receive interrupt is pending whenever IER.RDI is set
// and data is waiting, reported as "data available" at or above the FIFO
// trigger level and as "character timeout" below it.
//
// Modem lines are fixed (DCD, DSR and CTS asserted, no deltas), so the modem
// status interrupt never fires. MCR.LOOP is honoured: written bytes then go
// to the receive FIFO instead of the sink, and MSR mirrors MCR.
#pragma once

#include <array>
#include <cstdint>
#include <functional>

#include "vm/device.h"

namespace ftvm::vm {

class Uart16550 final : public Device {
 public:
  static constexpr uint64_t kBase = 0x1000'0000;
  static constexpr uint64_t kSize = 0x100;
  static constexpr unsigned kPlicSource = 10;  // its interrupt line on the PLIC
  static constexpr unsigned kFifoSize = 16;
  static constexpr uint32_t kClockFrequency = 3'686'400;

  // Everything the UART holds; plain data, so snapshots can copy it.
  struct State {
    std::array<uint8_t, kFifoSize> rx_fifo{};  // rx_fifo[0] is the oldest byte
    uint8_t rx_count = 0;
    uint8_t ier = 0;
    uint8_t fcr = 0;  // only the bits that stick: FIFOE, DMA mode, trigger level
    uint8_t lcr = 0;
    uint8_t mcr = 0x08;  // OUT2, as QEMU resets it
    uint8_t scr = 0;
    uint8_t dll = 0x0c;  // 9600 baud from 1.8432 MHz, QEMU's reset divisor
    uint8_t dlm = 0;
    bool overrun = false;       // LSR.OE, cleared by reading LSR
    bool thr_ipending = false;  // THR-empty interrupt latched, not yet acknowledged
    bool operator==(const State&) const = default;
  };

  // `sink` receives each transmitted byte at the moment of the THR write; it
  // must not call back into the UART. `irq` (may be null: unconnected) is
  // driven with the UART's interrupt level whenever it may have changed; it
  // must outlive the UART. The constructor drives it low.
  Uart16550(std::function<void(uint8_t)> sink, IrqLine* irq);

  // Registers sit at offsets 0..7 (reg-shift 0). Any access size is taken,
  // as QEMU does: a write uses the value's low byte and a read returns the
  // register in the low byte, zeros above. Offsets 8 and up are refused
  // (QEMU maps only 8 bytes there, the rest of the window faults).
  [[nodiscard]] bool read(uint64_t offset, unsigned size, uint64_t& value) override;
  [[nodiscard]] bool write(uint64_t offset, unsigned size, uint64_t value) override;

  // Receives one byte from outside. Returns false, changing nothing, when
  // there is no room (16 bytes with FIFOs enabled, 1 without).
  bool push_rx(uint8_t byte);
  bool rx_has_room() const;

  // The current interrupt level (what `irq` was last driven with).
  bool irq_pending() const;

  State state() const { return s_; }
  // Replaces the whole state and drives `irq` to match it.
  void restore(const State& state);

 private:
  uint8_t read_reg(unsigned reg);
  void write_reg(unsigned reg, uint8_t value);
  unsigned rx_capacity() const;
  unsigned rx_trigger_level() const;
  uint8_t pop_rx();
  void receive(uint8_t byte);  // loopback path: overruns set LSR.OE
  uint8_t lsr() const;
  uint8_t msr() const;
  uint8_t iir() const;
  void update_irq();

  std::function<void(uint8_t)> sink_;
  IrqLine* irq_;
  State s_;
};

}  // namespace ftvm::vm
