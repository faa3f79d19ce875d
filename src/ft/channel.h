// The logging channel between a primary and its backup (docs/ft-protocol.md).
//
// One TCP connection carries authenticated messages both ways. Each message
// is `u32 body_length | body | HMAC-SHA256(secret, "ftvm-channel-1" |
// body_length | body)` where body = type, direction, epoch, sequence number
// and payload. A receiver accepts a message only if its MAC verifies, it
// travels in the peer's direction, its epoch is the pair's, and its
// sequence number is above every one accepted before; anything else is
// rejected, counted, and never applied.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "auth/secret.h"
#include "log/header.h"
#include "log/record.h"
#include "util/result.h"

namespace ftvm::ft {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxMessageBody = size_t{4} << 20;
inline constexpr size_t kMessageOverhead = 4 + 18 + auth::kMacSize;

enum class MsgType : uint8_t {
  kHello = 1,       // primary -> backup: who we are and the machine (Hello)
  kHelloAck = 2,    // backup -> primary: accepted, or why not (HelloAck)
  kRecords = 3,     // primary -> backup: log records, in order (RecordsMsg)
  kAck = 4,         // backup -> primary: receipt and execution position (Ack)
  kHeartbeat = 5,   // both ways: still here (Heartbeat)
};

enum class Direction : uint8_t { kToBackup = 0, kToPrimary = 1 };

struct Message {
  MsgType type{};
  Direction direction{};
  uint64_t epoch = 0;
  uint64_t seq = 0;
  std::string payload;
};

inline std::span<const uint8_t> as_span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Encodes and authenticates one message.
std::string seal_message(const auth::Secret& secret, const Message& m);

// Why a well-framed message was not accepted.
enum class Rejection : uint8_t { kNone, kForged, kWrongDirection, kStaleEpoch, kReplayed };
const char* rejection_name(Rejection r);

struct RejectCounts {
  std::atomic<uint64_t> forged{0};
  std::atomic<uint64_t> wrong_direction{0};
  std::atomic<uint64_t> stale_epoch{0};
  std::atomic<uint64_t> replayed{0};
  uint64_t total() const { return forged + wrong_direction + stale_epoch + replayed; }
  void count(Rejection r);
};

// Splits a byte stream into messages and verifies each. Not thread-safe.
class MessageReader {
 public:
  // `expect`: the direction accepted messages travel in. `epoch`: the only
  // epoch accepted; nullopt accepts the first authentic message's epoch and
  // then pins it.
  MessageReader(std::shared_ptr<const auth::Secret> secret, Direction expect,
                std::optional<uint64_t> epoch)
      : secret_(std::move(secret)), expect_(expect), epoch_(epoch) {}

  void feed(std::span<const uint8_t> bytes);
  struct Item {
    Message message;
    Rejection rejection = Rejection::kNone;
  };
  // The next whole message, verified (rejection says if it was refused), or
  // nullopt when more bytes are needed. An error means the stream cannot be
  // framed (a length beyond kMaxMessageBody): drop the connection.
  Result<std::optional<Item>> next();
  std::optional<uint64_t> epoch() const { return epoch_; }
  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  uint64_t last_seq() const { return last_seq_; }
  // Treats every sequence number up to `seq` as already seen.
  void set_last_seq(uint64_t seq) { last_seq_ = seq; }

