// The machine a log header describes: make_header and spec_from_header are
// inverses, a live run's entropy choice reaches the spec, and the device
// tree a replay or backup boots carries the header's rng-seed.
#include "ft/record_replay.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <libfdt.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace ftvm::ft {
namespace {

// Per process: ctest runs the tests of this binary side by side, and one
// test rewriting a file another is reading makes both fail.
std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "-" + std::to_string(getpid());
}

// The smallest file load_linux takes for a RISC-V Linux Image: a 64-byte
// header with text_offset 2 MiB, image_size 64 and the "RSC\x05" magic.
std::string fake_kernel() {
  std::vector<char> image(64, 0);
  image[8 + 2] = 0x20;  // text_offset = 0x200000, little-endian
  image[16] = 64;       // image_size
  std::memcpy(image.data() + 48, "RISCV\0\0\0", 8);
  std::memcpy(image.data() + 56, "RSC\x05", 4);
  const std::string path = temp_path("fake-Image");
  std::ofstream(path, std::ios::binary).write(image.data(), image.size());
  return path;
}

MachineSpec live_spec(const hostio::EntropyChoice& choice) {
  MachineSpec spec;
  spec.kernel_path = fake_kernel();
  spec.ram_size = 32 << 20;
  spec.cmdline = "console=ttyS0 quiet";
  spec.net_mac = "52:54:00:77:00:0f";
  set_live_entropy(spec, choice);
  return spec;
}

// The /chosen/rng-seed of the device tree `machine` boots with (a1 points
// at it), or nullopt when it has none.
std::optional<std::vector<uint8_t>> booted_rng_seed(vm::Machine& machine) {
  const uint64_t dtb = machine.hart().state().x[11];
  const uint8_t* fdt = machine.bus().ram() + (dtb - machine.bus().ram_base());
  EXPECT_EQ(fdt_check_header(fdt), 0);
  const int chosen = fdt_path_offset(fdt, "/chosen");
  EXPECT_GE(chosen, 0);
  int len = 0;
  const auto* p = static_cast<const uint8_t*>(fdt_getprop(fdt, chosen, "rng-seed", &len));
  if (p == nullptr) return std::nullopt;
  return std::vector<uint8_t>(p, p + len);
}

TEST(LiveEntropy, HostGivesTheDeviceAndAFreshSeed) {
  MachineSpec a = live_spec({hostio::EntropyMode::kHost, 0});
  MachineSpec b = live_spec({hostio::EntropyMode::kHost, 0});
  EXPECT_TRUE(a.entropy);
  EXPECT_EQ(a.rng_seed.size(), hostio::kRngSeedBytes);
  EXPECT_NE(a.rng_seed, b.rng_seed);
}

TEST(LiveEntropy, SeedGivesTheSameSeedEveryTime) {
  MachineSpec a = live_spec({hostio::EntropyMode::kSeed, 7});
  MachineSpec b = live_spec({hostio::EntropyMode::kSeed, 7});
  EXPECT_TRUE(a.entropy);
  EXPECT_EQ(a.rng_seed.size(), hostio::kRngSeedBytes);
  EXPECT_EQ(a.rng_seed, b.rng_seed);
}

TEST(LiveEntropy, NoneGivesNeitherDeviceNorSeed) {
  MachineSpec a = live_spec({hostio::EntropyMode::kNone, 0});
  EXPECT_FALSE(a.entropy);
  EXPECT_TRUE(a.rng_seed.empty());
}

TEST(SpecFromHeader, RebuildsEveryFieldTheHeaderDetermines) {
  const MachineSpec live = live_spec({hostio::EntropyMode::kHost, 0});
  Result<log::Header> header = make_header(live);
  ASSERT_TRUE(header.ok()) << header.error();
  MachineSpec local;
  local.kernel_path = live.kernel_path;
  local.initrd_path = "/this/host/initrd";  // the machine has none: cleared
  Result<MachineSpec> spec = spec_from_header(*header, local);
  ASSERT_TRUE(spec.ok()) << spec.error();
  EXPECT_EQ(spec->kernel_path, live.kernel_path);
  EXPECT_EQ(spec->initrd_path, "");
  EXPECT_EQ(spec->ram_size, live.ram_size);
  EXPECT_EQ(spec->cmdline, live.cmdline);
  EXPECT_TRUE(spec->entropy);
  EXPECT_EQ(spec->net_mac, live.net_mac);
  EXPECT_EQ(spec->rng_seed, live.rng_seed);
  Result<log::Header> again = make_header(*spec);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(*again, *header);
}

