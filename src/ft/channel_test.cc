// Tests for the logging channel: message sealing and verification, the
// payload codecs, and Connection over real sockets. One edge case per test;
// every wait has a deadline.
#include "ft/channel.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "log/coding.h"

namespace ftvm::ft {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::shared_ptr<const auth::Secret> TestSecret(char fill = 'k') {
  const std::string key(32, fill);
  return std::make_shared<const auth::Secret>(auth::Secret::from_bytes(as_span(key)));
}

Message Msg(MsgType type, Direction dir, uint64_t epoch, uint64_t seq, std::string payload = "") {
  return Message{type, dir, epoch, seq, std::move(payload)};
}

// A heartbeat to the backup at `epoch` with sequence number `seq`.
std::string Sealed(uint64_t epoch, uint64_t seq, char secret_fill = 'k') {
  return seal_message(*TestSecret(secret_fill),
                      Msg(MsgType::kHeartbeat, Direction::kToBackup, epoch, seq,
                          encode_heartbeat({seq * 10, seq * 20})));
}

// A reader on the backup side.
MessageReader BackupReader(std::optional<uint64_t> epoch = 7) {
  return MessageReader(TestSecret(), Direction::kToBackup, epoch);
}

// Feeds `bytes` and returns every whole message the reader then yields.
std::vector<MessageReader::Item> FeedAll(MessageReader& reader, const std::string& bytes) {
  reader.feed(as_span(bytes));
  std::vector<MessageReader::Item> out;
  for (;;) {
    Result<std::optional<MessageReader::Item>> item = reader.next();
    if (!item) {
      ADD_FAILURE() << item.error();
      break;
    }
    if (!item->has_value()) break;
    out.push_back(std::move(**item));
  }
  return out;
}

// The single item `bytes` yields; fails the test unless there is exactly one.
MessageReader::Item FeedOne(MessageReader& reader, const std::string& bytes) {
  std::vector<MessageReader::Item> items = FeedAll(reader, bytes);
  if (items.size() != 1) {
    ADD_FAILURE() << items.size() << " items instead of one";
    return {};
  }
  return std::move(items[0]);
}

void ExpectSame(const Message& got, const Message& want) {
  EXPECT_EQ(got.type, want.type);
  EXPECT_EQ(got.direction, want.direction);
  EXPECT_EQ(got.epoch, want.epoch);
  EXPECT_EQ(got.seq, want.seq);
  EXPECT_EQ(got.payload, want.payload);
}

// Seals `m`, reads it back through a reader expecting its direction and
// epoch, and checks it is accepted unchanged.
void ExpectRoundTrip(const Message& m) {
  MessageReader reader(TestSecret(), m.direction, m.epoch);
  MessageReader::Item item = FeedOne(reader, seal_message(*TestSecret(), m));
  EXPECT_EQ(item.rejection, Rejection::kNone) << rejection_name(item.rejection);
  ExpectSame(item.message, m);
}

log::Header TestHeader() {
  log::Header h;
  h.ram_size = 256 << 20;
  h.cmdline = "console=ttyS0 root=/dev/vda";
  h.kernel = {4096, log::Sha256{1, 2, 3}};
  h.disk = log::ImageDigest{1 << 20, log::Sha256{9, 8, 7}};
  h.metadata = {{"ftvm.version", "test"}};
  return h;
}

std::vector<log::Record> TestRecords() {
  return {
      {10, log::ConsoleInput{{'l', 's', '\n'}}},
      {20, log::NetFrame{log::Bytes(64, 0xee)}},
      {30, log::Entropy{{1, 2, 3, 4}}},
      {40, log::Progress{}},
  };
}

std::string EncodedRecords(const std::vector<log::Record>& records) {
  std::string out;
  for (const log::Record& r : records) EXPECT_TRUE(log::append_record(out, r).ok());
  return out;
}

// --- sealing and reading ---

TEST(ChannelMessage, SealedSizeIsOverheadPlusPayload) {
  const std::string payload(100, 'p');
  EXPECT_EQ(seal_message(*TestSecret(), Msg(MsgType::kRecords, Direction::kToBackup, 1, 1, payload))
                .size(),
            kMessageOverhead + payload.size());
}

TEST(ChannelMessage, HelloRoundTrips) {
  Hello h;
  h.vm = "redis-1";
  h.heartbeat_ms = 100;
  h.timeout_ms = 1500;
  h.header = TestHeader();
  const Message m = Msg(MsgType::kHello, Direction::kToBackup, 3, 1, encode_hello(h));
  ExpectRoundTrip(m);
  Result<Hello> d = decode_hello(as_span(m.payload));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->version, kProtocolVersion);
  EXPECT_EQ(d->vm, "redis-1");
  EXPECT_EQ(d->heartbeat_ms, 100u);
  EXPECT_EQ(d->timeout_ms, 1500u);
  EXPECT_EQ(d->header, TestHeader());
}

