// The logging channel's framing, authentication and sockets (see channel.h).
#include "ft/channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log/coding.h"

namespace ftvm::ft {
namespace {

using log::internal::as_bytes;
using log::internal::get_u32;
using log::internal::get_u64;
using log::internal::put_bytes;
using log::internal::put_u32;
using log::internal::put_u64;
using log::internal::put_u8;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kMacContext = "ftvm-channel-2";
constexpr std::string_view kHelloAckContext = "ftvm-hello-ack-2";
constexpr std::string_view kSessionContext = "ftvm-session-2";
constexpr size_t kBodyHeader = 18;  // type, direction, epoch, seq

std::span<const uint8_t> sv_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A bounds-checked cursor over a payload.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
  bool u8(uint8_t& v) { if (left() < 1) return false; v = b_[pos_++]; return true; }
  bool flag(bool& v) {
    uint8_t b = 0;
    if (!u8(b) || b > 1) return false;
    v = b == 1;
    return true;
  }
  bool u32(uint32_t& v) { if (left() < 4) return false; v = get_u32(&b_[pos_]); pos_ += 4; return true; }
  bool u64(uint64_t& v) { if (left() < 8) return false; v = get_u64(&b_[pos_]); pos_ += 8; return true; }
  bool str(std::string& s, size_t max) {
    uint32_t n = 0;
    if (!u32(n) || n > max || left() < n) return false;
    s.assign(reinterpret_cast<const char*>(&b_[pos_]), n);
    pos_ += n;
    return true;
  }
  bool nonce(Nonce& n) {
    if (left() < n.size()) return false;
    std::copy_n(&b_[pos_], n.size(), n.begin());
    pos_ += n.size();
    return true;
  }
  std::span<const uint8_t> rest() const { return b_.subspan(pos_); }
  size_t left() const { return b_.size() - pos_; }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

void put_nonce(std::string& out, const Nonce& n) {
  out.append(reinterpret_cast<const char*>(n.data()), n.size());
}

// u32 len | vm | u64 epoch: what every derived key binds.
std::string pair_id(const std::string& vm, uint64_t epoch) {
  std::string out;
  put_str(out, vm);
  put_u64(out, epoch);
  return out;
}

Result<sockaddr_in> parse_addr(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (colon == std::string::npos || inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return make_error(fmt::format("'{}' is not an IPv4 ADDR:PORT", addr));
  }
  try {
    // Digits only: stoul alone would take "80x", " 80" or "+80" as port 80.
    const std::string digits = addr.substr(colon + 1);
    if (digits.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument("port");
    }
    const unsigned long port = std::stoul(digits);
    if (port > 65535) throw std::out_of_range("port");
    sa.sin_port = htons(static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return make_error(fmt::format("'{}' has a bad port", addr));
  }
  return sa;
}

void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

const char* rejection_name(Rejection r) {
  switch (r) {
    case Rejection::kNone: return "accepted";
    case Rejection::kForged: return "forged (bad MAC)";
    case Rejection::kWrongDirection: return "wrong direction";
    case Rejection::kStaleEpoch: return "stale epoch";
    case Rejection::kReplayed: return "replayed (old sequence number)";
  }
  return "?";
}

void RejectCounts::add(const RejectCounts& o) {
  forged += o.forged;
  wrong_direction += o.wrong_direction;
  stale_epoch += o.stale_epoch;
  replayed += o.replayed;
  timed_out += o.timed_out;
}

void RejectCounts::count(Rejection r) {
  switch (r) {
    case Rejection::kForged: ++forged; break;
    case Rejection::kWrongDirection: ++wrong_direction; break;
    case Rejection::kStaleEpoch: ++stale_epoch; break;
    case Rejection::kReplayed: ++replayed; break;
    case Rejection::kNone: break;
  }
}

Nonce random_nonce() {
  Nonce n{};
  FTVM_CHECK(RAND_bytes(n.data(), static_cast<int>(n.size())) == 1);
  return n;
}

Key hello_ack_key(const auth::Secret& secret, const std::string& vm, uint64_t epoch,
                  const Nonce& nonce_p) {
  const std::string id = pair_id(vm, epoch);
  const auth::Mac k = secret.mac({sv_bytes(kHelloAckContext), as_bytes(id), nonce_p});
  return std::make_shared<const auth::Secret>(auth::Secret::from_bytes(k));
}

Key session_key(const auth::Secret& secret, const std::string& vm, uint64_t epoch,
                const Nonce& nonce_p, const Nonce& nonce_b) {
  const std::string id = pair_id(vm, epoch);
  const auth::Mac k = secret.mac({sv_bytes(kSessionContext), as_bytes(id), nonce_p, nonce_b});
  return std::make_shared<const auth::Secret>(auth::Secret::from_bytes(k));
}

std::string seal_message(const auth::Secret& secret, const Message& m) {
  std::string out;
  out.reserve(4 + kBodyHeader + m.payload.size() + auth::kMacSize);
  put_u32(out, static_cast<uint32_t>(kBodyHeader + m.payload.size()));
  put_u8(out, static_cast<uint8_t>(m.type));
  put_u8(out, static_cast<uint8_t>(m.direction));
  put_u64(out, m.epoch);
  put_u64(out, m.seq);
  out += m.payload;
  const auth::Mac mac = secret.mac({sv_bytes(kMacContext), as_bytes(out)});
  put_bytes(out, mac);
  return out;
}

void MessageReader::feed(std::span<const uint8_t> bytes) {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

Result<std::optional<MessageReader::Item>> MessageReader::next() {
  const size_t avail = buffer_.size() - start_;
  if (avail < 4) return std::optional<Item>();
  const uint8_t* p = buffer_.data() + start_;
  const uint32_t body_len = get_u32(p);
  if (body_len < kBodyHeader || body_len > max_body_) {
    return make_error(fmt::format("a message of {} bytes cannot be framed (limit {})", body_len,
                                  max_body_));
  }
  const size_t total = 4 + body_len + auth::kMacSize;
  if (avail < total) return std::optional<Item>();
  Item item;
  Message& m = item.message;
  m.type = static_cast<MsgType>(p[4]);
  m.direction = static_cast<Direction>(p[5]);
  m.epoch = get_u64(p + 6);
  m.seq = get_u64(p + 14);
  m.payload.assign(reinterpret_cast<const char*>(p + 4 + kBodyHeader), body_len - kBodyHeader);
  const std::span<const uint8_t> framed(p, 4 + body_len);
  const std::span<const uint8_t> mac(p + 4 + body_len, auth::kMacSize);
  start_ += total;
  item.key = keys_.size();
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i]->verify({sv_bytes(kMacContext), framed}, mac)) {
      item.key = i;
      break;
    }
  }
  if (item.key == keys_.size()) {
    item.key = 0;
    item.rejection = Rejection::kForged;
  } else if (m.direction != expect_) {
    item.rejection = Rejection::kWrongDirection;
  } else if (epoch_ && m.epoch != *epoch_) {
    item.rejection = Rejection::kStaleEpoch;
  } else if (m.seq <= last_seq_) {
    item.rejection = Rejection::kReplayed;
  } else {
    last_seq_ = m.seq;
    if (!epoch_) epoch_ = m.epoch;
  }
  return std::optional<Item>(std::move(item));
}

void MessageReader::set_keys(std::vector<Key> keys) {
  FTVM_CHECK(!keys.empty());
  keys_ = std::move(keys);
}

// ---- payloads ----
//
// Every decoder takes exactly one encoding of each value: trailing bytes
// are an error, and a flag byte is 0 or 1.

std::string encode_hello(const Hello& h) {
  std::string out;
  put_u32(out, h.version);
  put_nonce(out, h.nonce);
  put_str(out, h.vm);
  put_u64(out, h.heartbeat_ms);
  put_u64(out, h.timeout_ms);
  out.push_back(h.running ? 1 : 0);
  Result<std::string> header = log::encode_header(h.header);
  FTVM_CHECK(header.ok());
  out += *header;
  return out;
}

Result<Hello> decode_hello(std::span<const uint8_t> payload) {
  Cursor c(payload);
  Hello h;
  if (!c.u32(h.version)) return make_error("hello: truncated");
  if (h.version != kProtocolVersion) {
    return make_error(fmt::format("the primary speaks channel protocol {}, this ftvm {}: run the "
                                  "same ftvm version on both hosts",
                                  h.version, kProtocolVersion));
  }
  if (!c.nonce(h.nonce) || !c.str(h.vm, 255) || !c.u64(h.heartbeat_ms) || !c.u64(h.timeout_ms) ||
      !c.flag(h.running)) {
    return make_error("hello: truncated or a flag byte other than 0 or 1");
  }
  Result<std::optional<log::DecodedHeader>> d = log::decode_header(c.rest());
  if (!d) return make_error("hello: " + d.error());
  if (!d->has_value()) return make_error("hello: truncated machine header");
  if ((*d)->size != c.rest().size()) {
    return make_error(fmt::format("hello: {} bytes after the machine header",
                                  c.rest().size() - (*d)->size));
  }
  h.header = (*d)->header;
  return h;
}

std::string encode_hello_ack(const HelloAck& a) {
  std::string out;
  put_u8(out, a.ok ? 1 : 0);
  put_nonce(out, a.nonce);
  put_str(out, a.message);
  return out;
}

Result<HelloAck> decode_hello_ack(std::span<const uint8_t> payload) {
  Cursor c(payload);
  HelloAck a;
  uint8_t ok = 0;
  if (!c.u8(ok) || !c.nonce(a.nonce) || !c.str(a.message, 4096)) {
    return make_error("hello-ack: truncated");
  }
  if (ok > 1) return make_error(fmt::format("hello-ack: bad flag {}", ok));
  if (c.left() != 0) return make_error(fmt::format("hello-ack: {} trailing bytes", c.left()));
  a.ok = ok == 1;
  return a;
}

std::string encode_ready(const Ready& r) {
  std::string out;
  put_u8(out, r.ok ? 1 : 0);
  put_str(out, r.message);
  return out;
}

Result<Ready> decode_ready(std::span<const uint8_t> payload) {
  Cursor c(payload);
  Ready r;
  uint8_t ok = 0;
  if (!c.u8(ok) || !c.str(r.message, 4096)) return make_error("ready: truncated");
  if (ok > 1) return make_error(fmt::format("ready: bad flag {}", ok));
  if (c.left() != 0) return make_error(fmt::format("ready: {} trailing bytes", c.left()));
  r.ok = ok == 1;
  return r;
}

std::string encode_records(uint64_t first, const std::string& encoded) {
  std::string out;
  put_u64(out, first);
  out += encoded;
  return out;
}

Result<RecordsMsg> decode_records(std::span<const uint8_t> payload) {
  Cursor c(payload);
  RecordsMsg m;
  if (!c.u64(m.first)) return make_error("records: truncated");
  std::span<const uint8_t> rest = c.rest();
  uint64_t offset = 8;
  while (!rest.empty()) {
    Result<std::optional<log::DecodedRecord>> d = log::decode_record(rest, offset);
    if (!d) return make_error("records: " + d.error());
    if (!d->has_value()) return make_error(fmt::format("records: truncated at offset {}", offset));
    m.records.push_back(std::move((*d)->record));
    m.sizes.push_back((*d)->size);
    rest = rest.subspan((*d)->size);
    offset += (*d)->size;
  }
  return m;
}

std::string encode_ack(const Ack& a) {
  std::string out;
  for (uint64_t v : {a.received, a.executed, a.exec_instret, a.exec_mtime, a.received_bytes,
                     a.executed_bytes}) {
    put_u64(out, v);
  }
  out.push_back(static_cast<char>(a.should_run ? 1 : 0));
  return out;
}

Result<Ack> decode_ack(std::span<const uint8_t> payload) {
  Cursor c(payload);
  Ack a;
  if (!c.u64(a.received) || !c.u64(a.executed) || !c.u64(a.exec_instret) ||
      !c.u64(a.exec_mtime) || !c.u64(a.received_bytes) || !c.u64(a.executed_bytes)) {
    return make_error("ack: truncated");
  }
  uint8_t flags = 0;
  if (!c.u8(flags)) return make_error("ack: truncated");
  if (flags > 1) return make_error("ack: unknown flags");
  a.should_run = flags != 0;
  if (c.left() != 0) return make_error(fmt::format("ack: {} trailing bytes", c.left()));
  return a;
}

std::string encode_heartbeat(const Heartbeat& h) {
  std::string out;
  put_u64(out, h.instret);
  put_u64(out, h.mtime);
  out.push_back(static_cast<char>(h.should_run ? 1 : 0));
  return out;
}

std::string encode_handover(const Handover& h) {
  std::string out;
  put_u64(out, h.records);
  put_u64(out, h.instret);
  return out;
}

Result<Handover> decode_handover(std::span<const uint8_t> payload) {
  Cursor c(payload);
  Handover h;
  if (!c.u64(h.records) || !c.u64(h.instret)) return make_error("handover: truncated");
  if (c.left() != 0) return make_error(fmt::format("handover: {} trailing bytes", c.left()));
  return h;
}

Result<Heartbeat> decode_heartbeat(std::span<const uint8_t> payload) {
  Cursor c(payload);
  Heartbeat h;
  uint8_t flags = 0;
  if (!c.u64(h.instret) || !c.u64(h.mtime) || !c.u8(flags)) {
    return make_error("heartbeat: truncated");
  }
  if (flags > 1) return make_error("heartbeat: unknown flags");
  h.should_run = flags != 0;
  if (c.left() != 0) return make_error(fmt::format("heartbeat: {} trailing bytes", c.left()));
  return h;
}

// ---- the connection ----

Connection::Connection(int fd, Key key, Direction send_dir, std::optional<uint64_t> epoch)
    : fd_(fd),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      send_dir_(send_dir),
      send_key_(key),
      send_epoch_(epoch.value_or(0)),
      reader_(key, send_dir == Direction::kToBackup ? Direction::kToPrimary
                                                        : Direction::kToBackup,
              epoch) {
  tune(fd_);
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

Connection::~Connection() {
  close(fd_);
  close(wake_fd_);
}

void Connection::wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void Connection::shutdown() {
  shut_ = true;
  wake();
}

void Connection::set_epoch(uint64_t epoch) {
  std::lock_guard<std::mutex> lock(out_mu_);
  send_epoch_ = epoch;
  reader_.set_epoch(epoch);
}

void Connection::set_send_key(Key key) {
  std::lock_guard<std::mutex> lock(out_mu_);
  send_key_ = std::move(key);
}

std::optional<uint64_t> Connection::epoch() const { return reader_.epoch(); }

size_t Connection::queued_bytes() const {
  std::lock_guard<std::mutex> lock(out_mu_);
  return out_.size() - out_done_;
}

Status Connection::write_some_locked() {
  while (out_done_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_done_, out_.size() - out_done_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_done_ += static_cast<size_t>(n);
      bytes_sent_ += static_cast<uint64_t>(n);
      last_progress_ = Clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    failed_ = fmt::format("channel send failed: {}", std::strerror(errno));
    return make_error(failed_);
  }
  has_output_ = out_done_ < out_.size();
  if (out_done_ == out_.size()) {
    out_.clear();
    out_done_ = 0;
  } else if (out_done_ > (size_t{1} << 20)) {
    out_.erase(0, out_done_);
    out_done_ = 0;
  }
  return {};
}

Status Connection::send(MsgType type, const std::string& payload) {
  std::lock_guard<std::mutex> lock(out_mu_);
  if (!failed_.empty()) return make_error(failed_);
  const bool was_empty = out_done_ == out_.size();
  if (was_empty) last_progress_ = Clock::now();
  out_ += seal_message(*send_key_, Message{type, send_dir_, send_epoch_, ++send_seq_, payload});
  has_output_ = true;
  if (was_empty) {
    if (Status s = write_some_locked(); !s) return s;
  }
  if (out_done_ < out_.size()) wake();  // receive() writes the rest
  return {};
}

Status Connection::flush(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(out_mu_);
      if (Status s = write_some_locked(); !s) return s;
      if (out_done_ == out_.size()) return {};
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return make_error("channel send timed out: the peer takes no data");
    pollfd pfd{fd_, POLLOUT, 0};
    poll(&pfd, 1, static_cast<int>(left.count()) + 1);
  }
}

Result<std::optional<Message>> Connection::receive(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Result<std::optional<MessageReader::Item>> item = reader_.next();
    if (!item) {
      ++rejected_.forged;  // a stream that cannot be framed is not the peer's
      return make_error(item.error());
    }
    if (item->has_value()) {
      if ((*item)->rejection != Rejection::kNone) {
        rejected_.count((*item)->rejection);
        continue;
      }
      last_seq_seen_ = reader_.last_seq();
      return std::optional<Message>(std::move((*item)->message));
    }
    if (shut_) return make_error("the channel was shut down");
    bool pending = false;
    if (has_output_) {
      // Never wait for the lock: a sender that holds it is writing anyway,
      // and reading must go on (acknowledgements, heartbeats) whatever the
      // senders do.
      std::unique_lock<std::mutex> lock(out_mu_, std::try_to_lock);
      if (!lock.owns_lock()) {
        pending = true;
      } else {
        if (!failed_.empty()) return make_error(failed_);
        if (Status s = write_some_locked(); !s) return make_error(s.error());
        pending = out_done_ < out_.size();
        if (pending && Clock::now() - last_progress_ > stall_timeout_) {
          failed_ = fmt::format("the peer has taken no data for {} ms", stall_timeout_.count());
          return make_error(failed_);
        }
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) return std::optional<Message>();
    pollfd pfds[2] = {{fd_, static_cast<short>(POLLIN | (pending ? POLLOUT : 0)), 0},
                      {wake_fd_, POLLIN, 0}};
    const int r = poll(pfds, 2, static_cast<int>(std::min<int64_t>(left.count(), 50)));
    if (r < 0 && errno != EINTR) return make_error(fmt::format("poll: {}", std::strerror(errno)));
    if (pfds[1].revents != 0) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    if (r <= 0 || (pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
      if (Clock::now() >= deadline) return std::optional<Message>();
      continue;
    }
    uint8_t buf[65536];
    const ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return make_error("the peer closed the channel");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return make_error(fmt::format("channel receive failed: {}", std::strerror(errno)));
    }
    bytes_received_ += static_cast<uint64_t>(n);
    reader_.feed({buf, static_cast<size_t>(n)});
  }
}

// ---- the handshake: the primary's acceptor ----

namespace {

using std::chrono::milliseconds;

int poll_ms(Clock::time_point until) {
  const auto left = std::chrono::ceil<milliseconds>(until - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1000));
}

}  // namespace

