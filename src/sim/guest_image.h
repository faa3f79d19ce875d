// The simulator's guest: the KV service (src/sim/guest/kv.c) booted once on
// a tiny machine and kept as a snapshot, so every node of every seed starts
// from the same pre-booted state without executing the boot again.
//
// GuestImage::boot() loads the embedded ELF into a kGuestRamSize machine,
// runs it until the service waits for its first frame (WFI), and encodes the
// result in the project's snapshot format (vm/snapshot.h), which it decodes
// back at once: what nodes restore from is exactly what a snapshot file
// carries. restore_into() then costs a RAM copy and a state restore.
//
// Thread-safe after boot(): restore_into only reads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "util/result.h"
#include "vm/machine.h"
#include "vm/snapshot.h"

namespace ftvm::sim {

inline constexpr uint64_t kGuestRamSize = 256 * 1024;
// The guest's MAC: every node of a pair presents the same one, as in ftvm.
inline constexpr vm::MacAddress kGuestMac = {0x52, 0x54, 0x00, 0x5e, 0x00, 0x01};

// The embedded guest ELF (built from src/sim/guest/kv.c).
std::span<const uint8_t> kv_guest_elf();

// A machine configured as the guest expects (RAM size, NIC with kGuestMac),
// on the engine set_guest_engine chose (default: vm::default_engine()).
vm::MachineConfig guest_machine_config();
// The engine of every guest machine the simulator makes from now on
// (ftvm-sim --engine). Set it before any schedule runs.
void set_guest_engine(vm::Engine e);

class GuestImage {
 public:
  // Boots `elf` (the embedded guest when empty) to its first idle point.
  static Result<std::unique_ptr<GuestImage>> boot(std::span<const uint8_t> elf = {});

  // Makes `machine` (built with guest_machine_config()) the pre-booted guest.
  void restore_into(vm::Machine& machine) const;

  uint64_t instret() const { return snapshot_.info.instret; }
  uint64_t mtime() const;
  const std::string& boot_console() const { return console_; }
  size_t snapshot_bytes() const { return encoded_size_; }

 private:
  GuestImage() = default;
  vm::DecodedSnapshot snapshot_;
  std::string console_;
  size_t encoded_size_ = 0;
};

}  // namespace ftvm::sim
