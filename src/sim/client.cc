// The simulated KV client (see client.h).
#include "sim/client.h"

#include <fmt/format.h>

#include "sim/guest_image.h"

namespace ftvm::sim {

KvClient::KvClient(EventQueue& events, Lan& lan, Rng rng, History* history, ClientConfig config)
    : events_(events), lan_(lan), rng_(rng), history_(history), config_(std::move(config)) {
  // Locally administered, unicast, one per client.
  mac_ = {0x02, 0x00, 0x5e, 0x00, static_cast<uint8_t>(config_.id >> 8),
          static_cast<uint8_t>(config_.id)};
  port_ = lan_.attach(mac_, [this](const Frame& f) { on_frame(f); });
}

void KvClient::start(Time stop_at) {
  stop_at_ = stop_at;
  on_reply_ = [this](const KvReply&) {
    const Time think = rng_.range(config_.think_min, config_.think_max);
    events_.after(think, [this] { issue_next(); });
  };
  issue_next();
}

void KvClient::issue_next() {
  if (events_.now() >= stop_at_ || outstanding_) return;
  const size_t n = config_.counter_keys.size() + config_.register_keys.size();
  const size_t pick = rng_.below(n);
  KvRequest r;
  r.client_id = config_.id;
  if (pick < config_.counter_keys.size()) {
    r.key = config_.counter_keys[pick];
    r.op = rng_.chance(650'000) ? KvOp::kIncr : KvOp::kGet;
    r.arg = r.op == KvOp::kIncr ? 1 : 0;
  } else {
    r.key = config_.register_keys[pick - config_.counter_keys.size()];
    r.op = rng_.chance(550'000) ? KvOp::kSet : KvOp::kGet;
    r.arg = r.op == KvOp::kSet ? static_cast<int64_t>(config_.id) * 1'000'000 + next_value_++ : 0;
  }
  send(r);
}

void KvClient::read_all(std::vector<uint32_t> keys,
                        std::function<void(std::map<uint32_t, int64_t>)> done) {
  read_keys_ = std::move(keys);
  read_values_.clear();
  read_done_ = std::move(done);
  on_reply_ = [this](const KvReply& reply) {
    read_values_[reply.key] = reply.value;
    read_next();
  };
  read_next();
}

void KvClient::read_next() {
  if (read_keys_.empty()) {
    on_reply_ = nullptr;
    if (read_done_) {
      auto done = std::move(read_done_);
      read_done_ = nullptr;
      done(read_values_);
    }
    return;
  }
  KvRequest r;
  r.client_id = config_.id;
  r.op = KvOp::kGet;
  r.key = read_keys_.front();
  read_keys_.erase(read_keys_.begin());
  send(r);
}

void KvClient::send(KvRequest request) {
  request.request_id = next_request_++;
  request_ = request;
  outstanding_ = true;
  op_index_ = history_->size();
  history_->push_back(Operation{config_.id, request.key, request.op, request.arg, events_.now(),
                                std::nullopt, 0});
  if (config_.trace) {
    config_.trace(fmt::format("client {}: #{} {} k{} {}", config_.id, request.request_id,
                              to_string(request.op), request.key, request.arg));
  }
  transmit();
}

void KvClient::transmit() {
  lan_.send(port_, Frame{encode_request(kGuestMac, mac_, request_)});
  retransmit_event_ = events_.after(config_.retransmit, [this] {
    if (!outstanding_) return;
    ++retransmissions_;
    if (config_.trace) {
      config_.trace(fmt::format("client {}: #{} retransmitted", config_.id, request_.request_id));
    }
    transmit();
  });
}

void KvClient::on_frame(const Frame& frame) {
  std::optional<KvReply> reply = decode_reply(frame.bytes);
  if (!reply || !outstanding_ || reply->client_id != config_.id ||
      reply->request_id != request_.request_id) {
    return;  // a duplicate or a late reply to an earlier request
  }
  outstanding_ = false;
  events_.cancel(retransmit_event_);
  Operation& op = (*history_)[op_index_];
  op.completed = events_.now();
  op.result = reply->value;
  ++completed_;
  if (config_.trace) {
    config_.trace(fmt::format("client {}: #{} -> {} (ticks {}, served {})", config_.id,
                              reply->request_id, reply->value, reply->ticks, reply->served));
  }
  if (on_reply_) on_reply_(*reply);
}

}  // namespace ftvm::sim
