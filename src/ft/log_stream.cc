// The primary's log stream: see log_stream.h.
#include "ft/log_stream.h"

#include <algorithm>

#include "util/result.h"

namespace ftvm::ft {

bool LogStream::append(const log::Record& record) {
  if (!active_) return false;
  if (batch_.empty()) batch_first_ = records_;
  const size_t before = batch_.size();
  const Status s = log::append_record(batch_, record);
  FTVM_CHECK(s.ok());
  bytes_ += batch_.size() - before;
  ++records_;
  last_instret_ = record.instret;
  if (gate_ != nullptr) gate_->on_record(records_, record.instret);
  return batch_.size() >= max_batch_bytes_;
}

std::optional<LogStream::Batch> LogStream::take_batch() {
  if (batch_.empty()) return std::nullopt;
  Batch b{batch_first_, std::move(batch_)};
  batch_.clear();
  return b;
}

bool LogStream::checkpoint_due(uint64_t instret) {
  if (!active_ || hash_interval_ == 0) return false;
  if (instret - last_checkpoint_ < hash_interval_) return false;
  last_checkpoint_ = instret;
  return true;
}

bool LogStream::over_lag(uint64_t mtime, uint64_t exec_mtime, uint64_t exec_bytes,
                         uint64_t max_lag_ticks, uint64_t max_lag_bytes) const {
  if (!active_) return false;
  exec_mtime = std::max(exec_mtime, base_mtime_);
  const uint64_t lag_ticks = mtime > exec_mtime ? mtime - exec_mtime : 0;
  const uint64_t lag_bytes = bytes_ > exec_bytes ? bytes_ - exec_bytes : 0;
  return lag_ticks > max_lag_ticks || lag_bytes > max_lag_bytes;
}

}  // namespace ftvm::ft
