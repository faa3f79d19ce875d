// ftvm-redis-load: a Redis client that writes keys for a while on a fixed
// set of connections and then checks that every write Redis acknowledged is
// still there. It is the client side of the FT tests: a failover that is
// transparent keeps every connection up, loses no acknowledged write, and
// shows up only as a stall in the replies.
//
// Phases:
//   ready   (--wait-ready S) connect + PING until +PONG, or exit 2 at S.
//   write   N connections, opened once and never reopened, one thread each,
//           each sending SET <prefix>:<conn>:<i> <value> and waiting for +OK
//           before the next, until --duration or SIGINT/SIGTERM. A timeout,
//           an error reply, EOF or a socket error ends that connection's
//           writes and is recorded.
//   verify  GET of every acknowledged key, pipelined, on the same connection
//           if it is still usable, else on one fresh connection shared by
//           all the dead ones; each value is compared with the one that was
//           acknowledged.
//
// Progress, one line a second on stderr:
//   ftvm-redis-load: t=<elapsed>s acked=<total> rps=<acks in the last second>
//     stall_ms=<longest wait since the last reply of a connection still
//     writing> writing=<connections still writing>/<connections>
//
// The report, JSON on stdout (and in --out FILE); times are seconds from the
// start of the write phase unless named otherwise:
//   ok                    true exactly when the exit status is 0
//   host, port, connections, value_size
//   connections_alive     connections still usable when writing ended
//   duration_s            length of the write phase
//   acked                 SETs answered +OK
//   errors                [{conn, time_s, phase: "write"|"verify", message}]
//   per_connection_acked  [acked of connection 0, 1, ...]
//   reconnects            always 0: connections are never reopened
//   throughput            acked / duration_s
//   latency_us            {p50, p90, p99, max} of the acknowledged SETs
//   max_stall_ms          longest gap between consecutive replies on one
//                         connection (the first gap counts from the start,
//                         and a gap ended by an error counts too)
//   stall_start_s         when that gap began
//   verify                {checked, ok, missing, wrong, unchecked}: GETs
//                         answered; with the value acknowledged; nil; another
//                         value; acknowledged keys never read back (a
//                         connection failed while verifying)
//   start_unix_ns         wall-clock time of the start
//   key_prefix            the keys' prefix
// With --gaps-over-ms MS, two more fields:
//   gaps_over_ms          MS
//   gaps                  [{start_unix_ns, end_unix_ns, ms, end}]: every
//                         interval of the write phase longer than MS in
//                         which no connection got a reply, in time order.
//                         It starts at a reply (or the start of writing)
//                         and ends at the next reply on any connection
//                         (end "reply") or, if none came, when writing
//                         ended (end "writing ended"). Any reply counts,
//                         +OK or not. Wall-clock times, for lining up with
//                         events outside (a failure injected at a known
//                         time); at most 100000 gaps are kept.
//
// --verify-report FILE skips the write phase: it reads back, on one fresh
// connection, every key a earlier run's report (FILE) says was acknowledged
// (e.g. after the server restarted) and prints
//   {ok, verify: {checked, ok, missing, wrong, unchecked}, errors}.
//
// Exit status: 0 when nothing failed, every connection stayed up and every
// acknowledged key read back with its value; 1 otherwise; 2 for bad usage,
// a connection that cannot be opened at the start, or --wait-ready running
// out. A second SIGINT/SIGTERM exits 1 at once, without a report.
//
// RESP is written by hand over plain non-blocking sockets: every read and
// write waits in poll() with the request's deadline.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr size_t kVerifyBatch = 128;           // GETs in flight per connection
constexpr size_t kMaxBulkBytes = 64u << 20;    // larger replies are a protocol error
constexpr auto kReadyAttempt = std::chrono::seconds(1);
constexpr auto kReadyBackoff = std::chrono::milliseconds(100);
constexpr size_t kMaxGaps = 100000;             // --gaps-over-ms keeps at most this many

