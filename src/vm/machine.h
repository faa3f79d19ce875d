// The whole deterministic machine: one hart, RAM, CLINT, PLIC, UART, the
// power device, the device tree, and the SBI; loading of Linux or a
// bare-metal ELF; and execution in bounded slices.
//
// Determinism contract (DESIGN §3): machine state changes only by executing
// instructions and by the explicit event methods below (console input, time
// skips), each applied between two instructions at the current instret.
// Virtual time is mtime = instret / kInstretPerTick + (sum of time skips).
// Nothing here reads the host clock, host randomness or does host I/O:
// console output leaves through the sink callback.
//
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"
#include "vm/bus.h"
#include "vm/clint.h"
#include "vm/hart.h"
#include "vm/plic.h"
#include "vm/power.h"
#include "vm/sbi.h"
#include "vm/uart.h"
#include "vm/virtio_blk.h"
#include "vm/virtio_mmio.h"
#include "vm/virtio_net.h"
#include "vm/virtio_rng.h"

namespace ftvm::vm {

inline constexpr uint64_t kRamBase = 0x8000'0000;
inline constexpr uint64_t kDefaultRamSize = 256ull << 20;
// Virtual time: mtime ticks at kTimebaseHz; one tick every kInstretPerTick
// instructions, so one guest second is 10^9 instructions when busy.
inline constexpr uint64_t kTimebaseHz = 10'000'000;
inline constexpr uint64_t kInstretPerTick = 100;

// virtio-mmio slots used for each device (Linux probes the highest slot
// first, so the disk is virtio0 / vda, as on QEMU with one -device).
inline constexpr unsigned kBlockSlot = 7;
inline constexpr unsigned kNetSlot = 6;
inline constexpr unsigned kEntropySlot = 5;

struct MachineConfig {
  uint64_t ram_size = kDefaultRamSize;
  // Optional devices. The backends are owned by the caller and must outlive
  // the machine. Everything they hand the guest is outside input: a live
  // run must log it for the run to be replayable.
  BlockBackend* disk = nullptr;
  std::string disk_serial = "ftvm-disk0";
  EntropySource* entropy = nullptr;
  // A virtio-net NIC with this MAC; frames leave through the frame sink and
  // arrive through deliver_frame().
  std::optional<MacAddress> net_mac;
  // The device tree's /chosen/rng-seed (none when empty), which Linux mixes
  // into its entropy pool at boot. Outside input like the entropy device's
  // bytes: a live run must log it (ft::MachineSpec carries it in the log
  // header) for the run to be replayable.
  std::vector<uint8_t> rng_seed;
  // How the hart executes (vm/jit.h). Not machine state: a run on one engine
  // replays on the other, and their states are identical at every instret.
  Engine engine = Engine::kInterp;
};

enum class RunStatus : uint8_t {
  kBudget,    // the budget was used up; call run again
  kIdle,      // the hart waits for an interrupt (WFI) and none is pending
  kPowerOff,  // the guest powered off; exit_status() says with what
  kReset,     // the guest asked for a reboot
  kError,     // the machine cannot continue; error() says why
};

// Everything in machine state S except RAM, as plain data (snapshots, state
// transfer). RAM travels separately: Machine::bus().ram().
struct MachineState {
  HartState hart;
  Uart16550::State uart;
  Clint::State clint;
  Plic::State plic;
  std::array<VirtioMmio::State, 8> virtio{};
  std::optional<VirtioNet::State> net;
  bool sbi_mode = false;
  uint64_t sbi_timecmp = ~0ull;
  uint64_t time_skipped = 0;
  std::optional<uint64_t> tohost;
  uint8_t power = 0;  // 0 running, 1 off, 2 reset, 3 error
  uint32_t exit_status = 0;
};

struct RunResult {
  RunStatus status;
  uint64_t retired;  // instructions retired by this call
};

class Machine final : private SbiPlatform {
 public:
  explicit Machine(const MachineConfig& config);
  ~Machine() override;
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Boots Linux: `kernel` is a RISC-V Linux Image, loaded at its text offset
  // from the start of RAM; the initrd (may be empty) and a device tree with
  // `cmdline` (and the config's rng-seed) go at the top of RAM. The hart starts in S-mode at the kernel
  // with a0 = hart id, a1 = device tree, and this machine answers SBI calls.
  Status load_linux(std::span<const uint8_t> kernel, std::span<const uint8_t> initrd,
                    const std::string& cmdline);
  // Loads a bare-metal ELF at its physical addresses and starts it in M-mode
  // at its entry (a0 = 0, a1 = device tree). A `tohost` symbol enables the
  // HTIF exit convention.
  Status load_elf(std::span<const uint8_t> elf);

  // Executes at most `budget` instructions; stops early when the guest
  // idles, powers off, resets or the machine fails.
  RunResult run(uint64_t budget);

  uint64_t instret() const { return hart_.state().instret; }
  uint64_t mtime() const { return instret() / kInstretPerTick + time_skipped_; }
  double guest_seconds() const { return static_cast<double>(mtime()) / kTimebaseHz; }
  // The earliest future mtime at which an enabled timer interrupt fires.
  std::optional<uint64_t> next_wakeup() const;