TEST(ChannelMessage, HelloAckOkRoundTrips) {
  const Message m = Msg(MsgType::kHelloAck, Direction::kToPrimary, 3, 1, encode_hello_ack({true, ""}));
  ExpectRoundTrip(m);
  Result<HelloAck> d = decode_hello_ack(as_span(m.payload));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_TRUE(d->ok);
  EXPECT_EQ(d->message, "");
}

TEST(ChannelMessage, HelloAckRefusalKeepsItsReason) {
  const Message m = Msg(MsgType::kHelloAck, Direction::kToPrimary, 3, 1,
                        encode_hello_ack({false, "kernel differs: size 1 vs 2"}));
  ExpectRoundTrip(m);
  Result<HelloAck> d = decode_hello_ack(as_span(m.payload));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_FALSE(d->ok);
  EXPECT_EQ(d->message, "kernel differs: size 1 vs 2");
}

TEST(ChannelMessage, RecordsRoundTripWithSizes) {
  const std::vector<log::Record> records = TestRecords();
  const Message m = Msg(MsgType::kRecords, Direction::kToBackup, 3, 2,
                        encode_records(41, EncodedRecords(records)));
  ExpectRoundTrip(m);
  Result<RecordsMsg> d = decode_records(as_span(m.payload));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->first, 41u);
  EXPECT_EQ(d->records, records);
  ASSERT_EQ(d->sizes.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(d->sizes[i], log::encode_record(records[i])->size()) << i;
  }
}

TEST(ChannelMessage, EmptyRecordsMessageHasNoRecords) {
  Result<RecordsMsg> d = decode_records(as_span(encode_records(5, "")));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->first, 5u);
  EXPECT_TRUE(d->records.empty());
  EXPECT_TRUE(d->sizes.empty());
}

TEST(ChannelMessage, AckRoundTrips) {
  const Ack a{1, 2, 3, 4, 5, 6};
  const Message m = Msg(MsgType::kAck, Direction::kToPrimary, 3, 9, encode_ack(a));
  ExpectRoundTrip(m);
  Result<Ack> d = decode_ack(as_span(m.payload));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->received, 1u);
  EXPECT_EQ(d->executed, 2u);
  EXPECT_EQ(d->exec_instret, 3u);
  EXPECT_EQ(d->exec_mtime, 4u);
  EXPECT_EQ(d->received_bytes, 5u);
  EXPECT_EQ(d->executed_bytes, 6u);
}

TEST(ChannelMessage, HeartbeatRoundTripsBothWays) {
  for (Direction dir : {Direction::kToBackup, Direction::kToPrimary}) {
    const Message m = Msg(MsgType::kHeartbeat, dir, 3, 4, encode_heartbeat({~uint64_t{0}, 77}));
    ExpectRoundTrip(m);
    Result<Heartbeat> d = decode_heartbeat(as_span(m.payload));
    ASSERT_TRUE(d.ok()) << d.error();
    EXPECT_EQ(d->instret, ~uint64_t{0});
    EXPECT_EQ(d->mtime, 77u);
  }
}

TEST(ChannelMessage, ByteAtATimeYieldsNothingUntilTheLastByte) {
  MessageReader reader = BackupReader();
  const std::string bytes = Sealed(7, 1);
  for (size_t i = 0; i + 1 < bytes.size(); ++i) {
    reader.feed(as_span(bytes.substr(i, 1)));
    Result<std::optional<MessageReader::Item>> item = reader.next();
    ASSERT_TRUE(item.ok()) << "byte " << i << ": " << item.error();
    ASSERT_FALSE(item->has_value()) << "byte " << i;
  }
  MessageReader::Item item = FeedOne(reader, bytes.substr(bytes.size() - 1));
  EXPECT_EQ(item.rejection, Rejection::kNone);
  EXPECT_EQ(item.message.seq, 1u);
}