struct Options {
  std::string host = "10.77.0.15";
  uint16_t port = 6379;
  int connections = 4;
  double duration_s = 20;
  size_t value_size = 32;
  std::string key_prefix = "k";
  std::string out;
  double request_timeout_s = 30;
  std::optional<double> wait_ready_s;
  std::optional<double> gaps_over_ms;
  std::string verify_report;
};

constexpr std::string_view kUsage = R"(usage: ftvm-redis-load [options]
  --host ADDR             Redis address (IPv4; default 10.77.0.15)
  --port N                default 6379
  --connections N         connections, each written by its own thread (default 4)
  --duration S            seconds of writing (default 20)
  --value-size N          bytes per value (default 32)
  --key-prefix P          keys are P:<conn>:<i> (default k)
  --request-timeout S     deadline of each request (default 30)
  --wait-ready S          first retry connect + PING until +PONG, up to S seconds
  --out FILE              also write the JSON report to FILE
  --gaps-over-ms MS       list in the report ("gaps") every silence of the
                          write phase longer than MS in which no connection
                          got a reply, with wall-clock start and end
  --verify-report FILE    no writing: read back every key acknowledged in the
                          earlier run whose report is FILE
Runs the write phase, then reads every acknowledged key back. JSON report on
stdout, progress on stderr. Exit 0: no error and every acknowledged key read
back intact; 1: otherwise; 2: bad usage, cannot connect, not ready in time.
)";

[[noreturn]] void usage_error(const std::string& message) {
  fmt::print(stderr, "ftvm-redis-load: {}\n{}", message, kUsage);
  std::exit(kExitUsage);
}

template <typename T>
T parse_number(std::string_view flag, std::string_view text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    usage_error(fmt::format("{} wants a number from {} to {}, not '{}'", flag, min, max, text));
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      fmt::print("{}", kUsage);
      std::exit(kExitOk);
    }
    if (i + 1 >= argc) usage_error(fmt::format("{} needs a value (or is unknown)", flag));
    std::string_view value = argv[++i];
    if (flag == "--host") {
      o.host = value;
    } else if (flag == "--port") {
      o.port = parse_number<uint16_t>(flag, value, 1, 65535);
    } else if (flag == "--connections") {
      o.connections = parse_number<int>(flag, value, 1, 1024);
    } else if (flag == "--duration") {
      o.duration_s = parse_number<double>(flag, value, 0, 86400);
    } else if (flag == "--value-size") {
      o.value_size = parse_number<size_t>(flag, value, 1, 1u << 20);
    } else if (flag == "--key-prefix") {
      if (value.empty()) usage_error("--key-prefix must not be empty");
      o.key_prefix = value;
    } else if (flag == "--out") {
      o.out = value;
    } else if (flag == "--request-timeout") {
      o.request_timeout_s = parse_number<double>(flag, value, 0.001, 86400);
    } else if (flag == "--wait-ready") {
      o.wait_ready_s = parse_number<double>(flag, value, 0, 86400);
    } else if (flag == "--verify-report") {
      o.verify_report = value;
    } else if (flag == "--gaps-over-ms") {
      o.gaps_over_ms = parse_number<double>(flag, value, 0.001, 86400e3);
    } else {
      usage_error(fmt::format("unknown option '{}'", flag));
    }
  }
  in_addr addr{};
  if (inet_pton(AF_INET, o.host.c_str(), &addr) != 1) {
    usage_error(fmt::format("--host wants an IPv4 address, not '{}'", o.host));
  }
  return o;
}

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double to_seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// --- keys and values ------------------------------------------------------

std::string key_of(const std::string& prefix, int conn, uint64_t i) {
  return fmt::format("{}:{}:{}", prefix, conn, i);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The value written to key i of connection conn: value_size lowercase
// letters, a function of (conn, i) alone, so the verify phase recomputes it.
std::string value_of(int conn, uint64_t i, size_t value_size) {
  uint64_t state = (static_cast<uint64_t>(conn) << 40) ^ i;
  std::string v(value_size, 'a');
  uint64_t bits = 0;
  for (size_t j = 0; j < value_size; ++j) {
    if (j % 8 == 0) bits = splitmix64(state);
    v[j] = static_cast<char>('a' + ((bits >> (8 * (j % 8))) & 0xff) % 26);
  }
  return v;
}

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  out += fmt::format("*{}\r\n", args.size());
  for (std::string_view a : args) {
    out += fmt::format("${}\r\n", a.size());
    out += a;
    out += "\r\n";
  }
}