struct ChannelAcceptor::Pending {
  enum class Stage { kHelloAck, kReady };
  std::unique_ptr<Connection> conn;
  Stage stage = Stage::kHelloAck;
  Nonce nonce_p{};
  Key session;
  Clock::time_point deadline;
};

struct ChannelAcceptor::Stray {
  Stray(int f, MessageReader r, Clock::time_point d) : fd(f), reader(std::move(r)), deadline(d) {}
  ~Stray() { close(fd); }
  Stray(const Stray&) = delete;
  Stray& operator=(const Stray&) = delete;
  int fd;
  MessageReader reader;
  Clock::time_point deadline;
};

ChannelAcceptor::ChannelAcceptor(int listen_fd, AcceptorOptions o)
    : listen_fd_(listen_fd), o_(std::move(o)) {
  FTVM_CHECK(o_.secret != nullptr && o_.max_connections > 0);
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
}

ChannelAcceptor::~ChannelAcceptor() = default;

size_t ChannelAcceptor::open_connections() const { return pending_.size() + strays_.size(); }

void ChannelAcceptor::reoffer(uint64_t epoch, bool running) {
  if (o_.epoch == epoch && o_.hello.running == running) return;
  o_.epoch = epoch;
  o_.hello.running = running;
  while (!pending_.empty()) close_pending(pending_.size() - 1, /*timed_out=*/false);
}

