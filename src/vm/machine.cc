// The machine (see machine.h).
#include "vm/machine.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

#include "vm/elf_loader.h"
#include "vm/fdt.h"

namespace ftvm::vm {
namespace {

// Slices never run longer than this, so HTIF tohost polling stays prompt.
constexpr uint64_t kMaxSlice = 1u << 20;
constexpr uint64_t kDtbReserve = 64 * 1024;  // the device tree's slot at the top of RAM
constexpr uint64_t kMaxStalledSlices = 100'000;

uint64_t read_le64(std::span<const uint8_t> b, size_t off) {
  uint64_t v = 0;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}

}  // namespace

// Drives one of the hart's external interrupt inputs from the PLIC.
class Machine::HartIrq final : public IrqLine {
 public:
  HartIrq(Hart& hart, bool supervisor) : hart_(hart), supervisor_(supervisor) {}
  void set_level(bool high) override {
    if (supervisor_) {
      hart_.set_seip_external(high);
    } else {
      hart_.set_mip_bit(kMei, high);
    }
    hart_.request_exit();
  }

 private:
  Hart& hart_;
  bool supervisor_;
};

Machine::Machine(const MachineConfig& config)
    : bus_(kRamBase, config.ram_size),
      hart_(bus_),
      meip_line_(std::make_unique<HartIrq>(hart_, false)),
      seip_line_(std::make_unique<HartIrq>(hart_, true)),
      plic_(meip_line_.get(), seip_line_.get()),
      clint_([this] { return mtime(); }, [this] { hart_.request_exit(); }),
      uart_([this](uint8_t b) { console_out(b); }, plic_.source(Uart16550::kPlicSource)),
      power_([this](PowerAction action, uint32_t status) {
        if (action == PowerAction::kPowerOff) {
          power_state_ = Power::kOff;
          exit_status_ = status;
        } else {
          power_state_ = Power::kReset;
        }
        hart_.request_exit();
      }) {
  bus_.map(PowerDevice::kBase, PowerDevice::kSize, &power_, "test");
  bus_.map(Clint::kBase, Clint::kSize, &clint_, "clint");
  bus_.map(Plic::kBase, Plic::kSize, &plic_, "plic");
  bus_.map(Uart16550::kBase, Uart16550::kSize, &uart_, "uart");
  hart_.set_time_source([this] { return mtime(); });
  hart_.set_engine(config.engine);
  if (config.disk != nullptr) blk_ = std::make_unique<VirtioBlk>(config.disk, config.disk_serial);
  if (config.entropy != nullptr) rng_ = std::make_unique<VirtioRng>(config.entropy);
  if (config.net_mac) net_ = std::make_unique<VirtioNet>(*config.net_mac);
  // Every slot the device tree lists is mapped; empty slots read device id 0.
  for (unsigned i = 0; i < virtio_.size(); ++i) {
    VirtioDeviceBackend* backend = nullptr;
    if (i == kBlockSlot) backend = blk_.get();
    if (i == kEntropySlot) backend = rng_.get();
    if (i == kNetSlot) backend = net_.get();
    // Device writes to RAM invalidate decoded code like hart stores do.
    virtio_[i] = std::make_unique<VirtioMmio>(
        GuestMemory::of(bus_,
                        [this](uint64_t pa, uint64_t len) {
                          bus_.mark_dirty(pa, len);
                          hart_.invalidate_code(pa, len);
                        }),
        plic_.source(kVirtioMmioFirstIrq + i), backend);
    bus_.map(kVirtioMmioBase + i * kVirtioMmioStride, VirtioMmio::kSize, virtio_[i].get(),
             "virtio");
  }
  if (net_) net_->attach(virtio_[kNetSlot].get());
  rng_seed_ = config.rng_seed;
}

Machine::~Machine() = default;

void Machine::fail(std::string message) {
  if (power_state_ != Power::kError) error_ = std::move(message);
  power_state_ = Power::kError;
  hart_.request_exit();
}

Status Machine::place(uint64_t pa, std::span<const uint8_t> bytes, const char* what) {
  uint8_t* dst = bus_.ram_ptr(pa, bytes.size());
  if (dst == nullptr) {
    return make_error(fmt::format("{} ({} bytes at {:#x}) does not fit in RAM [{:#x}, {:#x}); "
                                  "give the machine more memory with --memory",
                                  what, bytes.size(), pa, bus_.ram_base(),
                                  bus_.ram_base() + bus_.ram_size()));
  }
  std::memcpy(dst, bytes.data(), bytes.size());
  bus_.mark_dirty(pa, bytes.size());
  hart_.invalidate_code(pa, bytes.size());
  return {};
}

Status Machine::load_linux(std::span<const uint8_t> kernel, std::span<const uint8_t> initrd,
                           const std::string& cmdline) {
  // The RISC-V Linux Image header: text_offset at 8, image_size at 16,
  // magic "RISCV\0\0\0" at 48 and magic2 "RSC\x05" at 56.
  if (kernel.size() < 64) {
    return make_error(fmt::format("kernel is {} bytes: too short to be a RISC-V Linux Image",
                                  kernel.size()));
  }
  if (std::memcmp(kernel.data() + 56, "RSC\x05", 4) != 0) {
    if (looks_like_elf(kernel)) {
      return make_error("kernel is an ELF file, not a RISC-V Linux Image: pass "
                        "arch/riscv/boot/Image (or use --elf for bare-metal programs)");
    }
    return make_error("kernel is not a RISC-V Linux Image (no \"RSC\\x05\" magic at offset 56)");
  }
  const uint64_t text_offset = read_le64(kernel, 8);
  uint64_t image_size = read_le64(kernel, 16);
  if (image_size < kernel.size()) image_size = kernel.size();
  if (text_offset >= bus_.ram_size() || image_size > bus_.ram_size() - text_offset) {
    return make_error(fmt::format("kernel needs {} bytes at offset {:#x}, more than the {} MiB "
                                  "of RAM; use --memory",
                                  image_size, text_offset, bus_.ram_size() >> 20));
  }
  const uint64_t kernel_pa = bus_.ram_base() + text_offset;
  if (Status s = place(kernel_pa, kernel, "kernel"); !s) return s;
  const uint64_t kernel_end = kernel_pa + image_size;

  const uint64_t ram_end = bus_.ram_base() + bus_.ram_size();
  const uint64_t dtb_pa = ram_end - kDtbReserve;
  DeviceTreeConfig dt;
  dt.ram_base = bus_.ram_base();
  dt.ram_size = bus_.ram_size();
  dt.bootargs = cmdline;
  dt.timebase_frequency = kTimebaseHz;
  dt.virtio_mmio_slots = static_cast<unsigned>(virtio_.size());
  dt.syscon_poweroff = false;  // the SBI's SRST powers off
  dt.rng_seed = rng_seed_;
  if (!initrd.empty()) {
    if (initrd.size() > dtb_pa - kernel_end) {
      return make_error(fmt::format("initrd of {} bytes does not fit between the kernel and the "
                                    "top of {} MiB of RAM; use --memory",
                                    initrd.size(), bus_.ram_size() >> 20));
    }
    const uint64_t start = (dtb_pa - initrd.size()) & ~(kPageSize - 1);
    // Leave the kernel room to grow its page tables and early allocations.
    if (start < kernel_end + (8ull << 20)) {
      return make_error(fmt::format("initrd of {} bytes leaves too little RAM for the kernel in "
                                    "{} MiB; use --memory",
                                    initrd.size(), bus_.ram_size() >> 20));
    }
    if (Status s = place(start, initrd, "initrd"); !s) return s;
    dt.initrd = DeviceTreeConfig::Initrd{start, start + initrd.size()};
  }
  Result<std::vector<uint8_t>> blob = build_device_tree(dt);
  if (!blob) return make_error("device tree: " + blob.error());
  if (blob->size() > kDtbReserve) return make_error("device tree is larger than 64 KiB");
  if (Status s = place(dtb_pa, *blob, "device tree"); !s) return s;

  HartState& s = hart_.state();
  s.pc = kernel_pa;
  s.x[10] = 0;
  s.x[11] = dtb_pa;
  // What M-mode firmware would have set up before entering the kernel.
  s.medeleg = (1u << kInsnMisaligned) | (1u << kInsnAccessFault) | (1u << kIllegalInsn) |
              (1u << kBreakpoint) | (1u << kLoadMisaligned) | (1u << kLoadAccessFault) |
              (1u << kStoreMisaligned) | (1u << kStoreAccessFault) | (1u << kEcallU) |
              (1u << kInsnPageFault) | (1u << kLoadPageFault) | (1u << kStorePageFault);
  s.mideleg = (1u << kSsi) | (1u << kSti) | (1u << kSei);
  s.mcounteren = 7;
  s.scounteren = 7;  // OpenSBI lets U-mode read cycle, time and instret too
  s.priv = Priv::kSupervisor;
  enable_sbi();
  hart_.reset_caches();
  return {};
}

void Machine::enable_sbi() {
  sbi_mode_ = true;
  hart_.set_ecall_hook([this](Hart& h) { return handle_sbi_call(h, *this); });
  hart_.set_machine_trap_hook([this](uint64_t cause, uint64_t tval) {
    fail(fmt::format("the guest trapped to M-mode (mcause={:#x}, mepc={:#x}, mtval={:#x}), "
                     "which has no firmware on this machine",
                     cause, hart_.state().pc, tval));
  });
}

MachineState Machine::capture() const {
  MachineState m;
  m.hart = hart_.state();
  m.uart = uart_.state();
  m.clint = clint_.state();
  m.plic = plic_.state();
  for (size_t i = 0; i < virtio_.size(); ++i) m.virtio[i] = virtio_[i]->state();
  if (net_) m.net = net_->state();
  m.sbi_mode = sbi_mode_;
  m.sbi_timecmp = sbi_timecmp_;
  m.time_skipped = time_skipped_;
  m.tohost = tohost_;
  m.power = static_cast<uint8_t>(power_state_);
  m.exit_status = exit_status_;
  return m;
}

void Machine::restore(const MachineState& m) {
  bus_.mark_all_dirty();  // RAM came from elsewhere
  if (blk_) blk_->mark_all_dirty();  // and so may the disk's contents
  hart_.state() = m.hart;
  sbi_timecmp_ = m.sbi_timecmp;
  time_skipped_ = m.time_skipped;
  tohost_ = m.tohost;
  power_state_ = static_cast<Power>(m.power <= 3 ? m.power : 3);
  exit_status_ = m.exit_status;
  if (m.sbi_mode) enable_sbi();
  // The PLIC first: the other devices' restore() re-drives their lines.
  plic_.restore(m.plic);
  clint_.restore(m.clint);
  uart_.restore(m.uart);
  for (size_t i = 0; i < virtio_.size(); ++i) virtio_[i]->restore(m.virtio[i]);
  if (net_ && m.net) net_->restore(*m.net);
  // The PLIC's outputs reach the hart through HartIrq; restore the hart's
  // own record of them last, as captured.
  hart_.state().mip = m.hart.mip;
  hart_.state().seip_external = m.hart.seip_external;
  stalled_slices_ = 0;
  hart_.reset_caches();
}

Status Machine::load_elf(std::span<const uint8_t> elf) {
  Result<ElfImage> image = vm::load_elf(elf);
  if (!image) return make_error(image.error());
  for (const ElfSegment& seg : image->segments) {
    if (!bus_.in_ram(seg.paddr, seg.memsz)) {
      return make_error(fmt::format("ELF segment at {:#x} ({} bytes) is outside RAM [{:#x}, "
                                    "{:#x})",
                                    seg.paddr, seg.memsz, bus_.ram_base(),
                                    bus_.ram_base() + bus_.ram_size()));
    }
    uint8_t* dst = bus_.ram_ptr(seg.paddr, seg.memsz);
    std::memset(dst, 0, seg.memsz);
    if (!seg.data.empty()) std::memcpy(dst, seg.data.data(), seg.data.size());
    bus_.mark_dirty(seg.paddr, seg.memsz);
  }
  if (!bus_.in_ram(image->entry, 2)) {
    return make_error(fmt::format("ELF entry point {:#x} is outside RAM", image->entry));
  }
  DeviceTreeConfig dt;
  dt.ram_base = bus_.ram_base();
  dt.ram_size = bus_.ram_size();
  dt.timebase_frequency = kTimebaseHz;
  dt.virtio_mmio_slots = static_cast<unsigned>(virtio_.size());
  dt.rng_seed = rng_seed_;
  Result<std::vector<uint8_t>> blob = build_device_tree(dt);
  if (!blob) return make_error("device tree: " + blob.error());
  const uint64_t dtb_pa = bus_.ram_base() + bus_.ram_size() - kDtbReserve;
  if (Status s = place(dtb_pa, *blob, "device tree"); !s) return s;
  tohost_ = image->tohost;
  if (tohost_ && !bus_.in_ram(*tohost_, 8)) tohost_.reset();
  HartState& s = hart_.state();
  s.pc = image->entry;
  s.x[10] = 0;
  s.x[11] = dtb_pa;
  s.priv = Priv::kMachine;
  hart_.reset_caches();
  return {};
}

void Machine::sbi_set_timer(uint64_t stime_value) {
  sbi_timecmp_ = stime_value;
  hart_.set_mip_bit(kSti, false);
  hart_.request_exit();
}

void Machine::sbi_console_write(uint8_t byte) { console_out(byte); }

void Machine::sbi_system_reset(ResetType type, uint32_t reason) {
  if (type == ResetType::kShutdown) {
    power_state_ = Power::kOff;
    exit_status_ = reason == 0 ? 0 : 1;
  } else {
    power_state_ = Power::kReset;
  }
  hart_.request_exit();
}

void Machine::update_timer_irqs() {
  const uint64_t now = mtime();
  hart_.set_mip_bit(kMti, now >= clint_.mtimecmp());
  hart_.set_mip_bit(kMsi, clint_.msip());
  if (sbi_mode_) hart_.set_mip_bit(kSti, now >= sbi_timecmp_);
}

std::optional<uint64_t> Machine::next_deadline() const {
  const uint64_t now = mtime();
  std::optional<uint64_t> d;
  auto consider = [&](uint64_t cmp) {
    if (cmp > now && cmp != ~0ull && (!d || cmp < *d)) d = cmp;
  };
  consider(clint_.mtimecmp());
  if (sbi_mode_) consider(sbi_timecmp_);
  return d;
}

std::optional<uint64_t> Machine::next_wakeup() const {
  const uint64_t now = mtime();
  const uint64_t mie = hart_.state().mie;
  std::optional<uint64_t> d;
  auto consider = [&](uint64_t cmp, unsigned irq) {
    if ((mie & (1ull << irq)) && cmp > now && cmp != ~0ull && (!d || cmp < *d)) d = cmp;
  };
  consider(clint_.mtimecmp(), kMti);
  if (sbi_mode_) consider(sbi_timecmp_, kSti);
  return d;
}

void Machine::skip_time_to(uint64_t target_mtime) {
  const uint64_t now = mtime();
  if (target_mtime > now) time_skipped_ += target_mtime - now;
}

void Machine::set_frame_sink(VirtioNet::FrameSink sink) {
  if (net_) net_->set_frame_sink(std::move(sink));
}

bool Machine::deliver_frame(std::span<const uint8_t> frame) {
  if (!net_ || !net_->deliver(frame)) return false;
  hart_.request_exit();
  return true;
}

bool Machine::push_console_input(uint8_t byte) {
  const bool ok = uart_.push_rx(byte);
  hart_.request_exit();
  return ok;
}

void Machine::poll_tohost() {
  uint8_t* p = bus_.ram_ptr(*tohost_, 8);
  uint64_t v;
  std::memcpy(&v, p, 8);
  if (v == 0) return;
  if (v & 1) {
    power_state_ = Power::kOff;
    exit_status_ = static_cast<uint32_t>(v >> 1);
    return;
  }
  const uint64_t device = v >> 56, cmd = (v >> 48) & 0xff;
  if (device == 1 && cmd == 1) console_out(static_cast<uint8_t>(v));  // HTIF console putchar
  std::memset(p, 0, 8);
}

std::string Machine::state_hash() const {
  std::string hex;
  for (uint8_t b : state_digest()) hex += fmt::format("{:02x}", b);
  return hex;
}

void Machine::hash_disk_block(size_t block, PageHash& out) const {
  BlockBackend* disk = blk_->disk();
  const uint64_t off = block * VirtioBlk::kTrackBlockBytes;
  const uint64_t len = std::min<uint64_t>(VirtioBlk::kTrackBlockBytes, disk->size() - off);
  std::array<uint8_t, VirtioBlk::kTrackBlockBytes> buf{};
  if (Status s = disk->read(off, std::span<uint8_t>(buf.data(), len)); !s) {
    // Unreadable contents never hash equal to anything a readable copy
    // gives: the block's hash is all ones, which SHA-256 does not produce
    // in practice.
    out.fill(0xff);
    return;
  }
  unsigned int n = 0;
  FTVM_CHECK(EVP_Digest(buf.data(), len, out.data(), &n, EVP_sha256(), nullptr) == 1 &&
             n == out.size());
}

void Machine::hash_page(size_t page, PageHash& out) const {
  const uint64_t offset = page << kPageShift;
  const size_t n = std::min<uint64_t>(kPageSize, bus_.ram_size() - offset);
  unsigned int len = 0;
  FTVM_CHECK(EVP_Digest(bus_.ram() + offset, n, out.data(), &len, EVP_sha256(), nullptr) == 1);
}

void Machine::start_transfer_tracking() {
  for (uint8_t& d : bus_.dirty_pages()) d |= Bus::kDirtyForTransfer;
}

void Machine::start_disk_transfer_tracking() {
  if (blk_ && !blk_->disk()->read_only()) blk_->start_transfer_tracking();
}

void Machine::stop_transfer_tracking() {
  for (uint8_t& d : bus_.dirty_pages()) d &= static_cast<uint8_t>(~Bus::kDirtyForTransfer);
  if (blk_) blk_->stop_transfer_tracking();
}

std::vector<uint32_t> Machine::take_transfer_dirty_blocks() {
  return blk_ ? blk_->take_transfer_dirty_blocks() : std::vector<uint32_t>{};
}

std::vector<uint32_t> Machine::take_transfer_dirty_pages() {
  hart_.drop_write_tlb();  // later stores mark their pages again
  std::vector<uint32_t> pages;
  std::vector<uint8_t>& dirty = bus_.dirty_pages();
  for (size_t p = 0; p < dirty.size(); ++p) {
    if (dirty[p] & Bus::kDirtyForTransfer) {
      pages.push_back(static_cast<uint32_t>(p));
      dirty[p] &= static_cast<uint8_t>(~Bus::kDirtyForTransfer);
    }
  }
  return pages;
}

std::array<uint8_t, 32> Machine::state_digest() const { return digest(/*full=*/false); }

std::array<uint8_t, 32> Machine::state_digest_uncached() const { return digest(/*full=*/true); }

std::array<uint8_t, 32> Machine::digest(bool full) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  FTVM_CHECK(ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1);
  auto add = [ctx](const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); };
  auto add64 = [&add](uint64_t v) { add(&v, sizeof v); };
  // Field by field: structs have padding, which is not state.
  const HartState& h = hart_.state();
  for (uint64_t v : h.x) add64(v);
  for (uint64_t v : h.f) add64(v);
  for (uint64_t v : {h.pc, h.instret, static_cast<uint64_t>(h.priv), uint64_t{h.wfi},
                     uint64_t{h.reservation_valid}, h.reservation_addr, uint64_t{h.fflags},
                     uint64_t{h.frm}, h.mstatus, h.medeleg, h.mideleg, h.mie, h.mip, h.mtvec,
                     h.mscratch, h.mepc, h.mcause, h.mtval, h.mcounteren, h.menvcfg,
                     h.mcountinhibit, h.stvec, h.sscratch, h.sepc, h.scause, h.stval, h.satp,
                     h.scounteren, h.senvcfg, uint64_t{h.seip_external}}) {
    add64(v);
  }
  for (uint64_t v : h.counter_offset) add64(v);
  for (uint64_t v : h.counter_frozen) add64(v);
  for (uint64_t v : h.pmpaddr) add64(v);
  add(h.pmpcfg.data(), h.pmpcfg.size());
  const Uart16550::State u = uart_.state();
  add(u.rx_fifo.data(), u.rx_fifo.size());
  for (uint64_t v : {uint64_t{u.rx_count}, uint64_t{u.ier}, uint64_t{u.fcr}, uint64_t{u.lcr},
                     uint64_t{u.mcr}, uint64_t{u.scr}, uint64_t{u.dll}, uint64_t{u.dlm},
                     uint64_t{u.overrun}, uint64_t{u.thr_ipending}}) {
    add64(v);
  }
  const Clint::State c = clint_.state();
  add64(c.msip);
  add64(c.mtimecmp);
  const Plic::State p = plic_.state();
  add(p.priority.data(), sizeof(p.priority));
  add(p.level.data(), sizeof(p.level));
  add(p.claimed.data(), sizeof(p.claimed));
  for (const auto& e : p.enable) add(e.data(), sizeof(e));
  add(p.threshold.data(), sizeof(p.threshold));
  for (const auto& slot : virtio_) {
    slot->state().for_each_field([&add64](uint64_t v) { add64(v); });
  }
  if (net_) net_->state().for_each_field([&add64](uint64_t v) { add64(v); });
  for (uint64_t v : {uint64_t{sbi_mode_}, sbi_timecmp_, time_skipped_,
                     static_cast<uint64_t>(power_state_), uint64_t{exit_status_}}) {
    add64(v);
  }
  // RAM by the SHA-256 of each 4 KiB page, in order. Page hashes are kept
  // and recomputed only for pages written since the last hash.
  const size_t pages = bus_.dirty_pages().size();
  std::vector<uint8_t>& dirty = bus_.dirty_pages();
  if (full) {
    std::vector<PageHash> fresh(pages);
    for (size_t p = 0; p < pages; ++p) hash_page(p, fresh[p]);
    add(fresh.data(), pages * sizeof(PageHash));
  } else {
    hart_.drop_write_tlb();  // later stores mark their pages again
    page_hashes_.resize(pages);
    for (size_t p = 0; p < pages; ++p) {
      if (dirty[p] & Bus::kDirtyForHash) {
        hash_page(p, page_hashes_[p]);
        dirty[p] &= static_cast<uint8_t>(~Bus::kDirtyForHash);
      }
    }
    add(page_hashes_.data(), pages * sizeof(PageHash));
  }
  if (blk_ && !blk_->disk()->read_only()) {
    // A writable disk's contents are guest state too, hashed like RAM: by
    // the SHA-256 of each 4 KiB block, rehashing only blocks written since
    // the last hash. (A read-only disk cannot change; the log header names
    // its digest.)
    std::vector<uint8_t>& dirty_blocks = blk_->dirty_blocks();
    if (full) {
      std::vector<PageHash> fresh(dirty_blocks.size());
      for (size_t b = 0; b < fresh.size(); ++b) hash_disk_block(b, fresh[b]);
      add(fresh.data(), fresh.size() * sizeof(PageHash));
    } else {
      disk_block_hashes_.resize(dirty_blocks.size());
      for (size_t b = 0; b < dirty_blocks.size(); ++b) {
        if (dirty_blocks[b] & VirtioBlk::kBlockDirtyForHash) {
          hash_disk_block(b, disk_block_hashes_[b]);
          dirty_blocks[b] &= static_cast<uint8_t>(~VirtioBlk::kBlockDirtyForHash);
        }
      }
      add(disk_block_hashes_.data(), disk_block_hashes_.size() * sizeof(PageHash));
    }
  }
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  FTVM_CHECK(EVP_DigestFinal_ex(ctx, digest.data(), &len) == 1 && len == digest.size());
  EVP_MD_CTX_free(ctx);
  return digest;
}

