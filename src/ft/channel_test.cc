// Tests for the logging channel: message sealing and verification, the
// payload codecs, and Connection over real sockets. One edge case per test;
// every wait has a deadline.
#include "ft/channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
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
  bytes[4 + kNonceSize + 4 + 16] ^= 0xff;  // the header's first magic byte
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


// --- payloads are canonical ---

TEST(ChannelPayload, TrailingBytesAreAnError) {
  Hello h;
  h.header = TestHeader();
  const std::vector<std::pair<std::string, std::function<bool(const std::string&)>>> cases{
      {encode_hello(h), [](const std::string& b) { return decode_hello(as_span(b)).ok(); }},
      {encode_hello_ack({true, ""}),
       [](const std::string& b) { return decode_hello_ack(as_span(b)).ok(); }},
      {encode_ready({true, ""}), [](const std::string& b) { return decode_ready(as_span(b)).ok(); }},
      {encode_ack({1, 2, 3, 4, 5, 6}), [](const std::string& b) { return decode_ack(as_span(b)).ok(); }},
      {encode_heartbeat({1, 2}), [](const std::string& b) { return decode_heartbeat(as_span(b)).ok(); }},
  };
  for (const auto& [bytes, decodes] : cases) {
    EXPECT_TRUE(decodes(bytes));
    EXPECT_FALSE(decodes(bytes + "x")) << bytes.size();
  }
}

TEST(ChannelPayload, FlagOtherThanZeroOrOneIsAnError) {
  std::string ack = encode_hello_ack({true, ""});
  ack[0] = 2;
  EXPECT_FALSE(decode_hello_ack(as_span(ack)).ok());
  std::string ready = encode_ready({true, ""});
  ready[0] = 2;
  EXPECT_FALSE(decode_ready(as_span(ready)).ok());
}

TEST(ChannelPayload, HelloAndHelloAckCarryTheirNonces) {
  Hello h;
  h.header = TestHeader();
  h.nonce = random_nonce();
  Result<Hello> d = decode_hello(as_span(encode_hello(h)));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->nonce, h.nonce);
  const HelloAck a{true, "", random_nonce()};
  Result<HelloAck> da = decode_hello_ack(as_span(encode_hello_ack(a)));
  ASSERT_TRUE(da.ok()) << da.error();
  EXPECT_EQ(da->nonce, a.nonce);
  EXPECT_NE(random_nonce(), random_nonce());
}

// --- keys ---

TEST(ChannelKeys, SessionKeyBindsVmEpochAndBothNonces) {
  const auth::Secret secret = *TestSecret();
  const Nonce p = random_nonce(), b = random_nonce(), other = random_nonce();
  const Message m = Msg(MsgType::kAck, Direction::kToPrimary, 7, 3, encode_ack({}));
  const std::string sealed = seal_message(*session_key(secret, "vm", 7, p, b), m);
  for (const Key& key : {session_key(secret, "vm2", 7, p, b), session_key(secret, "vm", 8, p, b),
                         session_key(secret, "vm", 7, other, b), session_key(secret, "vm", 7, p, other),
                         session_key(*TestSecret('x'), "vm", 7, p, b), hello_ack_key(secret, "vm", 7, p),
                         TestSecret()}) {
    MessageReader reader(key, Direction::kToPrimary, 7);
    EXPECT_EQ(FeedOne(reader, sealed).rejection, Rejection::kForged);
  }
  MessageReader reader(session_key(secret, "vm", 7, p, b), Direction::kToPrimary, 7);
  EXPECT_EQ(FeedOne(reader, sealed).rejection, Rejection::kNone);
}

