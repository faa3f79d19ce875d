// Machine-level snapshot round trip on the real guest: capture the state and
// RAM mid-boot, restore into a fresh machine, and both continue to the same
// state hash at the same instret.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace ftvm::test