void ChannelAcceptor::close_pending(size_t i, bool timed_out) {
  Pending& p = *pending_[i];
  rejected_.add(p.conn->rejected());
  if (timed_out) ++rejected_.timed_out;
  if (p.stage == Pending::Stage::kReady) ++unexpected_;  // an authenticated backup, not paired
  pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(i));
  ++closed_since_note_;
}

void ChannelAcceptor::tell_closed() {
  const auto now = Clock::now();
  if (closed_since_note_ == 0 || now - last_note_ < std::chrono::seconds(1)) return;
  if (o_.note) {
    o_.note(fmt::format(
        "closed {} unpaired connection(s) to the channel port (so far: {} forged, {} replayed, "
        "{} stale epoch, {} wrong direction, {} timed out, {} authentic but not the backup's)",
        closed_since_note_, rejected_.forged.load(), rejected_.replayed.load(),
        rejected_.stale_epoch.load(), rejected_.wrong_direction.load(), rejected_.timed_out.load(),
        unexpected_.load()));
  }
  closed_since_note_ = 0;
  last_note_ = now;
}

// Takes every connection waiting in the listen queue (a bounded number per
// call). At the connection cap, or out of file descriptors, the oldest
// unauthenticated connection makes room; with none to close, the listening
// socket is left alone for 100 ms rather than polled in a busy loop.
Status ChannelAcceptor::accept_some(bool guarding) {
  auto evict_oldest = [&] {
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i]->stage == Pending::Stage::kHelloAck) {
        close_pending(i, true);
        return true;
      }
    }
    if (!strays_.empty()) {
      ++rejected_.timed_out;
      ++closed_since_note_;
      strays_.erase(strays_.begin());
      return true;
    }
    return false;
  };
  for (size_t n = 0; n < o_.max_connections; ++n) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    const auto now = Clock::now();
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        if (evict_oldest()) continue;
        listen_paused_until_ = now + milliseconds(100);
        return {};
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED ||
          errno == EPROTO || errno == EPERM) {
        return {};
      }
      return make_error(fmt::format("accept on the channel port: {}", std::strerror(errno)));
    }
    if (open_connections() >= o_.max_connections && !evict_oldest()) {
      close(fd);
      ++rejected_.timed_out;
      ++closed_since_note_;
      continue;
    }
    if (guarding) {
      MessageReader reader(o_.secret, Direction::kToPrimary, o_.epoch);
      if (session_) reader.set_keys({session_, o_.secret});
      reader.set_max_body(kMaxHandshakeBody);
      strays_.push_back(std::make_unique<Stray>(fd, std::move(reader), now + o_.handshake_timeout));
      continue;
    }
    auto p = std::make_unique<Pending>();
    p->nonce_p = random_nonce();
    p->conn = std::make_unique<Connection>(fd, o_.secret, Direction::kToBackup, o_.epoch);
    p->conn->set_max_body(kMaxHandshakeBody);
    p->conn->set_stall_timeout(o_.handshake_timeout);
    Hello hello = o_.hello;
    hello.version = kProtocolVersion;
    hello.nonce = p->nonce_p;
    if (!p->conn->send(MsgType::kHello, encode_hello(hello))) {
      ++closed_since_note_;
      continue;  // the peer is gone already
    }
    p->conn->set_receive_keys({hello_ack_key(*o_.secret, o_.hello.vm, o_.epoch, p->nonce_p)});
    p->deadline = now + o_.handshake_timeout;
    pending_.push_back(std::move(p));
  }
  return {};
}

