// The logging channel between a primary and its backup (docs/ft-protocol.md).
//
// One TCP connection carries authenticated messages both ways. Each message
// is `u32 body_length | body | HMAC-SHA256(key, "ftvm-channel-2" |
// body_length | body)` where body = type, direction, epoch, sequence number
// and payload. A receiver accepts a message only if its MAC verifies, it
// travels in the peer's direction, its epoch is the pair's, and its
// sequence number is above every one accepted before; anything else is
// rejected, counted, and never applied.
//
// The key is per session. The primary's Hello carries a fresh nonce_p and
// is MAC'd with the pair's secret; the backup's HelloAck carries a fresh
// nonce_b and is MAC'd with hello_ack_key(secret, vm, epoch, nonce_p); every
// later message with session_key(secret, vm, epoch, nonce_p, nonce_b). So a
// recorded session is useless in another pair, epoch or connection.
// ChannelAcceptor is the primary's side of that handshake, join_primary()
// the backup's.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
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

// 3: the log may carry disk-error records (log format version 2).
// 4: a backup may join a running primary by state transfer (transfer.h).
inline constexpr uint32_t kProtocolVersion = 4;
inline constexpr size_t kMaxMessageBody = size_t{4} << 20;
inline constexpr size_t kMessageOverhead = 4 + 18 + auth::kMacSize;
// The largest message a connection that has not finished the handshake may
// send (a HelloAck or a Ready with its reason).
inline constexpr size_t kMaxHandshakeBody = 16 << 10;
inline constexpr size_t kNonceSize = 32;
using Nonce = std::array<uint8_t, kNonceSize>;
using Key = std::shared_ptr<const auth::Secret>;

enum class MsgType : uint8_t {
  kHello = 1,       // primary -> backup: who we are, the machine, nonce_p (Hello)
  kHelloAck = 2,    // backup -> primary: nonce_b, or why not (HelloAck)
  kRecords = 3,     // primary -> backup: log records, in order (RecordsMsg)
  kAck = 4,         // backup -> primary: receipt and execution position (Ack)
  kHeartbeat = 5,   // both ways: still here (Heartbeat)
  kConfirm = 6,     // primary -> backup: the session key works (empty)
  kReady = 7,       // backup -> primary: its machine is built, or why not (Ready)
  kTransfer = 8,       // primary -> backup: pages, disk blocks, final state (transfer.h)
  kTransferReply = 9,  // backup -> primary: disk hashes, messages applied (transfer.h)
  kHandover = 10,      // primary -> backup: take over now (planned migration; Handover)
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

// Encodes and authenticates one message with `key`.
std::string seal_message(const auth::Secret& key, const Message& m);

// 32 bytes from OpenSSL's CSPRNG.
Nonce random_nonce();
// The key of the backup's HelloAck: HMAC-SHA256(secret, "ftvm-hello-ack-2" |
// u32 len | vm | u64 epoch | nonce_p).
Key hello_ack_key(const auth::Secret& secret, const std::string& vm, uint64_t epoch,
                  const Nonce& nonce_p);
// The key of every message after the HelloAck: HMAC-SHA256(secret,
// "ftvm-session-2" | u32 len | vm | u64 epoch | nonce_p | nonce_b).
Key session_key(const auth::Secret& secret, const std::string& vm, uint64_t epoch,
                const Nonce& nonce_p, const Nonce& nonce_b);

// Why a well-framed message was not accepted.
enum class Rejection : uint8_t { kNone, kForged, kWrongDirection, kStaleEpoch, kReplayed };
const char* rejection_name(Rejection r);

struct RejectCounts {
  std::atomic<uint64_t> forged{0};
  std::atomic<uint64_t> wrong_direction{0};
  std::atomic<uint64_t> stale_epoch{0};
  std::atomic<uint64_t> replayed{0};
  // Connections closed because they did not authenticate within their
  // deadline (or were the oldest such when the connection cap was reached).
  std::atomic<uint64_t> timed_out{0};
  uint64_t total() const { return forged + wrong_direction + stale_epoch + replayed + timed_out; }
  void count(Rejection r);
  void add(const RejectCounts& other);
};

// Splits a byte stream into messages and verifies each. Not thread-safe.
class MessageReader {
 public:
  // `key`: the MAC key (see set_keys). `expect`: the direction accepted
  // messages travel in. `epoch`: the only epoch accepted; nullopt accepts
  // the first authentic message's epoch and then pins it.
  MessageReader(Key key, Direction expect, std::optional<uint64_t> epoch)
      : keys_{std::move(key)}, expect_(expect), epoch_(epoch) {}

