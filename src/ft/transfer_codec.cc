// The state transfer's messages (transfer.h): encoding and decoding only,
// so the fuzzer can take them without a machine.
#include <fmt/format.h>

#include <cstring>

#include "ft/transfer.h"
#include "vm/snapshot.h"

namespace ftvm::ft {
namespace {

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Reads fields from a payload, failing (once) on a short one.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> b, const char* what) : b_(b), what_(what) {}
  bool take(size_t n, const uint8_t** p) {
    if (b_.size() - pos_ < n) {
      if (!error_) {
        error_ = fmt::format("{}: {} bytes end at offset {}, a field of {} bytes needs more", what_,
                             b_.size(), pos_, n);
      }
      return false;
    }
    *p = b_.data() + pos_;
    pos_ += n;
    return true;
  }
  uint8_t u8() {
    const uint8_t* p = nullptr;
    return take(1, &p) ? *p : 0;
  }
  uint32_t u32() {
    const uint8_t* p = nullptr;
    if (!take(4, &p)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  uint64_t u64() {
    const uint8_t* p = nullptr;
    if (!take(8, &p)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  size_t left() const { return b_.size() - pos_; }
  size_t pos() const { return pos_; }
  const std::optional<std::string>& error() const { return error_; }

 private:
  std::span<const uint8_t> b_;
  const char* what_;
  size_t pos_ = 0;
  std::optional<std::string> error_;
};

}  // namespace

// ---- encoding ----

std::string encode_transfer_units(const TransferUnits& u) {
  std::string out;
  out.reserve(9 + u.index.size() * 5 + u.data.size());
  put_u8(out, static_cast<uint8_t>(u.kind));
  put_u32(out, u.round);
  put_u32(out, static_cast<uint32_t>(u.index.size()));
  for (size_t i = 0; i < u.index.size(); ++i) {
    put_u32(out, u.index[i]);
    put_u8(out, u.zero[i]);
  }
  out += u.data;
  return out;
}

Result<std::string> encode_transfer_final(const TransferFinal& f) {
  Result<std::string> state = vm::encode_machine_state(f.state);
  if (!state) return make_error(state.error());
  std::string out;
  put_u8(out, static_cast<uint8_t>(TransferKind::kFinal));
  put_u32(out, f.rounds);
  put_u64(out, f.instret);
  put_u64(out, f.ram_pages);
  put_u64(out, f.disk_blocks);
  out += *state;
  return out;
}

Result<TransferKind> transfer_kind(std::span<const uint8_t> payload) {
  if (payload.empty()) return make_error("transfer message: empty");
  const uint8_t k = payload[0];
  if (k < 1 || k > 3) return make_error(fmt::format("transfer message: unknown kind {}", k));
  return static_cast<TransferKind>(k);
}

Result<TransferUnits> decode_transfer_units(std::span<const uint8_t> payload) {
  Cursor c(payload, "transfer units");
  TransferUnits u;
  const uint8_t kind = c.u8();
  if (!c.error() && kind != 1 && kind != 2) {
    return make_error(fmt::format("transfer units: kind {} is not pages (1) or blocks (2)", kind));
  }
  u.kind = static_cast<TransferKind>(kind);
  u.round = c.u32();
  const uint32_t count = c.u32();
  if (c.error()) return make_error(*c.error());
  if (count == 0 || count > kMaxUnitsPerMessage) {
    return make_error(fmt::format("transfer units: count {} is outside [1, {}]", count,
                                  kMaxUnitsPerMessage));
  }
  if (c.left() < size_t{count} * 5) {
    return make_error(fmt::format("transfer units: {} units need {} bytes of index, {} left", count,
                                  size_t{count} * 5, c.left()));
  }
  u.index.resize(count);
  u.zero.resize(count);
  size_t with_data = 0;
  for (uint32_t i = 0; i < count; ++i) {
    u.index[i] = c.u32();
    u.zero[i] = c.u8();
    if (u.zero[i] > 1) {
      return make_error(fmt::format("transfer units: unit {}'s zero flag is {}, not 0 or 1", i,
                                    u.zero[i]));
    }
    if (u.zero[i] == 0) ++with_data;
  }
  if (with_data > kMaxDataUnitsPerMessage) {
    return make_error(fmt::format("transfer units: {} units carry data, more than {}", with_data,
                                  kMaxDataUnitsPerMessage));
  }
  if (c.left() != with_data * kTransferUnitSize) {
    return make_error(fmt::format("transfer units: {} units carry data, so {} bytes of it, not {}",
                                  with_data, with_data * kTransferUnitSize, c.left()));
  }
  u.data.assign(reinterpret_cast<const char*>(payload.data() + c.pos()), c.left());
  return u;
}

Result<TransferFinal> decode_transfer_final(std::span<const uint8_t> payload) {
  Cursor c(payload, "transfer final");
  TransferFinal f;
  const uint8_t kind = c.u8();
  if (!c.error() && kind != 3) return make_error(fmt::format("transfer final: kind {} is not 3", kind));
  f.rounds = c.u32();
  f.instret = c.u64();
  f.ram_pages = c.u64();
  f.disk_blocks = c.u64();
  if (c.error()) return make_error(*c.error());
  Result<vm::MachineState> state = vm::decode_machine_state(payload.subspan(c.pos()));
  if (!state) return make_error("transfer final: " + state.error());
  f.state = *state;
  if (f.state.hart.instret != f.instret) {
    return make_error(fmt::format("transfer final: the state's instret {} is not the final's {}",
                                  f.state.hart.instret, f.instret));
  }
  return f;
}

std::string encode_transfer_reply(const TransferReply& r) {
  std::string out;
  put_u8(out, static_cast<uint8_t>(r.kind));
  if (r.kind == TransferReply::Kind::kHashes) {
    put_u64(out, r.total_blocks);
    put_u32(out, r.first);
    put_u32(out, static_cast<uint32_t>(r.hashes.size()));
    for (const BlockHash& h : r.hashes) out.append(reinterpret_cast<const char*>(h.data()), h.size());
  } else {
    put_u64(out, r.applied);
  }
  return out;
}

Result<TransferReply> decode_transfer_reply(std::span<const uint8_t> payload) {
  Cursor c(payload, "transfer reply");
  TransferReply r;
  const uint8_t kind = c.u8();
  if (c.error()) return make_error(*c.error());
  if (kind == 2) {
    r.kind = TransferReply::Kind::kApplied;
    r.applied = c.u64();
    if (c.error()) return make_error(*c.error());
    if (c.left() != 0) return make_error(fmt::format("transfer reply: {} bytes left over", c.left()));
    return r;
  }
  if (kind != 1) return make_error(fmt::format("transfer reply: unknown kind {}", kind));
  r.kind = TransferReply::Kind::kHashes;
  r.total_blocks = c.u64();
  r.first = c.u32();
  const uint32_t count = c.u32();
  if (c.error()) return make_error(*c.error());
  if (count > kMaxHashesPerMessage) {
    return make_error(fmt::format("transfer reply: {} hashes, more than {}", count,
                                  kMaxHashesPerMessage));
  }
  if (uint64_t{r.first} + count > r.total_blocks) {
    return make_error(fmt::format("transfer reply: hashes {} to {} lie beyond the {} blocks",
                                  r.first, uint64_t{r.first} + count, r.total_blocks));
  }
  if (c.left() != size_t{count} * 32) {
    return make_error(fmt::format("transfer reply: {} hashes need {} bytes, not {}", count,
                                  size_t{count} * 32, c.left()));
  }
  r.hashes.resize(count);
  for (BlockHash& h : r.hashes) {
    const uint8_t* p = nullptr;
    if (!c.take(32, &p)) return make_error(*c.error());
    std::memcpy(h.data(), p, 32);
  }
  return r;
}

nlohmann::json to_json(const TransferProgress& p) {
  return {{"phase", p.phase},           {"rounds", p.rounds},
          {"bytes", p.bytes},           {"pages", p.pages},
          {"blocks", p.blocks},         {"blocks_equal", p.blocks_equal},
          {"pause_ms", p.pause_ms},     {"elapsed_ms", p.elapsed_ms},
          {"mbyte_per_s", p.elapsed_ms > 0 ? p.bytes / 1e3 / p.elapsed_ms : 0.0}};
}

}  // namespace ftvm::ft
