// Writes the seed corpus for transfer_fuzz: one valid message of each kind.
// Usage: ftvm_transfer_fuzz_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "ft/transfer.h"
#include "util/result.h"

namespace {

bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ftvm::ft;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::string> seeds;
  TransferUnits u;
  u.kind = TransferKind::kPages;
  u.round = 1;
  u.index = {0, 3};
  u.zero = {1, 0};
  u.data = std::string(kTransferUnitSize, 'p');
  seeds.push_back(encode_transfer_units(u));
  u.kind = TransferKind::kBlocks;
  u.index = {7};
  u.zero = {1};
  u.data.clear();
  seeds.push_back(encode_transfer_units(u));
  TransferFinal f;
  f.rounds = 2;
  f.instret = 12345;
  f.state.hart.instret = 12345;
  f.state.hart.pc = 0x80000000;
  f.ram_pages = 256;
  ftvm::Result<std::string> final_msg = encode_transfer_final(f);
  FTVM_CHECK(final_msg.ok());
  seeds.push_back(*final_msg);
  TransferReply r;
  r.kind = TransferReply::Kind::kHashes;
  r.total_blocks = 4;
  r.first = 2;
  r.hashes.resize(2);
  r.hashes[0][0] = 1;
  seeds.push_back(encode_transfer_reply(r));
  r = TransferReply{};
  r.applied = 9;
  seeds.push_back(encode_transfer_reply(r));
  bool ok = true;
  for (size_t i = 0; i < seeds.size(); ++i) {
    ok = write_file(std::string(argv[1]) + "/seed-" + std::to_string(i), seeds[i]) && ok;
  }
  return ok ? 0 : 1;
}