TEST(ChannelKeys, HelloAckKeyBindsVmEpochAndThePrimarysNonce) {
  const auth::Secret secret = *TestSecret();
  const Nonce p = random_nonce();
  const Message m = Msg(MsgType::kHelloAck, Direction::kToPrimary, 7, 1, encode_hello_ack({true, ""}));
  const std::string sealed = seal_message(*hello_ack_key(secret, "vm", 7, p), m);
  for (const Key& key : {hello_ack_key(secret, "vm2", 7, p), hello_ack_key(secret, "vm", 6, p),
                         hello_ack_key(secret, "vm", 7, random_nonce()), TestSecret()}) {
    MessageReader reader(key, Direction::kToPrimary, 7);
    EXPECT_EQ(FeedOne(reader, sealed).rejection, Rejection::kForged);
  }
}

TEST(ChannelKeys, ReaderSaysWhichKeyVerified) {
  const Key a = TestSecret('a'), b = TestSecret('b');
  MessageReader reader(a, Direction::kToBackup, 7);
  reader.set_keys({a, b});
  MessageReader::Item item = FeedOne(reader, Sealed(7, 1, 'b'));
  EXPECT_EQ(item.rejection, Rejection::kNone);
  EXPECT_EQ(item.key, 1u);
  item = FeedOne(reader, Sealed(7, 2, 'a'));
  EXPECT_EQ(item.key, 0u);
  EXPECT_EQ(FeedOne(reader, Sealed(7, 3, 'c')).rejection, Rejection::kForged);
}

TEST(ChannelFraming, ReaderBodyLimitIsEnforced) {
  MessageReader reader = BackupReader();
  reader.set_max_body(100);
  const std::string big = seal_message(
      *TestSecret(), Msg(MsgType::kRecords, Direction::kToBackup, 7, 1, std::string(200, 'r')));
  reader.feed(as_span(big.substr(0, 4)));
  Result<std::optional<MessageReader::Item>> item = reader.next();
  ASSERT_FALSE(item.ok());
  EXPECT_TRUE(Contains(item.error(), "limit 100")) << item.error();
}

// --- the handshake ---

Hello PrimaryHello(const std::string& vm = "vm1") {
  Hello h;
  h.vm = vm;
  h.heartbeat_ms = 50;
  h.timeout_ms = 500;
  h.header = TestHeader();
  return h;
}

// A primary's channel port on loopback with an acceptor at epoch 7 for vm1.
class ChannelHandshake : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<int> l = listen_tcp("127.0.0.1:0");
    ASSERT_TRUE(l.ok()) << l.error();
    listen_fd_ = *l;
    addr_ = Loopback(LocalPort(listen_fd_));
    MakeAcceptor(milliseconds(2000));
  }
  void TearDown() override {
    acceptor_.reset();
    close(listen_fd_);
  }

  void MakeAcceptor(milliseconds handshake_timeout, size_t max_connections = 64,
                    uint64_t epoch = 7) {
    AcceptorOptions o;
    o.secret = TestSecret();
    o.epoch = epoch;
    o.hello = PrimaryHello();
    o.handshake_timeout = handshake_timeout;
    o.ready_timeout = milliseconds(5000);
    o.max_connections = max_connections;
    acceptor_ = std::make_unique<ChannelAcceptor>(listen_fd_, o);
  }

  int Connect() {
    Result<int> fd = connect_tcp(addr_, milliseconds(1000));
    EXPECT_TRUE(fd.ok()) << fd.error();
    return fd.ok() ? *fd : -1;
  }

  // Runs `backup` (given a connected socket) on a thread while the acceptor
  // serves the port until something completes or `within` passes.
  struct Outcome {
    std::optional<Accepted> accepted;
    milliseconds took{0};
  };
  Outcome Pair(const std::function<void(int fd)>& backup, milliseconds within = milliseconds(5000)) {
    const int fd = Connect();
    std::thread t([&] { backup(fd); });
    Outcome out;
    const auto start = Clock::now();
    while (!out.accepted && Clock::now() - start < within) {
      Result<std::optional<Accepted>> a = acceptor_->accept(milliseconds(50));
      EXPECT_TRUE(a.ok()) << a.error();
      if (a.ok() && a->has_value()) out.accepted = std::move(**a);
    }
    out.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    t.join();
    return out;
  }

  // Serves the port for `d` (deadlines expire, junk is read).
  void Serve(milliseconds d) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      Result<std::optional<Accepted>> a = acceptor_->accept(milliseconds(20));
      ASSERT_TRUE(a.ok()) << a.error();
      ASSERT_FALSE(a->has_value());
    }
  }

  static JoinOptions Join(const std::string& vm = "vm1") {
    JoinOptions o;
    o.secret = TestSecret();
    o.vm = vm;
    o.timeout = milliseconds(2000);
    return o;
  }

  int listen_fd_ = -1;
  std::string addr_;
  std::unique_ptr<ChannelAcceptor> acceptor_;
};

