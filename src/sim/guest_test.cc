// Tests of the KV guest on a real machine: the protocol, at-most-once
// retransmissions, the timer, and determinism.
#include <gtest/gtest.h>

#include "sim/guest_image.h"
#include "sim/guest_runner.h"
#include "sim/kv_protocol.h"

namespace ftvm::sim {
namespace {

constexpr vm::MacAddress kClient = {0x02, 0, 0x5e, 0, 0, 7};

const GuestImage& image() {
  static const std::unique_ptr<GuestImage> img = [] {
    auto r = GuestImage::boot();
    EXPECT_TRUE(r) << (r ? "" : r.error());
    return r ? std::move(*r) : nullptr;
  }();
  return *img;
}

class Guest {
 public:
  Guest() : runner_(image(), 0) {
    runner_.set_output([this](uint64_t index, uint64_t, std::vector<uint8_t> b) {
      outputs_.push_back(b);
      indices_.push_back(index);
    });
  }
  // Sends `r` at time `t` and returns the reply (or nullopt if none).
  std::optional<KvReply> ask(Time t, const KvRequest& r) {
    EXPECT_TRUE(runner_.advance_to(t));
    const size_t before = outputs_.size();
    EXPECT_TRUE(runner_.deliver(encode_request(kGuestMac, kClient, r)));
    if (outputs_.size() == before) return std::nullopt;
    EXPECT_EQ(outputs_.size(), before + 1);
    // Addressed back to the client, from the guest.
    EXPECT_TRUE(std::equal(kClient.begin(), kClient.end(), outputs_.back().begin()));
    EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), outputs_.back().begin() + 6));
    return decode_reply(outputs_.back());
  }
  GuestRunner runner_;
  std::vector<std::vector<uint8_t>> outputs_;
  std::vector<uint64_t> indices_;
};

KvRequest req(KvOp op, uint64_t id, uint32_t key, int64_t arg = 0, uint32_t client = 1) {
  return KvRequest{op, client, id, key, arg};
}

TEST(Guest, BootsToItsIdleLoopAndSaysSo) {
  EXPECT_EQ(image().boot_console(), "kv: ready\n");
  EXPECT_GT(image().snapshot_bytes(), 0u);
}

TEST(Guest, AnswersSetGetAndIncr) {
  Guest g;
  auto r = g.ask(kMillisecond, req(KvOp::kSet, 1, 3, 42));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->op, KvOp::kSet);
  EXPECT_EQ(r->status, KvStatus::kOk);
  EXPECT_EQ(r->client_id, 1u);
  EXPECT_EQ(r->request_id, 1u);
  EXPECT_EQ(r->value, 42);
  EXPECT_EQ(r->served, 1u);
  r = g.ask(2 * kMillisecond, req(KvOp::kGet, 2, 3));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 42);
  r = g.ask(3 * kMillisecond, req(KvOp::kIncr, 3, 3, 5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 47);
  r = g.ask(4 * kMillisecond, req(KvOp::kGet, 1, 4, 0, /*client=*/2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 0);
  EXPECT_EQ(r->served, 4u);
  r = g.ask(5 * kMillisecond, req(KvOp::kGet, 4, kKvKeys));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, KvStatus::kBadKey);
  EXPECT_EQ(g.indices_, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(Guest, ARetransmissionGetsTheSameReplyAndIsNotExecutedAgain) {
  Guest g;
  auto first = g.ask(kMillisecond, req(KvOp::kIncr, 1, 0, 1));
  ASSERT_TRUE(first);
  const std::vector<uint8_t> bytes = g.outputs_.back();
  auto again = g.ask(50 * kMillisecond, req(KvOp::kIncr, 1, 0, 1));  // later, ticks moved on
  ASSERT_TRUE(again);
  EXPECT_EQ(g.outputs_.back(), bytes);
  EXPECT_FALSE(g.ask(60 * kMillisecond, req(KvOp::kIncr, 0, 0, 1)));  // stale: ignored
  auto next = g.ask(70 * kMillisecond, req(KvOp::kIncr, 2, 0, 1));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->value, 2);
}

TEST(Guest, RepliesCarryTheTimerTicks) {
  Guest g;
  auto early = g.ask(kMillisecond, req(KvOp::kGet, 1, 0));
  auto late = g.ask(kMillisecond + 1 * kSecond, req(KvOp::kGet, 2, 0));
  ASSERT_TRUE(early && late);
  // 10 ms per tick.
  EXPECT_GE(late->ticks - early->ticks, 99u);
  EXPECT_LE(late->ticks - early->ticks, 101u);
}

TEST(Guest, TheSameInputsAtTheSameTimesGiveTheSameOutputsAndState) {
  Guest a, b;
  for (Guest* g : {&a, &b}) {
    for (uint64_t i = 1; i <= 20; ++i) {
      g->ask(static_cast<Time>(i) * 3 * kMillisecond,
             req(i % 3 == 0 ? KvOp::kGet : KvOp::kIncr, i, static_cast<uint32_t>(i % 4), 1));
    }
  }
  EXPECT_EQ(a.outputs_, b.outputs_);
  EXPECT_EQ(a.runner_.machine().instret(), b.runner_.machine().instret());
  EXPECT_EQ(a.runner_.machine().state_hash(), b.runner_.machine().state_hash());
}

TEST(Guest, IgnoresFramesThatAreNotRequests) {
  Guest g;
  std::vector<uint8_t> junk = encode_request(kGuestMac, kClient, req(KvOp::kGet, 1, 0));
  junk[12] = 0x08;  // IPv4
  ASSERT_TRUE(g.runner_.advance_to(kMillisecond));
  ASSERT_TRUE(g.runner_.deliver(junk));
  junk.resize(20);
  junk[12] = 0x88;
  junk[13] = 0xb5;  // ours but truncated
  ASSERT_TRUE(g.runner_.deliver(junk));
  EXPECT_TRUE(g.outputs_.empty());
  EXPECT_TRUE(g.ask(2 * kMillisecond, req(KvOp::kGet, 1, 0)));
}

TEST(KvProtocol, RequestsRoundTrip) {
  const KvRequest r = req(KvOp::kSet, 0x0102030405060708, 9, -5, 77);
  const std::vector<uint8_t> f = encode_request(kGuestMac, kClient, r);
  ASSERT_EQ(f.size(), kKvFrameBytes);
  auto back = decode_request(f);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->op, r.op);
  EXPECT_EQ(back->client_id, 77u);
  EXPECT_EQ(back->request_id, r.request_id);
  EXPECT_EQ(back->key, 9u);
  EXPECT_EQ(back->arg, -5);
  EXPECT_FALSE(decode_reply(f));  // a request is not a reply
}

}  // namespace
}  // namespace ftvm::sim