std::optional<Accepted> ChannelAcceptor::serve(Pending& p, bool* close_it) {
  for (;;) {
    Result<std::optional<Message>> m = p.conn->receive(milliseconds(0));
    if (!m) {
      *close_it = true;
      return std::nullopt;
    }
    if (!m->has_value()) return std::nullopt;
    const Message& msg = **m;
    if (p.stage == Pending::Stage::kHelloAck) {
      Result<HelloAck> ack = msg.type == MsgType::kHelloAck
                                 ? decode_hello_ack(as_span(msg.payload))
                                 : Result<HelloAck>(make_error("not a hello-ack"));
      if (!ack) {  // authentic, yet not a HelloAck: not a backup of this version
        ++unexpected_;
        *close_it = true;
        return std::nullopt;
      }
      if (!ack->ok) return Accepted{nullptr, ack->message};
      p.session = session_key(*o_.secret, o_.hello.vm, o_.epoch, p.nonce_p, ack->nonce);
      p.conn->set_send_key(p.session);
      p.conn->set_receive_keys({p.session});
      if (!p.conn->send(MsgType::kConfirm, "")) {
        *close_it = true;
        return std::nullopt;
      }
      p.stage = Pending::Stage::kReady;
      p.deadline = Clock::now() + o_.ready_timeout;
      p.conn->set_stall_timeout(o_.stall_timeout);
      continue;
    }
    Result<Ready> ready = msg.type == MsgType::kReady ? decode_ready(as_span(msg.payload))
                                                      : Result<Ready>(make_error("not ready"));
    if (!ready) {
      ++unexpected_;
      *close_it = true;
      return std::nullopt;
    }
    if (!ready->ok) return Accepted{nullptr, ready->message};
    p.conn->set_max_body(kMaxMessageBody);
    session_ = p.session;
    return Accepted{std::move(p.conn), ""};
  }
}