// --- one connection ---------------------------------------------------------

struct Reply {
  char type = 0;         // '+', '-', ':' or '$'
  std::string data;      // the line, or the bulk string
  bool null = false;     // $-1
};

// A non-blocking TCP connection to Redis with a receive buffer. Every call
// takes an absolute deadline and returns an error message on failure (empty
// on success). Not thread safe: one thread uses it at a time.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  std::string connect(const sockaddr_in& addr, Clock::time_point deadline) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fmt::format("socket: {}", std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
      return fail(fmt::format("connect: {}", std::strerror(errno)));
    }
    if (std::string err = wait(POLLOUT, deadline, "connect"); !err.empty()) return fail(err);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr != 0) return fail(fmt::format("connect: {}", std::strerror(soerr)));
    return {};
  }

  bool open() const { return fd_ >= 0; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    in_.clear();
    pos_ = 0;
  }

  std::string send_all(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (std::string err = wait(POLLOUT, deadline, "send"); !err.empty()) return err;
        continue;
      }
      return fmt::format("send: {}", std::strerror(errno));
    }
    return {};
  }

  std::string read_reply(Reply& reply, Clock::time_point deadline) {
    std::string line;
    if (std::string err = read_line(line, deadline); !err.empty()) return err;
    if (line.empty()) return "protocol error: empty reply line";
    reply = Reply{line[0], line.substr(1), false};
    switch (reply.type) {
      case '+':
      case '-':
      case ':':
        return {};
      case '$': {
        long long len = 0;
        auto [end, ec] = std::from_chars(reply.data.data(), reply.data.data() + reply.data.size(), len);
        if (ec != std::errc() || end != reply.data.data() + reply.data.size() || len < -1 ||
            len > static_cast<long long>(kMaxBulkBytes)) {
          return fmt::format("protocol error: bad bulk length '{}'", reply.data);
        }
        reply.data.clear();
        if (len == -1) {
          reply.null = true;
          return {};
        }
        if (std::string err = read_exact(static_cast<size_t>(len) + 2, reply.data, deadline); !err.empty()) {
          return err;
        }
        if (reply.data.compare(static_cast<size_t>(len), 2, "\r\n") != 0) {
          return "protocol error: bulk string not ended by CRLF";
        }
        reply.data.resize(static_cast<size_t>(len));
        return {};
      }
      default:
        return fmt::format("protocol error: unexpected reply type '{}'", line.substr(0, 40));
    }
  }

 private:
  std::string fail(std::string message) {
    close();
    return message;
  }

  std::string wait(short events, Clock::time_point deadline, std::string_view what) {
    for (;;) {
      auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) {
        return fmt::format("timeout: no {} within the deadline", what == "recv" ? "reply" : what);
      }
      int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return fmt::format("poll: {}", std::strerror(errno));
      if (r > 0) return {};
    }
  }

  // Reads more bytes into in_; "" on progress.
  std::string fill(Clock::time_point deadline) {
    if (pos_ > 0 && pos_ == in_.size()) {
      in_.clear();
      pos_ = 0;
    }
    for (;;) {
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        return {};
      }
      if (n == 0) return "connection closed by the server (EOF)";
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return fmt::format("recv: {}", std::strerror(errno));
      if (std::string err = wait(POLLIN, deadline, "recv"); !err.empty()) return err;
    }
  }

  std::string read_line(std::string& line, Clock::time_point deadline) {
    for (;;) {
      size_t crlf = in_.find("\r\n", pos_);
      if (crlf != std::string::npos) {
        line.assign(in_, pos_, crlf - pos_);
        pos_ = crlf + 2;
        return {};
      }
      if (in_.size() - pos_ > kMaxBulkBytes) return "protocol error: reply line too long";
      if (std::string err = fill(deadline); !err.empty()) return err;
    }
  }

  std::string read_exact(size_t n, std::string& out, Clock::time_point deadline) {
    while (in_.size() - pos_ < n) {
      if (std::string err = fill(deadline); !err.empty()) return err;
    }
    out.assign(in_, pos_, n);
    pos_ += n;
    return {};
  }

  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
};