  void feed(std::span<const uint8_t> bytes);
  struct Item {
    Message message;
    Rejection rejection = Rejection::kNone;
    size_t key = 0;  // which of the keys the MAC verified with (not kForged)
  };
  // The next whole message, verified (rejection says if it was refused), or
  // nullopt when more bytes are needed. An error means the stream cannot be
  // framed (a length beyond the body limit): drop the connection.
  Result<std::optional<Item>> next();
  // The keys a MAC may verify with, tried in order; takes effect from the
  // next message on. At least one.
  void set_keys(std::vector<Key> keys);
  // The largest body framed (default and at most kMaxMessageBody).
  void set_max_body(size_t n) { max_body_ = std::min(n, kMaxMessageBody); }
  std::optional<uint64_t> epoch() const { return epoch_; }
  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  uint64_t last_seq() const { return last_seq_; }
  // Treats every sequence number up to `seq` as already seen.
  void set_last_seq(uint64_t seq) { last_seq_ = seq; }

 private:
  std::vector<Key> keys_;
  Direction expect_;
  std::optional<uint64_t> epoch_;
  uint64_t last_seq_ = 0;
  size_t max_body_ = kMaxMessageBody;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0;
};

// ---- payloads ----

struct Hello {
  uint32_t version = kProtocolVersion;
  Nonce nonce{};  // the primary's, fresh per connection
  std::string vm;
  uint64_t heartbeat_ms = 0;
  uint64_t timeout_ms = 0;
  // The primary's guest is already running: the backup gets its state by
  // transfer (transfer.h) instead of booting, and its copy of a writable
  // disk need only be the same size (the header's disk hash is the disk
  // the primary started with).
  bool running = false;
  log::Header header;  // the machine the primary runs
};
std::string encode_hello(const Hello& h);
Result<Hello> decode_hello(std::span<const uint8_t> payload);

struct HelloAck {
  bool ok = false;
  std::string message;  // why not, when !ok
  Nonce nonce{};        // the backup's, fresh per connection
};
std::string encode_hello_ack(const HelloAck& a);
Result<HelloAck> decode_hello_ack(std::span<const uint8_t> payload);

// The backup's answer once it has built (or failed to build) the machine.
struct Ready {
  bool ok = false;
  std::string message;  // why not, when !ok
};
std::string encode_ready(const Ready& r);
Result<Ready> decode_ready(std::span<const uint8_t> payload);

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

// A planned migration: the primary has stopped its guest for good, every
// record is acknowledged and every output released; the backup replays
// them all and takes the next epoch at once, without waiting for silence.
struct Handover {
  uint64_t records = 0;  // the log's length: the backup must hold all of it
  uint64_t instret = 0;  // where the primary's guest stopped
};
std::string encode_handover(const Handover& h);
Result<Handover> decode_handover(std::span<const uint8_t> payload);

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
  // `key` MACs both directions until set_send_key/set_receive_key.
  Connection(int fd, Key key, Direction send_dir, std::optional<uint64_t> epoch);
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
  // The key later send() calls seal with.
  void set_send_key(Key key);
  // The keys later received messages must verify with (MessageReader::set_keys).
  // Call before receive() runs on another thread.
  void set_receive_keys(std::vector<Key> keys) { reader_.set_keys(std::move(keys)); }
  // The largest message body accepted (MessageReader::set_max_body). Call
  // before receive() runs on another thread.
  void set_max_body(size_t n) { reader_.set_max_body(n); }
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
  Direction send_dir_;
  mutable std::mutex out_mu_;  // guards everything below up to reader_
  Key send_key_;
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

// ---- the handshake ----
//
//   primary                                   backup
//   Hello{nonce_p, vm, machine}   [secret]  ->
//                          <- HelloAck{nonce_b} or a refusal [hello_ack_key]
//   Confirm                       [session] ->
//                          <- Ready, or why not (machine differs) [session]
//
// Sequence numbers run on across the handshake (Hello is 1, Confirm 2, the
// first record message 3; HelloAck 1, Ready 2, the first Ack 3).

// What a primary's acceptor offers and how long it waits.
struct AcceptorOptions {
  Key secret;                // the pair's secret
  uint64_t epoch = 0;        // the epoch the primary holds
  Hello hello;               // vm, heartbeat, timeout, machine; the nonce is made per connection
  std::chrono::milliseconds stall_timeout{2000};  // for the paired Connection
  // An unauthenticated connection's deadline: it must answer the Hello with
  // an authentic HelloAck within this; e.g. min(2 s, the failure timeout).
  std::chrono::milliseconds handshake_timeout{2000};
  // An authenticated backup's deadline for its Ready (it builds its machine).
  std::chrono::milliseconds ready_timeout{30000};
  // Connections open at once; at the cap the oldest unauthenticated one is
  // closed to make room for a new one.
  size_t max_connections = 64;
  // Told (at most once a second) about connections closed unpaired.
  std::function<void(const std::string&)> note;
};

// The outcome of a completed handshake on the primary's side.
struct Accepted {
  std::unique_ptr<Connection> conn;  // the paired backup's channel; null if it refused
  std::string refusal;               // the backup's own reason, when it refused
};

// The primary's channel port. Serves every connection at once from one poll
// loop, so no connection (silent, slow, junk, or many at once) blocks or
// delays another's handshake; each unauthenticated one is closed at its
// deadline, and nothing it sends is ever applied.
//
// accept() and guard() run on one thread at a time; rejected() and
// unexpected() may be read from any thread. Does not own the listening
// socket; it must stay open while the acceptor is used.
class ChannelAcceptor {
 public:
  ChannelAcceptor(int listen_fd, AcceptorOptions o);
  ~ChannelAcceptor();
  ChannelAcceptor(const ChannelAcceptor&) = delete;
  ChannelAcceptor& operator=(const ChannelAcceptor&) = delete;

