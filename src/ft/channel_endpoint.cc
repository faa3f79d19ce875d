// One end of the logging channel's protocol: see channel_endpoint.h.
#include "ft/channel_endpoint.h"

#include <fmt/format.h>

#include <algorithm>

namespace ftvm::ft {

ChannelEndpoint::ChannelEndpoint(bool primary, std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds heartbeat, Time now,
                                 std::function<void()> wake)
    : primary_(primary),
      heartbeat_(heartbeat),
      wake_(std::move(wake)),
      detector_(timeout, now),
      local_at_(now),
      last_sent_(now) {}

bool ChannelEndpoint::should_run_locked(Time now) const {
  if (local_.checkpointing) return false;
  // A backup holding records it has not applied has work to do.
  if (!primary_ && received_ > local_.executed) return true;
  return local_.should_run || now - local_at_ > 2 * heartbeat_;
}

void ChannelEndpoint::fail_locked(std::string why) {
  if (!failed_) failed_ = std::move(why);
}

ChannelEndpoint::Reply ChannelEndpoint::ack_locked(Time now) {
  Ack a{received_,       local_.executed,       local_.instret, local_.mtime,
        received_bytes_, local_.executed_bytes, should_run_locked(now)};
  return {MsgType::kAck, encode_ack(a)};
}

std::optional<ChannelEndpoint::Reply> ChannelEndpoint::on_message(Time now, const Message& m) {
  std::optional<Reply> reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) return std::nullopt;
    detector_.heard(now);
    if (primary_ && m.type == MsgType::kAck) {
      Result<Ack> a = decode_ack(as_span(m.payload));
      if (!a) {
        fail_locked("the backup sent an ack that does not decode: " + a.error());
      } else {
        uint64_t prev = acked_.load();
        while (a->received > prev && !acked_.compare_exchange_weak(prev, a->received)) {
        }
        peer_exec_ = {a->executed, a->exec_instret, a->exec_mtime, a->executed_bytes};
        detector_.progress(now, {a->exec_instret, a->should_run});
      }
    } else if (!primary_ && m.type == MsgType::kRecords) {
      Result<RecordsMsg> r = decode_records(as_span(m.payload));
      if (!r) {
        fail_locked("the primary sent records that do not decode: " + r.error());
      } else if (r->first != received_) {
        fail_locked(fmt::format("the primary sent records from {} but {} were received", r->first,
                                received_.load()));
      } else {
        uint64_t bytes = 0, last = peer_instret_;
        for (size_t i = 0; i < r->records.size(); ++i) {
          last = std::max(last, r->records[i].instret);
          bytes += r->sizes[i];
          queue_.push_back({std::move(r->records[i]), r->sizes[i]});
        }
        received_ += r->records.size();
        received_bytes_ += bytes;
        // Records at later instrets prove the primary's guest advances.
        if (last != peer_instret_) {
          peer_instret_ = last;
          detector_.progress(now, {last, peer_should_run_});
        }
        // Receipt is acknowledged at once: the primary's outputs wait on it.
        reply = ack_locked(now);
        last_sent_ = now;
      }
    } else if (!primary_ && m.type == MsgType::kHandover) {
      Result<Handover> h = decode_handover(as_span(m.payload));
      if (!h) {
        fail_locked("the primary sent a handover that does not decode: " + h.error());
      } else if (h->records != received_) {
        fail_locked(fmt::format("the primary handed over after {} records but {} were received",
                                h->records, received_.load()));
      } else {
        handover_ = *h;
      }
    } else if ((!primary_ && m.type == MsgType::kTransfer) ||
               (primary_ && m.type == MsgType::kTransferReply)) {
      transfer_.push_back(m.payload);
    } else if (!primary_ && m.type == MsgType::kHeartbeat) {
      if (Result<Heartbeat> h = decode_heartbeat(as_span(m.payload)); h) {
        primary_instret_ = h->instret;
        peer_should_run_ = h->should_run;
        peer_instret_ = std::max(peer_instret_, h->instret);
        detector_.progress(now, {h->instret, h->should_run});
      }
    }
  }
  if (wake_) wake_();
  return reply;
}

std::optional<ChannelEndpoint::Reply> ChannelEndpoint::on_tick(Time now) {
  std::optional<Reply> reply;
  bool newly_failed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_) return std::nullopt;
    if (std::optional<std::string> why = detector_.verdict(now, primary_ ? "backup" : "primary")) {
      fail_locked(*why);
      newly_failed = true;
    } else if (now - last_sent_ >= heartbeat_) {
      reply = primary_ ? Reply{MsgType::kHeartbeat,
                               encode_heartbeat({local_.instret, local_.mtime, should_run_locked(now)})}
                       : ack_locked(now);
      last_sent_ = now;
    }
  }
  if (newly_failed && wake_) wake_();
  return reply;
}

void ChannelEndpoint::sent(Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  last_sent_ = std::max(last_sent_, now);
}

void ChannelEndpoint::on_link_failed(std::string why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    fail_locked(std::move(why));
  }
  if (wake_) wake_();
}

void ChannelEndpoint::set_local(Time now, const LocalProgress& p) {
  std::lock_guard<std::mutex> lock(mu_);
  local_ = p;
  local_at_ = now;
}

std::optional<std::string> ChannelEndpoint::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

PeerExec ChannelEndpoint::peer_exec() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peer_exec_;
}

void ChannelEndpoint::take_records(std::deque<QueuedRecord>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (out.empty()) {
    out.swap(queue_);
    return;
  }
  for (QueuedRecord& q : queue_) out.push_back(std::move(q));
  queue_.clear();
}

size_t ChannelEndpoint::queue_length() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

ChannelEndpoint::Time ChannelEndpoint::last_heard() const {
  std::lock_guard<std::mutex> lock(mu_);
  return detector_.last_heard();
}

std::chrono::nanoseconds ChannelEndpoint::longest_silence() const {
  std::lock_guard<std::mutex> lock(mu_);
  return detector_.longest_silence();
}

std::chrono::nanoseconds ChannelEndpoint::peer_stuck_for(Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return detector_.stuck_for(now);
}

std::optional<Handover> ChannelEndpoint::handover() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handover_;
}

void ChannelEndpoint::take_transfer(std::deque<std::string>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!transfer_.empty()) {
    out.push_back(std::move(transfer_.front()));
    transfer_.pop_front();
  }
}

}  // namespace ftvm::ft
