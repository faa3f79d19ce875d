// Snapshot encoding and decoding; the layout is docs/snapshot-format.md.
#include "vm/snapshot.h"

#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <memory>
#include <optional>

namespace ftvm::vm {

namespace {

// A new field in one of these structs must be added to visit_state() and to
// the spec's field table, with a new format version. The sizes are only a
// tripwire for that; they are not part of the format.
static_assert(sizeof(HartState) == 912, "HartState changed: update the snapshot format");
static_assert(sizeof(Uart16550::State) == 26, "UART state changed: update the snapshot format");
static_assert(sizeof(Clint::State) == 16, "CLINT state changed: update the snapshot format");
static_assert(sizeof(Plic::State) == 440, "PLIC state changed: update the snapshot format");
static_assert(sizeof(VirtioMmio::State) == 360, "virtio state changed: update the snapshot format");
static_assert(sizeof(VirtioNet::State) == 56,
              "virtio-net state changed: update the snapshot format");
static_assert(sizeof(MachineState) == 4392, "MachineState changed: update the snapshot format");

// Section types, in the order they appear.
constexpr uint32_t kSectionDescription = 1;
constexpr uint32_t kSectionState = 2;
constexpr uint32_t kSectionRam = 3;
constexpr uint32_t kSectionChunk = 4;

// Chunk encodings.
constexpr uint8_t kChunkZero = 0;
constexpr uint8_t kChunkRaw = 1;
constexpr uint8_t kChunkZstd = 2;

constexpr size_t kRamSectionSize = 16;
constexpr size_t kChunkHeaderSize = 12;  // ram_offset, encoding, reserved
constexpr size_t kMinDescriptionSize = 8 + log::kHeaderPrefixSize + log::kMinHeaderBodySize + 4;
constexpr size_t kMaxDescriptionSize = 8 + log::kHeaderPrefixSize + log::kMaxHeaderBodySize + 4;
constexpr uint8_t kZstdMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
// The virtio-net fields after their presence flag.
constexpr size_t kNetStateSize = 55;

// ---- little-endian coding and CRC-32 ----

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }
void put_u16(std::string& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void store_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// CRC-32 as in zlib, gzip and PNG (docs/log-format.md "Checksum").
uint32_t crc32_of(const void* data, size_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const uInt step = n > (1u << 30) ? (1u << 30) : static_cast<uInt>(n);
    crc = ::crc32(crc, p, step);
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(crc);
}

bool all_zero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

std::string hex_bytes(std::span<const uint8_t> b) {
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) s += fmt::format("{}{:02x}", i ? " " : "", b[i]);
  return s;
}

// ---- the state section ----

// A field's name for messages, such as "virtio[3].queues[2].desc": `a`,
// then [i] if i >= 0, then `b`, then [j] if j >= 0, then `c`.
struct Field {
  const char* a;
  int i = -1;
  const char* b = "";
  int j = -1;
  const char* c = "";

