// Device tree construction with libfdt's sequential-write API; see fdt.h.
#include "vm/fdt.h"

#include <libfdt.h>

#include <fmt/format.h>

#include <initializer_list>
#include <string_view>

#include "vm/clint.h"
#include "vm/plic.h"
#include "vm/power.h"
#include "vm/uart.h"

namespace ftvm::vm {
namespace {

// Phandles, numbered as QEMU numbers them.
constexpr uint32_t kCpu0Phandle = 1;
constexpr uint32_t kCpu0IntcPhandle = 2;
constexpr uint32_t kPlicPhandle = 3;
constexpr uint32_t kTestPhandle = 4;

// Interrupt numbers at the hart's local interrupt controller (mip bits).
constexpr uint32_t kIrqMSoft = 3;
constexpr uint32_t kIrqMTimer = 7;
constexpr uint32_t kIrqSExt = 9;
constexpr uint32_t kIrqMExt = 11;

// Wraps a sequential-write tree under construction. The first libfdt error
// sticks and turns every later call into a no-op.
class Writer {
 public:
  explicit Writer(size_t capacity) : buf_(capacity) {
    err_ = fdt_create(buf_.data(), static_cast<int>(buf_.size()));
    if (err_ == 0) err_ = fdt_finish_reservemap(buf_.data());
  }

  void begin(const std::string& name) { check(fdt_begin_node(buf_.data(), name.c_str())); }
  void end() { check(fdt_end_node(buf_.data())); }

  void bytes(const char* name, const void* data, size_t len) {
    check(fdt_property(buf_.data(), name, data, static_cast<int>(len)));
  }
  void empty(const char* name) { bytes(name, nullptr, 0); }
  void u32(const char* name, uint32_t v) { check(fdt_property_u32(buf_.data(), name, v)); }
  void u64(const char* name, uint64_t v) { check(fdt_property_u64(buf_.data(), name, v)); }
  void string(const char* name, std::string_view s) {
    std::string z(s);
    bytes(name, z.c_str(), z.size() + 1);
  }
  // A string list: each entry NUL-terminated, back to back.
  template <typename Range>
  void strings(const char* name, const Range& list) {
    std::string joined;
    for (const auto& s : list) {
      joined += s;
      joined += '\0';
    }
    bytes(name, joined.data(), joined.size());
  }
  void strings(const char* name, std::initializer_list<std::string_view> list) {
    strings<std::initializer_list<std::string_view>>(name, list);
  }
  void cells(const char* name, std::initializer_list<uint32_t> values) {
    std::vector<fdt32_t> be;
    for (uint32_t v : values) be.push_back(cpu_to_fdt32(v));
    bytes(name, be.data(), be.size() * sizeof(fdt32_t));
  }
  // A "reg" with #address-cells = #size-cells = 2.
  void reg(uint64_t base, uint64_t size) {
    cells("reg", {static_cast<uint32_t>(base >> 32), static_cast<uint32_t>(base),
                  static_cast<uint32_t>(size >> 32), static_cast<uint32_t>(size)});
  }

  int finish() {
    check(fdt_finish(buf_.data()));
    return err_;
  }
  std::vector<uint8_t> take() {
    buf_.resize(fdt_totalsize(buf_.data()));
    return std::move(buf_);
  }

 private:
  void check(int rc) {
    if (err_ == 0 && rc < 0) err_ = rc;
  }

