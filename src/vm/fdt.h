// The flattened device tree that tells Linux what the machine holds.
//
// The tree mirrors the one QEMU's `virt` machine builds (node names,
// compatibles, phandles, interrupt wiring) for the parts this machine has:
// one hart, RAM, CLINT, PLIC, the ns16550a console, the test finisher with
// its syscon-poweroff and syscon-reboot nodes, and virtio-mmio slots. A
// kernel therefore binds the same drivers under ftvm as under QEMU. Like
// QEMU, the virtio-mmio nodes appear in descending address order, so Linux
// probes (and names) the devices in each slot in the same order on both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace ftvm::vm {

// virtio-mmio transport slots: slot i sits at kVirtioMmioBase +
// i * kVirtioMmioStride and raises PLIC source kVirtioMmioFirstIrq + i.
inline constexpr uint64_t kVirtioMmioBase = 0x1000'1000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr unsigned kVirtioMmioFirstIrq = 1;
inline constexpr unsigned kMaxVirtioMmioSlots = 8;

struct DeviceTreeConfig {
  uint64_t ram_base = 0x8000'0000;
  uint64_t ram_size = 0;  // bytes; must be non-zero
  std::string bootargs;   // the kernel command line; omitted when empty
  struct Initrd {
    uint64_t start = 0;  // physical addresses, [start, end) inside RAM
    uint64_t end = 0;
  };
  std::optional<Initrd> initrd;
  uint32_t timebase_frequency = 10'000'000;  // mtime ticks per second
  // The hart's ISA three ways: "riscv,isa" (the property Linux 6.1 reads),
  // and "riscv,isa-base" with "riscv,isa-extensions" (what later kernels
  // prefer). The caller keeps them consistent.
  std::string isa = "rv64imafdc";
  std::string isa_base = "rv64i";
  std::vector<std::string> isa_extensions = {"i", "m",     "a",        "f",     "d",
                                             "c", "zicsr", "zifencei", "zicntr"};
  std::string mmu_type = "riscv,sv39";
  unsigned virtio_mmio_slots = kMaxVirtioMmioSlots;
  // Bytes for /chosen/rng-seed, which Linux mixes into its entropy pool;
  // omitted when empty. They must come from the machine's logged inputs.
  std::vector<uint8_t> rng_seed;
  // A syscon-poweroff node on the test finisher, as QEMU has. A machine that
  // offers the SBI SRST extension leaves it out: Linux then powers off
  // through SBI and does not complain that poweroff is claimed twice.
  bool syscon_poweroff = true;
};

// Builds the device tree blob. Fails, with a message naming the field, on a
// config that cannot describe a bootable machine (no RAM, RAM wrapping past
// 2^64, an initrd outside RAM or ending before it starts, more virtio slots
// than there are interrupt lines reserved for them).
Result<std::vector<uint8_t>> build_device_tree(const DeviceTreeConfig& config);

}  // namespace ftvm::vm