  std::string str() const {
    std::string s = a;
    if (i >= 0) s += fmt::format("[{}]", i);
    s += b;
    if (j >= 0) s += fmt::format("[{}]", j);
    s += c;
    return s;
  }
};

// Walks every field of a MachineState in format order. `Io` encodes
// (S = const MachineState) or decodes (S = MachineState); the width of each
// field is the width of its C++ type, which the Io's methods take exactly.
template <typename Io, typename S>
void visit_state(Io& io, S& m) {
  auto& h = m.hart;
  for (int i = 0; i < static_cast<int>(h.x.size()); ++i) io.u64(h.x[i], {"hart.x", i});
  for (int i = 0; i < static_cast<int>(h.f.size()); ++i) io.u64(h.f[i], {"hart.f", i});
  io.u64(h.pc, {"hart.pc"});
  io.u64(h.instret, {"hart.instret"});
  io.priv(h.priv, {"hart.priv"});
  io.boolean(h.wfi, {"hart.wfi"});
  io.boolean(h.reservation_valid, {"hart.reservation_valid"});
  io.u64(h.reservation_addr, {"hart.reservation_addr"});
  io.u32_max(h.fflags, 0x1f, {"hart.fflags"});
  io.u32_max(h.frm, 7, {"hart.frm"});
  io.u64(h.mstatus, {"hart.mstatus"});
  io.u64(h.medeleg, {"hart.medeleg"});
  io.u64(h.mideleg, {"hart.mideleg"});
  io.u64(h.mie, {"hart.mie"});
  io.u64(h.mip, {"hart.mip"});
  io.u64(h.mtvec, {"hart.mtvec"});
  io.u64(h.mscratch, {"hart.mscratch"});
  io.u64(h.mepc, {"hart.mepc"});
  io.u64(h.mcause, {"hart.mcause"});
  io.u64(h.mtval, {"hart.mtval"});
  io.u64(h.mcounteren, {"hart.mcounteren"});
  io.u64(h.menvcfg, {"hart.menvcfg"});
  io.u64(h.mcountinhibit, {"hart.mcountinhibit"});
  io.u64(h.stvec, {"hart.stvec"});
  io.u64(h.sscratch, {"hart.sscratch"});
  io.u64(h.sepc, {"hart.sepc"});
  io.u64(h.scause, {"hart.scause"});
  io.u64(h.stval, {"hart.stval"});
  io.u64(h.satp, {"hart.satp"});
  io.u64(h.scounteren, {"hart.scounteren"});
  io.u64(h.senvcfg, {"hart.senvcfg"});
  for (int i = 0; i < 2; ++i) io.u64(h.counter_offset[i], {"hart.counter_offset", i});
  for (int i = 0; i < 2; ++i) io.u64(h.counter_frozen[i], {"hart.counter_frozen", i});
  io.boolean(h.seip_external, {"hart.seip_external"});
  for (int i = 0; i < 16; ++i) io.u64(h.pmpaddr[i], {"hart.pmpaddr", i});
  for (int i = 0; i < 16; ++i) io.u8(h.pmpcfg[i], {"hart.pmpcfg", i});

  auto& u = m.uart;
  for (int i = 0; i < static_cast<int>(u.rx_fifo.size()); ++i)
    io.u8(u.rx_fifo[i], {"uart.rx_fifo", i});
  io.u8_max(u.rx_count, Uart16550::kFifoSize, {"uart.rx_count"});
  io.u8(u.ier, {"uart.ier"});
  io.u8(u.fcr, {"uart.fcr"});
  io.u8(u.lcr, {"uart.lcr"});
  io.u8(u.mcr, {"uart.mcr"});
  io.u8(u.scr, {"uart.scr"});
  io.u8(u.dll, {"uart.dll"});
  io.u8(u.dlm, {"uart.dlm"});
  io.boolean(u.overrun, {"uart.overrun"});
  io.boolean(u.thr_ipending, {"uart.thr_ipending"});

  io.boolean(m.clint.msip, {"clint.msip"});
  io.u64(m.clint.mtimecmp, {"clint.mtimecmp"});

  auto& p = m.plic;
  for (int i = 0; i < static_cast<int>(p.priority.size()); ++i)
    io.u32(p.priority[i], {"plic.priority", i});
  for (int i = 0; i < static_cast<int>(p.level.size()); ++i) io.u32(p.level[i], {"plic.level", i});
  for (int i = 0; i < static_cast<int>(p.claimed.size()); ++i)
    io.u32(p.claimed[i], {"plic.claimed", i});
  for (int c = 0; c < static_cast<int>(p.enable.size()); ++c) {
    for (int i = 0; i < static_cast<int>(p.enable[c].size()); ++i) {
      io.u32(p.enable[c][i], {"plic.enable", c, "", i});
    }
  }
  for (int c = 0; c < static_cast<int>(p.threshold.size()); ++c)
    io.u32(p.threshold[c], {"plic.threshold", c});

  for (int s = 0; s < static_cast<int>(m.virtio.size()); ++s) {
    auto& v = m.virtio[s];
    io.u32(v.status, {"virtio", s, ".status"});
    io.u32(v.device_features_sel, {"virtio", s, ".device_features_sel"});
    io.u32(v.driver_features_sel, {"virtio", s, ".driver_features_sel"});
    io.u64(v.driver_features, {"virtio", s, ".driver_features"});
    io.u32(v.queue_sel, {"virtio", s, ".queue_sel"});
    io.u32(v.interrupt_status, {"virtio", s, ".interrupt_status"});
    io.u32(v.config_generation, {"virtio", s, ".config_generation"});
    for (int q = 0; q < static_cast<int>(v.queues.size()); ++q) {
      auto& qs = v.queues[q];
      io.u16(qs.num, {"virtio", s, ".queues", q, ".num"});
      io.boolean(qs.ready, {"virtio", s, ".queues", q, ".ready"});
      io.u64(qs.desc, {"virtio", s, ".queues", q, ".desc"});
      io.u64(qs.avail, {"virtio", s, ".queues", q, ".avail"});
      io.u64(qs.used, {"virtio", s, ".queues", q, ".used"});
      io.u16(qs.last_avail, {"virtio", s, ".queues", q, ".last_avail"});
      io.u16(qs.used_idx, {"virtio", s, ".queues", q, ".used_idx"});
    }
  }

  io.optional_struct(m.net, {"net"}, kNetStateSize, [](auto& nio, auto& n) {
    for (int i = 0; i < static_cast<int>(n.mac.size()); ++i) nio.u8(n.mac[i], {"net.mac", i});
    nio.boolean(n.link_up, {"net.link_up"});
    nio.u64(n.rx_frames, {"net.rx_frames"});
    nio.u64(n.rx_bytes, {"net.rx_bytes"});
    nio.u64(n.rx_dropped, {"net.rx_dropped"});
    nio.u64(n.tx_frames, {"net.tx_frames"});
    nio.u64(n.tx_bytes, {"net.tx_bytes"});
    nio.u64(n.tx_dropped, {"net.tx_dropped"});
  });

  io.boolean(m.sbi_mode, {"sbi_mode"});
  io.u64(m.sbi_timecmp, {"sbi_timecmp"});
  io.u64(m.time_skipped, {"time_skipped"});
  io.optional_u64(m.tohost, {"tohost"});
  io.u8_max(m.power, 3, {"power"});
  io.u32(m.exit_status, {"exit_status"});
}

bool valid_priv(uint8_t v) {
  return v == static_cast<uint8_t>(Priv::kUser) || v == static_cast<uint8_t>(Priv::kSupervisor) ||
         v == static_cast<uint8_t>(Priv::kMachine);
}

// Encodes the fields; refuses values a reader would reject.
class StateWriter {
 public:
  explicit StateWriter(std::string& out) : out_(out) {}

