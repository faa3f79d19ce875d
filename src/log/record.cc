// Record encoding and decoding; the layout is docs/log-format.md "Records".
#include "log/record.h"

#include <fmt/format.h>

#include <cstring>

#include "log/coding.h"

namespace ftvm::log {

namespace {

using internal::get_u32;
using internal::get_u64;
using internal::put_bytes;
using internal::put_u32;
using internal::put_u64;
using internal::put_u8;

constexpr size_t kOutputDigestSize = 32 + 3 * 8;

bool is_known_type(uint8_t code) {
  switch (static_cast<RecordType>(code)) {
    case RecordType::kConsoleInput:
    case RecordType::kNetFrame:
    case RecordType::kEntropy:
    case RecordType::kTimeSkip:
    case RecordType::kDiskError:
    case RecordType::kStateHash:
    case RecordType::kOutputDigest:
    case RecordType::kProgress:
    case RecordType::kEnd:
      return true;
  }
  return false;
}

// The payload size a type requires; nullopt for the variable-size byte payloads.
std::optional<size_t> fixed_payload_size(RecordType type) {
  switch (type) {
    case RecordType::kTimeSkip: return 8;
    case RecordType::kStateHash: return 32;
    case RecordType::kOutputDigest: return kOutputDigestSize;
    case RecordType::kProgress: return 0;
    case RecordType::kEnd: return 4;
    default: return std::nullopt;
  }
}

// Checks a payload length against the type's rule; the message has no offset.
std::optional<std::string> length_problem(RecordType type, uint64_t length) {
  if (length > kMaxPayloadSize) {
    return fmt::format("{} payload of {} bytes exceeds the limit of {} bytes",
                       record_type_name(type), length, kMaxPayloadSize);
  }
  if (auto fixed = fixed_payload_size(type)) {
    if (length != *fixed) {
      return fmt::format("{} payload must be {} bytes, found {}", record_type_name(type), *fixed,
                         length);
    }
  } else if (type == RecordType::kDiskError) {
    if (length < kDiskErrorFixedSize || length - kDiskErrorFixedSize > kMaxDiskErrorChunk) {
      return fmt::format("{} payload must be {} to {} bytes, found {}", record_type_name(type),
                         kDiskErrorFixedSize, kDiskErrorFixedSize + kMaxDiskErrorChunk, length);
    }
  } else if (length == 0) {
    return fmt::format("{} payload must not be empty", record_type_name(type));
  }
  return std::nullopt;
}

// A disk-error payload's fields beyond its length: one encoding per value.
std::optional<std::string> disk_error_problem(std::span<const uint8_t> p) {
  const uint8_t op = p[0], flags = p[1];
  if (op != 0 && op != 1 && op != 4) {
    return fmt::format("disk-error op {} is not a read (0), write (1) or flush (4)", op);
  }
  if ((flags & ~1u) != 0) {
    return fmt::format("disk-error flags {:#04x} has bits other than bit 0 (unreadable)", flags);
  }
  const bool has_data = p.size() > kDiskErrorFixedSize;
  if (has_data && (op != 1 || (flags & 1) != 0)) {
    return "disk-error contents belong only to a write that was read back";
  }
  if ((flags & 1) != 0 && op != 1) return "disk-error: only a write can be unreadable";
  return std::nullopt;
}

const Bytes* byte_payload(const Record& record) {
  if (auto* p = std::get_if<ConsoleInput>(&record.payload)) return &p->bytes;
  if (auto* p = std::get_if<NetFrame>(&record.payload)) return &p->frame;
  if (auto* p = std::get_if<Entropy>(&record.payload)) return &p->bytes;
  return nullptr;
}

size_t payload_size(const Record& record) {
  if (const Bytes* b = byte_payload(record)) return b->size();
  if (auto* d = std::get_if<DiskError>(&record.payload)) return kDiskErrorFixedSize + d->data.size();
  return *fixed_payload_size(record.type());
}

void put_payload(std::string& out, const Record& record) {
  if (const Bytes* b = byte_payload(record)) {
    put_bytes(out, *b);
    return;
  }
  std::visit(
      [&out](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, TimeSkip>) {
          put_u64(out, p.target_mtime);
        } else if constexpr (std::is_same_v<T, StateHash>) {
          put_bytes(out, p.hash);
        } else if constexpr (std::is_same_v<T, OutputDigest>) {
          put_bytes(out, p.sha256);
          put_u64(out, p.console_bytes);
          put_u64(out, p.frames);
          put_u64(out, p.frame_bytes);
        } else if constexpr (std::is_same_v<T, End>) {
          put_u32(out, static_cast<uint32_t>(p.exit_status));
        } else if constexpr (std::is_same_v<T, DiskError>) {
          put_u8(out, p.op);
          put_u8(out, p.unreadable ? 1 : 0);
          put_u64(out, p.sector);
          put_u64(out, p.length);
          put_u64(out, p.chunk_offset);
          put_bytes(out, p.data);
        }
      },
      record.payload);
}

// Precondition: `p` holds exactly the length fixed_payload_size or
// length_problem allowed for `type`.
Payload parse_payload(RecordType type, std::span<const uint8_t> p) {
  Sha256 hash{};
  switch (type) {
    case RecordType::kConsoleInput: return ConsoleInput{Bytes(p.begin(), p.end())};
    case RecordType::kNetFrame: return NetFrame{Bytes(p.begin(), p.end())};
    case RecordType::kEntropy: return Entropy{Bytes(p.begin(), p.end())};
    case RecordType::kTimeSkip: return TimeSkip{get_u64(p.data())};
    case RecordType::kStateHash:
      std::memcpy(hash.data(), p.data(), hash.size());
      return StateHash{hash};
    case RecordType::kOutputDigest:
      std::memcpy(hash.data(), p.data(), hash.size());
      return OutputDigest{hash, get_u64(p.data() + 32), get_u64(p.data() + 40),
                          get_u64(p.data() + 48)};
    case RecordType::kProgress: return Progress{};
    case RecordType::kEnd: return End{static_cast<int32_t>(get_u32(p.data()))};
    case RecordType::kDiskError: {
      DiskError d;
      d.op = p[0];
      d.unreadable = (p[1] & 1) != 0;
      d.sector = get_u64(p.data() + 2);
      d.length = get_u64(p.data() + 10);
      d.chunk_offset = get_u64(p.data() + 18);
      d.data.assign(p.begin() + kDiskErrorFixedSize, p.end());
      return d;
    }
  }
  FTVM_CHECK(false);
  return Progress{};
}

}  // namespace