TEST(ChannelMessage, ByteAtATimeAcrossSeveralMessages) {
  MessageReader reader = BackupReader();
  const std::string bytes = Sealed(7, 1) + Sealed(7, 2) + Sealed(7, 3);
  std::vector<uint64_t> seqs;
  for (char c : bytes) {
    for (MessageReader::Item& item : FeedAll(reader, std::string(1, c))) {
      EXPECT_EQ(item.rejection, Rejection::kNone);
      seqs.push_back(item.message.seq);
    }
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(ChannelMessage, SeveralMessagesInOneFeed) {
  MessageReader reader = BackupReader();
  std::vector<MessageReader::Item> items =
      FeedAll(reader, Sealed(7, 1) + Sealed(7, 2) + Sealed(7, 5));
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].message.seq, 1u);
  EXPECT_EQ(items[1].message.seq, 2u);
  EXPECT_EQ(items[2].message.seq, 5u);
  for (const MessageReader::Item& item : items) EXPECT_EQ(item.rejection, Rejection::kNone);
  EXPECT_EQ(reader.last_seq(), 5u);
}

TEST(ChannelMessage, MessageSplitAcrossFeedsIsWhole) {
  MessageReader reader = BackupReader();
  const std::string bytes = Sealed(7, 1) + Sealed(7, 2);
  const size_t cut = bytes.size() / 2 + 3;  // inside the second message
  std::vector<MessageReader::Item> first = FeedAll(reader, bytes.substr(0, cut));
  std::vector<MessageReader::Item> second = FeedAll(reader, bytes.substr(cut));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].rejection, Rejection::kNone);
  EXPECT_EQ(second[0].message.payload, encode_heartbeat({20, 40}));
}

TEST(ChannelMessage, BodyOfExactlyTheLimitIsFramed) {
  MessageReader reader = BackupReader();
  const std::string payload(kMaxMessageBody - (kMessageOverhead - 4 - auth::kMacSize), 'r');
  MessageReader::Item item = FeedOne(
      reader, seal_message(*TestSecret(), Msg(MsgType::kRecords, Direction::kToBackup, 7, 1, payload)));
  EXPECT_EQ(item.rejection, Rejection::kNone);
  EXPECT_EQ(item.message.payload.size(), payload.size());
}

// --- rejections ---

TEST(ChannelReject, BitFlippedInPayloadIsForged) {
  MessageReader reader = BackupReader();
  std::string bytes = Sealed(7, 1);
  bytes[4 + 18 + 3] ^= 0x01;
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kForged);
  EXPECT_EQ(reader.last_seq(), 0u);
}

TEST(ChannelReject, BitFlippedInBodyHeaderIsForged) {
  MessageReader reader = BackupReader();
  std::string bytes = Sealed(7, 1);
  bytes[4 + 2 + 8] ^= 0x40;  // the sequence number's low byte
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kForged);
  EXPECT_EQ(reader.last_seq(), 0u);
}

TEST(ChannelReject, BitFlippedInMacIsForged) {
  MessageReader reader = BackupReader();
  std::string bytes = Sealed(7, 1);
  bytes[bytes.size() - 1] ^= 0x80;
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kForged);
}

TEST(ChannelReject, SealedWithAnotherSecretIsForged) {
  MessageReader reader = BackupReader();
  EXPECT_EQ(FeedOne(reader, Sealed(7, 1, 'x')).rejection, Rejection::kForged);
}

TEST(ChannelReject, ForgedMessageDoesNotAdvanceTheSequence) {
  MessageReader reader = BackupReader();
  EXPECT_EQ(FeedOne(reader, Sealed(7, 1000, 'x')).rejection, Rejection::kForged);
  EXPECT_EQ(FeedOne(reader, Sealed(7, 1)).rejection, Rejection::kNone);
}

TEST(ChannelReject, WrongDirectionIsRejected) {
  MessageReader reader = BackupReader();
  const std::string bytes = seal_message(
      *TestSecret(), Msg(MsgType::kHeartbeat, Direction::kToPrimary, 7, 1, encode_heartbeat({})));
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kWrongDirection);
  EXPECT_EQ(reader.last_seq(), 0u);
}

TEST(ChannelReject, EpochBelowThePinnedOneIsStale) {
  MessageReader reader = BackupReader(7);
  EXPECT_EQ(FeedOne(reader, Sealed(6, 1)).rejection, Rejection::kStaleEpoch);
  EXPECT_EQ(reader.last_seq(), 0u);
}