  void u8(uint8_t v, const Field&) { put_u8(out_, v); }
  void u16(uint16_t v, const Field&) { put_u16(out_, v); }
  void u32(uint32_t v, const Field&) { put_u32(out_, v); }
  void u64(uint64_t v, const Field&) { put_u64(out_, v); }
  void boolean(bool v, const Field&) { put_u8(out_, v ? 1 : 0); }
  void priv(Priv v, const Field& f) {
    const auto raw = static_cast<uint8_t>(v);
    if (!valid_priv(raw)) refuse(f, fmt::format("{}, not 0, 1 or 3", raw));
    put_u8(out_, raw);
  }
  void u8_max(uint8_t v, uint8_t max, const Field& f) {
    if (v > max) refuse(f, fmt::format("{}, more than {}", v, max));
    put_u8(out_, v);
  }
  void u32_max(uint32_t v, uint32_t max, const Field& f) {
    if (v > max) refuse(f, fmt::format("{:#x}, more than {:#x}", v, max));
    put_u32(out_, v);
  }
  void optional_u64(const std::optional<uint64_t>& v, const Field&) {
    put_u8(out_, v ? 1 : 0);
    put_u64(out_, v.value_or(0));
  }
  // A presence flag, then the struct's `size` bytes of fields, or as many
  // zeros when it is absent.
  template <typename T, typename Fn>
  void optional_struct(const std::optional<T>& v, const Field&, size_t size, Fn&& fields) {
    put_u8(out_, v ? 1 : 0);
    const size_t start = out_.size();
    if (v) {
      fields(*this, *v);
    } else {
      out_.append(size, '\0');
    }
    FTVM_CHECK(out_.size() - start == size);
  }

  const std::optional<Error>& error() const { return error_; }

 private:
  void refuse(const Field& f, const std::string& what) {
    if (!error_)
      error_ = make_error(fmt::format("cannot encode a snapshot: {} is {}", f.str(), what));
  }

  std::string& out_;
  std::optional<Error> error_;
};

// Decodes the fields from a payload whose size has been checked to be
// kStateSectionSize; stops at the first invalid value.
class StateReader {
 public:
  // `payload` is kStateSectionSize bytes at file offset `offset`.
  StateReader(const uint8_t* payload, size_t offset) : p_(payload), base_(offset) {}

  void u8(uint8_t& v, const Field&) { v = *take(1); }
  void u16(uint16_t& v, const Field&) { v = get_u16(take(2)); }
  void u32(uint32_t& v, const Field&) { v = get_u32(take(4)); }
  void u64(uint64_t& v, const Field&) { v = get_u64(take(8)); }
  void boolean(bool& v, const Field& f) {
    const uint8_t raw = *take(1);
    if (raw > 1) reject(f, 1, fmt::format("is {}, not 0 or 1", raw));
    v = raw == 1;
  }
  void priv(Priv& v, const Field& f) {
    const uint8_t raw = *take(1);
    if (!valid_priv(raw)) reject(f, 1, fmt::format("is {}, not 0, 1 or 3", raw));
    v = valid_priv(raw) ? static_cast<Priv>(raw) : Priv::kMachine;
  }
  void u8_max(uint8_t& v, uint8_t max, const Field& f) {
    v = *take(1);
    if (v > max) reject(f, 1, fmt::format("is {}, more than {}", v, max));
  }
  void u32_max(uint32_t& v, uint32_t max, const Field& f) {
    v = get_u32(take(4));
    if (v > max) reject(f, 4, fmt::format("is {:#x}, more than {:#x}", v, max));
  }
  void optional_u64(std::optional<uint64_t>& v, const Field& f) {
    const uint8_t present = *take(1);
    const uint64_t value = get_u64(take(8));
    if (present > 1) {
      reject(f, 9, fmt::format("presence flag is {}, not 0 or 1", present));
    } else if (present == 0 && value != 0) {
      reject(f, 8, fmt::format("is absent but its value is {:#x}, not 0", value));
    }
    v = present == 1 ? std::optional<uint64_t>(value) : std::nullopt;
  }
  template <typename T, typename Fn>
  void optional_struct(std::optional<T>& v, const Field& f, size_t size, Fn&& fields) {
    const uint8_t present = *take(1);
    if (present > 1) reject(f, 1, fmt::format("presence flag is {}, not 0 or 1", present));
    if (present == 1) {
      T value;
      const size_t start = pos_;
      fields(*this, value);
      FTVM_CHECK(pos_ - start == size);
      v = value;
      return;
    }
    v = std::nullopt;
    const uint8_t* p = take(size);
    for (size_t i = 0; i < size; ++i) {
      if (p[i] != 0) {
        reject(f, size - i,
               fmt::format("is absent but byte {} of its fields is {:#04x}, not 0", i, p[i]));
        break;
      }
    }
  }