// A backup that joins and says it is ready; its channel is kept in `*conn`.
std::function<void(int)> ReadyBackup(std::unique_ptr<Connection>* conn, std::string* error,
                                     const JoinOptions& o) {
  return [=](int fd) {
    Result<Joining> j = join_primary(fd, o);
    if (!j) {
      *error = j.error();
      return;
    }
    Result<std::unique_ptr<Connection>> c = j->ready();
    if (!c) {
      *error = c.error();
      return;
    }
    *conn = std::move(*c);
  };
}

TEST_F(ChannelHandshake, ABackupPairsAndTheSessionCarriesMessagesBothWays) {
  std::unique_ptr<Connection> backup;
  std::string error;
  Outcome o = Pair(ReadyBackup(&backup, &error, Join()));
  ASSERT_TRUE(o.accepted.has_value()) << error;
  ASSERT_NE(o.accepted->conn, nullptr) << o.accepted->refusal;
  ASSERT_NE(backup, nullptr) << error;
  Connection& primary = *o.accepted->conn;
  ASSERT_TRUE(primary.send(MsgType::kRecords, "r").ok());
  Result<std::optional<Message>> m = backup->receive(milliseconds(1000));
  ASSERT_TRUE(m.ok() && m->has_value()) << (m.ok() ? "nothing" : m.error());
  EXPECT_EQ((*m)->payload, "r");
  EXPECT_EQ((*m)->epoch, 7u);
  EXPECT_EQ((*m)->seq, 3u);  // after Hello and Confirm
  ASSERT_TRUE(backup->send(MsgType::kAck, encode_ack({1, 1, 0, 0, 0, 0})).ok());
  m = primary.receive(milliseconds(1000));
  ASSERT_TRUE(m.ok() && m->has_value()) << (m.ok() ? "nothing" : m.error());
  EXPECT_EQ((*m)->type, MsgType::kAck);
  EXPECT_EQ((*m)->seq, 3u);  // after HelloAck and Ready
  EXPECT_EQ(acceptor_->rejected().total(), 0u);
}

TEST_F(ChannelHandshake, TheBackupSeesTheHelloAndTheEpoch) {
  std::optional<Hello> seen;
  uint64_t epoch = 0;
  Outcome o = Pair([&](int fd) {
    Result<Joining> j = join_primary(fd, Join());
    ASSERT_TRUE(j.ok()) << j.error();
    seen = j->hello();
    epoch = j->epoch();
    ASSERT_TRUE(j->ready().ok());
  });
  ASSERT_TRUE(o.accepted && o.accepted->conn);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->vm, "vm1");
  EXPECT_EQ(seen->header, TestHeader());
  EXPECT_EQ(seen->timeout_ms, 500u);
  EXPECT_EQ(epoch, 7u);
}

TEST_F(ChannelHandshake, ABackupOfAnotherVmIsRefusedOnBothSides) {
  std::string error;
  Outcome o = Pair([&](int fd) {
    Result<Joining> j = join_primary(fd, Join("vm2"));
    ASSERT_FALSE(j.ok());
    error = j.error();
  });
  EXPECT_TRUE(Contains(error, "'vm1'") && Contains(error, "'vm2'")) << error;
  ASSERT_TRUE(o.accepted.has_value());
  EXPECT_EQ(o.accepted->conn, nullptr);
  EXPECT_EQ(o.accepted->refusal, error);
}