TEST(ChannelReject, EpochAboveThePinnedOneIsStale) {
  MessageReader reader = BackupReader(7);
  EXPECT_EQ(FeedOne(reader, Sealed(8, 1)).rejection, Rejection::kStaleEpoch);
  EXPECT_EQ(reader.epoch(), std::optional<uint64_t>(7));
}

TEST(ChannelReject, SameSequenceTwiceIsReplayed) {
  MessageReader reader = BackupReader();
  const std::string bytes = Sealed(7, 1);
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kNone);
  EXPECT_EQ(FeedOne(reader, bytes).rejection, Rejection::kReplayed);
}

TEST(ChannelReject, LowerSequenceAfterHigherIsReplayed) {
  MessageReader reader = BackupReader();
  EXPECT_EQ(FeedOne(reader, Sealed(7, 5)).rejection, Rejection::kNone);
  EXPECT_EQ(FeedOne(reader, Sealed(7, 4)).rejection, Rejection::kReplayed);
  EXPECT_EQ(reader.last_seq(), 5u);
}

TEST(ChannelReject, SequenceZeroIsReplayed) {
  MessageReader reader = BackupReader();
  EXPECT_EQ(FeedOne(reader, Sealed(7, 0)).rejection, Rejection::kReplayed);
}

TEST(ChannelReject, SetLastSeqRejectsEverythingUpToIt) {
  MessageReader reader = BackupReader();
  reader.set_last_seq(10);
  EXPECT_EQ(FeedOne(reader, Sealed(7, 10)).rejection, Rejection::kReplayed);
  EXPECT_EQ(FeedOne(reader, Sealed(7, 11)).rejection, Rejection::kNone);
}

TEST(ChannelReject, FirstAuthenticMessagePinsTheEpoch) {
  MessageReader reader = BackupReader(std::nullopt);
  EXPECT_EQ(reader.epoch(), std::nullopt);
  EXPECT_EQ(FeedOne(reader, Sealed(4, 1)).rejection, Rejection::kNone);
  EXPECT_EQ(reader.epoch(), std::optional<uint64_t>(4));
  EXPECT_EQ(FeedOne(reader, Sealed(5, 2)).rejection, Rejection::kStaleEpoch);
}

TEST(ChannelReject, ForgedMessageDoesNotPinTheEpoch) {
  MessageReader reader = BackupReader(std::nullopt);
  EXPECT_EQ(FeedOne(reader, Sealed(9, 1, 'x')).rejection, Rejection::kForged);
  EXPECT_EQ(reader.epoch(), std::nullopt);
  EXPECT_EQ(FeedOne(reader, Sealed(4, 1)).rejection, Rejection::kNone);
  EXPECT_EQ(reader.epoch(), std::optional<uint64_t>(4));
}

TEST(ChannelReject, ReplayedMessageDoesNotPinTheEpoch) {
  MessageReader reader = BackupReader(std::nullopt);
  reader.set_last_seq(3);
  EXPECT_EQ(FeedOne(reader, Sealed(9, 2)).rejection, Rejection::kReplayed);
  EXPECT_EQ(reader.epoch(), std::nullopt);
}

TEST(ChannelReject, CountsAddUpPerKind) {
  RejectCounts counts;
  for (Rejection r : {Rejection::kNone, Rejection::kForged, Rejection::kForged,
                      Rejection::kWrongDirection, Rejection::kStaleEpoch, Rejection::kReplayed}) {
    counts.count(r);
  }
  EXPECT_EQ(counts.forged, 2u);
  EXPECT_EQ(counts.wrong_direction, 1u);
  EXPECT_EQ(counts.stale_epoch, 1u);
  EXPECT_EQ(counts.replayed, 1u);
  EXPECT_EQ(counts.total(), 5u);
}

// --- framing ---

TEST(ChannelFraming, LengthAboveTheLimitIsUnframeable) {
  MessageReader reader = BackupReader();
  std::string bytes;
  log::internal::put_u32(bytes, static_cast<uint32_t>(kMaxMessageBody + 1));
  reader.feed(as_span(bytes));  // the length alone is enough to tell
  Result<std::optional<MessageReader::Item>> item = reader.next();
  ASSERT_FALSE(item.ok());
  EXPECT_TRUE(Contains(item.error(), "cannot be framed")) << item.error();
}