RecordType Record::type() const {
  static constexpr RecordType kTypes[] = {
      RecordType::kConsoleInput, RecordType::kNetFrame,     RecordType::kEntropy,
      RecordType::kTimeSkip,     RecordType::kStateHash,    RecordType::kOutputDigest,
      RecordType::kProgress,     RecordType::kEnd,          RecordType::kDiskError,
  };
  static_assert(std::size(kTypes) == std::variant_size_v<Payload>);
  return kTypes[payload.index()];
}

std::string_view record_type_name(RecordType type) {
  switch (type) {
    case RecordType::kConsoleInput: return "console-input";
    case RecordType::kNetFrame: return "net-frame";
    case RecordType::kEntropy: return "entropy";
    case RecordType::kTimeSkip: return "time-skip";
    case RecordType::kDiskError: return "disk-error";
    case RecordType::kStateHash: return "state-hash";
    case RecordType::kOutputDigest: return "output-digest";
    case RecordType::kProgress: return "progress";
    case RecordType::kEnd: return "end";
  }
  return "unknown";
}

std::string to_string(const Record& record) {
  std::string s = fmt::format("instret {} {}", record.instret, record_type_name(record.type()));
  auto hex = [](std::span<const uint8_t> b, size_t max) {
    std::string h;
    for (size_t i = 0; i < b.size() && i < max; ++i) h += fmt::format(" {:02x}", b[i]);
    if (b.size() > max) h += " ...";
    return h;
  };
  if (const Bytes* b = byte_payload(record)) {
    s += fmt::format(" {} bytes{}", b->size(), hex(*b, 16));
  } else if (auto* t = std::get_if<TimeSkip>(&record.payload)) {
    s += fmt::format(" to mtime {}", t->target_mtime);
  } else if (auto* h = std::get_if<StateHash>(&record.payload)) {
    s += hex(h->hash, 32);
  } else if (auto* d = std::get_if<OutputDigest>(&record.payload)) {
    s += fmt::format("{} console_bytes {} frames {} frame_bytes {}", hex(d->sha256, 32),
                     d->console_bytes, d->frames, d->frame_bytes);
  } else if (auto* e = std::get_if<End>(&record.payload)) {
    s += fmt::format(" exit status {}", e->exit_status);
  } else if (auto* d = std::get_if<DiskError>(&record.payload)) {
    s += fmt::format(" op {} sector {} length {}{}", d->op, d->sector, d->length,
                     d->unreadable ? " unreadable after the failure"
                                   : d->op == 1 ? fmt::format(" contents at +{}: {} bytes",
                                                              d->chunk_offset, d->data.size())
                                                : std::string());
  }
  return s;
}