  size_t pos() const { return pos_; }
  // The first invalid value: its file offset and a description.
  const std::optional<std::pair<size_t, std::string>>& problem() const { return problem_; }

 private:
  const uint8_t* take(size_t n) {
    FTVM_CHECK(pos_ + n <= kStateSectionSize);
    const uint8_t* at = p_ + pos_;
    pos_ += n;
    return at;
  }
  // `back`: how far the field starts before the current position.
  void reject(const Field& f, size_t back, std::string what) {
    if (!problem_) problem_.emplace(base_ + pos_ - back, f.str() + " " + what);
  }

  const uint8_t* p_;
  size_t base_;
  size_t pos_ = 0;
  std::optional<std::pair<size_t, std::string>> problem_;
};

// ---- sections ----

// Appends a section of `type` with `payload`.
void put_section(std::string& out, uint32_t type, std::span<const uint8_t> payload) {
  const size_t start = out.size();
  put_u32(out, type);
  put_u32(out, static_cast<uint32_t>(payload.size()));
  put_u32(out, crc32_of(out.data() + start, 8));
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  put_u32(out, crc32_of(out.data() + start, out.size() - start));
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

const char* section_name(uint32_t type) {
  switch (type) {
    case kSectionDescription:
      return "description";
    case kSectionState:
      return "state";
    case kSectionRam:
      return "RAM";
    case kSectionChunk:
      return "RAM chunk";
  }
  return "unknown";
}

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

struct Section {
  size_t offset = 0;  // of the section header
  std::span<const uint8_t> payload;
  size_t payload_offset() const { return offset + kSectionHeaderSize; }
  size_t end() const { return payload_offset() + payload.size() + 4; }
};

struct RamLayout {
  uint64_t ram_size = 0;
  uint32_t chunk_size = 0;
  uint64_t chunks = 0;
  size_t first_chunk = 0;  // file offset of chunk 0's section
  uint64_t chunk_len(uint64_t i) const {
    return std::min<uint64_t>(chunk_size, ram_size - i * chunk_size);
  }
};

// A chunk whose framing and checksum have been checked.
struct Chunk {
  Section section;
  uint8_t encoding = 0;
  std::span<const uint8_t> data;
};

class Decoder {
 public:
  Decoder(std::span<const uint8_t> file, std::string_view name) : file_(file), name_(name) {}

  Error fail(size_t offset, std::string_view problem) const {
    return make_error(fmt::format("{}: offset {}: {}", name_, offset, problem));
  }

  Status prefix() const {
    const size_t n = std::min(file_.size(), sizeof kSnapshotMagic);
    if (std::memcmp(file_.data(), kSnapshotMagic, n) != 0) {
      return fail(0, fmt::format("not an ftvm snapshot (starts with {}, expected {})",
                                 hex_bytes(file_.first(n)), hex_bytes(kSnapshotMagic)));
    }
    if (file_.size() >= kSnapshotPrefixSize) {
      const uint32_t version = get_u32(file_.data() + 8);
      if (version != kSnapshotVersion) {
        return fail(8, fmt::format("snapshot format version {} is not supported (this build "
                                   "reads version {} only)",
                                   version, kSnapshotVersion));
      }
      return {};
    }
    if (file_.empty()) return fail(0, "empty file, not a snapshot");
    return fail(0, fmt::format("truncated: the {}-byte prefix is cut short at {} bytes",
                               kSnapshotPrefixSize, file_.size()));
  }

  // The section at `at`, which must be of `type` with a payload of
  // [min_len, max_len] bytes; its checksums are verified.
  Result<Section> section(size_t at, uint32_t type, uint64_t min_len, uint64_t max_len) const {
    const char* what = section_name(type);
    const size_t remaining = file_.size() - at;
    if (remaining < kSectionHeaderSize) {
      return fail(at, fmt::format("truncated {} section: its header needs {} bytes, only {} "
                                  "remain",
                                  what, kSectionHeaderSize, remaining));
    }
    const uint8_t* p = file_.data() + at;
    const uint32_t stored = get_u32(p + 8);
    const uint32_t computed = crc32_of(p, 8);
    if (stored != computed) {
      return fail(at, fmt::format("{} section header checksum mismatch (stored {:#010x}, "
                                  "computed {:#010x})",
                                  what, stored, computed));
    }
    const uint32_t found = get_u32(p);
    if (found != type) {
      return fail(at, fmt::format("expected the {} section (type {}), found a section of type {}",
                                  what, type, found));
    }
    const uint64_t length = get_u32(p + 4);
    if (length < min_len || length > max_len) {
      if (min_len == max_len) {
        return fail(
            at, fmt::format("{} section length {} is wrong, must be {}", what, length, min_len));
      }
      return fail(at, fmt::format("{} section length {} is outside [{}, {}]", what, length, min_len,
                                  max_len));
    }
    if (remaining < kSectionOverhead + length) {
      return fail(at, fmt::format("truncated {} section: it needs {} bytes, only {} remain", what,
                                  kSectionOverhead + length, remaining));
    }
    const size_t crc_at = kSectionHeaderSize + length;
    const uint32_t stored_crc = get_u32(p + crc_at);
    const uint32_t computed_crc = crc32_of(p, crc_at);
    if (stored_crc != computed_crc) {
      return fail(at, fmt::format("{} section checksum mismatch (stored {:#010x}, computed "
                                  "{:#010x})",
                                  what, stored_crc, computed_crc));
    }
    return Section{at, file_.subspan(at + kSectionHeaderSize, length)};
  }

  // The prefix and the description.
  Result<std::pair<SnapshotInfo, size_t>> info() const {
    if (Status s = prefix(); !s) return make_error(s.error());
    Result<Section> sec =
        section(kSnapshotPrefixSize, kSectionDescription, kMinDescriptionSize, kMaxDescriptionSize);
    if (!sec) return make_error(sec.error());
    SnapshotInfo info;
    info.instret = get_u64(sec->payload.data());
    const size_t header_at = sec->payload_offset() + 8;
    auto decoded = log::decode_header(sec->payload.subspan(8));
    if (!decoded) return described(header_at, decoded.error());
    if (!decoded->has_value()) {
      return fail(header_at,
                  "description: the event-log header is cut short by the section's "
                  "end");
    }
    const size_t used = (*decoded)->size;
    if (used != sec->payload.size() - 8) {
      return fail(header_at + used, fmt::format("description: {} bytes after the event-log header",
                                                sec->payload.size() - 8 - used));
    }
    info.machine = std::move((*decoded)->header);
    const uint64_t ram_size = info.machine.ram_size;
    if (ram_size == 0 || ram_size > kMaxSnapshotRamSize) {
      return fail(header_at + log::kHeaderPrefixSize,
                  fmt::format("description: RAM size {} is outside [1, {}]", ram_size,
                              kMaxSnapshotRamSize));
    }
    return std::pair{std::move(info), sec->end()};
  }

  // The state section at `at`; its hart.instret must equal `instret`.
  Result<std::pair<MachineState, size_t>> state(size_t at, uint64_t instret) const {
    Result<Section> sec = section(at, kSectionState, kStateSectionSize, kStateSectionSize);
    if (!sec) return make_error(sec.error());
    MachineState m;
    StateReader r(sec->payload.data(), sec->payload_offset());
    visit_state(r, m);
    FTVM_CHECK(r.pos() == kStateSectionSize);
    if (r.problem()) return fail(r.problem()->first, "state: " + r.problem()->second);
    if (m.hart.instret != instret) {
      return fail(sec->payload_offset() + 8 * (33 + 32 + 1),
                  fmt::format("state: hart.instret {} differs from the description's instret {}",
                              m.hart.instret, instret));
    }
    return std::pair{std::move(m), sec->end()};
  }

  // The RAM section at `at`, and the framing and checksum of every chunk.
  Result<RamLayout> ram(size_t at, uint64_t ram_size) const {
    Result<Section> sec = section(at, kSectionRam, kRamSectionSize, kRamSectionSize);
    if (!sec) return make_error(sec.error());
    const uint8_t* p = sec->payload.data();
    const size_t po = sec->payload_offset();
    RamLayout l;
    l.ram_size = get_u64(p);
    l.chunk_size = get_u32(p + 8);
    const uint32_t reserved = get_u32(p + 12);
    if (l.ram_size != ram_size) {
      return fail(po, fmt::format("RAM: size {} differs from the description's RAM size {}",
                                  l.ram_size, ram_size));
    }
    if (l.chunk_size < kMinChunkSize || l.chunk_size > kMaxChunkSize ||
        (l.chunk_size & (l.chunk_size - 1)) != 0) {
      return fail(po + 8, fmt::format("RAM: chunk size {} is not a power of two in [{}, {}]",
                                      l.chunk_size, kMinChunkSize, kMaxChunkSize));
    }
    if (reserved != 0) {
      return fail(po + 12, fmt::format("RAM: reserved field is {:#x}, must be zero", reserved));
    }
    l.chunks = (l.ram_size + l.chunk_size - 1) / l.chunk_size;
    l.first_chunk = sec->end();
    size_t pos = l.first_chunk;
    for (uint64_t i = 0; i < l.chunks; ++i) {
      Result<Chunk> c = chunk(pos, l, i);
      if (!c) return make_error(c.error());
      pos = c->section.end();
    }
    if (pos != file_.size()) {
      return fail(pos, fmt::format("{} bytes after the last RAM chunk", file_.size() - pos));
    }
    return l;
  }

  // Chunk `i` at `at`: framing, checksum and header; for zstd, the frame's
  // header (not its contents).
  Result<Chunk> chunk(size_t at, const RamLayout& l, uint64_t i) const {
    const uint64_t len = l.chunk_len(i);
    Result<Section> sec = section(at, kSectionChunk, kChunkHeaderSize, kChunkHeaderSize + len);
    if (!sec) return make_error(sec.error());
    const uint8_t* p = sec->payload.data();
    const size_t po = sec->payload_offset();
    const uint64_t ram_offset = get_u64(p);
    if (ram_offset != i * l.chunk_size) {
      return fail(po, fmt::format("RAM chunk {} holds RAM offset {:#x}, expected {:#x}", i,
                                  ram_offset, i * l.chunk_size));
    }
    Chunk c{*sec, p[8], sec->payload.subspan(kChunkHeaderSize)};
    if (p[9] != 0 || p[10] != 0 || p[11] != 0) {
      return fail(po + 9, fmt::format("RAM chunk {}: reserved bytes are {}, must be zero", i,
                                      hex_bytes(sec->payload.subspan(9, 3))));
    }
    const size_t n = c.data.size();
    switch (c.encoding) {
      case kChunkZero:
        if (n != 0) {
          return fail(at,
                      fmt::format("RAM chunk {} is all zero but carries {} bytes of data", i, n));
        }
        break;
      case kChunkRaw:
        if (n != len) {
          return fail(at, fmt::format("RAM chunk {} is stored raw with {} bytes of data, must be "
                                      "{}",
                                      i, n, len));
        }
        break;
      case kChunkZstd: {
        if (n == 0 || n >= len) {
          return fail(at, fmt::format("RAM chunk {} is zstd with {} bytes of data, must be in "
                                      "[1, {}]",
                                      i, n, len - 1));
        }
        const size_t data_at = po + kChunkHeaderSize;
        if (n < 4 || std::memcmp(c.data.data(), kZstdMagic, 4) != 0) {
          return fail(data_at, fmt::format("RAM chunk {}: data does not start with a zstd frame "
                                           "(magic 28 b5 2f fd)",
                                           i));
        }
        const unsigned long long content = ZSTD_getFrameContentSize(c.data.data(), n);
        if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN) {
          return fail(data_at, fmt::format("RAM chunk {}: zstd frame header is invalid or does "
                                           "not state the content size",
                                           i));
        }
        if (content != len) {
          return fail(data_at, fmt::format("RAM chunk {}: zstd frame holds {} bytes, the chunk "
                                           "is {}",
                                           i, content, len));
        }
        const size_t frame = ZSTD_findFrameCompressedSize(c.data.data(), n);
        if (ZSTD_isError(frame) || frame != n) {
          return fail(data_at, fmt::format("RAM chunk {}: the data is not exactly one zstd frame "
                                           "({})",
                                           i,
                                           ZSTD_isError(frame)
                                               ? ZSTD_getErrorName(frame)
                                               : fmt::format("the frame is {} bytes", frame)));
        }
        break;
      }
      default:
        return fail(po + 8, fmt::format("RAM chunk {} has unknown encoding {}", i, c.encoding));
    }
    return c;
  }

  // Fills `ram` from chunks already checked by ram(). `known_zero`: `ram`
  // is all zero already, so zero chunks need not look at it.
  Status fill(const RamLayout& l, std::span<uint8_t> ram, bool known_zero) const {
    FTVM_CHECK(ram.size() == l.ram_size);
    std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx(ZSTD_createDCtx());
    if (!dctx) return make_error(fmt::format("{}: cannot allocate a zstd decoder", name_));
    size_t pos = l.first_chunk;
    for (uint64_t i = 0; i < l.chunks; ++i) {
      Result<Chunk> c = chunk(pos, l, i);
      FTVM_CHECK(c.ok());
      const uint64_t len = l.chunk_len(i);
      uint8_t* dst = ram.data() + i * l.chunk_size;
      switch (c->encoding) {
        case kChunkZero:
          if (!known_zero && !all_zero(dst, len)) std::memset(dst, 0, len);
          break;
        case kChunkRaw:
          std::memcpy(dst, c->data.data(), len);
          break;
        case kChunkZstd: {
          const size_t got =
              ZSTD_decompressDCtx(dctx.get(), dst, len, c->data.data(), c->data.size());
          if (ZSTD_isError(got)) {
            return fail(c->section.payload_offset() + kChunkHeaderSize,
                        fmt::format("RAM chunk {}: zstd: {}", i, ZSTD_getErrorName(got)));
          }
          if (got != len) {
            return fail(c->section.payload_offset() + kChunkHeaderSize,
                        fmt::format("RAM chunk {}: zstd frame decompressed to {} bytes, expected "
                                    "{}",
                                    i, got, len));
          }
          break;
        }
        default:
          FTVM_CHECK(false);
      }
      pos = c->section.end();
    }
    return {};
  }

 private:
  // An error from the event-log header decoder, its offset moved from the
  // header's start to the file's.
  Error described(size_t header_at, const std::string& message) const {
    constexpr std::string_view kOffset = "offset ";
    size_t n = 0;
    uint64_t off = 0;
    if (message.compare(0, kOffset.size(), kOffset) == 0) {
      size_t i = kOffset.size();
      while (i < message.size() && message[i] >= '0' && message[i] <= '9' && i < 30) {
        off = off * 10 + static_cast<uint64_t>(message[i] - '0');
        ++i;
      }
      if (i > kOffset.size() && message.compare(i, 2, ": ") == 0) n = i + 2;
    }
    if (n == 0) return fail(header_at, "description: " + message);
    return fail(header_at + off, "description: " + message.substr(n));
  }

  std::span<const uint8_t> file_;
  std::string_view name_;
};

// The parts every full decode shares: description, state, RAM framing.
struct Parsed {
  SnapshotInfo info;
  MachineState state;
  RamLayout layout;
};

Result<Parsed> parse(const Decoder& d) {
  auto info = d.info();
  if (!info) return make_error(info.error());
  Parsed out;
  out.info = std::move(info->first);
  auto state = d.state(info->second, out.info.instret);
  if (!state) return make_error(state.error());
  out.state = std::move(state->first);
  auto layout = d.ram(state->second, out.info.machine.ram_size);
  if (!layout) return make_error(layout.error());
  out.layout = *layout;
  return out;
}

}  // namespace

