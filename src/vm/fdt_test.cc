// The device tree, parsed back with libfdt: every node and property Linux
// binds drivers with, the /chosen contents, config errors, and a round trip
// through dtc when it is installed.
#include "vm/fdt.h"

#include <gtest/gtest.h>
#include <libfdt.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace ftvm::vm {
namespace {

class FdtTest : public ::testing::Test {
 protected:
  void build(const DeviceTreeConfig& config) {
    auto r = build_device_tree(config);
    ASSERT_TRUE(r.ok()) << r.error();
    blob_ = std::move(r.value());
    ASSERT_EQ(fdt_check_header(blob_.data()), 0);
    ASSERT_EQ(fdt_totalsize(blob_.data()), blob_.size());
  }
  const void* fdt() const { return blob_.data(); }

  int node(const char* path) const {
    const int off = fdt_path_offset(fdt(), path);
    EXPECT_GE(off, 0) << "missing node " << path;
    return off;
  }
  bool has_node(const char* path) const { return fdt_path_offset(fdt(), path) >= 0; }
  bool has_prop(const char* path, const char* name) const {
    return fdt_getprop(fdt(), node(path), name, nullptr) != nullptr;
  }
  std::vector<uint8_t> prop(const char* path, const char* name) const {
    int len = 0;
    const auto* p = static_cast<const uint8_t*>(fdt_getprop(fdt(), node(path), name, &len));
    EXPECT_NE(p, nullptr) << "missing " << path << ":" << name;
    if (p == nullptr) return {};
    return {p, p + len};
  }
  // A string list; a plain string is a list of one.
  std::vector<std::string> strings(const char* path, const char* name) const {
    const auto raw = prop(path, name);
    std::vector<std::string> out;
    EXPECT_TRUE(!raw.empty() && raw.back() == 0) << path << ":" << name << " not NUL-terminated";
    std::string cur;
    for (uint8_t c : raw) {
      if (c == 0) {
        out.push_back(cur);
        cur.clear();
      } else {
        cur += static_cast<char>(c);
      }
    }
    return out;
  }
  std::string str(const char* path, const char* name) const {
    const auto list = strings(path, name);
    EXPECT_EQ(list.size(), 1u) << path << ":" << name;
    return list.empty() ? "" : list[0];
  }
  std::vector<uint32_t> cells(const char* path, const char* name) const {
    const auto raw = prop(path, name);
    EXPECT_EQ(raw.size() % 4, 0u);
    std::vector<uint32_t> out;
    for (size_t i = 0; i + 4 <= raw.size(); i += 4) {
      out.push_back(uint32_t{raw[i]} << 24 | uint32_t{raw[i + 1]} << 16 |
                    uint32_t{raw[i + 2]} << 8 | raw[i + 3]);
    }
    return out;
  }
  uint32_t u32(const char* path, const char* name) const {
    const auto c = cells(path, name);
    EXPECT_EQ(c.size(), 1u) << path << ":" << name;
    return c.empty() ? 0 : c[0];
  }
  uint64_t u64(const char* path, const char* name) const {
    const auto c = cells(path, name);
    EXPECT_EQ(c.size(), 2u) << path << ":" << name;
    return c.size() < 2 ? 0 : (uint64_t{c[0]} << 32 | c[1]);
  }
  // The path of the node a phandle names.
  std::string by_phandle(uint32_t phandle) const {
    const int off = fdt_node_offset_by_phandle(fdt(), phandle);
    if (off < 0) return "<none>";
    char buf[256];
    if (fdt_get_path(fdt(), off, buf, sizeof buf) != 0) return "<error>";
    return buf;
  }

  static DeviceTreeConfig basic() {
    DeviceTreeConfig c;
    c.ram_size = 256ull << 20;
    c.bootargs = "console=ttyS0 earlycon=sbi";
    return c;
  }