Result<std::optional<Accepted>> ChannelAcceptor::accept(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<pollfd> pfds;
  for (;;) {
    const auto now = Clock::now();
    for (size_t i = 0; i < pending_.size();) {
      if (pending_[i]->deadline <= now) {
        close_pending(i, true);
      } else {
        ++i;
      }
    }
    tell_closed();
    const bool listening = now >= listen_paused_until_;
    auto wake = listening ? deadline : std::min(deadline, listen_paused_until_);
    pfds.assign(1, pollfd{listening ? listen_fd_ : -1, POLLIN, 0});
    for (const auto& p : pending_) {
      wake = std::min(wake, p->deadline);
      const bool out = p->conn->queued_bytes() > 0;
      pfds.push_back({p->conn->fd(), static_cast<short>(POLLIN | (out ? POLLOUT : 0)), 0});
    }
    if (poll(pfds.data(), pfds.size(), poll_ms(wake)) < 0 && errno != EINTR) {
      return make_error(fmt::format("poll: {}", std::strerror(errno)));
    }
    std::vector<Pending*> ready;
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pfds[i + 1].revents != 0) ready.push_back(pending_[i].get());
    }
    for (Pending* p : ready) {
      bool close_it = false;
      std::optional<Accepted> done = serve(*p, &close_it);
      const auto it = std::find_if(pending_.begin(), pending_.end(),
                                   [&](const auto& q) { return q.get() == p; });
      if (done) {
        if (done->conn == nullptr) rejected_.add(p->conn->rejected());
        pending_.erase(it);
        return std::optional<Accepted>(std::move(*done));
      }
      if (close_it) close_pending(static_cast<size_t>(it - pending_.begin()), false);
    }
    if ((pfds[0].revents & POLLIN) != 0) {
      if (Status s = accept_some(/*guarding=*/false); !s) return make_error(s.error());
    }
    if (Clock::now() >= deadline) return std::optional<Accepted>();
  }
}