Status encode_snapshot_to(const SnapshotInfo& info, const MachineState& state,
                          std::span<const uint8_t> ram, const SnapshotOptions& options,
                          const SnapshotSink& sink) {
  if (ram.empty() || ram.size() > kMaxSnapshotRamSize) {
    return make_error(fmt::format("cannot encode a snapshot of {} bytes of RAM (must be 1 to {})",
                                  ram.size(), kMaxSnapshotRamSize));
  }
  if (info.machine.ram_size != ram.size()) {
    return make_error(
        fmt::format("cannot encode a snapshot: the description's RAM size is {} "
                    "but the RAM image is {} bytes",
                    info.machine.ram_size, ram.size()));
  }
  if (info.instret != state.hart.instret) {
    return make_error(
        fmt::format("cannot encode a snapshot: instret {} differs from the state's "
                    "hart.instret {}",
                    info.instret, state.hart.instret));
  }
  const uint32_t cs = options.chunk_size;
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return make_error(fmt::format("snapshot chunk size {} is not a power of two in [{}, {}]", cs,
                                  kMinChunkSize, kMaxChunkSize));
  }
  if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
    return make_error(fmt::format("zstd level {} is outside [{}, {}]", options.zstd_level,
                                  ZSTD_minCLevel(), ZSTD_maxCLevel()));
  }
  Result<std::string> header = log::encode_header(info.machine);
  if (!header) return make_error("cannot encode a snapshot's description: " + header.error());

  std::string description;
  put_u64(description, info.instret);
  description += *header;
  std::string state_bytes;
  StateWriter w(state_bytes);
  visit_state(w, state);
  if (w.error()) return *w.error();
  FTVM_CHECK(state_bytes.size() == kStateSectionSize);
  std::string ram_info;
  put_u64(ram_info, ram.size());
  put_u32(ram_info, cs);
  put_u32(ram_info, 0);

  std::string out(reinterpret_cast<const char*>(kSnapshotMagic), sizeof kSnapshotMagic);
  put_u32(out, kSnapshotVersion);
  put_section(out, kSectionDescription, bytes_of(description));
  put_section(out, kSectionState, bytes_of(state_bytes));
  put_section(out, kSectionRam, bytes_of(ram_info));
  if (Status s = sink(bytes_of(out)); !s) return s;

  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return make_error("cannot allocate a zstd encoder");
  const size_t data_at = kSectionHeaderSize + kChunkHeaderSize;
  std::string buf;
  for (uint64_t offset = 0; offset < ram.size(); offset += cs) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(cs, ram.size() - offset));
    const uint8_t* src = ram.data() + offset;
    buf.assign(data_at, '\0');
    store_u32(buf.data(), kSectionChunk);
    std::string chunk_header;
    put_u64(chunk_header, offset);
    uint8_t encoding = kChunkZero;
    size_t n = 0;
    if (!all_zero(src, len)) {
      buf.resize(data_at + ZSTD_compressBound(len));
      const size_t z = ZSTD_compressCCtx(cctx.get(), buf.data() + data_at, buf.size() - data_at,
                                         src, len, options.zstd_level);
      if (ZSTD_isError(z)) {
        return make_error(fmt::format("zstd cannot compress RAM at offset {:#x}: {}", offset,
                                      ZSTD_getErrorName(z)));
      }
      if (z < len) {
        encoding = kChunkZstd;
        n = z;
      } else {
        encoding = kChunkRaw;
        n = len;
        buf.resize(data_at + len);
        std::memcpy(buf.data() + data_at, src, len);
      }
    }
    buf.resize(data_at + n);
    put_u8(chunk_header, encoding);
    chunk_header.append(3, '\0');
    std::memcpy(buf.data() + kSectionHeaderSize, chunk_header.data(), kChunkHeaderSize);
    store_u32(buf.data() + 4, static_cast<uint32_t>(kChunkHeaderSize + n));
    store_u32(buf.data() + 8, crc32_of(buf.data(), 8));
    put_u32(buf, crc32_of(buf.data(), buf.size()));
    if (Status s = sink(bytes_of(buf)); !s) return s;
    if (options.progress) options.progress(offset + len, ram.size());
  }
  return {};
}