// --- shared state -----------------------------------------------------------

struct Error {
  int conn;
  double time_s;
  std::string phase;  // "write" or "verify"
  std::string message;
};

// What one connection did. The atomics are read by the progress loop while
// the connection's thread runs; the rest is read only after it has joined.
struct ConnState {
  Connection conn;
  std::atomic<uint64_t> acked{0};            // keys 0..acked-1 were acknowledged
  std::atomic<int64_t> last_reply_ns{0};     // since start, of the last reply
  std::atomic<bool> writing{true};
  Clock::time_point write_end;               // when its write phase ended
  bool usable = true;                        // can carry the verify phase
  std::vector<uint32_t> latencies_us;
  int64_t max_stall_ns = 0;
  int64_t max_stall_start_ns = 0;
};

struct VerifyCounts {
  uint64_t checked = 0, ok = 0, missing = 0, wrong = 0, unchecked = 0;
  void add(const VerifyCounts& o) {
    checked += o.checked;
    ok += o.ok;
    missing += o.missing;
    wrong += o.wrong;
    unchecked += o.unchecked;
  }
};

class Run {
 public:
  explicit Run(const Options& o) : o_(o), states_(static_cast<size_t>(o.connections)) {
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(o.port);
    inet_pton(AF_INET, o.host.c_str(), &addr_.sin_addr);
  }

  const sockaddr_in& addr() const { return addr_; }

  // Opens every connection; false (with a message on stderr) if one fails.
  bool connect_all() {
    for (size_t c = 0; c < states_.size(); ++c) {
      std::string err = states_[c].conn.connect(addr_, Clock::now() + seconds(o_.request_timeout_s));
      if (!err.empty()) {
        fmt::print(stderr, "ftvm-redis-load: connection {} to {}:{}: {}\n", c, o_.host, o_.port, err);
        return false;
      }
    }
    return true;
  }

  void start() {
    start_ = Clock::now();
    start_unix_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    end_at_ = start_ + seconds(o_.duration_s);
    for (size_t c = 0; c < states_.size(); ++c) {
      threads_.emplace_back([this, c] { write_loop(static_cast<int>(c)); });
    }
  }

  void stop_writing() { stop_.store(true); }

  bool writers_done() const {
    return std::none_of(states_.begin(), states_.end(), [](const ConnState& s) { return s.writing.load(); });
  }

