// Writes the seed corpus of ftvm_arbiter_protocol_fuzz into the directory
// given as the only argument: well-formed requests and replies, plain and
// authenticated, each prefixed by the mode byte the fuzzer reads first
// (protocol_fuzz.cc).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "arbiter/protocol.h"

int main(int argc, char** argv) {
  using namespace ftvm::arbiter;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const ftvm::auth::Secret secret =
      ftvm::auth::Secret::from_bytes(std::vector<uint8_t>(32, 0x5a));
  const std::string me = "host-a#0123456789abcdef";
  const std::string claim = encode_request(&secret, "vm1", 4, me, 77);
  const std::string ask = encode_latest_request(&secret, "vm1", 77);
  std::vector<std::string> seeds = {
      std::string(1, '\0') + encode_request(nullptr, "vm1", 4, me, 0),
      std::string(1, '\0') + encode_latest_request(nullptr, "vm1", 0),
      std::string(1, '\0') + "GRANTED vm1 4 " + me,
      std::string(1, '\0') + "DENIED vm1 4 host-b#1 9",
      std::string(1, '\0') + "LATEST vm1 0 -",
      std::string(1, '\0') + "LATEST vm1 3 host-b#1",
      std::string(1, '\0') + "ERROR too many connections; try again",
      std::string(1, '\1') + claim,
      std::string(1, '\1') + ask,
      std::string(1, '\1') + encode_reply(&secret, claim, 77, Grant{"vm1", 4, me, 4, true}),
      std::string(1, '\1') + encode_reply(&secret, claim, 77, Grant{"vm1", 4, "host-b#1", 6, false}),
      std::string(1, '\1') + encode_latest_reply(&secret, ask, 77, LatestGrant{"vm1", 3, "b#1"}),
      std::string(1, '\3') + "CLAIM vm1 4 " + me + " 77",
      std::string(1, '\3') + "LATEST vm1 77",
      std::string(1, '\3') + "GRANTED vm1 4 " + me,
      std::string(1, '\3') + "DENIED vm1 4 host-b#1 9",
      std::string(1, '\3') + "LATEST vm1 2 host-b#1",
  };
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(std::string(argv[1]) + "/seed-" + std::to_string(i), std::ios::binary)
        << seeds[i];
  }
  return 0;
}