Result<std::string> encode_machine_state(const MachineState& state) {
  std::string out;
  StateWriter w(out);
  visit_state(w, state);
  if (w.error()) return *w.error();
  FTVM_CHECK(out.size() == kStateSectionSize);
  return out;
}

Result<MachineState> decode_machine_state(std::span<const uint8_t> bytes) {
  if (bytes.size() != kStateSectionSize) {
    return make_error(fmt::format("machine state: {} bytes, not {}", bytes.size(), kStateSectionSize));
  }
  MachineState m;
  StateReader r(bytes.data(), 0);
  visit_state(r, m);
  FTVM_CHECK(r.pos() == kStateSectionSize);
  if (r.problem()) {
    return make_error(fmt::format("machine state: offset {}: {}", r.problem()->first, r.problem()->second));
  }
  return m;
}

Result<std::string> encode_snapshot(const SnapshotInfo& info, const MachineState& state,
                                    std::span<const uint8_t> ram, const SnapshotOptions& options) {
  std::string out;
  Status s = encode_snapshot_to(info, state, ram, options, [&out](std::span<const uint8_t> b) {
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    return Status{};
  });
  if (!s) return make_error(s.error());
  return out;
}

Result<SnapshotInfo> decode_snapshot_info(std::span<const uint8_t> file, std::string_view name) {
  auto info = Decoder(file, name).info();
  if (!info) return make_error(info.error());
  return std::move(info->first);
}

Result<DecodedSnapshot> decode_snapshot(std::span<const uint8_t> file, std::string_view name) {
  const Decoder d(file, name);
  Result<Parsed> p = parse(d);
  if (!p) return make_error(p.error());
  DecodedSnapshot out;
  out.ram.resize(p->layout.ram_size);
  if (Status s = d.fill(p->layout, out.ram, /*known_zero=*/true); !s) {
    return make_error(s.error());
  }
  out.info = std::move(p->info);
  out.state = std::move(p->state);
  return out;
}

Result<SnapshotContents> decode_snapshot_into(std::span<const uint8_t> file, std::span<uint8_t> ram,
                                              std::string_view name) {
  const Decoder d(file, name);
  Result<Parsed> p = parse(d);
  if (!p) return make_error(p.error());
  if (ram.size() != p->layout.ram_size) {
    return make_error(fmt::format("{}: the snapshot holds {} bytes of RAM but the machine has {}",
                                  name, p->layout.ram_size, ram.size()));
  }
  if (Status s = d.fill(p->layout, ram, /*known_zero=*/false); !s) {
    return make_error(s.error());
  }
  return SnapshotContents{std::move(p->info), std::move(p->state)};
}

}  // namespace ftvm::vm