  std::vector<uint8_t> blob_;
};

TEST_F(FdtTest, RootNode) {
  build(basic());
  EXPECT_EQ(u32("/", "#address-cells"), 2u);
  EXPECT_EQ(u32("/", "#size-cells"), 2u);
  EXPECT_EQ(str("/", "compatible"), "riscv-virtio");
  EXPECT_TRUE(has_prop("/", "model"));
}

TEST_F(FdtTest, MemoryNodeNamesBaseAndSize) {
  DeviceTreeConfig c = basic();
  c.ram_base = 0x8000'0000;
  c.ram_size = 5ull << 30;  // needs the high size cell
  build(c);
  EXPECT_EQ(str("/memory@80000000", "device_type"), "memory");
  EXPECT_EQ(cells("/memory@80000000", "reg"),
            (std::vector<uint32_t>{0, 0x80000000, 1, 0x40000000}));
}

TEST_F(FdtTest, CpuNode) {
  build(basic());
  EXPECT_EQ(u32("/cpus", "#address-cells"), 1u);
  EXPECT_EQ(u32("/cpus", "#size-cells"), 0u);
  EXPECT_EQ(u32("/cpus", "timebase-frequency"), 10'000'000u);
  EXPECT_EQ(str("/cpus/cpu@0", "device_type"), "cpu");
  EXPECT_EQ(u32("/cpus/cpu@0", "reg"), 0u);
  EXPECT_EQ(str("/cpus/cpu@0", "status"), "okay");
  EXPECT_EQ(str("/cpus/cpu@0", "compatible"), "riscv");
  EXPECT_EQ(str("/cpus/cpu@0", "riscv,isa"), "rv64imafdc");
  EXPECT_EQ(str("/cpus/cpu@0", "riscv,isa-base"), "rv64i");
  EXPECT_EQ(strings("/cpus/cpu@0", "riscv,isa-extensions"),
            (std::vector<std::string>{"i", "m", "a", "f", "d", "c", "zicsr", "zifencei",
                                      "zicntr"}));
  EXPECT_EQ(str("/cpus/cpu@0", "mmu-type"), "riscv,sv39");
  EXPECT_EQ(by_phandle(u32("/cpus/cpu-map/cluster0/core0", "cpu")), "/cpus/cpu@0");
}

TEST_F(FdtTest, TimebaseFrequencyFromConfig) {
  DeviceTreeConfig c = basic();
  c.timebase_frequency = 1'000'000;
  build(c);
  EXPECT_EQ(u32("/cpus", "timebase-frequency"), 1'000'000u);
}

TEST_F(FdtTest, CpuInterruptController) {
  build(basic());
  const char* intc = "/cpus/cpu@0/interrupt-controller";
  EXPECT_EQ(str(intc, "compatible"), "riscv,cpu-intc");
  EXPECT_EQ(u32(intc, "#interrupt-cells"), 1u);
  EXPECT_TRUE(has_prop(intc, "interrupt-controller"));
  EXPECT_EQ(by_phandle(u32(intc, "phandle")), intc);
}

TEST_F(FdtTest, SocIsSimpleBusWithIdentityRanges) {
  build(basic());
  EXPECT_EQ(str("/soc", "compatible"), "simple-bus");
  EXPECT_EQ(prop("/soc", "ranges").size(), 0u);
  EXPECT_EQ(u32("/soc", "#address-cells"), 2u);
  EXPECT_EQ(u32("/soc", "#size-cells"), 2u);
}

TEST_F(FdtTest, ClintWiresSoftwareAndTimerInterrupts) {
  build(basic());
  const char* clint = "/soc/clint@2000000";
  EXPECT_EQ(strings(clint, "compatible"),
            (std::vector<std::string>{"sifive,clint0", "riscv,clint0"}));
  EXPECT_EQ(cells(clint, "reg"), (std::vector<uint32_t>{0, 0x2000000, 0, 0x10000}));
  const auto ie = cells(clint, "interrupts-extended");
  ASSERT_EQ(ie.size(), 4u);
  EXPECT_EQ(by_phandle(ie[0]), "/cpus/cpu@0/interrupt-controller");
  EXPECT_EQ(ie[1], 3u);
  EXPECT_EQ(ie[2], ie[0]);
  EXPECT_EQ(ie[3], 7u);
}

TEST_F(FdtTest, PlicNode) {
  build(basic());
  const char* plic = "/soc/plic@c000000";
  EXPECT_EQ(strings(plic, "compatible"),
            (std::vector<std::string>{"sifive,plic-1.0.0", "riscv,plic0"}));
  EXPECT_EQ(cells(plic, "reg"), (std::vector<uint32_t>{0, 0xc000000, 0, 0x600000}));
  EXPECT_EQ(u32(plic, "riscv,ndev"), 95u);
  EXPECT_EQ(u32(plic, "#interrupt-cells"), 1u);
  EXPECT_EQ(u32(plic, "#address-cells"), 0u);
  EXPECT_TRUE(has_prop(plic, "interrupt-controller"));
  EXPECT_EQ(by_phandle(u32(plic, "phandle")), plic);
  const auto ie = cells(plic, "interrupts-extended");
  ASSERT_EQ(ie.size(), 4u);
  EXPECT_EQ(by_phandle(ie[0]), "/cpus/cpu@0/interrupt-controller");
  EXPECT_EQ(ie[1], 11u);  // context 0: M external
  EXPECT_EQ(ie[3], 9u);   // context 1: S external
}

TEST_F(FdtTest, SerialNode) {
  build(basic());
  const char* serial = "/soc/serial@10000000";
  EXPECT_EQ(str(serial, "compatible"), "ns16550a");
  EXPECT_EQ(cells(serial, "reg"), (std::vector<uint32_t>{0, 0x10000000, 0, 0x100}));
  EXPECT_EQ(u32(serial, "interrupts"), 10u);
  EXPECT_EQ(by_phandle(u32(serial, "interrupt-parent")), "/soc/plic@c000000");
  EXPECT_EQ(u32(serial, "clock-frequency"), 3686400u);
}

TEST_F(FdtTest, TestFinisherWithPoweroffAndReboot) {
  build(basic());
  const char* test = "/soc/test@100000";
  EXPECT_EQ(strings(test, "compatible"),
            (std::vector<std::string>{"sifive,test1", "sifive,test0", "syscon"}));
  EXPECT_EQ(cells(test, "reg"), (std::vector<uint32_t>{0, 0x100000, 0, 0x1000}));
  EXPECT_EQ(str("/poweroff", "compatible"), "syscon-poweroff");
  EXPECT_EQ(by_phandle(u32("/poweroff", "regmap")), test);
  EXPECT_EQ(u32("/poweroff", "offset"), 0u);
  EXPECT_EQ(u32("/poweroff", "value"), 0x5555u);
  EXPECT_EQ(str("/reboot", "compatible"), "syscon-reboot");
  EXPECT_EQ(by_phandle(u32("/reboot", "regmap")), test);
  EXPECT_EQ(u32("/reboot", "offset"), 0u);
  EXPECT_EQ(u32("/reboot", "value"), 0x7777u);
}

TEST_F(FdtTest, EightVirtioSlotsByDefault) {
  build(basic());
  for (unsigned i = 0; i < 8; ++i) {
    const std::string path = "/soc/virtio_mmio@" + std::to_string(10001 + i) + "000";
    SCOPED_TRACE(path);
    EXPECT_EQ(str(path.c_str(), "compatible"), "virtio,mmio");
    EXPECT_EQ(cells(path.c_str(), "reg"),
              (std::vector<uint32_t>{0, 0x10001000 + 0x1000 * i, 0, 0x1000}));
    EXPECT_EQ(u32(path.c_str(), "interrupts"), 1 + i);
    EXPECT_EQ(by_phandle(u32(path.c_str(), "interrupt-parent")), "/soc/plic@c000000");
  }
  EXPECT_FALSE(has_node("/soc/virtio_mmio@10009000"));
}

// Linux probes virtio-mmio devices in tree order; QEMU lists the highest
// slot first.
TEST_F(FdtTest, VirtioSlotsInDescendingOrderLikeQemu) {
  build(basic());
  std::vector<std::string> names;
  const int soc = node("/soc");
  int child;
  fdt_for_each_subnode(child, fdt(), soc) {
    const std::string name = fdt_get_name(fdt(), child, nullptr);
    if (name.rfind("virtio_mmio@", 0) == 0) names.push_back(name);
  }
  ASSERT_EQ(names.size(), 8u);
  EXPECT_EQ(names.front(), "virtio_mmio@10008000");
  EXPECT_EQ(names.back(), "virtio_mmio@10001000");
}

TEST_F(FdtTest, VirtioSlotCountFromConfig) {
  DeviceTreeConfig c = basic();
  c.virtio_mmio_slots = 2;
  build(c);
  EXPECT_TRUE(has_node("/soc/virtio_mmio@10002000"));
  EXPECT_FALSE(has_node("/soc/virtio_mmio@10003000"));
  c.virtio_mmio_slots = 0;
  build(c);
  EXPECT_FALSE(has_node("/soc/virtio_mmio@10001000"));
}

TEST_F(FdtTest, TooManyVirtioSlotsIsAnError) {
  DeviceTreeConfig c = basic();
  c.virtio_mmio_slots = 9;
  auto r = build_device_tree(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("virtio"), std::string::npos) << r.error();
}

TEST_F(FdtTest, ChosenHasBootargsAndStdoutPath) {
  build(basic());
  EXPECT_EQ(str("/chosen", "bootargs"), "console=ttyS0 earlycon=sbi");
  const std::string stdout_path = str("/chosen", "stdout-path");
  EXPECT_EQ(stdout_path, "/soc/serial@10000000");
  EXPECT_GE(fdt_path_offset(fdt(), stdout_path.c_str()), 0);
}

TEST_F(FdtTest, EmptyBootargsAreOmitted) {
  DeviceTreeConfig c = basic();
  c.bootargs.clear();
  build(c);
  EXPECT_FALSE(has_prop("/chosen", "bootargs"));
}

TEST_F(FdtTest, InitrdRangeIsSixtyFourBit) {
  DeviceTreeConfig c = basic();
  c.ram_size = 8ull << 30;
  c.initrd = DeviceTreeConfig::Initrd{0x1'8000'0000, 0x1'8123'4567};
  build(c);
  EXPECT_EQ(u64("/chosen", "linux,initrd-start"), 0x1'8000'0000u);
  EXPECT_EQ(u64("/chosen", "linux,initrd-end"), 0x1'8123'4567u);
}

TEST_F(FdtTest, NoInitrdMeansNoProperties) {
  build(basic());
  EXPECT_FALSE(has_prop("/chosen", "linux,initrd-start"));
  EXPECT_FALSE(has_prop("/chosen", "linux,initrd-end"));
}

TEST_F(FdtTest, RngSeedOnlyWhenGiven) {
  build(basic());
  EXPECT_FALSE(has_prop("/chosen", "rng-seed"));
  DeviceTreeConfig c = basic();
  c.rng_seed = {1, 2, 3, 4, 5};
  build(c);
  EXPECT_EQ(prop("/chosen", "rng-seed"), (std::vector<uint8_t>{1, 2, 3, 4, 5}));
}

TEST_F(FdtTest, InitrdOutsideRamIsAnError) {
  DeviceTreeConfig c = basic();
  c.initrd = DeviceTreeConfig::Initrd{0x9000'0000, 0x9000'1000};  // RAM ends at 0x90000000
  auto r = build_device_tree(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("outside RAM"), std::string::npos) << r.error();
}

TEST_F(FdtTest, InitrdEndingBeforeStartIsAnError) {
  DeviceTreeConfig c = basic();
  c.initrd = DeviceTreeConfig::Initrd{0x8100'0000, 0x8000'0000};
  auto r = build_device_tree(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("before it starts"), std::string::npos) << r.error();
}

TEST_F(FdtTest, EmptyInitrdAtRamEndIsAccepted) {
  DeviceTreeConfig c = basic();
  c.initrd = DeviceTreeConfig::Initrd{0x9000'0000, 0x9000'0000};
  build(c);
}

TEST_F(FdtTest, NoRamIsAnError) {
  DeviceTreeConfig c = basic();
  c.ram_size = 0;
  EXPECT_FALSE(build_device_tree(c).ok());
}

TEST_F(FdtTest, RamWrappingIsAnError) {
  DeviceTreeConfig c = basic();
  c.ram_base = 0xffff'ffff'0000'0000;
  c.ram_size = 0x1'0000'0000;
  EXPECT_FALSE(build_device_tree(c).ok());
}

TEST_F(FdtTest, HugeCommandLineGrowsTheBuffer) {
  DeviceTreeConfig c = basic();
  c.bootargs = std::string(200'000, 'x');
  build(c);
  EXPECT_EQ(str("/chosen", "bootargs").size(), 200'000u);
}

TEST_F(FdtTest, SameConfigGivesSameBytes) {
  auto a = build_device_tree(basic());
  auto b = build_device_tree(basic());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(FdtTest, DtcDecompilesTheTree) {
  if (std::system("command -v dtc >/dev/null 2>&1") != 0) GTEST_SKIP() << "dtc not installed";
  DeviceTreeConfig c = basic();
  c.initrd = DeviceTreeConfig::Initrd{0x8400'0000, 0x8410'0000};
  build(c);
  char path[] = "/tmp/ftvm-fdt-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, blob_.data(), blob_.size()), static_cast<ssize_t>(blob_.size()));
  close(fd);
  const std::string cmd = std::string("dtc -q -I dtb -O dts ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(path);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("serial@10000000"), std::string::npos) << out;
  EXPECT_NE(out.find("linux,initrd-start"), std::string::npos) << out;
}

}  // namespace
}  // namespace ftvm::vm
