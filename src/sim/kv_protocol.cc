// The guest key-value protocol (see kv_protocol.h).
#include "sim/kv_protocol.h"

#include <cstring>

namespace ftvm::sim {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kKindRequest = 1;
constexpr uint8_t kKindReply = 2;

void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
bool valid_op(uint8_t op) { return op >= 1 && op <= 3; }

// The payload of a KV frame of `kind`, or null.
const uint8_t* payload(std::span<const uint8_t> frame, uint8_t kind) {
  if (frame.size() < kKvFrameBytes) return nullptr;
  if ((frame[12] << 8 | frame[13]) != kKvEthertype) return nullptr;
  const uint8_t* p = frame.data() + 14;
  if (p[0] != kVersion || p[1] != kind || !valid_op(p[2])) return nullptr;
  return p;
}

}  // namespace

std::vector<uint8_t> encode_request(const vm::MacAddress& dst, const vm::MacAddress& src,
                                    const KvRequest& r) {
  std::vector<uint8_t> f(kKvFrameBytes, 0);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  f[12] = kKvEthertype >> 8;
  f[13] = kKvEthertype & 0xff;
  uint8_t* p = f.data() + 14;
  p[0] = kVersion;
  p[1] = kKindRequest;
  p[2] = static_cast<uint8_t>(r.op);
  put_le(p + 4, r.client_id, 4);
  put_le(p + 8, r.request_id, 8);
  put_le(p + 16, r.key, 4);
  put_le(p + 24, static_cast<uint64_t>(r.arg), 8);
  return f;
}

std::optional<KvReply> decode_reply(std::span<const uint8_t> frame) {
  const uint8_t* p = payload(frame, kKindReply);
  if (p == nullptr || p[3] > 2) return std::nullopt;
  KvReply r;
  r.op = static_cast<KvOp>(p[2]);
  r.status = static_cast<KvStatus>(p[3]);
  r.client_id = static_cast<uint32_t>(get_le(p + 4, 4));
  r.request_id = get_le(p + 8, 8);
  r.key = static_cast<uint32_t>(get_le(p + 16, 4));
  r.value = static_cast<int64_t>(get_le(p + 24, 8));
  r.ticks = get_le(p + 32, 8);
  r.served = get_le(p + 40, 8);
  return r;
}

std::optional<KvRequest> decode_request(std::span<const uint8_t> frame) {
  const uint8_t* p = payload(frame, kKindRequest);
  if (p == nullptr) return std::nullopt;
  KvRequest r;
  r.op = static_cast<KvOp>(p[2]);
  r.client_id = static_cast<uint32_t>(get_le(p + 4, 4));
  r.request_id = get_le(p + 8, 8);
  r.key = static_cast<uint32_t>(get_le(p + 16, 4));
  r.arg = static_cast<int64_t>(get_le(p + 24, 8));
  return r;
}

std::string to_string(KvOp op) {
  switch (op) {
    case KvOp::kSet: return "SET";
    case KvOp::kGet: return "GET";
    case KvOp::kIncr: return "INCR";
  }
  return "?";
}

}  // namespace ftvm::sim