void ChannelAcceptor::guard(int stop_fd, const Connection* paired) {
  while (!pending_.empty()) close_pending(pending_.size() - 1, false);
  std::vector<pollfd> pfds;
  for (;;) {
    const auto now = Clock::now();
    for (size_t i = 0; i < strays_.size();) {
      if (strays_[i]->deadline <= now) {
        ++rejected_.timed_out;
        ++closed_since_note_;
        strays_.erase(strays_.begin() + static_cast<ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    tell_closed();
    const bool listening = now >= listen_paused_until_;
    auto wake = now + std::chrono::seconds(1);
    if (!listening) wake = std::min(wake, listen_paused_until_);
    pfds.assign({pollfd{stop_fd, POLLIN, 0}, pollfd{listening ? listen_fd_ : -1, POLLIN, 0}});
    for (const auto& s : strays_) {
      wake = std::min(wake, s->deadline);
      pfds.push_back({s->fd, POLLIN, 0});
    }
    if (poll(pfds.data(), pfds.size(), poll_ms(wake)) < 0 && errno != EINTR) return;
    if (pfds[0].revents != 0) break;
    std::vector<Stray*> ready;
    for (size_t i = 0; i < strays_.size(); ++i) {
      if (pfds[i + 2].revents != 0) ready.push_back(strays_[i].get());
    }
    for (Stray* s : ready) {
      bool close_it = false;
      uint8_t buf[16384];
      const ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_it = true;
      if (n > 0) s->reader.feed({buf, static_cast<size_t>(n)});
      if (paired && s->reader.last_seq() < paired->last_received_seq()) {
        s->reader.set_last_seq(paired->last_received_seq());
      }
      while (!close_it) {
        Result<std::optional<MessageReader::Item>> item = s->reader.next();
        if (!item) {
          ++rejected_.forged;  // unframeable
          close_it = true;
        } else if (!item->has_value()) {
          break;
        } else if ((*item)->rejection != Rejection::kNone) {
          rejected_.count((*item)->rejection);
        } else if (session_ && (*item)->key == 0) {
          ++rejected_.replayed;  // the live session's, on another connection
        } else {
          ++unexpected_;
        }
      }
      if (close_it) {
        ++closed_since_note_;
        strays_.erase(std::find_if(strays_.begin(), strays_.end(),
                                   [&](const auto& q) { return q.get() == s; }));
      }
    }
    if ((pfds[1].revents & POLLIN) != 0 && !accept_some(/*guarding=*/true)) return;
  }
  closed_since_note_ += strays_.size();
  strays_.clear();
  last_note_ = {};
  tell_closed();
}

// ---- the handshake: the backup ----

Result<Joining> join_primary(int fd, const JoinOptions& o) {
  auto conn = std::make_unique<Connection>(fd, o.secret, Direction::kToPrimary, std::nullopt);
  conn->set_stall_timeout(o.stall_timeout);
  conn->set_max_body(kMaxMessageBody);
  // The next accepted message of `type` within `timeout`; others are skipped.
  auto wait_for = [&](MsgType type) -> Result<std::optional<Message>> {
    const auto deadline = Clock::now() + o.timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::optional<Message>();
      Result<std::optional<Message>> m = conn->receive(left);
      if (!m || !m->has_value() || (*m)->type == type) return m;
    }
  };
  Result<std::optional<Message>> m = wait_for(MsgType::kHello);
  if (!m) return make_error("the primary did not say hello: " + m.error());
  if (!m->has_value()) {
    return make_error(fmt::format("no authentic hello from the primary within {} ms (is the "
                                  "secret the same on both hosts, and ftvm the same version?)",
                                  o.timeout.count()));
  }
  const uint64_t epoch = (*m)->epoch;
  conn->set_epoch(epoch);
  Result<Hello> hello = decode_hello(as_span((*m)->payload));
  const Nonce nonce_b = random_nonce();
  auto refuse = [&](const std::string& vm, const Nonce& nonce_p, const std::string& why) {
    conn->set_send_key(hello_ack_key(*o.secret, vm, epoch, nonce_p));
    (void)conn->send(MsgType::kHelloAck, encode_hello_ack({false, why, nonce_b}));
    (void)conn->flush(milliseconds(1000));
    return make_error(why);
  };
  if (!hello) {
    Nonce nonce_p{};  // where a Hello of any version keeps it, if there
    if ((*m)->payload.size() >= 4 + kNonceSize) {
      std::copy_n((*m)->payload.data() + 4, kNonceSize, reinterpret_cast<char*>(nonce_p.data()));
    }
    return refuse(o.vm, nonce_p, hello.error());
  }
  if (hello->vm != o.vm) {
    return refuse(hello->vm, hello->nonce,
                  fmt::format("the primary runs vm '{}', this backup is for '{}'", hello->vm, o.vm));
  }
  const Key session = session_key(*o.secret, o.vm, epoch, hello->nonce, nonce_b);
  conn->set_send_key(hello_ack_key(*o.secret, o.vm, epoch, hello->nonce));
  if (Status s = conn->send(MsgType::kHelloAck, encode_hello_ack({true, "", nonce_b})); !s) {
    return make_error(s.error());
  }
  conn->set_send_key(session);
  conn->set_receive_keys({session});
  m = wait_for(MsgType::kConfirm);
  if (!m) return make_error("the primary did not confirm the session: " + m.error());
  if (!m->has_value()) {
    return make_error(fmt::format(
        "the primary did not confirm the session within {} ms (a replayed hello?)",
        o.timeout.count()));
  }
  Joining j;
  j.conn_ = std::move(conn);
  j.hello_ = std::move(*hello);
  j.epoch_ = epoch;
  return j;
}

Result<std::unique_ptr<Connection>> Joining::ready() {
  FTVM_CHECK(conn_ != nullptr);
  if (Status s = conn_->send(MsgType::kReady, encode_ready({true, ""})); !s) {
    return make_error(s.error());
  }
  return std::move(conn_);
}

void Joining::refuse(const std::string& why) {
  FTVM_CHECK(conn_ != nullptr);
  (void)conn_->send(MsgType::kReady, encode_ready({false, why}));
  (void)conn_->flush(milliseconds(1000));
  conn_.reset();
}

// ---- sockets ----

Result<int> listen_tcp(const std::string& addr) {
  Result<sockaddr_in> sa = parse_addr(addr);
  if (!sa) return make_error(sa.error());
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0 || listen(fd, 64) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return make_error(fmt::format("cannot listen on {}: {}", addr, why));
  }
  return fd;
}

Result<std::optional<int>> accept_tcp(int listen_fd, std::chrono::milliseconds timeout) {
  pollfd pfd{listen_fd, POLLIN, 0};
  const int r = poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) return make_error(fmt::format("poll: {}", std::strerror(errno)));
  if (r <= 0) return std::optional<int>();
  const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return std::optional<int>();
    return make_error(fmt::format("accept: {}", std::strerror(errno)));
  }
  return std::optional<int>(fd);
}

Result<int> connect_tcp(const std::string& addr, std::chrono::milliseconds timeout) {
  Result<sockaddr_in> sa = parse_addr(addr);
  if (!sa) return make_error(sa.error());
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0 && errno != EINPROGRESS) {
    const std::string why = std::strerror(errno);
    close(fd);
    return make_error(fmt::format("cannot connect to {}: {}", addr, why));
  }
  pollfd pfd{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) {
    close(fd);
    return make_error(fmt::format("cannot connect to {}: no answer within {} ms", addr, timeout.count()));
  }
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    close(fd);
    return make_error(fmt::format("cannot connect to {}: {}", addr, std::strerror(err)));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace ftvm::ft
