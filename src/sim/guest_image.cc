// The pre-booted guest (see guest_image.h).
#include "sim/guest_image.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>

namespace ftvm::sim {

extern const uint8_t kKvGuestElf[];
extern const size_t kKvGuestElfSize;

namespace {
// Booting the guest takes a few thousand instructions; far more means it
// is broken.
constexpr uint64_t kBootBudget = 50'000'000;
}  // namespace

std::span<const uint8_t> kv_guest_elf() { return {kKvGuestElf, kKvGuestElfSize}; }

namespace {
vm::Engine g_guest_engine = vm::default_engine();
}  // namespace

void set_guest_engine(vm::Engine e) { g_guest_engine = e; }

vm::MachineConfig guest_machine_config() {
  vm::MachineConfig c;
  c.engine = g_guest_engine;
  c.ram_size = kGuestRamSize;
  c.net_mac = kGuestMac;
  return c;
}

Result<std::unique_ptr<GuestImage>> GuestImage::boot(std::span<const uint8_t> elf) {
  if (elf.empty()) elf = kv_guest_elf();
  std::unique_ptr<GuestImage> image(new GuestImage());
  vm::Machine m(guest_machine_config());
  m.set_console_sink([&image](uint8_t b) { image->console_.push_back(static_cast<char>(b)); });
  if (Status s = m.load_elf(elf); !s) return make_error("guest: " + s.error());
  uint64_t done = 0;
  for (;;) {
    const vm::RunResult r = m.run(kBootBudget - done);
    done += r.retired;
    if (r.status == vm::RunStatus::kIdle) break;
    if (r.status != vm::RunStatus::kBudget || done >= kBootBudget) {
      return make_error(fmt::format("guest: boot did not reach its idle loop (status {}, {} "
                                    "instructions, exit {}, {}; console: {})",
                                    static_cast<int>(r.status), done, m.exit_status(), m.error(),
                                    image->console_));
    }
  }
  vm::SnapshotInfo info;
  info.machine.ram_size = kGuestRamSize;
  info.machine.kernel.size = elf.size();
  unsigned int len = 0;
  EVP_Digest(elf.data(), elf.size(), info.machine.kernel.sha256.data(), &len, EVP_sha256(),
             nullptr);
  info.machine.metadata["ftvm.sim.guest"] = "kv";
  info.instret = m.instret();
  const std::span<const uint8_t> ram(m.bus().ram(), m.bus().ram_size());
  Result<std::string> encoded = vm::encode_snapshot(info, m.capture(), ram);
  if (!encoded) return make_error("guest snapshot: " + encoded.error());
  image->encoded_size_ = encoded->size();
  Result<vm::DecodedSnapshot> decoded = vm::decode_snapshot(
      std::span(reinterpret_cast<const uint8_t*>(encoded->data()), encoded->size()),
      "guest snapshot");
  if (!decoded) return make_error(decoded.error());
  image->snapshot_ = std::move(*decoded);
  return image;
}

void GuestImage::restore_into(vm::Machine& machine) const {
  std::memcpy(machine.bus().ram(), snapshot_.ram.data(), snapshot_.ram.size());
  machine.restore(snapshot_.state);
}

uint64_t GuestImage::mtime() const {
  return snapshot_.state.hart.instret / vm::kInstretPerTick + snapshot_.state.time_skipped;
}

}  // namespace ftvm::sim
