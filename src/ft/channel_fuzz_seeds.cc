// Writes the seed corpus for channel_fuzz: sealed streams of every message
// type (under the fuzz target's key) and bare payloads, one file each.
// Usage: ftvm_channel_fuzz_seeds DIR
#include <cstdio>
#include <string>
#include <vector>

#include "ft/channel.h"
#include "log/record.h"

namespace ftvm::ft {
namespace {

bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

std::vector<std::pair<MsgType, std::string>> payloads() {
  Hello h;
  h.vm = "redis-1";
  h.heartbeat_ms = 50;
  h.timeout_ms = 500;
  h.nonce.fill(0x5a);
  h.header.ram_size = 64 << 20;
  h.header.cmdline = "console=ttyS0";
  h.header.kernel = {4096, log::Sha256{0x11}};
  h.header.metadata = {{"entropy", "virtio-rng"}};
  std::string records;
  for (const log::Record& r : std::vector<log::Record>{{10, log::ConsoleInput{{'l', 's'}}},
                                                       {20, log::NetFrame{log::Bytes(64, 0xa5)}},
                                                       {30, log::TimeSkip{99}},
                                                       {40, log::Progress{}}}) {
    FTVM_CHECK(log::append_record(records, r).ok());
  }
  Nonce n{};
  n.fill(0xb0);
  return {
      {MsgType::kHello, encode_hello(h)},
      {MsgType::kHelloAck, encode_hello_ack({true, "", n})},
      {MsgType::kHelloAck, encode_hello_ack({false, "the primary runs vm 'a'", n})},
      {MsgType::kConfirm, ""},
      {MsgType::kReady, encode_ready({true, ""})},
      {MsgType::kReady, encode_ready({false, "machines differ"})},
      {MsgType::kRecords, encode_records(7, records)},
      {MsgType::kAck, encode_ack({1, 2, 3, 4, 5, 6})},
      {MsgType::kHeartbeat, encode_heartbeat({100, 200})},
      {MsgType::kHandover, encode_handover({4, 40})},
  };
}

}  // namespace
}  // namespace ftvm::ft

int main(int argc, char** argv) {
  using namespace ftvm::ft;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string k(32, 'f');  // the fuzz target's key
  const auto key = ftvm::auth::Secret::from_bytes(as_span(k));
  std::string stream_to_backup, stream_to_primary;
  int i = 0;
  bool ok = true;
  uint64_t seq = 0;
  for (const auto& [type, payload] : payloads()) {
    const Direction dir_of = type == MsgType::kHelloAck || type == MsgType::kReady || type == MsgType::kAck
                                 ? Direction::kToPrimary
                                 : Direction::kToBackup;
    const std::string sealed = seal_message(key, Message{type, dir_of, 1, ++seq, payload});
    (dir_of == Direction::kToBackup ? stream_to_backup : stream_to_primary) += sealed;
    ok = write_file(dir + "/message-" + std::to_string(i), sealed) && ok;
    ok = write_file(dir + "/payload-" + std::to_string(i), payload) && ok;
    ++i;
  }
  ok = write_file(dir + "/stream-to-backup", stream_to_backup) && ok;
  ok = write_file(dir + "/stream-to-primary", stream_to_primary) && ok;
  if (!ok) {
    std::fprintf(stderr, "cannot write the seed corpus in %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
