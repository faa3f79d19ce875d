// The logging channel's framing, authentication and sockets (see channel.h).
#include "ft/channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

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

constexpr std::string_view kMacContext = "ftvm-channel-1";
constexpr size_t kBodyHeader = 18;  // type, direction, epoch, seq

std::span<const uint8_t> sv_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A bounds-checked cursor over a payload.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
  bool u8(uint8_t& v) { if (left() < 1) return false; v = b_[pos_++]; return true; }
  bool u32(uint32_t& v) { if (left() < 4) return false; v = get_u32(&b_[pos_]); pos_ += 4; return true; }
  bool u64(uint64_t& v) { if (left() < 8) return false; v = get_u64(&b_[pos_]); pos_ += 8; return true; }
  bool str(std::string& s, size_t max) {
    uint32_t n = 0;
    if (!u32(n) || n > max || left() < n) return false;
    s.assign(reinterpret_cast<const char*>(&b_[pos_]), n);
    pos_ += n;
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

void RejectCounts::count(Rejection r) {
  switch (r) {
    case Rejection::kForged: ++forged; break;
    case Rejection::kWrongDirection: ++wrong_direction; break;
    case Rejection::kStaleEpoch: ++stale_epoch; break;
    case Rejection::kReplayed: ++replayed; break;
    case Rejection::kNone: break;
  }
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
  if (body_len < kBodyHeader || body_len > kMaxMessageBody) {
    return make_error(fmt::format("a message of {} bytes cannot be framed (limit {})", body_len,
                                  kMaxMessageBody));
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
  if (!secret_->verify({sv_bytes(kMacContext), framed}, mac)) {
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

// ---- payloads ----

std::string encode_hello(const Hello& h) {
  std::string out;
  put_u32(out, h.version);
  put_str(out, h.vm);
  put_u64(out, h.heartbeat_ms);
  put_u64(out, h.timeout_ms);
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
  if (!c.str(h.vm, 255) || !c.u64(h.heartbeat_ms) || !c.u64(h.timeout_ms)) {
    return make_error("hello: truncated");
  }
  Result<std::optional<log::DecodedHeader>> d = log::decode_header(c.rest());
  if (!d) return make_error("hello: " + d.error());
  if (!d->has_value()) return make_error("hello: truncated machine header");
  h.header = (*d)->header;
  return h;
}

std::string encode_hello_ack(const HelloAck& a) {
  std::string out;
  put_u8(out, a.ok ? 1 : 0);
  put_str(out, a.message);
  return out;
}

Result<HelloAck> decode_hello_ack(std::span<const uint8_t> payload) {
  Cursor c(payload);
  HelloAck a;
  uint8_t ok = 0;
  if (!c.u8(ok) || !c.str(a.message, 4096)) return make_error("hello-ack: truncated");
  a.ok = ok == 1;
  return a;
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
  return a;
}

std::string encode_heartbeat(const Heartbeat& h) {
  std::string out;
  put_u64(out, h.instret);
  put_u64(out, h.mtime);
  out.push_back(static_cast<char>(h.should_run ? 1 : 0));
  return out;
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
  return h;
}

// ---- the connection ----

Connection::Connection(int fd, std::shared_ptr<const auth::Secret> secret, Direction send_dir,
                       std::optional<uint64_t> epoch)
    : fd_(fd),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      secret_(secret),
      send_dir_(send_dir),
      send_epoch_(epoch.value_or(0)),
      reader_(secret, send_dir == Direction::kToBackup ? Direction::kToPrimary
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
  out_ += seal_message(*secret_, Message{type, send_dir_, send_epoch_, ++send_seq_, payload});
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
    if (!item) return make_error(item.error());
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

// ---- sockets ----

Result<int> listen_tcp(const std::string& addr) {
  Result<sockaddr_in> sa = parse_addr(addr);
  if (!sa) return make_error(sa.error());
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) != 0 || listen(fd, 8) != 0) {
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