TEST_F(ChannelHandshake, ABackupThatRefusesAfterTheHandshakeGivesItsReason) {
  Outcome o = Pair([&](int fd) {
    Result<Joining> j = join_primary(fd, Join());
    ASSERT_TRUE(j.ok()) << j.error();
    j->refuse("the hosts' machines differ: kernel");
  });
  ASSERT_TRUE(o.accepted.has_value());
  EXPECT_EQ(o.accepted->conn, nullptr);
  EXPECT_EQ(o.accepted->refusal, "the hosts' machines differ: kernel");
}

TEST_F(ChannelHandshake, ASilentConnectionDoesNotDelayTheBackup) {
  MakeAcceptor(milliseconds(10'000));  // the silent one outlives the whole test
  const int silent = Connect();
  Serve(milliseconds(100));  // it is accepted and sent a Hello first
  std::unique_ptr<Connection> backup;
  std::string error;
  Outcome o = Pair(ReadyBackup(&backup, &error, Join()));
  ASSERT_TRUE(o.accepted && o.accepted->conn) << error;
  EXPECT_LT(o.took, milliseconds(1000));
  EXPECT_EQ(acceptor_->open_connections(), 1u);  // the silent one, still waiting
  close(silent);
}

TEST_F(ChannelHandshake, ManyJunkConnectionsAreHandledWithinTheirDeadlines) {
  MakeAcceptor(milliseconds(300));
  std::vector<int> junk;
  for (int i = 0; i < 40; ++i) {
    const int fd = Connect();
    std::string bytes;
    switch (i % 4) {
      case 0: break;  // silent
      case 1: bytes = std::string(1000, static_cast<char>(i)); break;  // noise
      case 2: bytes = Sealed(7, 1, 'x'); break;                        // forged
      case 3: bytes = Sealed(7, 1).substr(0, 30); break;               // half a message
    }
    if (!bytes.empty()) {
      EXPECT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
    }
    junk.push_back(fd);
  }
  std::unique_ptr<Connection> backup;
  std::string error;
  Outcome o = Pair(ReadyBackup(&backup, &error, Join()));
  ASSERT_TRUE(o.accepted && o.accepted->conn) << error;
  EXPECT_LT(o.took, milliseconds(1000));
  Serve(milliseconds(600));
  EXPECT_EQ(acceptor_->open_connections(), 0u);
  const RejectCounts& r = acceptor_->rejected();
  EXPECT_GE(r.forged, 10u);
  EXPECT_GE(r.timed_out, 10u);
  // The primary closed every one of them.
  for (int fd : junk) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 1000), 1);
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
    }
    EXPECT_TRUE(n == 0 || errno == ECONNRESET) << strerror(errno);
    close(fd);
  }
}