TEST(ChannelFraming, LengthBelowTheBodyHeaderIsUnframeable) {
  MessageReader reader = BackupReader();
  std::string bytes;
  log::internal::put_u32(bytes, 17);
  bytes += std::string(17 + auth::kMacSize, '\0');
  reader.feed(as_span(bytes));
  Result<std::optional<MessageReader::Item>> item = reader.next();
  ASSERT_FALSE(item.ok());
  EXPECT_TRUE(Contains(item.error(), "cannot be framed")) << item.error();
}

TEST(ChannelFraming, ZeroLengthIsUnframeable) {
  MessageReader reader = BackupReader();
  reader.feed(as_span(std::string(4, '\0')));
  EXPECT_FALSE(reader.next().ok());
}

TEST(ChannelFraming, FewerThanFourBytesNeedMore) {
  MessageReader reader = BackupReader();
  reader.feed(as_span(std::string(3, '\xff')));
  Result<std::optional<MessageReader::Item>> item = reader.next();
  ASSERT_TRUE(item.ok()) << item.error();
  EXPECT_FALSE(item->has_value());
}

// --- payload decoders ---

TEST(ChannelPayload, TruncatedHelloNamesHello) {
  Hello h;
  h.vm = "vm";
  h.header = TestHeader();
  const std::string full = encode_hello(h);
  for (size_t len = 0; len < full.size(); ++len) {
    Result<Hello> d = decode_hello(as_span(full.substr(0, len)));
    ASSERT_FALSE(d.ok()) << "length " << len;
    EXPECT_TRUE(d.error().starts_with("hello: ")) << "length " << len << ": " << d.error();
  }
}

TEST(ChannelPayload, HelloOfAnotherVersionSaysToRunTheSameVersion) {
  Hello h;
  h.version = kProtocolVersion + 1;
  h.header = TestHeader();
  Result<Hello> d = decode_hello(as_span(encode_hello(h)));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.error(), "run the same ftvm version")) << d.error();
  EXPECT_TRUE(Contains(d.error(), std::to_string(kProtocolVersion + 1))) << d.error();
}

TEST(ChannelPayload, HelloWithCorruptMachineHeaderIsAnError) {
  Hello h;
  h.header = TestHeader();
  std::string bytes = encode_hello(h);
  bytes[4 + 4 + 16] ^= 0xff;  // the header's first magic byte
  Result<Hello> d = decode_hello(as_span(bytes));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().starts_with("hello: ")) << d.error();
}

TEST(ChannelPayload, TruncatedHelloAckNamesHelloAck) {
  const std::string full = encode_hello_ack({false, "no"});
  for (size_t len = 0; len < full.size(); ++len) {
    Result<HelloAck> d = decode_hello_ack(as_span(full.substr(0, len)));
    ASSERT_FALSE(d.ok()) << "length " << len;
    EXPECT_TRUE(Contains(d.error(), "hello-ack")) << d.error();
  }
}

TEST(ChannelPayload, TruncatedRecordsNamesRecords) {
  const std::string full = encode_records(0, EncodedRecords(TestRecords()));
  std::vector<size_t> boundaries{8};
  for (const log::Record& r : TestRecords()) {
    boundaries.push_back(boundaries.back() + log::encode_record(r)->size());
  }
  for (size_t len = 0; len < full.size(); ++len) {
    if (std::find(boundaries.begin(), boundaries.end(), len) != boundaries.end()) continue;
    Result<RecordsMsg> d = decode_records(as_span(full.substr(0, len)));
    ASSERT_FALSE(d.ok()) << "length " << len;
    EXPECT_TRUE(d.error().starts_with("records: ")) << "length " << len << ": " << d.error();
  }
}

TEST(ChannelPayload, CorruptRecordIsAnError) {
  std::string bytes = encode_records(0, EncodedRecords(TestRecords()));
  bytes[bytes.size() - 8] ^= 0x10;  // inside the last records
  Result<RecordsMsg> d = decode_records(as_span(bytes));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().starts_with("records: ")) << d.error();
}

TEST(ChannelPayload, CorruptNetFramePayloadIsAnError) {
  const std::string frame = EncodedRecords({{20, log::NetFrame{log::Bytes(64, 0xee)}}});
  std::string bytes = encode_records(0, frame);
  bytes[8 + log::kRecordHeaderSize + 10] ^= 0x01;  // one bit of the frame
  Result<RecordsMsg> d = decode_records(as_span(bytes));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().starts_with("records: ")) << d.error();
}