  std::vector<uint8_t> buf_;
  int err_ = 0;
};

std::string hex_name(std::string_view node, uint64_t addr) {
  return fmt::format("{}@{:x}", node, addr);
}

void emit(Writer& w, const DeviceTreeConfig& c) {
  w.begin("");
  w.u32("#address-cells", 2);
  w.u32("#size-cells", 2);
  w.string("compatible", "riscv-virtio");
  w.string("model", "riscv-virtio,ftvm");

  w.begin("chosen");
  if (!c.bootargs.empty()) w.string("bootargs", c.bootargs);
  w.string("stdout-path", hex_name("/soc/serial", Uart16550::kBase));
  if (c.initrd) {
    w.u64("linux,initrd-start", c.initrd->start);
    w.u64("linux,initrd-end", c.initrd->end);
  }
  if (!c.rng_seed.empty()) w.bytes("rng-seed", c.rng_seed.data(), c.rng_seed.size());
  w.end();

  if (c.syscon_poweroff) {
    w.begin("poweroff");
    w.u32("value", PowerDevice::kPass);
    w.u32("offset", 0);
    w.u32("regmap", kTestPhandle);
    w.string("compatible", "syscon-poweroff");
    w.end();
  }

  w.begin("reboot");
  w.u32("value", PowerDevice::kReset);
  w.u32("offset", 0);
  w.u32("regmap", kTestPhandle);
  w.string("compatible", "syscon-reboot");
  w.end();

  w.begin(hex_name("memory", c.ram_base));
  w.string("device_type", "memory");
  w.reg(c.ram_base, c.ram_size);
  w.end();

  w.begin("cpus");
  w.u32("#address-cells", 1);
  w.u32("#size-cells", 0);
  w.u32("timebase-frequency", c.timebase_frequency);
  w.begin("cpu@0");
  w.u32("phandle", kCpu0Phandle);
  w.string("device_type", "cpu");
  w.u32("reg", 0);
  w.string("status", "okay");
  w.string("compatible", "riscv");
  w.string("riscv,isa", c.isa);
  w.string("riscv,isa-base", c.isa_base);
  w.strings("riscv,isa-extensions", c.isa_extensions);
  w.string("mmu-type", c.mmu_type);
  w.begin("interrupt-controller");
  w.u32("#interrupt-cells", 1);
  w.empty("interrupt-controller");
  w.string("compatible", "riscv,cpu-intc");
  w.u32("phandle", kCpu0IntcPhandle);
  w.end();  // interrupt-controller
  w.end();  // cpu@0
  w.begin("cpu-map");
  w.begin("cluster0");
  w.begin("core0");
  w.u32("cpu", kCpu0Phandle);
  w.end();
  w.end();
  w.end();  // cpu-map
  w.end();  // cpus

  w.begin("soc");
  w.u32("#address-cells", 2);
  w.u32("#size-cells", 2);
  w.string("compatible", "simple-bus");
  w.empty("ranges");

  w.begin(hex_name("serial", Uart16550::kBase));
  w.u32("interrupts", Uart16550::kPlicSource);
  w.u32("interrupt-parent", kPlicPhandle);
  w.u32("clock-frequency", Uart16550::kClockFrequency);
  w.reg(Uart16550::kBase, Uart16550::kSize);
  w.string("compatible", "ns16550a");
  w.end();

  w.begin(hex_name("test", PowerDevice::kBase));
  w.u32("phandle", kTestPhandle);
  w.reg(PowerDevice::kBase, PowerDevice::kSize);
  w.strings("compatible", {"sifive,test1", "sifive,test0", "syscon"});
  w.end();

  for (unsigned i = c.virtio_mmio_slots; i-- > 0;) {
    const uint64_t base = kVirtioMmioBase + kVirtioMmioStride * i;
    w.begin(hex_name("virtio_mmio", base));
    w.u32("interrupts", kVirtioMmioFirstIrq + i);
    w.u32("interrupt-parent", kPlicPhandle);
    w.reg(base, kVirtioMmioStride);
    w.string("compatible", "virtio,mmio");
    w.end();
  }

  w.begin(hex_name("plic", Plic::kBase));
  w.u32("phandle", kPlicPhandle);
  // The highest usable source id (QEMU 7.2 says 96 here, one past its last).
  w.u32("riscv,ndev", Plic::kNumSources - 1);
  w.reg(Plic::kBase, Plic::kSize);
  w.cells("interrupts-extended", {kCpu0IntcPhandle, kIrqMExt, kCpu0IntcPhandle, kIrqSExt});
  w.empty("interrupt-controller");
  w.strings("compatible", {"sifive,plic-1.0.0", "riscv,plic0"});
  w.u32("#address-cells", 0);
  w.u32("#interrupt-cells", 1);
  w.end();

  w.begin(hex_name("clint", Clint::kBase));
  w.cells("interrupts-extended",
          {kCpu0IntcPhandle, kIrqMSoft, kCpu0IntcPhandle, kIrqMTimer});
  w.reg(Clint::kBase, Clint::kSize);
  w.strings("compatible", {"sifive,clint0", "riscv,clint0"});
  w.end();

  w.end();  // soc
  w.end();  // root
}

Status validate(const DeviceTreeConfig& c) {
  if (c.ram_size == 0) return make_error("RAM size is 0");
  if (c.ram_base + c.ram_size < c.ram_base) {
    return make_error(fmt::format("RAM at {:#x} of size {:#x} wraps past 2^64",
                                  c.ram_base, c.ram_size));
  }
  if (c.initrd) {
    const auto& r = *c.initrd;
    if (r.end < r.start) {
      return make_error(fmt::format("initrd ends ({:#x}) before it starts ({:#x})",
                                    r.end, r.start));
    }
    if (r.start < c.ram_base || r.end > c.ram_base + c.ram_size) {
      return make_error(fmt::format(
          "initrd [{:#x}, {:#x}) lies outside RAM [{:#x}, {:#x})", r.start, r.end,
          c.ram_base, c.ram_base + c.ram_size));
    }
  }
  if (c.virtio_mmio_slots > kMaxVirtioMmioSlots) {
    return make_error(fmt::format("{} virtio-mmio slots asked for, at most {} exist",
                                  c.virtio_mmio_slots, kMaxVirtioMmioSlots));
  }
  if (c.timebase_frequency == 0) return make_error("timebase frequency is 0");
  return {};
}

}  // namespace

Result<std::vector<uint8_t>> build_device_tree(const DeviceTreeConfig& config) {
  if (Status s = validate(config); !s) return make_error(s.error());
  // Grow the buffer until the tree fits; a few KiB is the usual size.
  for (size_t capacity = 16 * 1024; capacity <= 64 * 1024 * 1024; capacity *= 2) {
    Writer w(capacity);
    emit(w, config);
    const int rc = w.finish();
    if (rc == 0) return w.take();
    if (rc != -FDT_ERR_NOSPACE) {
      return make_error(fmt::format("libfdt failed: {}", fdt_strerror(rc)));
    }
  }
  return make_error("larger than 64 MiB (is the command line or seed huge?)");
}

}  // namespace ftvm::vm