TEST_F(ChannelHandshake, AtTheConnectionCapTheOldestUnauthenticatedMakesRoom) {
  MakeAcceptor(milliseconds(10'000), /*max_connections=*/4);
  std::vector<int> silent;
  for (int i = 0; i < 10; ++i) silent.push_back(Connect());
  Serve(milliseconds(100));
  EXPECT_EQ(acceptor_->open_connections(), 4u);
  std::unique_ptr<Connection> backup;
  std::string error;
  Outcome o = Pair(ReadyBackup(&backup, &error, Join()));
  ASSERT_TRUE(o.accepted && o.accepted->conn) << error;
  EXPECT_LT(o.took, milliseconds(1000));
  EXPECT_GE(acceptor_->rejected().timed_out, 7u);
  for (int fd : silent) close(fd);
}

// Forwards one connection between a client and `to`, keeping what the
// client sent (the backup's half of a session).
class Recorder {
 public:
  explicit Recorder(const std::string& to) {
    Result<int> l = listen_tcp("127.0.0.1:0");
    EXPECT_TRUE(l.ok());
    listen_ = *l;
    addr_ = Loopback(LocalPort(listen_));
    thread_ = std::thread([this, to] { Run(to); });
  }
  ~Recorder() {
    Wait();
    close(listen_);
  }
  const std::string& addr() const { return addr_; }
  // Waits for the session to end (either side closed, or 5 s passed).
  void Wait() {
    if (thread_.joinable()) thread_.join();
  }
  std::string from_client;

 private:
  void Run(const std::string& to) {
    Result<std::optional<int>> c = accept_tcp(listen_, milliseconds(5000));
    if (!c.ok() || !c->has_value()) return;
    Result<int> s = connect_tcp(to, milliseconds(1000));
    if (!s.ok()) return;
    const int fds[2] = {**c, *s};
    const auto end = Clock::now() + milliseconds(5000);
    while (Clock::now() < end) {
      pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      bool done = false;
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        char buf[65536];
        const ssize_t n = recv(fds[i], buf, sizeof buf, 0);
        if (n <= 0) {
          done = true;
          break;
        }
        if (i == 0) from_client.append(buf, static_cast<size_t>(n));
        (void)!::send(fds[1 - i], buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
      if (done) break;
    }
    close(fds[0]);
    close(fds[1]);
  }
  int listen_ = -1;
  std::string addr_;
  std::thread thread_;
};

// Reads the acceptor's Hello from `fd` (so the new connection is a real
// new session with its own nonce), within a deadline.
Hello ReadHello(int fd) {
  MessageReader reader(TestSecret(), Direction::kToBackup, std::nullopt);
  const auto end = Clock::now() + milliseconds(2000);
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reader.feed({reinterpret_cast<uint8_t*>(buf), static_cast<size_t>(n)});
    Result<std::optional<MessageReader::Item>> item = reader.next();
    if (item.ok() && item->has_value()) {
      Result<Hello> h = decode_hello(as_span((*item)->message.payload));
      EXPECT_TRUE(h.ok());
      return h.ok() ? *h : Hello{};
    }
  }
  ADD_FAILURE() << "no hello";
  return {};
}

TEST_F(ChannelHandshake, ARecordedSessionReplayedIntoANewConnectionIsRejected) {
  MakeAcceptor(milliseconds(500));
  // Session 1 through a recorder: the backup's HelloAck, Ready and an Ack.
  std::string recorded;
  {
    Recorder rec(addr_);
    std::unique_ptr<Connection> backup;
    std::string error;
    std::thread t([&] {
      Result<int> fd = connect_tcp(rec.addr(), milliseconds(1000));
      ASSERT_TRUE(fd.ok());
      ReadyBackup(&backup, &error, Join())(*fd);
      if (backup) {
        (void)backup->send(MsgType::kAck, encode_ack({1'000'000, 1'000'000, 0, 0, 0, 0}));
        (void)backup->flush(milliseconds(1000));
      }
    });
    std::optional<Accepted> a;
    const auto end = Clock::now() + milliseconds(5000);
    while (!a && Clock::now() < end) {
      Result<std::optional<Accepted>> r = acceptor_->accept(milliseconds(50));
      ASSERT_TRUE(r.ok());
      if (r->has_value()) a = std::move(**r);
    }
    t.join();
    ASSERT_TRUE(a && a->conn) << error;
    Result<std::optional<Message>> ack = a->conn->receive(milliseconds(1000));
    ASSERT_TRUE(ack.ok() && ack->has_value());
    backup.reset();
    a->conn.reset();
    rec.Wait();
    recorded = rec.from_client;
  }
  ASSERT_GT(recorded.size(), 3 * kMessageOverhead);
  const uint64_t forged_before = acceptor_->rejected().forged;
  // Session 2: a new connection gets a new nonce; the recording is useless.
  const int fd = Connect();
  Serve(milliseconds(50));  // accepted: its Hello is sent
  ReadHello(fd);
  ASSERT_EQ(::send(fd, recorded.data(), recorded.size(), MSG_NOSIGNAL), ssize_t(recorded.size()));
  Serve(milliseconds(800));
  EXPECT_EQ(acceptor_->open_connections(), 0u);
  EXPECT_GE(acceptor_->rejected().forged, forged_before + 3);
  EXPECT_GE(acceptor_->rejected().timed_out, 1u);
  close(fd);
}

TEST_F(ChannelHandshake, AHelloAckOfAnotherSessionOrPairIsRejected) {
  MakeAcceptor(milliseconds(300));
  const auth::Secret secret = *TestSecret();
  const int fd = Connect();
  Serve(milliseconds(50));  // accepted: its Hello is sent
  const Hello hello = ReadHello(fd);
  const Nonce nb = random_nonce();
  const std::string ack = encode_hello_ack({true, "", nb});
  auto sealed = [&](const Key& key, uint64_t epoch) {
    return seal_message(*key, Msg(MsgType::kHelloAck, Direction::kToPrimary, epoch, 1, ack));
  };
  std::string bytes = sealed(hello_ack_key(secret, "vm1", 7, random_nonce()), 7);  // another session
  bytes += sealed(hello_ack_key(secret, "vm2", 7, hello.nonce), 7);               // another vm
  bytes += sealed(hello_ack_key(secret, "vm1", 6, hello.nonce), 6);               // another epoch
  bytes += sealed(hello_ack_key(secret, "vm1", 6, hello.nonce), 7);
  bytes += sealed(TestSecret(), 7);                                                // the bare secret
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  Serve(milliseconds(500));
  EXPECT_EQ(acceptor_->rejected().forged, 5u);
  EXPECT_EQ(acceptor_->rejected().timed_out, 1u);
  EXPECT_EQ(acceptor_->open_connections(), 0u);
  close(fd);
}

TEST_F(ChannelHandshake, TheRightHelloAckOfThisSessionPairs) {
  // The same construction as above with the right nonce, vm and epoch is
  // accepted: the rejections above are for the binding, not the encoding.
  const auth::Secret secret = *TestSecret();
  const int fd = Connect();
  std::thread t([&] {
    const Hello hello = ReadHello(fd);
    const Nonce nb = random_nonce();
    const Key s = session_key(secret, "vm1", 7, hello.nonce, nb);
    std::string bytes = seal_message(*hello_ack_key(secret, "vm1", 7, hello.nonce),
                                     Msg(MsgType::kHelloAck, Direction::kToPrimary, 7, 1,
                                         encode_hello_ack({true, "", nb})));
    bytes += seal_message(*s, Msg(MsgType::kReady, Direction::kToPrimary, 7, 2, encode_ready({true, ""})));
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  });
  std::optional<Accepted> a;
  const auto end = Clock::now() + milliseconds(3000);
  while (!a && Clock::now() < end) {
    Result<std::optional<Accepted>> r = acceptor_->accept(milliseconds(50));
    ASSERT_TRUE(r.ok());
    if (r->has_value()) a = std::move(**r);
  }
  t.join();
  ASSERT_TRUE(a && a->conn);
  close(fd);
}

// A fake primary that replays a Hello recorded from another session: the
// backup answers, but the session is never confirmed.
TEST(ChannelJoin, AReplayedHelloIsNeverConfirmed) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Hello h = PrimaryHello();
  h.nonce = random_nonce();
  const std::string hello =
      seal_message(*TestSecret(), Msg(MsgType::kHello, Direction::kToBackup, 7, 1, encode_hello(h)));
  // What the real primary sent after it: a Confirm under its own session.
  const std::string confirm = seal_message(
      *session_key(*TestSecret(), "vm1", 7, h.nonce, random_nonce()),
      Msg(MsgType::kConfirm, Direction::kToBackup, 7, 2, ""));
  const std::string bytes = hello + confirm;
  ASSERT_EQ(::send(fds[0], bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  JoinOptions o;
  o.secret = TestSecret();
  o.vm = "vm1";
  o.timeout = milliseconds(300);
  const auto start = Clock::now();
  Result<Joining> j = join_primary(fds[1], o);
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), "did not confirm")) << j.error();
  EXPECT_LT(Clock::now() - start, milliseconds(1500));
  close(fds[0]);
}