TEST(ChannelPayload, TruncatedAckNamesAck) {
  const std::string full = encode_ack({1, 2, 3, 4, 5, 6});
  for (size_t len = 0; len < full.size(); ++len) {
    Result<Ack> d = decode_ack(as_span(full.substr(0, len)));
    ASSERT_FALSE(d.ok()) << "length " << len;
    EXPECT_TRUE(d.error().starts_with("ack: ")) << d.error();
  }
}

TEST(ChannelPayload, TruncatedHeartbeatNamesHeartbeat) {
  const std::string full = encode_heartbeat({1, 2});
  for (size_t len = 0; len < full.size(); ++len) {
    Result<Heartbeat> d = decode_heartbeat(as_span(full.substr(0, len)));
    ASSERT_FALSE(d.ok()) << "length " << len;
    EXPECT_TRUE(d.error().starts_with("heartbeat: ")) << d.error();
  }
}

// --- Connection over a socket pair ---

// Both ends of one channel at epoch 7 over an AF_UNIX stream socket pair.
class ChannelConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    primary_ = std::make_unique<Connection>(fds[0], TestSecret(), Direction::kToBackup, 7);
    backup_ = std::make_unique<Connection>(fds[1], TestSecret(), Direction::kToPrimary, 7);
  }

  // Writes raw bytes into the stream towards the backup.
  void Inject(const std::string& bytes) {
    ASSERT_EQ(::send(primary_->fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  // The next accepted message at `c`, failing the test on error or timeout.
  static Message Receive(Connection& c) {
    Result<std::optional<Message>> m = c.receive(milliseconds(1000));
    if (!m) {
      ADD_FAILURE() << m.error();
      return {};
    }
    if (!m->has_value()) {
      ADD_FAILURE() << "nothing arrived within the deadline";
      return {};
    }
    return std::move(**m);
  }

  std::unique_ptr<Connection> primary_, backup_;
};

TEST_F(ChannelConnection, PrimaryToBackup) {
  ASSERT_TRUE(primary_->send(MsgType::kRecords, "abc").ok());
  const Message m = Receive(*backup_);
  ExpectSame(m, Msg(MsgType::kRecords, Direction::kToBackup, 7, 1, "abc"));
  EXPECT_EQ(backup_->last_received_seq(), 1u);
}

TEST_F(ChannelConnection, BackupToPrimary) {
  ASSERT_TRUE(backup_->send(MsgType::kAck, encode_ack({3, 2, 1, 0, 9, 8})).ok());
  const Message m = Receive(*primary_);
  ExpectSame(m, Msg(MsgType::kAck, Direction::kToPrimary, 7, 1, encode_ack({3, 2, 1, 0, 9, 8})));
}

TEST_F(ChannelConnection, SequenceNumbersCountUpPerSender) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "").ok());
  ASSERT_TRUE(backup_->send(MsgType::kHeartbeat, "").ok());
  EXPECT_EQ(Receive(*backup_).seq, 1u);
  EXPECT_EQ(Receive(*backup_).seq, 2u);
  EXPECT_EQ(Receive(*backup_).seq, 3u);
  EXPECT_EQ(Receive(*primary_).seq, 1u);
  EXPECT_EQ(backup_->last_received_seq(), 3u);
}

TEST_F(ChannelConnection, ReceiveTimesOutWithNothingWithinTheDeadline) {
  const auto start = Clock::now();
  Result<std::optional<Message>> m = backup_->receive(milliseconds(50));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(m->has_value());
  EXPECT_GE(elapsed, milliseconds(45));
  EXPECT_LT(elapsed, milliseconds(500));
}

TEST_F(ChannelConnection, ZeroTimeoutReturnsAtOnce) {
  const auto start = Clock::now();
  Result<std::optional<Message>> m = backup_->receive(milliseconds(0));
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(m->has_value());
  EXPECT_LT(Clock::now() - start, milliseconds(100));
}

TEST_F(ChannelConnection, HalfAMessageWaitsForTheRest) {
  const std::string bytes = Sealed(7, 1);
  Inject(bytes.substr(0, 20));
  Result<std::optional<Message>> m = backup_->receive(milliseconds(10));
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(m->has_value());
  Inject(bytes.substr(20));
  EXPECT_EQ(Receive(*backup_).seq, 1u);
}