  // ---- events: the only ways outside input changes machine state ----
  // Advances virtual time to `target_mtime` (no-op if not in the future).
  void skip_time_to(uint64_t target_mtime);
  // Delivers one console byte to the UART; false if its FIFO is full.
  bool push_console_input(uint8_t byte);
  bool console_can_accept() const { return uart_.rx_has_room(); }
  // Delivers one received Ethernet frame to the NIC; false if the guest has
  // no receive buffer posted (keep the frame and try again later) or there
  // is no NIC.
  bool deliver_frame(std::span<const uint8_t> frame);
  bool net_can_receive() const { return net_ && net_->can_receive(); }
  bool has_net() const { return net_ != nullptr; }
  bool has_disk() const { return blk_ != nullptr; }
  // How the disk's host I/O failures are logged or replayed (virtio_blk.h);
  // null: they only complete with IOERR. No effect without a disk.
  void set_disk_faults(DiskFaults* faults) {
    if (blk_) blk_->set_faults(faults);
  }
  // Host I/O failures of the disk so far, and the last one's description.
  uint64_t disk_host_errors() const { return blk_ ? blk_->host_errors() : 0; }
  std::string disk_last_host_error() const { return blk_ ? blk_->last_host_error() : std::string(); }

  // Console output (UART and SBI console), byte by byte, in guest order.
  void set_console_sink(std::function<void(uint8_t)> sink) { console_sink_ = std::move(sink); }
  // Frames the guest transmits, in guest order, at the instret of the
  // transmitting queue notify.
  void set_frame_sink(VirtioNet::FrameSink sink);

  // SHA-256 over the whole machine state S (hart, devices, virtual time, and
  // RAM as the SHA-256 of each 4 KiB page), as lowercase hex. Two machines
  // with equal hashes at the same instret continue identically. Incremental:
  // only pages written since the previous hash (Bus::mark_dirty) are read
  // again, so the first hash costs a pass over RAM and later ones little.
  std::string state_hash() const;
  std::array<uint8_t, 32> state_digest() const;

  // Dirty-page tracking for a live state transfer (pre-copy of RAM while
  // the guest runs), independent of the state digest's own tracking.
  // start_transfer_tracking() marks every page; each
  // take_transfer_dirty_pages() returns the pages (4 KiB indexes from RAM's
  // base, ascending) written since the previous call -- every page, the
  // first time -- and clears their flags. A page the guest writes while
  // the caller copies it is returned again by the next call.
  void start_transfer_tracking();
  std::vector<uint32_t> take_transfer_dirty_pages();
  // The same for the 4 KiB blocks of a writable disk (none otherwise), and
  // the end of both (a transfer that finished or was abandoned).
  void start_disk_transfer_tracking();
  std::vector<uint32_t> take_transfer_dirty_blocks();
  void stop_transfer_tracking();
  // The same digest computed from scratch, ignoring the page-hash cache:
  // for tests that the dirty-page tracking misses no write.
  std::array<uint8_t, 32> state_digest_uncached() const;

  // The machine's state apart from RAM, and its restoration. restore()
  // expects RAM to hold the contents that go with `state` (copy them into
  // bus().ram() first, or after: restore() drops all decoded code anyway) and
  // a machine built with the same MachineConfig devices.
  MachineState capture() const;
  void restore(const MachineState& state);

  uint32_t exit_status() const { return exit_status_; }
  const std::string& error() const { return error_; }
  Hart& hart() { return hart_; }
  Bus& bus() { return bus_; }

 private:
  class HartIrq;
  enum class Power : uint8_t { kRunning, kOff, kReset, kError };

  void sbi_set_timer(uint64_t stime_value) override;
  void sbi_console_write(uint8_t byte) override;
  void sbi_system_reset(ResetType type, uint32_t reason) override;

  void console_out(uint8_t byte) {
    if (console_sink_) console_sink_(byte);
  }
  void update_timer_irqs();
  std::optional<uint64_t> next_deadline() const;  // any future timer compare
  void poll_tohost();
  void fail(std::string message);
  void enable_sbi();
  Status place(uint64_t pa, std::span<const uint8_t> bytes, const char* what);

  Bus bus_;
  Hart hart_;
  std::unique_ptr<HartIrq> meip_line_;
  std::unique_ptr<HartIrq> seip_line_;
  Plic plic_;
  Clint clint_;
  Uart16550 uart_;
  PowerDevice power_;
  std::unique_ptr<VirtioBlk> blk_;
  std::unique_ptr<VirtioRng> rng_;
  std::unique_ptr<VirtioNet> net_;
  std::array<std::unique_ptr<VirtioMmio>, 8> virtio_;
  using PageHash = std::array<uint8_t, 32>;
  std::array<uint8_t, 32> digest(bool full) const;
  void hash_page(size_t page, PageHash& out) const;
  void hash_disk_block(size_t block, PageHash& out) const;
  // SHA-256 of each RAM page as of the last state_digest(); entries of pages
  // the bus marks dirty are stale until the next one.
  mutable std::vector<PageHash> page_hashes_;
  // The same for the blocks of a writable disk (VirtioBlk::dirty_blocks()).
  mutable std::vector<PageHash> disk_block_hashes_;
  std::function<void(uint8_t)> console_sink_;
  bool sbi_mode_ = false;
  uint64_t sbi_timecmp_ = ~0ull;
  uint64_t time_skipped_ = 0;
  std::optional<uint64_t> tohost_;
  Power power_state_ = Power::kRunning;
  uint64_t stalled_slices_ = 0;  // consecutive slices that retired nothing
  uint32_t exit_status_ = 0;
  std::string error_;
  std::vector<uint8_t> rng_seed_;  // for the device tree; see MachineConfig
};

}  // namespace ftvm::vm