TEST(ChannelJoin, NoHelloWithinTheTimeoutSaysWhatToCheck) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  const std::string forged = seal_message(
      *TestSecret('x'), Msg(MsgType::kHello, Direction::kToBackup, 7, 1, encode_hello(PrimaryHello())));
  ASSERT_EQ(::send(fds[0], forged.data(), forged.size(), MSG_NOSIGNAL), ssize_t(forged.size()));
  JoinOptions o;
  o.secret = TestSecret();
  o.vm = "vm1";
  o.timeout = milliseconds(200);
  Result<Joining> j = join_primary(fds[1], o);
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), "secret")) << j.error();
  close(fds[0]);
}

TEST_F(ChannelHandshake, AfterPairingThePortReadsCountsAndAppliesNothing) {
  MakeAcceptor(milliseconds(300));
  std::unique_ptr<Connection> backup;
  std::string error;
  Outcome o = Pair(ReadyBackup(&backup, &error, Join()));
  ASSERT_TRUE(o.accepted && o.accepted->conn) << error;
  Connection& primary = *o.accepted->conn;
  ASSERT_TRUE(backup->send(MsgType::kAck, encode_ack({})).ok());
  ASSERT_TRUE(primary.receive(milliseconds(1000))->has_value());
  int stop[2];
  ASSERT_EQ(pipe2(stop, O_CLOEXEC), 0);
  std::thread guard([&] { acceptor_->guard(stop[0], &primary); });
  // A stray connection: messages under the bare secret, and junk.
  const int fd = Connect();
  const auth::Secret secret = *TestSecret();
  std::string bytes;
  bytes += Sealed(7, 1, 'x');  // forged
  bytes += seal_message(secret, Msg(MsgType::kAck, Direction::kToPrimary, 7, 1, encode_ack({})));  // replayed
  bytes += seal_message(secret, Msg(MsgType::kAck, Direction::kToPrimary, 6, 99, encode_ack({})));  // stale
  bytes += seal_message(secret, Msg(MsgType::kAck, Direction::kToBackup, 7, 99, encode_ack({})));  // direction
  bytes += seal_message(secret, Msg(MsgType::kAck, Direction::kToPrimary, 7, 99, encode_ack({})));  // unexpected
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  const auto end = Clock::now() + milliseconds(3000);
  const RejectCounts& r = acceptor_->rejected();
  while (Clock::now() < end && (r.forged < 1 || r.replayed < 1 || r.stale_epoch < 1 ||
                                r.wrong_direction < 1 || acceptor_->unexpected() < 1)) {
    std::this_thread::sleep_for(milliseconds(10));  // polling a counter, with a deadline
  }
  EXPECT_EQ(r.forged, 1u);
  EXPECT_EQ(r.replayed, 1u);
  EXPECT_EQ(r.stale_epoch, 1u);
  EXPECT_EQ(r.wrong_direction, 1u);
  EXPECT_EQ(acceptor_->unexpected(), 1u);
  // The stray is closed at its deadline; it was never sent anything.
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);
  // The live channel is untouched.
  ASSERT_TRUE(backup->send(MsgType::kHeartbeat, encode_heartbeat({})).ok());
  Result<std::optional<Message>> m = primary.receive(milliseconds(1000));
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(primary.rejected().total(), 0u);
  ASSERT_EQ(write(stop[1], "x", 1), 1);
  guard.join();
  close(stop[0]);
  close(stop[1]);
}

}  // namespace
}  // namespace ftvm::ft
