// The channel's protocol without a socket (channel_endpoint.h).
#include "ft/channel_endpoint.h"

#include <gtest/gtest.h>

#include "log/record.h"

namespace ftvm::ft {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTimeout{500}, kHeartbeat{50};

Message records_msg(uint64_t first, const std::vector<log::Record>& records) {
  std::string encoded;
  for (const log::Record& r : records) EXPECT_TRUE(log::append_record(encoded, r).ok());
  return {MsgType::kRecords, Direction::kToBackup, 1, first + 1, encode_records(first, encoded)};
}

Message heartbeat_msg(uint64_t instret, bool should_run) {
  return {MsgType::kHeartbeat, Direction::kToBackup, 1, 1,
          encode_heartbeat({instret, 0, should_run})};
}

TEST(ChannelEndpoint, BackupAcknowledgesRecordsOnArrival) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  std::optional<ChannelEndpoint::Reply> r =
      b.on_message(milliseconds(1), records_msg(0, {{10, log::Progress{}}, {20, log::Progress{}}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, MsgType::kAck);
  Result<Ack> a = decode_ack(as_span(r->payload));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->received, 2u);
  EXPECT_EQ(a->executed, 0u);
  EXPECT_TRUE(a->should_run);  // it holds records it has not applied
  std::deque<QueuedRecord> q;
  b.take_records(q);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q[1].record.instret, 20u);
}

TEST(ChannelEndpoint, RecordsOutOfSequenceFailTheChannel) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  EXPECT_FALSE(b.on_message(milliseconds(1), records_msg(5, {{10, log::Progress{}}})));
  ASSERT_TRUE(b.failed());
  EXPECT_NE(b.failed()->find("from 5"), std::string::npos);
}

TEST(ChannelEndpoint, AHandoverAfterEveryRecordIsTaken) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  b.on_message(milliseconds(1), records_msg(0, {{10, log::Progress{}}, {20, log::Progress{}}}));
  EXPECT_FALSE(b.handover());
  b.on_message(milliseconds(2),
               {MsgType::kHandover, Direction::kToBackup, 1, 3, encode_handover({2, 20})});
  ASSERT_TRUE(b.handover());
  EXPECT_EQ(b.handover()->instret, 20u);
  EXPECT_FALSE(b.failed());
}

TEST(ChannelEndpoint, AHandoverBeforeTheLastRecordFailsTheChannel) {
  // A primary that says "take over" while records are missing would make
  // the backup go live short of outputs clients may have seen.
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  b.on_message(milliseconds(1), records_msg(0, {{10, log::Progress{}}}));
  b.on_message(milliseconds(2),
               {MsgType::kHandover, Direction::kToBackup, 1, 3, encode_handover({2, 20})});
  EXPECT_FALSE(b.handover());
  ASSERT_TRUE(b.failed());
  EXPECT_NE(b.failed()->find("handed over after 2 records but 1 were received"), std::string::npos)
      << *b.failed();
}

TEST(ChannelEndpoint, TransferMessagesReachTheSideTheyAreFor) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  b.on_message(milliseconds(1), {MsgType::kTransfer, Direction::kToBackup, 1, 1, "pages"});
  b.on_message(milliseconds(1), {MsgType::kTransferReply, Direction::kToBackup, 1, 2, "x"});
  p.on_message(milliseconds(1), {MsgType::kTransferReply, Direction::kToPrimary, 1, 1, "hashes"});
  p.on_message(milliseconds(1), {MsgType::kTransfer, Direction::kToPrimary, 1, 2, "y"});
  std::deque<std::string> at_b, at_p;
  b.take_transfer(at_b);
  p.take_transfer(at_p);
  EXPECT_EQ(at_b, std::deque<std::string>{"pages"});
  EXPECT_EQ(at_p, std::deque<std::string>{"hashes"});
}

TEST(ChannelEndpoint, PrimaryCountsAcknowledgements) {
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  Ack a{7, 3, 1000, 50, 700, 300, true};
  p.on_message(milliseconds(1), {MsgType::kAck, Direction::kToPrimary, 1, 1, encode_ack(a)});
  EXPECT_EQ(p.acked(), 7u);
  EXPECT_EQ(p.peer_exec().instret, 1000u);
  a.received = 5;  // an older ack never moves the position back
  p.on_message(milliseconds(2), {MsgType::kAck, Direction::kToPrimary, 1, 2, encode_ack(a)});
  EXPECT_EQ(p.acked(), 7u);
}

TEST(ChannelEndpoint, HeartbeatsCarryTheMainLoopsProgress) {
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  p.set_local(milliseconds(50), {1234, 99, true, 0, 0});
  std::optional<ChannelEndpoint::Reply> r = p.on_tick(milliseconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, MsgType::kHeartbeat);
  Result<Heartbeat> h = decode_heartbeat(as_span(r->payload));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->instret, 1234u);
  EXPECT_TRUE(h->should_run);
  EXPECT_FALSE(p.on_tick(milliseconds(70)));  // not due again yet
}

