// The guest key-value protocol as the host side sees it (docs/sim.md "The
// guest protocol"): requests and replies are Ethernet frames of ethertype
// kKvEthertype with a 48-byte little-endian payload. The guest side is
// src/sim/guest/kv.c; the two must agree field by field.
//
// Thread-safe: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vm/virtio_net.h"

namespace ftvm::sim {

inline constexpr uint16_t kKvEthertype = 0x88b5;  // IEEE 802 local experimental
inline constexpr size_t kKvPayloadBytes = 48;
inline constexpr size_t kKvFrameBytes = 14 + kKvPayloadBytes;
inline constexpr uint32_t kKvKeys = 16;
// mtime units between the guest's timer ticks (10 ms at 10 MHz).
inline constexpr uint64_t kKvTickMtime = 100'000;

enum class KvOp : uint8_t { kSet = 1, kGet = 2, kIncr = 3 };
enum class KvStatus : uint8_t { kOk = 0, kBadKey = 1, kBadOp = 2 };

struct KvRequest {
  KvOp op = KvOp::kGet;
  uint32_t client_id = 0;
  uint64_t request_id = 0;  // > 0, increasing per client
  uint32_t key = 0;
  int64_t arg = 0;  // SET: the value; INCR: the delta; GET: unused
};

struct KvReply {
  KvOp op = KvOp::kGet;
  KvStatus status = KvStatus::kOk;
  uint32_t client_id = 0;
  uint64_t request_id = 0;
  uint32_t key = 0;
  int64_t value = 0;   // SET: the value set; GET: the value; INCR: the new value
  uint64_t ticks = 0;  // the guest's timer ticks when it executed the request
  uint64_t served = 0; // requests the guest had executed, this one included
};

std::vector<uint8_t> encode_request(const vm::MacAddress& dst, const vm::MacAddress& src,
                                    const KvRequest& request);
// A reply frame, or nullopt if `frame` is not a well-formed KV reply.
std::optional<KvReply> decode_reply(std::span<const uint8_t> frame);
// The same for a request (used by tests and the trace).
std::optional<KvRequest> decode_request(std::span<const uint8_t> frame);
std::string to_string(KvOp op);

}  // namespace ftvm::sim
