// Logged and replayed disk failures; see disk_faults.h.
#include "ft/disk_faults.h"

#include <fmt/format.h>

#include <algorithm>

namespace ftvm::ft {
namespace {

const char* op_name(uint32_t type) {
  switch (type) {
    case vm::VirtioBlk::kTypeIn: return "read";
    case vm::VirtioBlk::kTypeOut: return "write";
    case vm::VirtioBlk::kTypeFlush: return "flush";
  }
  return "request";
}

std::string describe(const vm::DiskRequest& r) {
  if (r.type == vm::VirtioBlk::kTypeFlush) return "flush";
  return fmt::format("{} of {} bytes at sector {}", op_name(r.type), r.length, r.sector);
}

bool same_request(const log::DiskError& e, const vm::DiskRequest& r) {
  return e.op == r.type && e.sector == r.sector && e.length == r.length;
}

}  // namespace

std::vector<log::DiskError> disk_error_records(const vm::DiskRequest& request,
                                               const std::optional<std::vector<uint8_t>>& after) {
  log::DiskError base;
  base.op = static_cast<uint8_t>(request.type);
  base.sector = request.sector;
  base.length = request.length;
  std::vector<log::DiskError> out;
  if (request.type != vm::VirtioBlk::kTypeOut || request.length == 0) {
    out.push_back(base);
    return out;
  }
  if (!after) {
    base.unreadable = true;
    out.push_back(base);
    return out;
  }
  for (uint64_t off = 0; off < after->size(); off += log::kMaxDiskErrorChunk) {
    log::DiskError chunk = base;
    chunk.chunk_offset = off;
    const uint64_t n = std::min<uint64_t>(log::kMaxDiskErrorChunk, after->size() - off);
    chunk.data.assign(after->begin() + static_cast<ptrdiff_t>(off),
                      after->begin() + static_cast<ptrdiff_t>(off + n));
    out.push_back(std::move(chunk));
  }
  return out;
}

void LiveDiskFaults::failed(const vm::DiskRequest& request,
                            const std::optional<std::vector<uint8_t>>& after,
                            const std::string& why) {
  ++failures_;
  last_ = fmt::format("{}: {}", describe(request), why);
  for (log::DiskError& e : disk_error_records(request, after)) sink_(std::move(e));
}

void ReplayDiskFaults::stage(uint64_t instret, log::DiskError record) {
  staged_.emplace_back(instret, std::move(record));
}

void ReplayDiskFaults::check_passed(uint64_t instret) {
  if (!divergence_.empty() || staged_.empty() || staged_.front().first >= instret) return;
  const auto& [at, e] = staged_.front();
  divergence_ = fmt::format(
      "the recording's disk {} failed at instret {}, but the replay made no such request there "
      "(it is at instret {})",
      describe({e.op, e.sector, e.length}), at, instret);
}

vm::DiskFaults::Recorded ReplayDiskFaults::recorded(const vm::DiskRequest& request) {
  const uint64_t now = machine_.instret();
  if (staged_.empty() || staged_.front().first != now ||
      !same_request(staged_.front().second, request)) {
    return {};  // performed here; check_passed catches a failure that never comes
  }
  Recorded r;
  r.failed = true;
  if (request.type != vm::VirtioBlk::kTypeOut || request.length == 0) {
    staged_.pop_front();
    return r;
  }
  if (staged_.front().second.unreadable) {
    staged_.pop_front();
    if (host_failure_.empty()) {
      host_failure_ = fmt::format(
          "the recording host could not read back its disk after a failed {} at instret {}, so "
          "this copy cannot be made equal to it",
          describe(request), now);
    }
    return r;
  }
  // The chunks of the recording host's contents, in order, at this instret.
  std::vector<uint8_t> after;
  after.reserve(request.length);
  while (!staged_.empty() && staged_.front().first == now &&
         same_request(staged_.front().second, request) && after.size() < request.length) {
    const log::DiskError& e = staged_.front().second;
    if (e.unreadable || e.chunk_offset != after.size() ||
        e.data.size() > request.length - after.size()) {
      break;
    }
    after.insert(after.end(), e.data.begin(), e.data.end());
    staged_.pop_front();
  }
  if (after.size() != request.length) {
    divergence_ = fmt::format(
        "the recording's failed disk {} at instret {} carries {} of its {} bytes of contents, "
        "not in order",
        describe(request), now, after.size(), request.length);
    return r;  // completes with IOERR and leaves the disk alone; the replay stops
  }
  r.after = std::move(after);
  return r;
}

void ReplayDiskFaults::failed(const vm::DiskRequest& request,
                              const std::optional<std::vector<uint8_t>>& after,
                              const std::string& why) {
  if (live_ != nullptr) {
    live_->failed(request, after, why);
    return;
  }
  if (host_failure_.empty()) {
    host_failure_ = fmt::format(
        "this host's copy of the disk failed at instret {} ({}: {}) where the recording's did not",
        machine_.instret(), describe(request), why);
  }
}

}  // namespace ftvm::ft