RunResult Machine::run(uint64_t budget) {
  uint64_t done = 0;
  while (done < budget && power_state_ == Power::kRunning) {
    update_timer_irqs();
    hart_.check_interrupts();
    if (power_state_ != Power::kRunning) break;
    if (hart_.state().wfi) return {RunStatus::kIdle, done};
    uint64_t slice = std::min(budget - done, kMaxSlice);
    if (std::optional<uint64_t> d = next_deadline()) {
      // Stop exactly when mtime reaches the deadline.
      const uint64_t ticks = *d - mtime();
      const uint64_t to_tick = kInstretPerTick - instret() % kInstretPerTick;
      const uint64_t needed = ticks > (~0ull / kInstretPerTick)
                                  ? ~0ull
                                  : to_tick + (ticks - 1) * kInstretPerTick;
      slice = std::min(slice, needed);
    }
    uint64_t retired = 0;
    hart_.run_slice(slice, retired);
    done += retired;
    // A guest whose every instruction traps (say, its trap vector is not
    // mapped) retires nothing and would hold the host forever.
    stalled_slices_ = retired == 0 ? stalled_slices_ + 1 : 0;
    if (stalled_slices_ >= kMaxStalledSlices) {
      const HartState& h = hart_.state();
      fail(fmt::format("the guest is stuck: {} traps in a row without retiring an instruction "
                       "(pc={:#x}, mcause={:#x}, scause={:#x}, stval={:#x})",
                       kMaxStalledSlices, h.pc, h.mcause, h.scause, h.stval));
    }
    if (tohost_) poll_tohost();
  }
  switch (power_state_) {
    case Power::kRunning: return {RunStatus::kBudget, done};
    case Power::kOff: return {RunStatus::kPowerOff, done};
    case Power::kReset: return {RunStatus::kReset, done};
    case Power::kError: return {RunStatus::kError, done};
  }
  return {RunStatus::kError, done};
}

}  // namespace ftvm::vm
