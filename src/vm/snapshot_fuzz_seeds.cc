// Writes the seed corpus for snapshot_fuzz: small valid snapshots with every
// chunk encoding, with and without the optional state (tohost, a NIC), one
// file each. Usage: ftvm_snapshot_fuzz_seeds DIR
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "vm/snapshot.h"

namespace ftvm::vm {
namespace {

bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

// `size` bytes: a zero block, a block of text, a block of noise, repeating.
std::vector<uint8_t> seed_ram(size_t size) {
  std::vector<uint8_t> ram(size, 0);
  uint32_t x = 12345;
  for (size_t i = 0; i < size; ++i) {
    switch ((i / 4096) % 3) {
      case 1:
        ram[i] = static_cast<uint8_t>("ftvm snapshot "[i % 14]);
        break;
      case 2:
        x = x * 1103515245 + 12345;
        ram[i] = static_cast<uint8_t>(x >> 16);
        break;
    }
  }
  return ram;
}

std::string snapshot(bool full, size_t ram_size) {
  MachineState m;
  SnapshotInfo info;
  info.machine.ram_size = ram_size;
  info.machine.kernel = {4096, log::Sha256{0x11, 0x22}};
  if (full) {
    m.hart.instret = 1000;
    m.hart.pc = kRamBase + 0x100;
    m.hart.priv = Priv::kSupervisor;
    m.hart.wfi = true;
    m.uart.rx_count = 3;
    m.tohost = kRamBase + 0x1000;
    m.net = VirtioNet::State{};
    m.power = 1;
    info.machine.cmdline = "console=ttyS0";
    info.machine.initrd = log::ImageDigest{512, log::Sha256{0x33}};
    info.machine.metadata = {{"ftvm.version", "seed"}};
  }
  info.instret = m.hart.instret;
  SnapshotOptions o;
  o.chunk_size = kMinChunkSize;
  auto e = encode_snapshot(info, m, seed_ram(ram_size), o);
  FTVM_CHECK(e.ok());
  return *e;
}

}  // namespace
}  // namespace ftvm::vm

int main(int argc, char** argv) {
  using namespace ftvm::vm;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = write_file(dir + "/seed-minimal", snapshot(false, 4096));
  ok = write_file(dir + "/seed-three-encodings", snapshot(true, 3 * 4096 + 100)) && ok;
  ok = write_file(dir + "/seed-four-chunks", snapshot(false, 4 * 4096)) && ok;
  // The description's event-log header stamped with the oldest version this
  // code reads (the fuzzer fixes the checksums): it decodes, and re-encodes
  // at the current version.
  std::string old = snapshot(true, 4096);
  const size_t version_at = kSnapshotPrefixSize + kSectionHeaderSize + 8 + 8;  // instret, magic
  const uint32_t v = ftvm::log::kOldestReadableVersion;
  std::memcpy(old.data() + version_at, &v, 4);
  ok = write_file(dir + "/seed-log-header-v1", old) && ok;
  return ok ? 0 : 1;
}
