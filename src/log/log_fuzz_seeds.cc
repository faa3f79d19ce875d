// Writes the seed corpus for log_reader_fuzz: valid logs (every record type,
// header only, a log cut short) and single encoded records, one file each.
// Usage: ftvm_log_reader_fuzz_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "log/header.h"
#include "log/log_writer.h"
#include "log/record.h"

namespace ftvm::log {
namespace {

Header seed_header(bool full) {
  Header h;
  h.ram_size = 64 << 20;
  h.kernel = {4096, Sha256{0x11, 0x22}};
  if (full) {
    h.cmdline = "console=ttyS0 quiet";
    h.initrd = ImageDigest{512, Sha256{0x33}};
    h.disk = ImageDigest{1 << 20, Sha256{0x44}};
    h.metadata = {{"ftvm.version", "seed"}, {"role", "primary"}};
  }
  return h;
}

std::vector<Record> every_type() {
  Sha256 h{};
  h.fill(0x5c);
  return {
      {0, Entropy{{9, 8, 7, 6}}},
      {10, ConsoleInput{{'l', 's', '\n'}}},
      {10, NetFrame{Bytes(64, 0xa5)}},
      {40, TimeSkip{123456}},
      {60, DiskError{1, false, 8, 1024, 0, Bytes(1024, 0x3c)}},
      {70, DiskError{0, false, 2, 512, 0, {}}},
      {100, StateHash{h}},
      {100, OutputDigest{h, 3, 1, 64}},
      {150, Progress{}},
      {200, End{0}},
  };
}

bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

std::string log_of(const Header& header, const std::vector<Record>& records) {
  auto w = LogWriter::to_buffer(header);
  FTVM_CHECK(w.ok());
  for (const Record& r : records) FTVM_CHECK(w->append(r).ok());
  return w->buffer();
}

}  // namespace
}  // namespace ftvm::log

int main(int argc, char** argv) {
  using namespace ftvm::log;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::pair<std::string, std::string>> seeds;
  seeds.emplace_back("log-every-type", log_of(seed_header(true), every_type()));
  seeds.emplace_back("log-minimal-header", log_of(seed_header(false), every_type()));
  seeds.emplace_back("log-header-only", log_of(seed_header(true), {}));
  std::vector<Record> cut = every_type();
  cut.pop_back();
  seeds.emplace_back("log-without-end", log_of(seed_header(false), cut));
  for (const Record& r : every_type()) {
    seeds.emplace_back(std::string("record-") + std::string(record_type_name(r.type())),
                       *encode_record(r));
  }
  for (const auto& [name, bytes] : seeds) {
    if (!write_file(dir + "/seed-" + name, bytes)) {
      std::fprintf(stderr, "cannot write %s/seed-%s\n", dir.c_str(), name.c_str());
      return 1;
    }
  }
  return 0;
}
