// Machine-level snapshot round trip on the real guest: capture the state and
// RAM mid-boot, restore into a fresh machine, and both continue to the same
// state hash at the same instret.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "hostio/block_file.h"
#include "process.h"
#include "util/file.h"
#include "vm/machine.h"

namespace ftvm::test {
namespace {

// Runs to exactly `target` instructions, skipping time whenever the guest idles.
void run_to(vm::Machine& m, uint64_t target) {
  while (m.instret() < target) {
    const vm::RunResult r = m.run(target - m.instret());
    ASSERT_NE(r.status, vm::RunStatus::kError) << m.error();
    ASSERT_NE(r.status, vm::RunStatus::kPowerOff);
    if (r.status == vm::RunStatus::kIdle) {
      const std::optional<uint64_t> wake = m.next_wakeup();
      ASSERT_TRUE(wake.has_value()) << "guest idle with no timer at " << m.instret();
      m.skip_time_to(*wake);
    }
  }
}

TEST(MachineSnapshot, RestoredMachineContinuesToTheSameStateHash) {
  ASSERT_EQ(access((guest_dir() + "/Image").c_str(), R_OK), 0) << "run guest/build.sh";
  Result<std::vector<uint8_t>> kernel = read_file(guest_dir() + "/Image", "kernel");
  Result<std::vector<uint8_t>> initrd = read_file(guest_dir() + "/initramfs.cpio.gz", "initrd");
  ASSERT_TRUE(kernel.ok() && initrd.ok());
  const std::string cmdline = "console=ttyS0 quiet";
  vm::MachineConfig config;  // no entropy device: no outside input at all
  vm::Machine a(config);
  ASSERT_TRUE(a.load_linux(*kernel, *initrd, cmdline).ok());
  std::string console_a;
  a.set_console_sink([&](uint8_t b) { console_a.push_back(static_cast<char>(b)); });

  run_to(a, 40'000'000);  // in the middle of the kernel's boot
  const vm::MachineState snap = a.capture();
  std::vector<uint8_t> ram(a.bus().ram(), a.bus().ram() + a.bus().ram_size());
  run_to(a, 90'000'000);
  const auto hash_a = a.state_digest();

  vm::Machine b(config);
  std::memcpy(b.bus().ram(), ram.data(), ram.size());
  b.restore(snap);
  std::string console_b;
  b.set_console_sink([&](uint8_t c) { console_b.push_back(static_cast<char>(c)); });
  ASSERT_EQ(b.instret(), 40'000'000u);
  run_to(b, 90'000'000);
  EXPECT_EQ(b.state_digest(), hash_a);
  // What b printed after the snapshot is the tail of what a printed.
  ASSERT_LE(console_b.size(), console_a.size());
  EXPECT_EQ(console_a.substr(console_a.size() - console_b.size()), console_b);
}

// The state hash keeps each page's hash and rehashes only pages written
// since the last hash. Through a boot that writes RAM from the hart (stores,
// AMOs, page-table A/D bits) and from devices (disk and entropy DMA), the
// incremental digest must equal one computed from scratch every time.
TEST(MachineStateHash, IncrementalDigestEqualsAFullOneThroughABoot) {
  ASSERT_EQ(access((guest_dir() + "/Image").c_str(), R_OK), 0) << "run guest/build.sh";
  Result<std::vector<uint8_t>> kernel = read_file(guest_dir() + "/Image", "kernel");
  Result<std::vector<uint8_t>> initrd = read_file(guest_dir() + "/initramfs.cpio.gz", "initrd");
  ASSERT_TRUE(kernel.ok() && initrd.ok());
  vm::MachineConfig config;
  config.ram_size = 64 << 20;
  Result<std::unique_ptr<hostio::FileBlockBackend>> disk =
      hostio::FileBlockBackend::open(guest_dir() + "/data.img", /*read_only=*/true);
  ASSERT_TRUE(disk.ok()) << disk.error();
  config.disk = disk->get();
  vm::SeededEntropy entropy(7);
  config.entropy = &entropy;
  vm::Machine m(config);
  ASSERT_TRUE(m.load_linux(*kernel, *initrd, "console=ttyS0 quiet").ok());
  EXPECT_EQ(m.state_digest(), m.state_digest_uncached());
  int checks = 0;
  for (uint64_t at = 10'000'000; at <= 400'000'000; at += 10'000'000) {
    run_to(m, at);
    ASSERT_EQ(m.state_digest(), m.state_digest_uncached()) << "at instret " << at;
    ++checks;
  }
  // Two digests in a row, with nothing run between, agree too.
  EXPECT_EQ(m.state_digest(), m.state_digest());
  EXPECT_EQ(checks, 40);
}

}  // namespace
}  // namespace ftvm::test