  void join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
    write_end_ = start_;
    for (const auto& s : states_) write_end_ = std::max(write_end_, s.write_end);
    if (o_.gaps_over_ms) {
      // The silence from the last reply to the end of writing, if long.
      std::lock_guard lock(gaps_mu_);
      const int64_t end_ns = ns_since_start(write_end_);
      if (end_ns - gap_last_reply_ns_ > gap_threshold_ns() && gaps_.size() < kMaxGaps) {
        gaps_.push_back(Gap{gap_last_reply_ns_, end_ns, false});
      }
    }
  }

  // One progress line: elapsed, acked, rate since the last line, the longest
  // time any connection still writing has waited since its last reply.
  void print_progress() {
    auto now = Clock::now();
    int64_t now_ns = ns_since_start(now);
    uint64_t acked = 0;
    int64_t stall_ns = 0;
    int alive = 0;
    for (const auto& s : states_) {
      acked += s.acked.load();
      if (s.writing.load()) {
        ++alive;
        stall_ns = std::max(stall_ns, now_ns - s.last_reply_ns.load());
      }
    }
    double dt = to_seconds(now - last_progress_);
    double rate = dt > 0 ? static_cast<double>(acked - last_acked_) / dt : 0;
    fmt::print(stderr, "ftvm-redis-load: t={:.1f}s acked={} rps={:.0f} stall_ms={:.0f} writing={}/{}\n",
               to_seconds(now - start_), acked, rate, static_cast<double>(stall_ns) / 1e6, alive,
               states_.size());
    last_progress_ = now;
    last_acked_ = acked;
  }

  void print_summary() const {
    uint64_t acked = 0;
    for (const auto& s : states_) acked += s.acked.load();
    fmt::print(stderr, "ftvm-redis-load: write phase over after {:.1f}s: acked={}\n",
               to_seconds(write_end_ - start_), acked);
  }

  void begin_progress() {
    last_progress_ = start_;
    last_acked_ = 0;
  }

  // --verify-report: the keys an earlier run had acknowledged, per
  // connection, to be read back on a fresh connection.
  void take_acked(const std::vector<uint64_t>& acked) {
    for (size_t c = 0; c < states_.size(); ++c) {
      states_[c].acked.store(acked[c]);
      states_[c].usable = false;
      states_[c].writing.store(false);
    }
  }
  std::vector<Error> errors() const {
    std::lock_guard lock(errors_mu_);
    return errors_;
  }

  VerifyCounts verify() {
    std::vector<VerifyCounts> counts(states_.size() + 1);
    std::vector<int> dead;
    for (size_t c = 0; c < states_.size(); ++c) {
      if (states_[c].usable) {
        threads_.emplace_back([this, c, &counts] {
          counts[c] = verify_keys(states_[c].conn, static_cast<int>(c));
        });
      } else if (states_[c].acked.load() > 0) {
        dead.push_back(static_cast<int>(c));
      }
    }
    if (!dead.empty()) {
      threads_.emplace_back([this, &dead, &counts] {
        Connection fresh;
        VerifyCounts& total = counts.back();
        std::string err = fresh.connect(addr_, Clock::now() + seconds(o_.request_timeout_s));
        for (int c : dead) {
          if (!err.empty()) {
            record(c, "verify", fmt::format("fresh connection for verifying: {}", err));
            total.unchecked += states_[static_cast<size_t>(c)].acked.load();
            continue;
          }
          total.add(verify_keys(fresh, c));
          if (!fresh.open()) err = "it failed while verifying an earlier connection's keys";
        }
      });
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    VerifyCounts total;
    for (const auto& c : counts) total.add(c);
    return total;
  }

  Json report(const VerifyCounts& v, int& exit_code) const {
    uint64_t acked = 0;
    std::vector<uint32_t> lat;
    Json per_conn = Json::array();
    int64_t max_stall_ns = 0, stall_start_ns = 0;
    int alive = 0;
    for (const auto& s : states_) {
      acked += s.acked.load();
      per_conn.push_back(s.acked.load());
      lat.insert(lat.end(), s.latencies_us.begin(), s.latencies_us.end());
      if (s.max_stall_ns > max_stall_ns) {
        max_stall_ns = s.max_stall_ns;
        stall_start_ns = s.max_stall_start_ns;
      }
      if (s.usable) ++alive;
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&lat](double p) -> uint32_t {
      if (lat.empty()) return 0;
      size_t i = static_cast<size_t>(p * static_cast<double>(lat.size() - 1) + 0.5);
      return lat[std::min(i, lat.size() - 1)];
    };
    double write_s = to_seconds(write_end_ - start_);
    Json errors = Json::array();
    {
      std::lock_guard lock(errors_mu_);
      for (const auto& e : errors_) {
        errors.push_back(Json{{"conn", e.conn}, {"time_s", e.time_s}, {"phase", e.phase}, {"message", e.message}});
      }
    }
    bool ok = errors.empty() && alive == o_.connections && v.ok == acked && v.checked == acked;
    exit_code = ok ? kExitOk : kExitFailed;
    Json out{
        {"ok", ok},
        {"host", o_.host},
        {"port", o_.port},
        {"connections", o_.connections},
        {"connections_alive", alive},
        {"value_size", o_.value_size},
        {"key_prefix", o_.key_prefix},
        {"duration_s", write_s},
        {"acked", acked},
        {"errors", errors},
        {"per_connection_acked", per_conn},
        {"reconnects", 0},
        {"throughput", write_s > 0 ? static_cast<double>(acked) / write_s : 0.0},
        {"latency_us", {{"p50", pct(0.50)}, {"p90", pct(0.90)}, {"p99", pct(0.99)}, {"max", lat.empty() ? 0 : lat.back()}}},
        {"max_stall_ms", static_cast<double>(max_stall_ns) / 1e6},
        {"stall_start_s", static_cast<double>(stall_start_ns) / 1e9},
        {"verify", {{"checked", v.checked}, {"ok", v.ok}, {"missing", v.missing}, {"wrong", v.wrong}, {"unchecked", v.unchecked}}},
        {"start_unix_ns", start_unix_ns_},
    };
    if (o_.gaps_over_ms) {
      Json gaps = Json::array();
      std::lock_guard lock(gaps_mu_);
      for (const Gap& g : gaps_) {
        gaps.push_back(Json{{"start_unix_ns", start_unix_ns_ + g.start_ns},
                            {"end_unix_ns", start_unix_ns_ + g.end_ns},
                            {"ms", static_cast<double>(g.end_ns - g.start_ns) / 1e6},
                            {"end", g.by_reply ? "reply" : "writing ended"}});
      }
      out["gaps_over_ms"] = *o_.gaps_over_ms;
      out["gaps"] = std::move(gaps);
    }
    return out;
  }

 private:
  int64_t ns_since_start(Clock::time_point t) const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - start_).count();
  }

  void record(int conn, std::string phase, std::string message) {
    double t = to_seconds(Clock::now() - start_);
    fmt::print(stderr, "ftvm-redis-load: conn {} {} error at {:.3f}s: {}\n", conn, phase, t, message);
    std::lock_guard lock(errors_mu_);
    errors_.push_back(Error{conn, t, std::move(phase), std::move(message)});
  }

  int64_t gap_threshold_ns() const { return static_cast<int64_t>(*o_.gaps_over_ms * 1e6); }

  // --gaps-over-ms: a reply (of any connection) arrived at now_ns.
  void note_reply_for_gaps(int64_t now_ns) {
    std::lock_guard lock(gaps_mu_);
    // Another connection may have noted a later reply first.
    if (now_ns <= gap_last_reply_ns_) return;
    if (now_ns - gap_last_reply_ns_ > gap_threshold_ns() && gaps_.size() < kMaxGaps) {
      gaps_.push_back(Gap{gap_last_reply_ns_, now_ns, true});
    }
    gap_last_reply_ns_ = now_ns;
  }

  // The gap since the previous reply (or the start) ended at now_ns.
  static void note_gap(ConnState& s, int64_t now_ns) {
    int64_t gap = now_ns - s.last_reply_ns.load();
    if (gap > s.max_stall_ns) {
      s.max_stall_ns = gap;
      s.max_stall_start_ns = s.last_reply_ns.load();
    }
  }

  void write_loop(int c) {
    ConnState& s = states_[static_cast<size_t>(c)];
    std::string cmd;
    Reply reply;
    for (uint64_t i = 0;; ++i) {
      auto sent = Clock::now();
      if (stop_.load() || sent >= end_at_) break;
      std::string value = value_of(c, i, o_.value_size);
      std::string key = key_of(o_.key_prefix, c, i);
      cmd.clear();
      append_command(cmd, {"SET", key, value});
      auto deadline = sent + seconds(o_.request_timeout_s);
      std::string err = s.conn.send_all(cmd, deadline);
      if (err.empty()) err = s.conn.read_reply(reply, deadline);
      auto now = Clock::now();
      note_gap(s, ns_since_start(now));
      if (err.empty() && o_.gaps_over_ms) note_reply_for_gaps(ns_since_start(now));
      if (err.empty() && reply.type == '+' && reply.data == "OK") {
        s.latencies_us.push_back(static_cast<uint32_t>(
            std::min<int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count(), UINT32_MAX)));
        s.last_reply_ns.store(ns_since_start(now));
        s.acked.store(i + 1);
        continue;
      }
      if (err.empty()) {
        // A reply, but not +OK: the stream is still in step, so the
        // connection can carry the verify phase.
        err = fmt::format("SET {} answered {}{}", key, reply.type, reply.data.substr(0, 200));
      } else {
        s.usable = false;
        s.conn.close();
      }
      record(c, "write", err);
      break;
    }
    s.write_end = Clock::now();
    s.writing.store(false);
  }

  // GETs keys 0..acked-1 of connection c on conn, kVerifyBatch at a time.
  VerifyCounts verify_keys(Connection& conn, int c) {
    const ConnState& s = states_[static_cast<size_t>(c)];
    uint64_t n = s.acked.load();
    VerifyCounts v;
    std::string cmd;
    Reply reply;
    for (uint64_t first = 0; first < n; first += kVerifyBatch) {
      uint64_t last = std::min<uint64_t>(n, first + kVerifyBatch);
      cmd.clear();
      for (uint64_t i = first; i < last; ++i) append_command(cmd, {"GET", key_of(o_.key_prefix, c, i)});
      std::string err = conn.send_all(cmd, Clock::now() + seconds(o_.request_timeout_s));
      for (uint64_t i = first; err.empty() && i < last; ++i) {
        err = conn.read_reply(reply, Clock::now() + seconds(o_.request_timeout_s));
        if (!err.empty()) break;
        if (reply.type == '$') {
          ++v.checked;
          if (reply.null) {
            ++v.missing;
          } else if (reply.data == value_of(c, i, o_.value_size)) {
            ++v.ok;
          } else {
            ++v.wrong;
          }
        } else {
          err = fmt::format("GET {} answered {}{}", key_of(o_.key_prefix, c, i), reply.type,
                            reply.data.substr(0, 200));
        }
      }
      if (!err.empty()) {
        record(c, "verify", err);
        conn.close();
        v.unchecked = n - v.checked;
        break;
      }
    }
    return v;
  }

  const Options& o_;
  sockaddr_in addr_{};
  std::vector<ConnState> states_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  Clock::time_point start_, end_at_, write_end_, last_progress_;
  int64_t start_unix_ns_ = 0;
  uint64_t last_acked_ = 0;
  mutable std::mutex errors_mu_;
  std::vector<Error> errors_;
  // --gaps-over-ms: silences longer than the threshold, in ns since start.
  struct Gap {
    int64_t start_ns, end_ns;
    bool by_reply;  // ended by a reply, not by the end of writing
  };
  mutable std::mutex gaps_mu_;
  int64_t gap_last_reply_ns_ = 0;
  std::vector<Gap> gaps_;
};