TEST(SpecFromHeader, AHeaderWithoutSeedOrDeviceGivesNeither) {
  Result<log::Header> header = make_header(live_spec({hostio::EntropyMode::kNone, 0}));
  ASSERT_TRUE(header.ok()) << header.error();
  EXPECT_EQ(header->metadata.count("rng-seed"), 0u);
  MachineSpec local;
  local.kernel_path = "k";
  Result<MachineSpec> spec = spec_from_header(*header, local);
  ASSERT_TRUE(spec.ok()) << spec.error();
  EXPECT_FALSE(spec->entropy);
  EXPECT_TRUE(spec->rng_seed.empty());
}

TEST(SpecFromHeader, AMalformedSeedIsRefused) {
  Result<log::Header> header = make_header(live_spec({hostio::EntropyMode::kHost, 0}));
  ASSERT_TRUE(header.ok()) << header.error();
  MachineSpec local;
  local.kernel_path = "k";
  for (const std::string& bad : {std::string("abc"), std::string("zz"), std::string("AB"),
                                 std::string(2 * kMaxRngSeedBytes + 2, '0')}) {
    log::Header h = *header;
    h.metadata["rng-seed"] = bad;
    Result<MachineSpec> spec = spec_from_header(h, local);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_NE(spec.error().find("rng-seed"), std::string::npos) << spec.error();
  }
}

TEST(SpecFromHeader, AMissingImagePathNamesItsOption) {
  Result<log::Header> header = make_header(live_spec({hostio::EntropyMode::kNone, 0}));
  ASSERT_TRUE(header.ok()) << header.error();
  log::Header h = *header;
  h.initrd = log::ImageDigest{10, {}};
  MachineSpec local;
  local.kernel_path = "k";
  Result<MachineSpec> spec = spec_from_header(h, local);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.error().find("--initrd"), std::string::npos) << spec.error();
  Result<MachineSpec> no_kernel = spec_from_header(h, MachineSpec{});
  ASSERT_FALSE(no_kernel.ok());
  EXPECT_NE(no_kernel.error().find("--kernel"), std::string::npos) << no_kernel.error();
}

// What a backup or a replay does: build the machine from the header alone.
TEST(SpecFromHeader, TheBootedDeviceTreeCarriesTheHeadersRngSeed) {
  const MachineSpec live = live_spec({hostio::EntropyMode::kHost, 0});
  Result<log::Header> header = make_header(live);
  ASSERT_TRUE(header.ok()) << header.error();
  MachineSpec local;
  local.kernel_path = live.kernel_path;
  Result<MachineSpec> spec = spec_from_header(*header, local);
  ASSERT_TRUE(spec.ok()) << spec.error();
  Result<LoadedImages> images = load_images(*spec);
  ASSERT_TRUE(images.ok()) << images.error();
  vm::Machine machine(images->config);
  ASSERT_TRUE(machine.load_linux(images->kernel, images->initrd, spec->cmdline).ok());
  std::optional<std::vector<uint8_t>> seed = booted_rng_seed(machine);
  ASSERT_TRUE(seed.has_value()) << "no /chosen/rng-seed";
  EXPECT_EQ(seed->size(), hostio::kRngSeedBytes);
  EXPECT_EQ(*seed, live.rng_seed);
}

TEST(SpecFromHeader, WithoutASeedTheDeviceTreeHasNone) {
  const MachineSpec live = live_spec({hostio::EntropyMode::kNone, 0});
  Result<LoadedImages> images = load_images(live);
  ASSERT_TRUE(images.ok()) << images.error();
  vm::Machine machine(images->config);
  ASSERT_TRUE(machine.load_linux(images->kernel, images->initrd, live.cmdline).ok());
  EXPECT_FALSE(booted_rng_seed(machine).has_value());
}

}  // namespace
}  // namespace ftvm::ft
