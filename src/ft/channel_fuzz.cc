// libFuzzer target for every parser of channel bytes: MessageReader's
// framing and verification, and the payload decoders (Hello, HelloAck,
// Ready, Records, Ack, Heartbeat, Handover).
//
// Beyond "no crash, no sanitizer report", it checks that decoding is
// canonical: whatever decodes re-encodes to exactly the bytes it came from.
//
// MACs would keep the fuzzer out of everything behind them, so each input is
// also run with its MACs made correct (walking the lengths it claims, with a
// fixed key): mutations then reach the direction, epoch and sequence checks
// and, through accepted messages, the payload decoders. Built with
// FTVM_FUZZ=ON; run by scripts/fuzz-smoke.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "ft/channel.h"
#include "log/coding.h"

namespace ftvm::ft {
namespace {

const Key& fuzz_key() {
  static const Key key = [] {
    const std::string k(32, 'f');
    return std::make_shared<const auth::Secret>(auth::Secret::from_bytes(as_span(k)));
  }();
  return key;
}

bool same_bytes(const std::string& encoded, std::span<const uint8_t> original) {
  return encoded.size() == original.size() &&
         std::memcmp(encoded.data(), original.data(), original.size()) == 0;
}

// Decodes `payload` as every type (whatever the message said) and checks
// each success re-encodes to the same bytes.
void fuzz_payload(std::span<const uint8_t> payload) {
  if (Result<Hello> h = decode_hello(payload); h) {
    FTVM_CHECK(h->version == kProtocolVersion);
    FTVM_CHECK(same_bytes(encode_hello(*h), payload));
  } else {
    FTVM_CHECK(h.error().starts_with("hello: ") || h.error().find("protocol") != std::string::npos);
  }
  if (Result<HelloAck> a = decode_hello_ack(payload); a) {
    FTVM_CHECK(same_bytes(encode_hello_ack(*a), payload));
  } else {
    FTVM_CHECK(a.error().starts_with("hello-ack: "));
  }
  if (Result<Ready> r = decode_ready(payload); r) {
    FTVM_CHECK(same_bytes(encode_ready(*r), payload));
  } else {
    FTVM_CHECK(r.error().starts_with("ready: "));
  }
  if (Result<RecordsMsg> m = decode_records(payload); m) {
    FTVM_CHECK(m->records.size() == m->sizes.size());
    std::string encoded;
    for (const log::Record& rec : m->records) FTVM_CHECK(log::append_record(encoded, rec).ok());
    FTVM_CHECK(same_bytes(encode_records(m->first, encoded), payload));
  } else {
    FTVM_CHECK(m.error().starts_with("records: "));
  }
  if (Result<Ack> a = decode_ack(payload); a) {
    FTVM_CHECK(same_bytes(encode_ack(*a), payload));
  } else {
    FTVM_CHECK(a.error().starts_with("ack: "));
  }
  if (Result<Heartbeat> h = decode_heartbeat(payload); h) {
    FTVM_CHECK(same_bytes(encode_heartbeat(*h), payload));
  } else {
    FTVM_CHECK(h.error().starts_with("heartbeat: "));
  }
  if (Result<Handover> h = decode_handover(payload); h) {
    FTVM_CHECK(same_bytes(encode_handover(*h), payload));
  } else {
    FTVM_CHECK(h.error().starts_with("handover: "));
  }
}

// Feeds `in` to a reader (in two pieces, to cross a message boundary
// somewhere) and checks every item it yields.
void fuzz_reader(std::span<const uint8_t> in, Direction expect, std::optional<uint64_t> epoch) {
  MessageReader reader(fuzz_key(), expect, epoch);
  const size_t cut = in.empty() ? 0 : in[0] % (in.size() + 1);
  uint64_t last_seq = 0;
  for (std::span<const uint8_t> piece : {in.first(cut), in.subspan(cut)}) {
    reader.feed(piece);
    for (;;) {
      Result<std::optional<MessageReader::Item>> item = reader.next();
      if (!item) {
        FTVM_CHECK(item.error().find("cannot be framed") != std::string::npos);
        return;
      }
      if (!item->has_value()) break;
      const MessageReader::Item& it = **item;
      if (it.rejection == Rejection::kNone) {
        FTVM_CHECK(it.message.direction == expect);
        FTVM_CHECK(it.message.seq > last_seq);
        FTVM_CHECK(reader.epoch() == it.message.epoch);
        last_seq = it.message.seq;
        // An accepted message re-seals to the same bytes.
        const std::string again = seal_message(*fuzz_key(), it.message);
        FTVM_CHECK(again.size() == kMessageOverhead + it.message.payload.size());
        fuzz_payload(as_span(it.message.payload));
      }
      FTVM_CHECK(reader.last_seq() == last_seq);
    }
  }
}

// `in` with the MAC of every message it frames (as far as the claimed
// lengths fit) made correct under the fuzz key.
std::string fixed_macs(std::span<const uint8_t> in) {
  std::string s(reinterpret_cast<const char*>(in.data()), in.size());
  size_t pos = 0;
  while (s.size() - pos >= 4) {
    const uint64_t body = log::internal::get_u32(log::internal::as_bytes(s).data() + pos);
    if (body > kMaxMessageBody || body + 4 + auth::kMacSize > s.size() - pos) break;
    const auth::Mac mac = fuzz_key()->mac(
        {as_span(std::string("ftvm-channel-2")), log::internal::as_bytes(s).subspan(pos, 4 + body)});
    std::memcpy(s.data() + pos + 4 + body, mac.data(), mac.size());
    pos += 4 + body + auth::kMacSize;
  }
  return s;
}

}  // namespace
}  // namespace ftvm::ft

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ftvm::ft;
  const std::span<const uint8_t> in(data, size);
  fuzz_payload(in);
  fuzz_reader(in, Direction::kToBackup, std::nullopt);
  const std::string fixed = fixed_macs(in);
  const std::span<const uint8_t> f = ftvm::log::internal::as_bytes(fixed);
  fuzz_reader(f, Direction::kToBackup, std::nullopt);
  fuzz_reader(f, Direction::kToPrimary, 1);
  return 0;
}