  // Serves the port for up to `timeout`: returns the first connection that
  // completed the handshake (a backup with its machine ready, or its
  // authenticated refusal), or nullopt when none did in time. Connections
  // still in their handshake stay open for the next call. An error: the
  // listening socket failed.
  Result<std::optional<Accepted>> accept(std::chrono::milliseconds timeout);

  // The port after pairing: until `stop_fd` is readable, reads every other
  // connection (those still open and new ones) until its deadline, checks
  // and counts its messages and never applies one; sends nothing. A message
  // authentic under the session key is a replay of the live session; one
  // authentic under the pair's secret is judged by direction, epoch and
  // the sequence number `paired` (the live channel, which must outlive this
  // call; may be null) has reached, and counted as unexpected if it passes.
  void guard(int stop_fd, const Connection* paired);

  // What later connections are offered: the epoch the primary now holds and
  // whether its guest is running (Hello::running). Connections in the
  // middle of their handshake were offered the old terms: they are closed.
  void reoffer(uint64_t epoch, bool running);

  const RejectCounts& rejected() const { return rejected_; }
  // Authentic messages or handshakes that were not the paired backup's.
  uint64_t unexpected() const { return unexpected_; }
  // Connections open now, not counting a returned one (the serving thread).
  size_t open_connections() const;

 private:
  struct Pending;
  struct Stray;
  Status accept_some(bool guarding);
  std::optional<Accepted> serve(Pending& p, bool* close);
  void close_pending(size_t i, bool timed_out);
  void tell_closed();

  int listen_fd_;
  AcceptorOptions o_;
  std::vector<std::unique_ptr<Pending>> pending_;
  std::vector<std::unique_ptr<Stray>> strays_;
  Key session_;  // the paired connection's key, once there is one
  std::chrono::steady_clock::time_point listen_paused_until_{};
  std::chrono::steady_clock::time_point last_note_{};
  uint64_t closed_since_note_ = 0;
  RejectCounts rejected_;
  std::atomic<uint64_t> unexpected_{0};
};

// What a backup expects of the primary.
struct JoinOptions {
  Key secret;
  std::string vm;
  std::chrono::milliseconds timeout{30000};  // for the Hello, then for the Confirm
  std::chrono::milliseconds stall_timeout{2000};
};

// A backup's pairing in progress: the primary's Hello is checked and the
// session key proven both ways; the primary now waits for ready() or
// refuse().
class Joining {
 public:
  const Hello& hello() const { return hello_; }
  uint64_t epoch() const { return epoch_; }
  // Tells the primary this backup is ready and hands over the channel.
  Result<std::unique_ptr<Connection>> ready();
  // Tells the primary why this backup will not pair (waits up to 1 s for
  // the reason to leave) and closes the channel.
  void refuse(const std::string& why);

 private:
  friend Result<Joining> join_primary(int fd, const JoinOptions& o);
  std::unique_ptr<Connection> conn_;
  Hello hello_;
  uint64_t epoch_ = 0;
};

// The backup's side of the handshake over `fd`, a socket connected to the
// primary's channel port (owned from here on): waits for an authentic Hello,
// checks its version and vm (a mismatch is refused to the primary and
// returned as the error), answers with a fresh nonce, and waits for the
// primary to prove the session key. Errors say what to check.
Result<Joining> join_primary(int fd, const JoinOptions& o);

// Listens on "A.B.C.D:PORT"; returns the socket.
Result<int> listen_tcp(const std::string& addr);
// Accepts one connection, waiting up to `timeout`; nullopt on timeout.
Result<std::optional<int>> accept_tcp(int listen_fd, std::chrono::milliseconds timeout);
// Connects to "A.B.C.D:PORT" within `timeout`.
Result<int> connect_tcp(const std::string& addr, std::chrono::milliseconds timeout);

}  // namespace ftvm::ft