// A primary whose channel thread keeps sending heartbeats while its main
// loop is stuck (its instret frozen, its guest wanting to run) is failed.
TEST(ChannelEndpoint, BackupFailsAPrimaryThatTalksButDoesNotRun) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  for (int t = 0; t <= 450; t += 50) {
    b.on_message(milliseconds(t), heartbeat_msg(5000, true));
    (void)b.on_tick(milliseconds(t));
    ASSERT_FALSE(b.failed()) << t;
  }
  for (int t = 500; t <= 600; t += 50) {
    b.on_message(milliseconds(t), heartbeat_msg(5000, true));
    (void)b.on_tick(milliseconds(t));
  }
  ASSERT_TRUE(b.failed());
  EXPECT_NE(b.failed()->find("has not advanced"), std::string::npos);
}

// A main loop that stopped reporting (frozen while it was idle, say) is
// reported as one that should run, so its peer's stuck clock starts.
TEST(ChannelEndpoint, AMainLoopThatStopsReportingShouldHaveRun) {
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  p.set_local(milliseconds(0), {1234, 99, false, 0, 0});
  std::optional<ChannelEndpoint::Reply> r = p.on_tick(milliseconds(60));
  ASSERT_TRUE(r);
  EXPECT_FALSE(decode_heartbeat(as_span(r->payload))->should_run);
  r = p.on_tick(milliseconds(120));
  ASSERT_TRUE(r);
  EXPECT_TRUE(decode_heartbeat(as_span(r->payload))->should_run);
}

// A state hash over all of RAM can take longer than the failure timeout on
// a loaded host: while it runs the node is neither stuck nor overdue.
TEST(ChannelEndpoint, ACheckpointIsNotAStuckGuest) {
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  LocalProgress busy{1234, 99, true, 0, 0};
  busy.checkpointing = true;
  p.set_local(milliseconds(0), busy);
  for (int t = 60; t <= 3000; t += 60) {
    std::optional<ChannelEndpoint::Reply> r = p.on_tick(milliseconds(t));
    if (r) {
      EXPECT_FALSE(decode_heartbeat(as_span(r->payload))->should_run) << t;
    }
  }
}

TEST(ChannelEndpoint, ABackupCheckingAHashIsNotStuck) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  b.on_message(milliseconds(1), records_msg(0, {{10, log::Progress{}}, {20, log::Progress{}}}));
  LocalProgress busy{10, 0, true, 1, 10};
  busy.checkpointing = true;  // applying a StateHash record
  b.set_local(milliseconds(2), busy);
  std::optional<ChannelEndpoint::Reply> r = b.on_tick(milliseconds(100));
  ASSERT_TRUE(r);
  EXPECT_FALSE(decode_ack(as_span(r->payload))->should_run);
  b.on_message(milliseconds(3000), heartbeat_msg(20, false));
  b.set_local(milliseconds(3000), {20, 0, false, 1, 10});
  r = b.on_tick(milliseconds(3100));
  ASSERT_TRUE(r);
  EXPECT_TRUE(decode_ack(as_span(r->payload))->should_run);  // a record still queued
}

TEST(ChannelEndpoint, AnIdlePrimaryIsAlive) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  for (int t = 0; t <= 3000; t += 50) {
    b.on_message(milliseconds(t), heartbeat_msg(5000, false));
    (void)b.on_tick(milliseconds(t));
  }
  EXPECT_FALSE(b.failed());
}

TEST(ChannelEndpoint, StreamingRecordsProveProgress) {
  ChannelEndpoint b(false, kTimeout, kHeartbeat, milliseconds(0), {});
  b.on_message(milliseconds(0), heartbeat_msg(100, true));
  uint64_t first = 0;
  for (int t = 10; t <= 2000; t += 10) {
    b.on_message(milliseconds(t), records_msg(first, {{100 + static_cast<uint64_t>(t), log::Progress{}}}));
    ++first;
    (void)b.on_tick(milliseconds(t));
  }
  EXPECT_FALSE(b.failed());
}

TEST(ChannelEndpoint, SilenceFails) {
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), {});
  (void)p.on_tick(milliseconds(400));
  EXPECT_FALSE(p.failed());
  (void)p.on_tick(milliseconds(501));
  ASSERT_TRUE(p.failed());
  EXPECT_NE(p.failed()->find("silent"), std::string::npos);
}

TEST(ChannelEndpoint, LinkFailureWakesTheMainLoop) {
  int woken = 0;
  ChannelEndpoint p(true, kTimeout, kHeartbeat, milliseconds(0), [&] { ++woken; });
  p.on_link_failed("connection reset");
  EXPECT_EQ(*p.failed(), "connection reset");
  EXPECT_EQ(woken, 1);
  p.on_link_failed("later");
  EXPECT_EQ(*p.failed(), "connection reset");
}

}  // namespace
}  // namespace ftvm::ft