 private:
  std::shared_ptr<const auth::Secret> secret_;
  Direction expect_;
  std::optional<uint64_t> epoch_;
  uint64_t last_seq_ = 0;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0;
};

// ---- payloads ----

struct Hello {
  uint32_t version = kProtocolVersion;
  std::string vm;
  uint64_t heartbeat_ms = 0;
  uint64_t timeout_ms = 0;
  log::Header header;  // the machine the primary runs
};
std::string encode_hello(const Hello& h);
Result<Hello> decode_hello(std::span<const uint8_t> payload);

struct HelloAck {
  bool ok = false;
  std::string message;  // why not, when !ok
};
std::string encode_hello_ack(const HelloAck& a);
Result<HelloAck> decode_hello_ack(std::span<const uint8_t> payload);

// Records numbered from 0 in log order; `first` is the first one's number.
struct RecordsMsg {
  uint64_t first = 0;
  std::vector<log::Record> records;
  std::vector<size_t> sizes;  // each record's encoded size
};
// `encoded`: records already encoded with log::append_record.
std::string encode_records(uint64_t first, const std::string& encoded);
Result<RecordsMsg> decode_records(std::span<const uint8_t> payload);

struct Ack {
  uint64_t received = 0;        // records received (the Output Rule's position)
  uint64_t executed = 0;        // records applied by the backup's machine
  uint64_t exec_instret = 0;    // the backup machine's instret
  uint64_t exec_mtime = 0;      // ... and its guest time
  uint64_t received_bytes = 0;  // record bytes received
  uint64_t executed_bytes = 0;  // record bytes applied
  bool should_run = false;      // the backup has records it has not applied yet
};
std::string encode_ack(const Ack& a);
Result<Ack> decode_ack(std::span<const uint8_t> payload);

// The sender's progress: a peer whose guest should run but whose instret
// stays put for the failure timeout has failed (failure_detector.h).
struct Heartbeat {
  uint64_t instret = 0;
  uint64_t mtime = 0;
  bool should_run = false;  // the guest has work and nothing holds it back
};
std::string encode_heartbeat(const Heartbeat& h);
Result<Heartbeat> decode_heartbeat(std::span<const uint8_t> payload);

// ---- the connection ----

// One end of the channel over a connected TCP socket it owns.
//
// All socket I/O of an established channel happens in receive(), called by
// one thread (the node's channel thread): it reads whatever arrives and
// writes out what send() queued, never blocking on either. So the two ends
// can never deadlock each other by both blocking in a write while neither
// reads. send() may be called from any thread: it queues the message (and
// writes it at once when nothing is queued before it).
class Connection {
 public:
  Connection(int fd, std::shared_ptr<const auth::Secret> secret, Direction send_dir,
             std::optional<uint64_t> epoch);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues one message at the connection's epoch with the next sequence
  // number. Fails only once the connection has failed.
  Status send(MsgType type, const std::string& payload);
  // Writes queued messages, waiting up to `timeout` for all to be taken.
  Status flush(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the next accepted message, writing queued
  // output meanwhile. nullopt: nothing accepted within the timeout (rejected
  // messages are counted and skipped). An error: the peer closed, the stream
  // is unframeable, or queued output made no progress for the stall timeout.
  Result<std::optional<Message>> receive(std::chrono::milliseconds timeout);

  // Queued output that does not move for this long fails the connection.
  void set_stall_timeout(std::chrono::milliseconds t) { stall_timeout_ = t; }
  // Call before receive() runs on another thread.
  void set_epoch(uint64_t epoch);
  std::optional<uint64_t> epoch() const;
  // The highest sequence number accepted from the peer (receive() side).
  uint64_t last_received_seq() const { return last_seq_seen_; }
  const RejectCounts& rejected() const { return rejected_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  size_t queued_bytes() const;
  // Makes a receive() in another thread return (with an error) soon.
  void shutdown();
  int fd() const { return fd_; }

 private:
  // With out_mu_ held: writes what the socket takes now.
  Status write_some_locked();
  void wake();

  int fd_;
  int wake_fd_;
  std::shared_ptr<const auth::Secret> secret_;
  Direction send_dir_;
  mutable std::mutex out_mu_;  // guards everything below up to reader_
  uint64_t send_seq_ = 0;
  uint64_t send_epoch_ = 0;
  std::string out_;
  size_t out_done_ = 0;
  std::chrono::steady_clock::time_point last_progress_{};
  std::string failed_;
  std::atomic<bool> has_output_{false};  // out_ holds bytes not yet written
  std::atomic<bool> shut_{false};
  std::chrono::milliseconds stall_timeout_{2000};
  MessageReader reader_;  // receive() side only
  RejectCounts rejected_;
  std::atomic<uint64_t> last_seq_seen_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> bytes_received_{0};
};

// Listens on "A.B.C.D:PORT"; returns the socket.
Result<int> listen_tcp(const std::string& addr);
// Accepts one connection, waiting up to `timeout`; nullopt on timeout.
Result<std::optional<int>> accept_tcp(int listen_fd, std::chrono::milliseconds timeout);
// Connects to "A.B.C.D:PORT" within `timeout`.
Result<int> connect_tcp(const std::string& addr, std::chrono::milliseconds timeout);

}  // namespace ftvm::ft
