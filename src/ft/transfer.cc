#include "ft/transfer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "log/digest.h"

namespace ftvm::ft {
namespace {

using Clock = std::chrono::steady_clock;

// Word by word, OR-ing a block at a time: most pages of a guest are zero,
// and a round-1 scan reads all of RAM.
bool all_zero(const uint8_t* p, size_t n) {
  static_assert(kTransferUnitSize % 64 == 0);
  for (size_t i = 0; i + 64 <= n; i += 64) {
    uint64_t w[8];
    std::memcpy(w, p + i, sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
  }
  for (size_t i = n - n % 64; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The bytes of disk block `b` (a last partial block padded with zeros).
Status read_block(vm::BlockBackend& disk, uint32_t b, uint8_t* out) {
  const uint64_t off = uint64_t{b} * kTransferUnitSize;
  const uint64_t len = std::min<uint64_t>(kTransferUnitSize, disk.size() - off);
  std::memset(out, 0, kTransferUnitSize);
  return disk.read(off, std::span<uint8_t>(out, len));
}

uint64_t block_count(const vm::BlockBackend* disk) {
  return disk ? (disk->size() + kTransferUnitSize - 1) / kTransferUnitSize : 0;
}

}  // namespace

// ---- the primary's side ----

TransferSender::TransferSender(vm::Machine& machine, vm::BlockBackend* disk, SenderOptions o)
    : machine_(machine),
      disk_(disk != nullptr && !disk->read_only() ? disk : nullptr),
      o_(o),
      waiting_for_hashes_(disk_ != nullptr),
      start_(Clock::now()) {
  machine_.start_transfer_tracking();
  machine_.start_disk_transfer_tracking();
  tracking_ = true;
  progress_.phase = waiting_for_hashes_ ? "disk-hashes" : "precopy";
  if (!waiting_for_hashes_) next_round();
}

TransferSender::~TransferSender() { abandon(); }

void TransferSender::abandon() {
  if (tracking_) machine_.stop_transfer_tracking();
  tracking_ = false;
}

Status TransferSender::on_reply(std::span<const uint8_t> payload) {
  Result<TransferReply> r = decode_transfer_reply(payload);
  if (!r) return make_error(r.error());
  if (r->kind == TransferReply::Kind::kApplied) {
    if (r->applied > sent_messages_ || r->applied < applied_) {
      return make_error(fmt::format("the backup says it applied {} transfer messages; {} were sent",
                                    r->applied, sent_messages_));
    }
    applied_ = r->applied;
    return {};
  }
  if (!waiting_for_hashes_) return make_error("the backup sent disk hashes it was not asked for");
  if (r->total_blocks != block_count(disk_)) {
    return make_error(fmt::format("the backup's copy of the disk has {} blocks, this one {}: "
                                  "the copies must be the same size",
                                  r->total_blocks, block_count(disk_)));
  }
  if (r->first != hashes_received_) {
    return make_error(fmt::format("the backup's disk hashes start at block {}, expected {}",
                                  r->first, hashes_received_));
  }
  peer_hashes_.insert(peer_hashes_.end(), r->hashes.begin(), r->hashes.end());
  hashes_received_ += r->hashes.size();
  if (hashes_received_ == r->total_blocks) {
    waiting_for_hashes_ = false;
    progress_.phase = "precopy";
    next_round();
  }
  return {};
}

bool TransferSender::next_round() {
  pages_ = machine_.take_transfer_dirty_pages();
  blocks_ = machine_.take_transfer_dirty_blocks();
  if (disk_ == nullptr) blocks_.clear();
  page_pos_ = block_pos_ = 0;
  ++progress_.rounds;
  return true;
}

Result<bool> TransferSender::next_message(std::vector<std::string>& out, bool final) {
  const bool pages = page_pos_ < pages_.size();
  if (!pages && block_pos_ >= blocks_.size()) return false;
  TransferUnits u;
  u.kind = pages ? TransferKind::kPages : TransferKind::kBlocks;
  u.round = progress_.rounds;
  std::array<uint8_t, kTransferUnitSize> buf{};
  size_t with_data = 0;
  while (u.index.size() < kMaxUnitsPerMessage && with_data < kMaxDataUnitsPerMessage) {
    const uint8_t* p = nullptr;
    uint32_t index = 0;
    if (pages) {
      if (page_pos_ >= pages_.size()) break;
      index = pages_[page_pos_++];
      p = machine_.bus().ram() + uint64_t{index} * kTransferUnitSize;
      ++progress_.pages;
    } else {
      if (block_pos_ >= blocks_.size()) break;
      index = blocks_[block_pos_++];
      if (Status s = read_block(*disk_, index, buf.data()); !s) {
        return make_error(fmt::format("reading block {} of this host's disk: {}", index, s.error()));
      }
      p = buf.data();
      // Round 1 skips what the backup's copy already holds.
      if (progress_.rounds == 1 && !final && index < peer_hashes_.size() &&
          log::sha256_of({p, kTransferUnitSize}) == peer_hashes_[index]) {
        ++progress_.blocks_equal;
        continue;
      }
      ++progress_.blocks;
    }
    u.index.push_back(index);
    const bool zero = all_zero(p, kTransferUnitSize);
    u.zero.push_back(zero ? 1 : 0);
    if (!zero) {
      u.data.append(reinterpret_cast<const char*>(p), kTransferUnitSize);
      ++with_data;
    }
  }
  if (u.index.empty()) return next_message(out, final);  // every block was equal
  out.push_back(encode_transfer_units(u));
  progress_.bytes += out.back().size();
  ++sent_messages_;
  return true;
}

Result<bool> TransferSender::pump(std::vector<std::string>& out) {
  progress_.elapsed_ms = ms_since(start_);
  if (waiting_for_hashes_) return false;
  if (converged_) return true;
  size_t budget = 0;
  const double allowed = o_.max_bytes_per_s > 0
                             ? o_.max_bytes_per_s * progress_.elapsed_ms / 1000.0 + 65536
                             : 0;
  while (budget < o_.bytes_per_pump && sent_messages_ - applied_ < o_.window &&
         (o_.max_bytes_per_s <= 0 || static_cast<double>(progress_.bytes) < allowed)) {
    const size_t before = out.size();
    Result<bool> more = next_message(out, false);
    if (!more) return make_error(more.error());
    if (*more) {
      budget += out.back().size();
      (void)before;
      continue;
    }
    // The round is sent: another, or the pause.
    next_round();
    const size_t left = pages_.size() + blocks_.size();
    if (left <= o_.converged_units || progress_.rounds > o_.max_rounds) {
      converged_ = true;
      return true;
    }
  }
  return false;
}

Result<std::vector<std::string>> TransferSender::finish() {
  const auto pause_start = Clock::now();
  progress_.phase = "final";
  // What the last round left unsent plus everything written since.
  std::vector<uint32_t> pages(pages_.begin() + static_cast<ptrdiff_t>(page_pos_), pages_.end());
  std::vector<uint32_t> blocks(blocks_.begin() + static_cast<ptrdiff_t>(block_pos_), blocks_.end());
  for (uint32_t p : machine_.take_transfer_dirty_pages()) pages.push_back(p);
  for (uint32_t b : machine_.take_transfer_dirty_blocks()) blocks.push_back(b);
  if (disk_ == nullptr) blocks.clear();
  for (auto* v : {&pages, &blocks}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  pages_ = std::move(pages);
  blocks_ = std::move(blocks);
  page_pos_ = block_pos_ = 0;
  std::vector<std::string> out;
  for (;;) {
    Result<bool> more = next_message(out, true);
    if (!more) return make_error(more.error());
    if (!*more) break;
  }
  TransferFinal f;
  f.rounds = progress_.rounds;
  f.state = machine_.capture();
  f.instret = f.state.hart.instret;
  f.ram_pages = machine_.bus().ram_size() / kTransferUnitSize;
  f.disk_blocks = block_count(disk_);
  Result<std::string> final_msg = encode_transfer_final(f);
  if (!final_msg) return make_error(final_msg.error());
  out.push_back(std::move(*final_msg));
  progress_.bytes += out.back().size();
  sent_messages_ += 1;
  abandon();
  progress_.pause_ms = ms_since(pause_start);
  progress_.elapsed_ms = ms_since(start_);
  progress_.phase = "done";
  return out;
}

// ---- the backup's side ----

TransferReceiver::TransferReceiver(vm::Machine& machine, vm::BlockBackend* disk)
    : machine_(machine),
      disk_(disk != nullptr && !disk->read_only() ? disk : nullptr),
      start_(Clock::now()) {
  progress_.phase = disk_ ? "disk-hashes" : "precopy";
}

Result<std::vector<std::string>> TransferReceiver::disk_hash_replies() {
  std::vector<std::string> out;
  if (disk_ == nullptr) return out;
  const uint64_t total = block_count(disk_);
  std::array<uint8_t, kTransferUnitSize> buf{};
  TransferReply r;
  r.kind = TransferReply::Kind::kHashes;
  r.total_blocks = total;
  for (uint64_t b = 0; b < total; ++b) {
    if (r.hashes.empty()) r.first = static_cast<uint32_t>(b);
    if (Status s = read_block(*disk_, static_cast<uint32_t>(b), buf.data()); !s) {
      return make_error(fmt::format("reading block {} of this host's copy of the disk: {}", b,
                                    s.error()));
    }
    r.hashes.push_back(log::sha256_of(buf));
    if (r.hashes.size() == kMaxHashesPerMessage || b + 1 == total) {
      out.push_back(encode_transfer_reply(r));
      r.hashes.clear();
    }
  }
  if (total == 0) out.push_back(encode_transfer_reply(r));
  progress_.phase = "precopy";
  return out;
}

Result<bool> TransferReceiver::apply(std::span<const uint8_t> payload) {
  if (done_) return make_error("a transfer message after the final state");
  Result<TransferKind> kind = transfer_kind(payload);
  if (!kind) return make_error(kind.error());
  progress_.bytes += payload.size();
  progress_.elapsed_ms = ms_since(start_);
  ++applied_;
  if (*kind == TransferKind::kFinal) {
    Result<TransferFinal> f = decode_transfer_final(payload);
    if (!f) return make_error(f.error());
    const uint64_t pages = machine_.bus().ram_size() / kTransferUnitSize;
    if (f->ram_pages != pages || f->disk_blocks != block_count(disk_)) {
      return make_error(fmt::format("the primary has {} RAM pages and {} disk blocks; this machine "
                                    "{} and {}",
                                    f->ram_pages, f->disk_blocks, pages, block_count(disk_)));
    }
    machine_.restore(f->state);
    if (disk_ != nullptr) {
      if (Status s = disk_->flush(); !s) return make_error("flushing this host's copy: " + s.error());
    }
    progress_.rounds = f->rounds;
    final_instret_ = f->instret;
    progress_.phase = "done";
    done_ = true;
    return true;
  }
  Result<TransferUnits> u = decode_transfer_units(payload);
  if (!u) return make_error(u.error());
  progress_.rounds = std::max(progress_.rounds, u->round);
  const bool pages = u->kind == TransferKind::kPages;
  const uint64_t limit = pages ? machine_.bus().ram_size() / kTransferUnitSize : block_count(disk_);
  static const std::array<uint8_t, kTransferUnitSize> kZero{};
  size_t data_at = 0;
  for (size_t i = 0; i < u->index.size(); ++i) {
    const uint32_t index = u->index[i];
    if (index >= limit) {
      return make_error(fmt::format("the primary sent {} {}, beyond this machine's {}",
                                    pages ? "page" : "block", index, limit));
    }
    const uint8_t* src = kZero.data();
    if (u->zero[i] == 0) {
      src = reinterpret_cast<const uint8_t*>(u->data.data()) + data_at;
      data_at += kTransferUnitSize;
    }
    if (pages) {
      std::memcpy(machine_.bus().ram() + uint64_t{index} * kTransferUnitSize, src,
                  kTransferUnitSize);
      ++progress_.pages;
    } else {
      const uint64_t off = uint64_t{index} * kTransferUnitSize;
      const uint64_t len = std::min<uint64_t>(kTransferUnitSize, disk_->size() - off);
      if (Status s = disk_->write(off, {src, len}); !s) {
        return make_error(fmt::format("writing block {} of this host's copy: {}", index, s.error()));
      }
      ++progress_.blocks;
    }
  }
  return false;
}

std::optional<std::string> TransferReceiver::take_reply(bool drained) {
  if (applied_ == replied_ || (!done_ && !drained && applied_ - replied_ < 4)) {
    return std::nullopt;
  }
  replied_ = applied_;
  TransferReply r;
  r.kind = TransferReply::Kind::kApplied;
  r.applied = applied_;
  return encode_transfer_reply(r);
}

}  // namespace ftvm::ft