TEST_F(ChannelConnection, PeerCloseIsAnError) {
  primary_.reset();
  Result<std::optional<Message>> m = backup_->receive(milliseconds(1000));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.error(), "closed")) << m.error();
}

TEST_F(ChannelConnection, MessagesSentBeforeCloseStillArrive) {
  ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "last").ok());
  primary_.reset();
  EXPECT_EQ(Receive(*backup_).payload, "last");
  EXPECT_FALSE(backup_->receive(milliseconds(1000)).ok());
}

TEST_F(ChannelConnection, ShutdownStopsABlockedReceive) {
  Result<std::optional<Message>> got = std::optional<Message>();
  std::thread receiver([&] { got = backup_->receive(milliseconds(1500)); });
  std::this_thread::sleep_for(milliseconds(20));
  const auto start = Clock::now();
  backup_->shutdown();
  receiver.join();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  EXPECT_FALSE(got.ok());
}

TEST_F(ChannelConnection, FlushTimesOutWhenThePeerTakesNoData) {
  const std::string big(kMaxMessageBody - 18, 'x');  // beyond any socket buffer
  ASSERT_TRUE(primary_->send(MsgType::kRecords, big).ok());
  EXPECT_GT(primary_->queued_bytes(), 0u);
  const auto start = Clock::now();
  Status s = primary_->flush(milliseconds(50));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "timed out")) << s.error();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
}

TEST_F(ChannelConnection, InjectedForgedBytesAreCountedAndSkipped) {
  ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "one").ok());
  Inject(Sealed(7, 2, 'x'));
  std::string flipped = Sealed(7, 100);
  flipped[10] ^= 0x04;
  Inject(flipped);
  ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "two").ok());
  EXPECT_EQ(Receive(*backup_).payload, "one");
  const Message second = Receive(*backup_);
  EXPECT_EQ(second.payload, "two");
  EXPECT_EQ(second.seq, 2u);
  EXPECT_EQ(backup_->rejected().forged, 2u);
  EXPECT_EQ(backup_->rejected().total(), 2u);
}

TEST_F(ChannelConnection, EveryRejectionKindIsCountedAndSkipped) {
  auto secret = TestSecret();
  ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "one").ok());  // seq 1
  Inject(Sealed(7, 5, 'x'));                                      // forged
  Inject(seal_message(*secret, Msg(MsgType::kAck, Direction::kToPrimary, 7, 6)));  // reflected
  Inject(Sealed(6, 7));                                           // stale epoch
  Inject(Sealed(7, 1));                                           // replayed
  ASSERT_TRUE(primary_->send(MsgType::kHeartbeat, "two").ok());  // seq 2
  EXPECT_EQ(Receive(*backup_).payload, "one");
  EXPECT_EQ(Receive(*backup_).payload, "two");
  const RejectCounts& r = backup_->rejected();
  EXPECT_EQ(r.forged, 1u);
  EXPECT_EQ(r.wrong_direction, 1u);
  EXPECT_EQ(r.stale_epoch, 1u);
  EXPECT_EQ(r.replayed, 1u);
  Result<std::optional<Message>> m = backup_->receive(milliseconds(10));
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(m->has_value());
}

TEST_F(ChannelConnection, UnframeableBytesAreAnError) {
  std::string bytes;
  log::internal::put_u32(bytes, 0xffffffff);
  Inject(bytes);
  Result<std::optional<Message>> m = backup_->receive(milliseconds(1000));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.error(), "cannot be framed")) << m.error();
}

TEST_F(ChannelConnection, ByteCountsAddUp) {
  const std::vector<std::string> payloads{"", "x", std::string(70000, 'y')};
  uint64_t expected = 0;
  for (const std::string& p : payloads) {
    ASSERT_TRUE(primary_->send(MsgType::kRecords, p).ok());
    expected += kMessageOverhead + p.size();
  }
  ASSERT_TRUE(primary_->flush(milliseconds(1000)).ok());
  for (const std::string& p : payloads) EXPECT_EQ(Receive(*backup_).payload.size(), p.size());
  EXPECT_EQ(primary_->bytes_sent(), expected);
  EXPECT_EQ(backup_->bytes_received(), expected);
  EXPECT_EQ(primary_->bytes_received(), 0u);
  EXPECT_EQ(backup_->bytes_sent(), 0u);
}