Status check_record(const Record& record) {
  if (auto problem = length_problem(record.type(), payload_size(record))) {
    return make_error(fmt::format("cannot log record at instret {}: {}", record.instret, *problem));
  }
  if (std::holds_alternative<DiskError>(record.payload)) {
    std::string p;
    put_payload(p, record);
    if (auto problem = disk_error_problem(internal::as_bytes(p))) {
      return make_error(fmt::format("cannot log record at instret {}: {}", record.instret, *problem));
    }
  }
  return {};
}

Status append_record(std::string& out, const Record& record) {
  if (Status s = check_record(record); !s) return s;
  const size_t start = out.size();
  const size_t length = payload_size(record);
  out.reserve(start + kRecordOverhead + length);
  put_u8(out, static_cast<uint8_t>(record.type()));
  put_u64(out, record.instret);
  put_u32(out, static_cast<uint32_t>(length));
  auto written = [&out, start] {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(out.data()) + start,
                                    out.size() - start);
  };
  put_u32(out, internal::crc32_of(written()));
  put_payload(out, record);
  put_u32(out, internal::crc32_of(written()));
  FTVM_CHECK(out.size() - start == kRecordOverhead + length);
  return {};
}

Result<std::string> encode_record(const Record& record) {
  std::string out;
  if (Status s = append_record(out, record); !s) return make_error(s.error());
  return out;
}

Result<std::optional<size_t>> peek_record_size(std::span<const uint8_t> bytes, uint64_t offset) {
  if (bytes.size() < kRecordHeaderSize) return std::optional<size_t>{};
  const uint8_t* p = bytes.data();
  const uint32_t stored = get_u32(p + 13);
  const uint32_t computed = internal::crc32_of(bytes.first(13));
  if (stored != computed) {
    return make_error(
        fmt::format("offset {}: record header checksum mismatch (stored {:#010x}, computed {:#010x})",
                    offset, stored, computed));
  }
  if (!is_known_type(p[0])) {
    return make_error(fmt::format("offset {}: unknown record type {:#04x}", offset, p[0]));
  }
  const RecordType type = static_cast<RecordType>(p[0]);
  const uint32_t length = get_u32(p + 9);
  if (auto problem = length_problem(type, length)) {
    return make_error(fmt::format("offset {}: {}", offset, *problem));
  }
  return std::optional<size_t>{kRecordOverhead + size_t{length}};
}

Result<std::optional<DecodedRecord>> decode_record(std::span<const uint8_t> bytes,
                                                   uint64_t offset) {
  auto size = peek_record_size(bytes, offset);
  if (!size) return make_error(size.error());
  if (!size->has_value() || bytes.size() < **size) return std::optional<DecodedRecord>{};
  const size_t n = **size;
  const size_t crc_at = n - kRecordTrailerSize;
  const uint32_t stored = get_u32(bytes.data() + crc_at);
  const uint32_t computed = internal::crc32_of(bytes.first(crc_at));
  if (stored != computed) {
    return make_error(
        fmt::format("offset {}: record checksum mismatch (stored {:#010x}, computed {:#010x})",
                    offset, stored, computed));
  }
  const RecordType type = static_cast<RecordType>(bytes[0]);
  if (type == RecordType::kDiskError) {
    const std::span<const uint8_t> p = bytes.subspan(kRecordHeaderSize, crc_at - kRecordHeaderSize);
    if (auto problem = disk_error_problem(p)) {
      return make_error(fmt::format("offset {}: {}", offset, *problem));
    }
  }
  DecodedRecord d;
  d.record.instret = get_u64(bytes.data() + 1);
  d.record.payload = parse_payload(type, bytes.subspan(kRecordHeaderSize, crc_at - kRecordHeaderSize));
  d.size = n;
  return std::optional<DecodedRecord>{std::move(d)};
}

Status RecordOrder::accept(const Record& record, uint64_t offset) {
  if (end_offset_) {
    return make_error(fmt::format("offset {}: data after the end record (at offset {})", offset,
                                  *end_offset_));
  }
  if (record.instret < last_instret_) {
    return make_error(fmt::format(
        "offset {}: {} record at instret {} comes after a record at instret {} "
        "(instrets must not decrease)",
        offset, record_type_name(record.type()), record.instret, last_instret_));
  }
  last_instret_ = record.instret;
  if (record.type() == RecordType::kEnd) end_offset_ = offset;
  return {};
}

}  // namespace ftvm::log
