// ns16550a register file and interrupt logic; see uart.h for the model.
#include "vm/uart.h"

#include <utility>

namespace ftvm::vm {
namespace {

// Register numbers (offsets with reg-shift 0).
constexpr unsigned kRbrThrDll = 0;
constexpr unsigned kIerDlm = 1;
constexpr unsigned kIirFcr = 2;
constexpr unsigned kLcr = 3;
constexpr unsigned kMcr = 4;
constexpr unsigned kLsr = 5;
constexpr unsigned kMsr = 6;
constexpr unsigned kScr = 7;

constexpr uint8_t kIerRdi = 0x01;   // receive data available
constexpr uint8_t kIerThri = 0x02;  // transmitter holding register empty
constexpr uint8_t kIerRlsi = 0x04;  // receiver line status
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNoInt = 0x01;
constexpr uint8_t kIirIdMask = 0x0e;
constexpr uint8_t kIirThri = 0x02;
constexpr uint8_t kIirRdi = 0x04;
constexpr uint8_t kIirRlsi = 0x06;
constexpr uint8_t kIirCti = 0x0c;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrFifoEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrClearTx = 0x04;
constexpr uint8_t kFcrStickyMask = 0xc9;  // FIFOE, DMA mode, RX trigger level

constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrMask = 0x1f;
constexpr uint8_t kMcrLoop = 0x10;

constexpr uint8_t kLsrDr = 0x01;
constexpr uint8_t kLsrOe = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

constexpr uint8_t kMsrFixed = 0xb0;  // DCD, DSR, CTS asserted; no deltas

}  // namespace

Uart16550::Uart16550(std::function<void(uint8_t)> sink, IrqLine* irq)
    : sink_(std::move(sink)), irq_(irq) {
  update_irq();
}

bool Uart16550::read(uint64_t offset, unsigned size, uint64_t& value) {
  if (offset >= 8) return false;
  value = read_reg(static_cast<unsigned>(offset));
  return true;
}

bool Uart16550::write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset >= 8) return false;
  write_reg(static_cast<unsigned>(offset), static_cast<uint8_t>(value));
  return true;
}

bool Uart16550::push_rx(uint8_t byte) {
  if (!rx_has_room()) return false;
  s_.rx_fifo[s_.rx_count++] = byte;
  update_irq();
  return true;
}

bool Uart16550::rx_has_room() const { return s_.rx_count < rx_capacity(); }

bool Uart16550::irq_pending() const { return !(iir() & kIirNoInt); }

void Uart16550::restore(const State& state) {
  s_ = state;
  // A snapshot is trusted data, but keep the FIFO count in range regardless.
  if (s_.rx_count > kFifoSize) s_.rx_count = kFifoSize;
  update_irq();
}

uint8_t Uart16550::read_reg(unsigned reg) {
  const bool dlab = s_.lcr & kLcrDlab;
  switch (reg) {
    case kRbrThrDll: {
      if (dlab) return s_.dll;
      const uint8_t byte = pop_rx();
      update_irq();
      return byte;
    }
    case kIerDlm:
      return dlab ? s_.dlm : s_.ier;
    case kIirFcr: {
      const uint8_t value = iir();
      if ((value & kIirIdMask) == kIirThri) {
        s_.thr_ipending = false;
        update_irq();
      }
      return value;
    }
    case kLcr:
      return s_.lcr;
    case kMcr:
      return s_.mcr;
    case kLsr: {
      const uint8_t value = lsr();
      if (s_.overrun) {
        s_.overrun = false;
        update_irq();
      }
      return value;
    }
    case kMsr:
      return msr();
    case kScr:
      return s_.scr;
  }
  return 0;
}