TEST(ChannelConnectionEpoch, ReceiverWithoutEpochTakesTheSendersAndSetEpochMovesBoth) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Connection primary(fds[0], TestSecret(), Direction::kToBackup, 3);
  Connection backup(fds[1], TestSecret(), Direction::kToPrimary, std::nullopt);
  ASSERT_TRUE(primary.send(MsgType::kHello, "").ok());
  Result<std::optional<Message>> m = backup.receive(milliseconds(1000));
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(backup.epoch(), std::optional<uint64_t>(3));

  primary.set_epoch(4);
  ASSERT_TRUE(primary.send(MsgType::kHeartbeat, "").ok());
  m = backup.receive(milliseconds(20));
  ASSERT_TRUE(m.ok()) << m.error();
  EXPECT_FALSE(m->has_value());  // epoch 4 is stale to a backup pinned at 3
  EXPECT_EQ(backup.rejected().stale_epoch, 1u);
}

// --- TCP ---

uint16_t LocalPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  return ntohs(sa.sin_port);
}

std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

TEST(ChannelTcp, ConnectionOverLoopbackBothWays) {
  Result<int> listener = listen_tcp("127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.error();
  Result<int> client = connect_tcp(Loopback(LocalPort(*listener)), milliseconds(1000));
  ASSERT_TRUE(client.ok()) << client.error();
  Result<std::optional<int>> server = accept_tcp(*listener, milliseconds(1000));
  close(*listener);
  ASSERT_TRUE(server.ok()) << server.error();
  ASSERT_TRUE(server->has_value());
  Connection primary(*client, TestSecret(), Direction::kToBackup, 1);
  Connection backup(**server, TestSecret(), Direction::kToPrimary, 1);

  ASSERT_TRUE(primary.send(MsgType::kHello, "hi").ok());
  Result<std::optional<Message>> m = backup.receive(milliseconds(1000));
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->payload, "hi");

  ASSERT_TRUE(backup.send(MsgType::kHelloAck, encode_hello_ack({true, ""})).ok());
  m = primary.receive(milliseconds(1000));
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->type, MsgType::kHelloAck);
}

TEST(ChannelTcp, AcceptTimesOutWithNoClient) {
  Result<int> listener = listen_tcp("127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.error();
  const auto start = Clock::now();
  Result<std::optional<int>> fd = accept_tcp(*listener, milliseconds(30));
  const auto elapsed = Clock::now() - start;
  close(*listener);
  ASSERT_TRUE(fd.ok()) << fd.error();
  EXPECT_FALSE(fd->has_value());
  EXPECT_LT(elapsed, milliseconds(500));
}

TEST(ChannelTcp, ConnectToAClosedPortFailsWithinTheTimeout) {
  Result<int> listener = listen_tcp("127.0.0.1:0");
  ASSERT_TRUE(listener.ok()) << listener.error();
  const std::string addr = Loopback(LocalPort(*listener));
  close(*listener);  // nothing listens there now
  const auto start = Clock::now();
  Result<int> fd = connect_tcp(addr, milliseconds(500));
  EXPECT_LT(Clock::now() - start, milliseconds(700));
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(Contains(fd.error(), addr)) << fd.error();
}

TEST(ChannelTcp, ListenOnAPortInUseFails) {
  Result<int> first = listen_tcp("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.error();
  const std::string addr = Loopback(LocalPort(*first));
  Result<int> second = listen_tcp(addr);
  close(*first);
  if (second.ok()) close(*second);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(Contains(second.error(), addr)) << second.error();
}

TEST(ChannelTcp, BadAddressesAreNamed) {
  for (const std::string addr :
       {"", "localhost", "127.0.0.1", "127.0.0.1:", "localhost:7000", "10.0.0.300:7000",
        "127.0.0.1:70000", "127.0.0.1:port", "127.0.0.1:80x", "127.0.0.1:-1", "127.0.0.1: 80"}) {
    Result<int> l = listen_tcp(addr);
    if (l.ok()) close(*l);
    ASSERT_FALSE(l.ok()) << "listen '" << addr << "'";
    EXPECT_TRUE(Contains(l.error(), "'" + addr + "'")) << l.error();
    Result<int> c = connect_tcp(addr, milliseconds(100));
    if (c.ok()) close(*c);
    ASSERT_FALSE(c.ok()) << "connect '" << addr << "'";
    EXPECT_TRUE(Contains(c.error(), "'" + addr + "'")) << c.error();
  }
}

}  // namespace
}  // namespace ftvm::ft