// Connect + PING until +PONG; false at the deadline.
bool wait_ready(const Options& o, const sockaddr_in& addr) {
  auto start = Clock::now();
  auto deadline = start + seconds(*o.wait_ready_s);
  std::string last_error = "no attempt";
  std::string ping;
  append_command(ping, {"PING"});
  for (;;) {
    auto now = Clock::now();
    auto attempt_deadline = std::min(deadline, now + kReadyAttempt);
    Connection conn;
    std::string err = conn.connect(addr, attempt_deadline);
    if (err.empty()) err = conn.send_all(ping, attempt_deadline);
    Reply reply;
    if (err.empty()) err = conn.read_reply(reply, attempt_deadline);
    if (err.empty()) {
      if (reply.type == '+' && reply.data == "PONG") {
        fmt::print(stderr, "ftvm-redis-load: {}:{} ready after {:.1f}s\n", o.host, o.port,
                   to_seconds(Clock::now() - start));
        return true;
      }
      err = fmt::format("PING answered {}{}", reply.type, reply.data.substr(0, 200));
    }
    last_error = err;
    conn.close();
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_until(std::min(deadline, Clock::now() + kReadyBackoff));
    if (Clock::now() >= deadline) break;
  }
  fmt::print(stderr, "ftvm-redis-load: {}:{} not ready after {} s (last: {})\n", o.host, o.port,
             *o.wait_ready_s, last_error);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_options(argc, argv);

  // SIGINT and SIGTERM are taken by sigtimedwait in this thread alone: the
  // first ends the write phase, a second ends the program at once.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (!o.verify_report.empty()) {
    std::ifstream in(o.verify_report);
    const Json earlier = Json::parse(in, nullptr, false);
    if (earlier.is_discarded() || !earlier.contains("per_connection_acked") ||
        !earlier["per_connection_acked"].is_array() || earlier["per_connection_acked"].empty()) {
      usage_error(fmt::format("--verify-report {}: not a report of ftvm-redis-load", o.verify_report));
    }
    std::vector<uint64_t> acked;
    for (const Json& n : earlier["per_connection_acked"]) acked.push_back(n.get<uint64_t>());
    o.connections = static_cast<int>(acked.size());
    o.value_size = earlier.value("value_size", o.value_size);
    o.key_prefix = earlier.value("key_prefix", o.key_prefix);
    Run run(o);
    if (o.wait_ready_s && !wait_ready(o, run.addr())) return kExitUsage;
    run.take_acked(acked);
    const VerifyCounts v = run.verify();
    Json errors = Json::array();
    for (const Error& e : run.errors()) {
      errors.push_back({{"conn", e.conn}, {"phase", e.phase}, {"message", e.message}});
    }
    const bool ok = errors.empty() && v.missing == 0 && v.wrong == 0 && v.unchecked == 0;
    const Json report = {{"ok", ok},
                         {"verify", {{"checked", v.checked}, {"ok", v.ok}, {"missing", v.missing},
                                     {"wrong", v.wrong}, {"unchecked", v.unchecked}}},
                         {"errors", errors}};
    fmt::print("{}\n", report.dump(2));
    fmt::print(stderr, "ftvm-redis-load: verified {}'s keys: ok={} missing={} wrong={} unchecked={}\n",
               o.verify_report, v.ok, v.missing, v.wrong, v.unchecked);
    return ok ? kExitOk : kExitFailed;
  }

  Run run(o);
  if (o.wait_ready_s && !wait_ready(o, run.addr())) return kExitUsage;
  if (!run.connect_all()) return kExitUsage;

  run.start();
  run.begin_progress();
  bool stopping = false;
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  while (!run.writers_done()) {
    auto left = std::max(Clock::duration::zero(), std::min(next_tick - Clock::now(), seconds(0.05)));
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) {
      if (stopping) {
        fmt::print(stderr, "ftvm-redis-load: second signal; exiting without a report\n");
        std::_Exit(kExitFailed);
      }
      fmt::print(stderr, "ftvm-redis-load: signal {}; ending the write phase\n", sig);
      stopping = true;
      run.stop_writing();
    }
    if (Clock::now() >= next_tick) {
      run.print_progress();
      next_tick += std::chrono::seconds(1);
    }
  }
  run.join();
  run.print_summary();

  fmt::print(stderr, "ftvm-redis-load: verifying\n");
  VerifyCounts v = run.verify();
  int exit_code = kExitFailed;
  Json report = run.report(v, exit_code);
  std::string text = report.dump(2);
  fmt::print("{}\n", text);
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    f << text << '\n';
    if (!f.good()) {
      fmt::print(stderr, "ftvm-redis-load: cannot write {}\n", o.out);
      return kExitFailed;
    }
  }
  fmt::print(stderr, "ftvm-redis-load: acked={} verify ok={} missing={} wrong={} unchecked={} errors={} -> exit {}\n",
             report["acked"].get<uint64_t>(), v.ok, v.missing, v.wrong, v.unchecked,
             report["errors"].size(), exit_code);
  return exit_code;
}