void Uart16550::write_reg(unsigned reg, uint8_t value) {
  const bool dlab = s_.lcr & kLcrDlab;
  switch (reg) {
    case kRbrThrDll:
      if (dlab) {
        s_.dll = value;
        return;
      }
      // The byte leaves at once: THR empties and the THR-empty interrupt is
      // latched again, exactly as QEMU's transmit path does.
      if (s_.mcr & kMcrLoop) {
        receive(value);
      } else if (sink_) {
        sink_(value);
      }
      s_.thr_ipending = true;
      update_irq();
      return;
    case kIerDlm: {
      if (dlab) {
        s_.dlm = value;
        return;
      }
      const uint8_t changed = (s_.ier ^ value) & kIerMask;
      s_.ier = value & kIerMask;
      // Turning THRI on while THR is empty (it always is) raises the
      // interrupt even if it was acknowledged before; turning it off forgets it.
      if (changed & kIerThri) s_.thr_ipending = (s_.ier & kIerThri) != 0;
      update_irq();
      return;
    }
    case kIirFcr: {
      // Toggling FIFOE flushes both FIFOs.
      if ((value ^ s_.fcr) & kFcrFifoEnable) value |= kFcrClearRx | kFcrClearTx;
      if (value & kFcrClearRx) {
        s_.rx_count = 0;
        s_.rx_fifo = {};
      }
      if (value & kFcrClearTx) s_.thr_ipending = true;
      s_.fcr = value & kFcrStickyMask;
      update_irq();
      return;
    }
    case kLcr:
      s_.lcr = value;
      return;
    case kMcr:
      s_.mcr = value & kMcrMask;
      return;
    case kLsr:
    case kMsr:
      return;  // read-only
    case kScr:
      s_.scr = value;
      return;
  }
}

unsigned Uart16550::rx_capacity() const { return (s_.fcr & kFcrFifoEnable) ? kFifoSize : 1; }

unsigned Uart16550::rx_trigger_level() const {
  switch (s_.fcr & 0xc0) {
    case 0x00:
      return 1;
    case 0x40:
      return 4;
    case 0x80:
      return 8;
    default:
      return 14;
  }
}

uint8_t Uart16550::pop_rx() {
  if (s_.rx_count == 0) return 0;
  const uint8_t byte = s_.rx_fifo[0];
  for (unsigned i = 1; i < s_.rx_count; ++i) s_.rx_fifo[i - 1] = s_.rx_fifo[i];
  s_.rx_fifo[--s_.rx_count] = 0;
  return byte;
}

void Uart16550::receive(uint8_t byte) {
  if (s_.rx_count < rx_capacity()) {
    s_.rx_fifo[s_.rx_count++] = byte;
  } else {
    s_.overrun = true;  // the byte is lost, the FIFO keeps its contents
  }
}

uint8_t Uart16550::lsr() const {
  uint8_t value = kLsrThre | kLsrTemt;
  if (s_.rx_count > 0) value |= kLsrDr;
  if (s_.overrun) value |= kLsrOe;
  return value;
}

uint8_t Uart16550::msr() const {
  if (!(s_.mcr & kMcrLoop)) return kMsrFixed;
  // In loopback the modem outputs feed the inputs: DTR->DSR, RTS->CTS,
  // OUT1->RI, OUT2->DCD.
  return static_cast<uint8_t>(((s_.mcr & 0x0c) << 4) | ((s_.mcr & 0x02) << 3) |
                              ((s_.mcr & 0x01) << 5));
}

uint8_t Uart16550::iir() const {
  uint8_t id = kIirNoInt;
  const bool fifo = s_.fcr & kFcrFifoEnable;
  if ((s_.ier & kIerRlsi) && s_.overrun) {
    id = kIirRlsi;
  } else if ((s_.ier & kIerRdi) && s_.rx_count > 0) {
    id = (fifo && s_.rx_count < rx_trigger_level()) ? kIirCti : kIirRdi;
  } else if ((s_.ier & kIerThri) && s_.thr_ipending) {
    id = kIirThri;
  }
  return static_cast<uint8_t>(id | (fifo ? kIirFifoEnabled : 0));
}

void Uart16550::update_irq() {
  if (irq_) irq_->set_level(irq_pending());
}

}  // namespace ftvm::vm
