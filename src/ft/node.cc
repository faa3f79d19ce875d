// The primary and the backup of an FT pair (see node.h and
// docs/ft-protocol.md).
//
// Threads: the main thread owns the machine and everything it touches. A
// channel thread per node reads the peer's messages, answers (the backup
// acknowledges every batch of records the moment it arrives, before it
// executes them) and watches for silence; it talks to the main thread only
// through atomics, a queue under a mutex, and an eventfd that wakes the
// main thread. No thread's timing can reach the machine's state: the
// backup applies records at the instret they name.
#include "ft/node.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <variant>

#include "arbiter/client.h"
#include "ft/channel.h"
#include "ft/replayer.h"
#include "ft/status.h"
#include "hostio/block_file.h"
#include "hostio/entropy.h"
#include "hostio/tap.h"
#include "hostio/terminal.h"
#include "log/digest.h"
#include "vm/machine.h"

namespace ftvm::ft {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kSliceInstructions = 2'000'000;
constexpr size_t kMaxQueuedFrames = 4096;
constexpr size_t kMaxBatchBytes = size_t{1} << 20;  // well under kMaxMessageBody
constexpr uint64_t kTicksPerMs = vm::kTimebaseHz / 1000;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

uint64_t unix_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The value of ftvm.net=ADDR/PREFIX[,GW] in a kernel command line.
std::string guest_ip_from_cmdline(const std::string& cmdline) {
  const size_t at = cmdline.find("ftvm.net=");
  if (at == std::string::npos) return {};
  const size_t start = at + 9;
  const size_t end = cmdline.find_first_of("/, ", start);
  return cmdline.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// A gratuitous ARP request announcing that `ip` is at `mac`.
std::vector<uint8_t> gratuitous_arp(const vm::MacAddress& mac, const std::string& ip) {
  uint8_t addr[4] = {0, 0, 0, 0};
  inet_pton(AF_INET, ip.c_str(), addr);
  std::vector<uint8_t> f(60, 0);  // padded to the Ethernet minimum
  std::fill(f.begin(), f.begin() + 6, 0xff);
  std::copy(mac.begin(), mac.end(), f.begin() + 6);
  f[12] = 0x08, f[13] = 0x06;                   // ARP
  f[14] = 0x00, f[15] = 0x01;                   // Ethernet
  f[16] = 0x08, f[17] = 0x00;                   // IPv4
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;   // sizes, request
  std::copy(mac.begin(), mac.end(), f.begin() + 22);
  std::copy(addr, addr + 4, f.begin() + 28);
  std::copy(addr, addr + 4, f.begin() + 38);    // target = sender: gratuitous
  return f;
}

struct Output {
  uint64_t position;  // records in the log when it was produced
  bool frame;
  std::vector<uint8_t> bytes;
};

struct QueuedRecord {
  log::Record record;
  size_t size;
};

class Node {
 public:
  Node(const NodeOptions& o, bool primary) : o_(o), is_primary_(primary) {
    role_ = primary ? "primary" : "backup";
    epoch_ = o.epoch;
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }
  ~Node() {
    stop_threads();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  int primary_main();
  int backup_main();

 private:
  template <typename... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    fmt::print(stderr, "{:%H:%M:%S}.{:03d} ftvm {} e{}: {}\n",
               std::chrono::floor<std::chrono::seconds>(now), ms, role_, epoch_.load(),
               fmt::format(f, std::forward<Args>(args)...));
  }

  // ---- set-up ----
  Status build_machine(const MachineSpec& spec, bool record_entropy);
  // The TAP, the arbiter client and the control socket.
  Status open_host_side();
  // Claims (vm, epoch) until the arbiter answers; publishes status while
  // it waits. Returns the grant.
  arbiter::Grant claim_until_answered(uint64_t epoch);

  // ---- the log stream (primary, paired) ----
  bool paired() const { return conn_ != nullptr; }
  void append(log::Record record);
  void flush_batch();
  void checkpoint_maybe();

  // ---- outputs ----
  // The backup's acknowledged position, as far as releasing outputs goes:
  // nothing until the backup has acknowledged a record sent after the last
  // time this node itself stalled (see live_loop).
  uint64_t acked() const {
    const uint64_t a = acked_.load(std::memory_order_acquire);
    return a >= fence_ ? a : 0;
  }
  // Notices that this node itself did not run for half the failure timeout
  // and fences the acknowledgements (fence_).
  void check_stall();
  void on_console(uint8_t b);
  void on_frame(std::span<const uint8_t> frame);
  void emit(bool frame, std::span<const uint8_t> bytes);
  void release(Output& out);
  void release_acked();
  void release_all();
  void flush_console();

  // ---- threads ----
  void primary_channel_thread();
  void backup_channel_thread();
  void intruder_thread();
  void stop_threads();
  void wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
  void drain_wake() {
    uint64_t v;
    (void)!read(wake_fd_, &v, sizeof v);
  }

  // ---- the live loop (a primary, paired or solo) ----
  int live_loop();
  bool over_lag() const;
  // Claims epoch + 1 after the backup fell silent. -1: won, carry on solo.
  int go_solo(const std::string& why);
  int finish(int exit_code);

  // ---- the backup ----
  int backup_loop();
  int go_live(const std::string& why);
  Status apply_queued(std::deque<QueuedRecord>& batch, int* exit_code);

  void publish(bool force = false);

  const NodeOptions& o_;
  const bool is_primary_;
  std::string role_;
  std::string state_ = "starting";
  std::atomic<uint64_t> epoch_{1};

  std::unique_ptr<hostio::FileBlockBackend> disk_;
  std::unique_ptr<vm::Machine> machine_;
  std::unique_ptr<hostio::HostEntropy> host_entropy_;
  std::unique_ptr<ReplayEntropy> replay_entropy_;
  vm::EntropySource* entropy_target_ = nullptr;
  struct Forward final : vm::EntropySource {
    Node* node;
    explicit Forward(Node* n) : node(n) {}
    void fill(std::span<uint8_t> out) override;
  } forward_entropy_{this};
  log::Header header_;
  std::unique_ptr<hostio::Tap> tap_;
  std::unique_ptr<arbiter::Client> arbiter_;
  std::unique_ptr<Replayer> replayer_;  // backup

  // The log stream and the Output Rule (main thread).
  std::unique_ptr<Connection> conn_;
  int listen_fd_ = -1;
  uint64_t records_ = 0;        // records appended to the log
  uint64_t log_bytes_ = 0;      // their encoded bytes
  uint64_t last_record_instret_ = 0;
  uint64_t last_checkpoint_ = 0;
  std::string batch_;
  uint64_t batch_first_ = 0;
  log::OutputDigester outputs_;
  std::deque<Output> held_;
  uint64_t held_bytes_ = 0;
  bool live_outputs_ = false;   // outputs reach the LAN/console at all
  std::string console_out_;
  uint64_t released_frames_ = 0, released_console_ = 0, tx_errors_ = 0, rx_dropped_ = 0;
  uint64_t held_max_ = 0;
  // A node that was frozen (stopped, starved) cannot tell whether its backup
  // took over meanwhile; acknowledgements read after it wakes may be old.
  // It releases nothing until the backup acknowledges a record it sends
  // after waking: records up to fence_ must be acknowledged.
  uint64_t fence_ = 0;
  uint64_t stalls_ = 0;
  Clock::time_point last_alive_ = Clock::now();  // this node last ran (main thread)
  // Gratuitous ARPs still to send after going live (the switch must learn
  // the new port even if a deposed primary spoke after the first ones).
  std::deque<Clock::time_point> garp_at_;
  std::vector<uint8_t> garp_;
  bool throttled_ = false;  // flow control holds the guest back now
  uint64_t throttle_episodes_ = 0;
  double throttled_ms_ = 0;

  // Shared with the channel thread.
  std::atomic<bool> peer_dead_{false};
  std::mutex reason_mu_;
  std::string dead_reason_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> last_heard_ns_{0};
  std::atomic<int64_t> last_sent_ns_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> peer_exec_records_{0}, peer_exec_instret_{0}, peer_exec_mtime_{0};
  std::atomic<uint64_t> peer_exec_bytes_{0};
  std::atomic<uint64_t> cur_instret_{0}, cur_mtime_{0};
  std::atomic<uint64_t> primary_instret_{0};  // backup: from the last heartbeat
  RejectCounts intruders_;
  std::atomic<uint64_t> intruder_authentic_{0};
  std::thread channel_thread_, intruder_thread_;
  int wake_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};

  // The backup's queue of received records.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<QueuedRecord> queue_;
  std::atomic<uint64_t> received_{0}, received_bytes_{0};
  uint64_t executed_ = 0, executed_bytes_ = 0;
  std::string protocol_error_;

  // Status.
  StatusBoard board_;
  std::unique_ptr<ControlServer> control_;
  Clock::time_point last_publish_{};
  Clock::time_point started_ = Clock::now();
  uint64_t rate_bytes_ = 0;
  Clock::time_point rate_at_ = Clock::now();
  double log_mbit_ = 0;
  nlohmann::json last_failover_;
  std::string arbiter_wait_;
};

void Node::Forward::fill(std::span<uint8_t> out) {
  if (node->entropy_target_ == nullptr) {
    std::fill(out.begin(), out.end(), 0);
    return;
  }
  node->entropy_target_->fill(out);
  // A primary records what the guest was given, at this instret.
  if (node->is_primary_ && node->paired() && node->entropy_target_ == node->host_entropy_.get()) {
    node->append({node->machine_->instret(), log::Entropy{log::Bytes(out.begin(), out.end())}});
  }
}

Status Node::build_machine(const MachineSpec& spec, bool with_entropy) {
  // Both hosts must see the same disk: load_images attaches it read-only.
  Result<LoadedImages> images = load_images(spec);
  if (!images) return make_error(images.error());
  disk_ = std::move(images->disk);
  vm::MachineConfig config = images->config;
  if (with_entropy) config.entropy = &forward_entropy_;
  machine_ = std::make_unique<vm::Machine>(config);
  if (Status s = machine_->load_linux(images->kernel, images->initrd, spec.cmdline); !s) {
    return make_error(fmt::format("{}: {}", spec.kernel_path, s.error()));
  }
  machine_->set_console_sink([this](uint8_t b) { on_console(b); });
  machine_->set_frame_sink([this](std::span<const uint8_t> f) { on_frame(f); });
  host_entropy_ = std::make_unique<hostio::HostEntropy>();
  return {};
}

Status Node::open_host_side() {
  if (!o_.tap.empty()) {
    Result<std::unique_ptr<hostio::Tap>> t = hostio::Tap::open(o_.tap);
    if (!t) return make_error(t.error());
    tap_ = std::move(*t);
  }
  Result<std::unique_ptr<arbiter::Client>> c = arbiter::connect_arbiter(o_.arbiter, o_.secret);
  if (!c) return make_error(c.error());
  arbiter_ = std::move(*c);
  if (!o_.control.empty()) {
    Result<std::unique_ptr<ControlServer>> server = ControlServer::start(o_.control, &board_);
    if (!server) return make_error(server.error());
    control_ = std::move(*server);
  }
  return {};
}

arbiter::Grant Node::claim_until_answered(uint64_t epoch) {
  const auto start = Clock::now();
  bool told = false;
  for (;;) {
    Result<arbiter::Grant> g = arbiter_->claim(o_.vm, epoch, o_.host_id, milliseconds(1000));
    if (g) {
      arbiter_wait_.clear();
      if (told) note("the arbiter answered after {:.0f} ms", ms_since(start));
      return *g;
    }
    arbiter_wait_ = g.error();
    if (!told) {
      note("cannot reach the arbiter {} ({}); nobody goes live and nothing held is released until "
           "it answers",
           arbiter_->describe(), g.error());
      told = true;
    }
    publish(true);
    // A retry backoff, not a synchronisation: the claim above has its own deadline.
    pollfd pfd{wake_fd_, POLLIN, 0};
    poll(&pfd, 1, 100);
    drain_wake();
  }
}

// ---- the log stream ----

void Node::append(log::Record record) {
  if (!paired()) return;
  if (batch_.empty()) batch_first_ = records_;
  const size_t before = batch_.size();
  const Status s = log::append_record(batch_, record);
  FTVM_CHECK(s.ok());
  log_bytes_ += batch_.size() - before;
  ++records_;
  last_record_instret_ = record.instret;
  if (batch_.size() >= kMaxBatchBytes) flush_batch();
}

void Node::flush_batch() {
  if (!paired() || batch_.empty()) return;
  if (Status s = conn_->send(MsgType::kRecords, encode_records(batch_first_, batch_));
      !s) {
    if (!peer_dead_.exchange(true)) {
      std::lock_guard<std::mutex> lock(reason_mu_);
      dead_reason_ = s.error();
    }
  }
  last_sent_ns_ = Clock::now().time_since_epoch().count();
  batch_.clear();
}

void Node::checkpoint_maybe() {
  if (!paired() || o_.hash_interval == 0) return;
  if (machine_->instret() - last_checkpoint_ < o_.hash_interval) return;
  last_checkpoint_ = machine_->instret();
  append({machine_->instret(), log::StateHash{machine_->state_digest()}});
  append({machine_->instret(), outputs_.digest()});
}

// ---- outputs and the Output Rule ----

void Node::on_console(uint8_t b) {
  outputs_.add_console({&b, 1});
  if (replayer_) replayer_->outputs().add_console({&b, 1});
  emit(false, {&b, 1});
}

void Node::on_frame(std::span<const uint8_t> frame) {
  outputs_.add_frame(frame);
  if (replayer_) replayer_->outputs().add_frame(frame);
  emit(true, frame);
}

void Node::check_stall() {
  const auto now = Clock::now();
  if (paired() && now - last_alive_ > o_.timeout / 2) {
    // Acknowledgements read from now on may predate a takeover: only one for
    // a record written after this point proves the backup is still ours.
    append({machine_->instret(), log::Progress{}});
    fence_ = records_;
    ++stalls_;
    note("this node did not run for {:.0f} ms; releasing nothing until the backup acknowledges "
         "the log again",
         std::chrono::duration<double, std::milli>(now - last_alive_).count());
  }
  last_alive_ = now;
}

void Node::emit(bool frame, std::span<const uint8_t> bytes) {
  if (!live_outputs_) return;  // a backup's outputs, or a halted node's
  check_stall();  // the guest may have been frozen in the middle of a slice
  Output out{records_, frame, std::vector<uint8_t>(bytes.begin(), bytes.end())};
  const bool now = held_.empty() && (state_ == "solo" || (state_ == "paired" && acked() >= out.position));
  if (now) {
    release(out);
    return;
  }
  held_bytes_ += out.bytes.size();
  held_.push_back(std::move(out));
  held_max_ = std::max<uint64_t>(held_max_, held_.size());
}

void Node::release(Output& out) {
  if (out.frame) {
    if (tap_ && !tap_->write_frame(out.bytes)) ++tx_errors_;
    ++released_frames_;
  } else {
    console_out_.append(out.bytes.begin(), out.bytes.end());
    released_console_ += out.bytes.size();
  }
}

void Node::release_acked() {
  check_stall();
  if (held_.empty()) return;
  if (state_ != "paired" && state_ != "solo") return;
  const uint64_t acked = state_ == "solo" ? ~uint64_t{0} : this->acked();
  while (!held_.empty() && held_.front().position <= acked) {
    held_bytes_ -= held_.front().bytes.size();
    release(held_.front());
    held_.pop_front();
  }
  flush_console();
}

void Node::release_all() {
  while (!held_.empty()) {
    release(held_.front());
    held_.pop_front();
  }
  held_bytes_ = 0;
  flush_console();
}

void Node::flush_console() {
  if (console_out_.empty()) return;
  hostio::write_all(STDOUT_FILENO, console_out_);
  console_out_.clear();
}

// ---- channel threads ----

void Node::stop_threads() {
  stop_ = true;
  if (conn_) conn_->shutdown();
  if (stop_pipe_[1] >= 0) {
    const char c = 'x';
    (void)!write(stop_pipe_[1], &c, 1);
  }
  if (channel_thread_.joinable()) channel_thread_.join();
  if (intruder_thread_.joinable()) intruder_thread_.join();
  stop_ = false;
}

void Node::primary_channel_thread() {
  last_heard_ns_ = Clock::now().time_since_epoch().count();
  while (!stop_) {
    Result<std::optional<Message>> m = conn_->receive(o_.heartbeat);
    const int64_t now = Clock::now().time_since_epoch().count();
    if (!m) {
      if (!stop_ && !peer_dead_.exchange(true)) {
        std::lock_guard<std::mutex> lock(reason_mu_);
        dead_reason_ = m.error();
      }
      wake();
      return;
    }
    if (m->has_value()) {
      last_heard_ns_ = now;
      const Message& msg = **m;
      if (msg.type == MsgType::kAck) {
        if (Result<Ack> a = decode_ack(as_span(msg.payload)); a) {
          uint64_t prev = acked_.load();
          while (a->received > prev && !acked_.compare_exchange_weak(prev, a->received)) {
          }
          peer_exec_records_ = a->executed;
          peer_exec_instret_ = a->exec_instret;
          peer_exec_mtime_ = a->exec_mtime;
          peer_exec_bytes_ = a->executed_bytes;
          wake();
        }
      }
    }
    if (std::chrono::nanoseconds(now - last_heard_ns_) > o_.timeout) {
      if (!peer_dead_.exchange(true)) {
        std::lock_guard<std::mutex> lock(reason_mu_);
        dead_reason_ = fmt::format("the backup has been silent for {} ms",
                                   (now - last_heard_ns_) / 1'000'000);
      }
      wake();
      return;
    }
    if (std::chrono::nanoseconds(now - last_sent_ns_) >= o_.heartbeat) {
      (void)conn_->send(MsgType::kHeartbeat, encode_heartbeat({cur_instret_, cur_mtime_}));
      last_sent_ns_ = now;
    }
  }
}

void Node::intruder_thread() {
  // Anyone else who connects to the channel port: every message is checked
  // and counted, none is applied.
  for (;;) {
    pollfd pfds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(pfds, 2, -1) < 0 && errno != EINTR) return;
    if (pfds[1].revents != 0 || stop_) return;
    Result<std::optional<int>> fd = accept_tcp(listen_fd_, milliseconds(0));
    if (!fd || !fd->has_value()) continue;
    MessageReader reader(o_.secret, Direction::kToPrimary, epoch_.load());
    reader.set_last_seq(conn_ ? conn_->last_received_seq() : 0);
    const auto deadline = Clock::now() + milliseconds(2000);
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      pollfd p[2] = {{**fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (left <= 0 || poll(p, 2, static_cast<int>(left)) <= 0 || p[1].revents != 0) break;
      uint8_t buf[65536];
      const ssize_t n = recv(**fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reader.feed({buf, static_cast<size_t>(n)});
      bool bad_stream = false;
      for (;;) {
        Result<std::optional<MessageReader::Item>> item = reader.next();
        if (!item) {
          intruders_.count(Rejection::kForged);
          bad_stream = true;
          break;
        }
        if (!item->has_value()) break;
        if ((*item)->rejection != Rejection::kNone) {
          intruders_.count((*item)->rejection);
        } else {
          ++intruder_authentic_;  // authentic but not the paired backup's connection
        }
      }
      if (bad_stream) break;
    }
    close(**fd);
    note("closed an unexpected connection to the channel port (rejected so far: {} forged, {} "
         "replayed, {} stale epoch, {} wrong direction, {} not the backup's)",
         intruders_.forged.load(), intruders_.replayed.load(), intruders_.stale_epoch.load(),
         intruders_.wrong_direction.load(), intruder_authentic_.load());
  }
}

void Node::backup_channel_thread() {
  last_heard_ns_ = Clock::now().time_since_epoch().count();
  auto die = [this](std::string why) {
    if (!stop_ && !peer_dead_.exchange(true)) {
      std::lock_guard<std::mutex> lock(reason_mu_);
      dead_reason_ = std::move(why);
    }
    queue_cv_.notify_all();
  };
  while (!stop_) {
    Result<std::optional<Message>> m = conn_->receive(o_.heartbeat);
    const int64_t now = Clock::now().time_since_epoch().count();
    if (!m) return die(m.error());
    if (m->has_value()) {
      last_heard_ns_ = now;
      const Message& msg = **m;
      if (msg.type == MsgType::kRecords) {
        Result<RecordsMsg> r = decode_records(as_span(msg.payload));
        if (!r) return die("the primary sent records that do not decode: " + r.error());
        if (r->first != received_) {
          return die(fmt::format("the primary sent records from {} but {} were received",
                                 r->first, received_.load()));
        }
        uint64_t bytes = 0;
        {
          std::lock_guard<std::mutex> lock(queue_mu_);
          for (size_t i = 0; i < r->records.size(); ++i) {
            queue_.push_back({std::move(r->records[i]), r->sizes[i]});
            bytes += r->sizes[i];
          }
        }
        received_ += r->records.size();
        received_bytes_ += bytes;
        queue_cv_.notify_all();
        // Receipt is acknowledged at once: the primary's outputs wait on it.
        Ack a{received_, peer_exec_records_, cur_instret_, cur_mtime_, received_bytes_,
              peer_exec_bytes_};
        (void)conn_->send(MsgType::kAck, encode_ack(a));
        last_sent_ns_ = now;
      } else if (msg.type == MsgType::kHeartbeat) {
        if (Result<Heartbeat> h = decode_heartbeat(as_span(msg.payload)); h) {
          primary_instret_ = h->instret;
        }
      }
    }
    if (std::chrono::nanoseconds(now - last_heard_ns_) > o_.timeout) {
      return die(fmt::format("the primary has been silent for {} ms",
                             (now - last_heard_ns_) / 1'000'000));
    }
    if (std::chrono::nanoseconds(now - last_sent_ns_) >= o_.heartbeat) {
      Ack a{received_, peer_exec_records_, cur_instret_, cur_mtime_, received_bytes_,
            peer_exec_bytes_};
      (void)conn_->send(MsgType::kAck, encode_ack(a));
      last_sent_ns_ = now;
    }
  }
}

// ---- status ----

void Node::publish(bool force) {
  const auto now = Clock::now();
  if (!force && now - last_publish_ < milliseconds(100)) return;
  last_publish_ = now;
  const double dt = std::chrono::duration<double>(now - rate_at_).count();
  const uint64_t bytes = is_primary_ ? (conn_ ? conn_->bytes_sent() : 0)
                                     : (conn_ ? conn_->bytes_received() : 0);
  if (dt >= 1.0) {
    log_mbit_ = bytes >= rate_bytes_ ? (bytes - rate_bytes_) * 8.0 / dt / 1e6 : 0;
    rate_bytes_ = bytes;
    rate_at_ = now;
  }
  nlohmann::json j;
  j["role"] = role_;
  j["state"] = state_;
  j["vm"] = o_.vm;
  j["host"] = o_.host_id;
  j["epoch"] = epoch_.load();
  j["pid"] = getpid();
  j["arbiter"] = o_.arbiter;
  if (!arbiter_wait_.empty()) j["arbiter_unreachable"] = arbiter_wait_;
  const uint64_t instret = machine_ ? machine_->instret() : 0;
  j["instret"] = instret;
  j["guest_seconds"] = machine_ ? machine_->guest_seconds() : 0.0;
  j["uptime_seconds"] = std::chrono::duration<double>(now - started_).count();
  nlohmann::json lag;
  if (is_primary_ && paired()) {
    const uint64_t bi = peer_exec_instret_, bm = peer_exec_mtime_;
    lag["instructions"] = instret > bi ? instret - bi : 0;
    lag["guest_ms"] = machine_->mtime() > bm ? (machine_->mtime() - bm) / double(kTicksPerMs) : 0.0;
    lag["bytes"] = log_bytes_ > peer_exec_bytes_ ? log_bytes_ - peer_exec_bytes_ : 0;
    lag["unacked_records"] = records_ - std::min<uint64_t>(records_, acked_);
    lag["max_guest_ms"] = o_.max_lag_ms;
    lag["max_bytes"] = o_.max_lag_bytes;
    lag["throttled"] = throttled_;
    lag["throttle_episodes"] = throttle_episodes_;
    lag["throttled_ms"] = throttled_ms_;
  } else if (!is_primary_ && role_ == "backup") {
    lag["queued_records"] = received_ - std::min<uint64_t>(received_, executed_);
    lag["received_records"] = received_.load();
    lag["executed_records"] = executed_;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      lag["queue_length"] = queue_.size();
    }
    lag["primary_instret_at_last_heartbeat"] = primary_instret_.load();
    lag["bytes"] = received_bytes_ - std::min<uint64_t>(received_bytes_, executed_bytes_);
  }
  j["lag"] = lag;
  j["log"] = {{"records", is_primary_ ? records_ : received_.load()},
              {"acked_records", is_primary_ ? acked_.load() : received_.load()},
              {"bytes", is_primary_ ? log_bytes_ : received_bytes_.load()},
              {"channel_bytes", bytes},
              {"queued_bytes", conn_ ? conn_->queued_bytes() : 0},
              {"mbit_per_s", log_mbit_}};
  j["held"] = {{"outputs", held_.size()},
               {"bytes", held_bytes_},
               {"max_outputs", held_max_},
               {"fenced", acked_.load() < fence_},
               {"stalls", stalls_}};
  j["released"] = {{"frames", released_frames_},
                   {"console_bytes", released_console_},
                   {"tx_errors", tx_errors_},
                   {"rx_dropped", rx_dropped_}};
  const RejectCounts* rc = conn_ ? &conn_->rejected() : nullptr;
  j["rejected"] = {{"forged", (rc ? rc->forged.load() : 0) + intruders_.forged.load()},
                   {"replayed", (rc ? rc->replayed.load() : 0) + intruders_.replayed.load()},
                   {"stale_epoch", (rc ? rc->stale_epoch.load() : 0) + intruders_.stale_epoch.load()},
                   {"wrong_direction",
                    (rc ? rc->wrong_direction.load() : 0) + intruders_.wrong_direction.load()},
                   {"unexpected_connection", intruder_authentic_.load()}};
  if (replayer_) {
    j["checks"] = {{"state_hashes_matched", replayer_->state_hashes()},
                   {"last_matched_instret", replayer_->last_matched_hash_instret()},
                   {"checkpoints_matched", replayer_->checkpoints()}};
  }
  j["peer"] = {{"connected", conn_ != nullptr && !peer_dead_},
               {"last_heard_ms_ago",
                conn_ ? (now.time_since_epoch().count() - last_heard_ns_) / 1e6 : -1.0}};
  if (!last_failover_.is_null()) j["last_failover"] = last_failover_;
  board_.publish(std::move(j));
}

// ---- the live loop ----

bool Node::over_lag() const {
  if (!paired()) return false;
  const uint64_t bm = peer_exec_mtime_;
  const uint64_t lag_ms = machine_->mtime() > bm ? (machine_->mtime() - bm) / kTicksPerMs : 0;
  const uint64_t lag_bytes = log_bytes_ > peer_exec_bytes_ ? log_bytes_ - peer_exec_bytes_ : 0;
  return lag_ms > o_.max_lag_ms || lag_bytes > o_.max_lag_bytes;
}

int Node::go_solo(const std::string& why) {
  const auto t0 = Clock::now();
  const uint64_t from = epoch_;
  note("{}; holding {} outputs and claiming epoch {} to go on alone", why, held_.size(), from + 1);
  state_ = "claiming";
  stop_threads();
  conn_.reset();
  publish(true);
  const arbiter::Grant g = claim_until_answered(from + 1);
  if (!g.won) {
    note("lost epoch {} to {}: halting for good; {} held outputs are dropped, never sent",
         g.held_epoch, g.holder, held_.size());
    state_ = "halted";
    role_ = "halted";
    live_outputs_ = false;
    held_.clear();
    held_bytes_ = 0;
    publish(true);
    return kExitDeposed;
  }
  epoch_ = from + 1;
  state_ = "solo";
  last_failover_ = {{"at_unix_ms", unix_ms()},
                    {"kind", "went solo (backup lost)"},
                    {"from_epoch", from},
                    {"to_epoch", from + 1},
                    {"reason", why},
                    {"claim_ms", ms_since(t0)},
                    {"instret", machine_->instret()}};
  note("won epoch {}: running solo; releasing {} held outputs", from + 1, held_.size());
  release_all();
  publish(true);
  return -1;
}

int Node::finish(int exit_code) {
  if (paired()) {
    append({machine_->instret(), outputs_.digest()});
    append({machine_->instret(), log::End{exit_code}});
    flush_batch();
    const auto deadline = Clock::now() + o_.timeout;
    while (acked_ < records_ && !peer_dead_ && Clock::now() < deadline) {
      pollfd pfd{wake_fd_, POLLIN, 0};
      poll(&pfd, 1, 10);
      drain_wake();
    }
    if (acked_ < records_) {
      if (int rc = go_solo("the backup did not acknowledge the end of the run"); rc >= 0) return rc;
    }
  }
  release_all();
  note("the guest stopped; exit status {}", exit_code);
  state_ = "stopped";
  publish(true);
  return exit_code;
}

int Node::live_loop() {
  live_outputs_ = true;
  std::deque<std::vector<uint8_t>> rx_queue;
  auto start = Clock::now();
  uint64_t start_mtime = machine_->mtime();
  uint64_t last_solo_epoch = epoch_;
  last_alive_ = Clock::now();
  for (;;) {
    cur_instret_ = machine_->instret();
    cur_mtime_ = machine_->mtime();
    publish();
    check_stall();
    const auto now = Clock::now();
    while (tap_ && !garp_at_.empty() && garp_at_.front() <= now) {
      (void)tap_->write_frame(garp_);
      garp_at_.pop_front();
    }
    if (paired() && peer_dead_) {
      std::string why;
      {
        std::lock_guard<std::mutex> lock(reason_mu_);
        why = dead_reason_;
      }
      if (int rc = go_solo(why); rc >= 0) return rc;
      last_alive_ = Clock::now();
    }
    if (epoch_ != last_solo_epoch) {
      // Pacing restarts from here after a pause for the arbiter.
      start = Clock::now();
      start_mtime = machine_->mtime();
      last_solo_epoch = epoch_;
    }
    release_acked();
    if (over_lag()) {
      // Flow control: let the backup catch up before running further.
      const auto t0 = Clock::now();
      if (!throttled_) ++throttle_episodes_;
      throttled_ = true;
      flush_batch();
      pollfd pfd{wake_fd_, POLLIN, 0};
      poll(&pfd, 1, static_cast<int>(o_.heartbeat.count()));
      drain_wake();
      check_stall();
      throttled_ms_ += ms_since(t0);
      continue;
    }
    throttled_ = false;
    // Inputs, each applied and logged at the current instret.
    size_t fed = 0;
    if (tap_) {
      std::vector<std::vector<uint8_t>> frames;
      (void)tap_->read_frames(frames);
      for (auto& f : frames) {
        if (rx_queue.size() < kMaxQueuedFrames) rx_queue.push_back(std::move(f));
        else ++rx_dropped_;
      }
      while (!rx_queue.empty() && machine_->deliver_frame(rx_queue.front())) {
        append({machine_->instret(), log::NetFrame{std::move(rx_queue.front())}});
        rx_queue.pop_front();
        ++fed;
      }
    }
    flush_batch();
    const vm::RunResult r = machine_->run(kSliceInstructions);
    release_acked();
    flush_console();
    if (r.status == vm::RunStatus::kPowerOff) {
      return finish(static_cast<int>(machine_->exit_status() & 0xff));
    }
    if (r.status == vm::RunStatus::kReset) {
      note("the guest asked for a reboot; stopping");
      return finish(0);
    }
    if (r.status == vm::RunStatus::kError) {
      note("machine stopped: {}", machine_->error());
      finish(kExitNodeError);
      return kExitNodeError;
    }
    checkpoint_maybe();
    if (paired() && machine_->instret() > last_record_instret_) {
      append({machine_->instret(), log::Progress{}});
    }
    flush_batch();
    if (r.status == vm::RunStatus::kIdle && fed == 0 && rx_queue.empty()) {
      const std::optional<uint64_t> wake_at = machine_->next_wakeup();
      const auto target =
          wake_at ? start + std::chrono::nanoseconds((*wake_at - std::min(*wake_at, start_mtime)) *
                                                     (1'000'000'000 / vm::kTimebaseHz))
                  : Clock::now() + milliseconds(100);
      bool input = false;
      while (!input && Clock::now() < target && !(paired() && peer_dead_)) {
        std::vector<int> fds{wake_fd_};
        if (tap_) fds.push_back(tap_->fd());
        const auto left = target - Clock::now();
        const bool readable =
            hostio::wait_any_readable(fds, std::min<Clock::duration>(left, o_.heartbeat));
        check_stall();
        if (!readable) continue;
        drain_wake();
        release_acked();
        pollfd tp{tap_ ? tap_->fd() : -1, POLLIN, 0};
        input = tap_ && poll(&tp, 1, 0) > 0;
      }
      if (!input && wake_at && Clock::now() >= target) {
        append({machine_->instret(), log::TimeSkip{*wake_at}});
        machine_->skip_time_to(*wake_at);
      }
    }
  }
}

// ---- the primary ----

int Node::primary_main() {
  if (Status s = build_machine(o_.spec, o_.entropy == "host"); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  if (o_.entropy == "host") entropy_target_ = host_entropy_.get();
  Result<log::Header> header = make_header(o_.spec);
  if (!header) {
    note("{}", header.error());
    return kExitNodeBadInput;
  }
  header_ = *header;
  header_.metadata["ftvm.log.writer"] = "ftvm primary";
  if (Status s = open_host_side(); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  state_ = "claiming";
  publish(true);
  const arbiter::Grant g = claim_until_answered(epoch_);
  if (!g.won) {
    note("the arbiter gives vm '{}' epoch {} to {}: this pair already ran; start with a new --vm "
         "or an --epoch above {}",
         o_.vm, g.held_epoch, g.holder, g.held_epoch);
    return kExitDeposed;
  }
  Result<int> lfd = listen_tcp(o_.listen);
  if (!lfd) {
    note("{}", lfd.error());
    return kExitNodeBadInput;
  }
  listen_fd_ = *lfd;
  state_ = "waiting for backup";
  note("holds vm '{}' epoch {}; waiting up to {} s for a backup on {}", o_.vm, epoch_.load(),
       o_.join_timeout.count() / 1000, o_.listen);
  publish(true);
  const auto join_deadline = Clock::now() + o_.join_timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(join_deadline - Clock::now());
    if (left.count() <= 0) {
      note("no backup joined within {} s; start `ftvm backup --primary {}` on the other host",
           o_.join_timeout.count() / 1000, o_.listen);
      return kExitNodeBadInput;
    }
    Result<std::optional<int>> fd = accept_tcp(listen_fd_, std::min(left, milliseconds(200)));
    publish();
    if (!fd) {
      note("{}", fd.error());
      return kExitNodeError;
    }
    if (!fd->has_value()) continue;
    auto conn = std::make_unique<Connection>(**fd, o_.secret, Direction::kToBackup, epoch_.load());
    conn->set_stall_timeout(o_.timeout);
    Hello hello;
    hello.vm = o_.vm;
    hello.heartbeat_ms = static_cast<uint64_t>(o_.heartbeat.count());
    hello.timeout_ms = static_cast<uint64_t>(o_.timeout.count());
    hello.header = header_;
    if (Status s = conn->send(MsgType::kHello, encode_hello(hello)); !s) {
      note("a backup connected but {}", s.error());
      continue;
    }
    Result<std::optional<Message>> m = conn->receive(milliseconds(30'000));
    if (!m || !m->has_value() || (*m)->type != MsgType::kHelloAck) {
      note("a connection to the channel port did not answer like a backup ({}); closed",
           !m ? m.error() : "no answer");
      continue;
    }
    Result<HelloAck> ack = decode_hello_ack(as_span((*m)->payload));
    if (!ack || !ack->ok) {
      note("the backup refused to pair: {}", ack ? ack->message : ack.error());
      return kExitNodeBadInput;
    }
    conn_ = std::move(conn);
    break;
  }
  state_ = "paired";
  note("paired with the backup; the guest starts");
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) return kExitNodeError;
  channel_thread_ = std::thread([this] { primary_channel_thread(); });
  intruder_thread_ = std::thread([this] { intruder_thread(); });
  return live_loop();
}

// ---- the backup ----

Status Node::apply_queued(std::deque<QueuedRecord>& batch, int* exit_code) {
  while (!batch.empty()) {
    QueuedRecord& q = batch.front();
    if (Status s = replayer_->apply(q.record); !s) return s;
    ++executed_;
    executed_bytes_ += q.size;
    batch.pop_front();
    if (replayer_->ended()) {
      *exit_code = replayer_->exit_status();
      return {};
    }
  }
  return {};
}

int Node::go_live(const std::string& why) {
  const auto t0 = Clock::now();
  const double silent_ms =
      (t0.time_since_epoch().count() - last_heard_ns_.load()) / 1e6;
  const uint64_t from = epoch_;
  note("{}; claiming epoch {} to go live", why, from + 1);
  state_ = "claiming";
  stop_threads();
  publish(true);
  const arbiter::Grant g = claim_until_answered(from + 1);
  const double claim_ms = ms_since(t0);
  if (!g.won) {
    note("lost epoch {} to {}: halting for good", g.held_epoch, g.holder);
    role_ = "halted";
    state_ = "halted";
    publish(true);
    return kExitDeposed;
  }
  epoch_ = from + 1;
  role_ = "primary";
  state_ = "going live";
  // Outputs of the replayed tail are sent: the old primary may or may not
  // have released them, and TCP takes duplicates.
  live_outputs_ = true;
  replay_entropy_->set_fallback(host_entropy_.get());
  std::deque<QueuedRecord> rest;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    rest.swap(queue_);
  }
  const size_t tail = rest.size();
  const auto t1 = Clock::now();
  int exit_code = -1;
  if (Status s = apply_queued(rest, &exit_code); !s) {
    note("the replay diverged from the primary: {}", s.error());
    return kExitNodeDiverged;
  }
  const double replay_ms = ms_since(t1);
  if (exit_code >= 0) {
    release_all();
    note("the primary's run had ended; exit status {}", exit_code);
    return exit_code;
  }
  conn_.reset();
  // Bring guest time back in step with the wall clock: the end of the log
  // is where the old primary was when the last message left it; the time
  // since then passed for the clients too.
  {
    const double since_s = (Clock::now().time_since_epoch().count() - last_heard_ns_) / 1e9;
    const uint64_t target = machine_->mtime() + static_cast<uint64_t>(since_s * vm::kTimebaseHz);
    if (target > machine_->mtime()) machine_->skip_time_to(target);
  }
  state_ = "solo";
  if (tap_ && machine_->has_net()) {
    const std::string ip = o_.guest_ip.empty() ? guest_ip_from_cmdline(header_.cmdline) : o_.guest_ip;
    const std::optional<vm::MacAddress> mac = vm::parse_mac(header_.metadata["net.mac"]);
    if (mac && !ip.empty()) {
      garp_ = gratuitous_arp(*mac, ip);
      for (int i = 0; i < 2; ++i) (void)tap_->write_frame(garp_);
      const auto t = Clock::now();
      for (int ms : {100, 500, 1000, 2000, 5000}) garp_at_.push_back(t + milliseconds(ms));
      note("announced {} at {} (gratuitous ARP, repeated for 5 s)", ip, vm::format_mac(*mac));
    }
  }
  last_failover_ = {{"at_unix_ms", unix_ms()},
                    {"kind", "took over (primary lost)"},
                    {"from_epoch", from},
                    {"to_epoch", from + 1},
                    {"reason", why},
                    {"silence_ms", silent_ms},
                    {"claim_ms", claim_ms},
                    {"replayed_records", tail},
                    {"replay_ms", replay_ms},
                    {"detect_to_live_ms", ms_since(t0)},
                    {"instret", machine_->instret()},
                    {"state_hashes_matched", replayer_->state_hashes()},
                    {"last_matched_hash_instret", replayer_->last_matched_hash_instret()}};
  note("live as primary at instret {} ({} records replayed in {:.1f} ms; {:.1f} ms from detection; "
       "{} state hashes matched the old primary, the last at instret {})",
       machine_->instret(), tail, replay_ms, ms_since(t0), replayer_->state_hashes(),
       replayer_->last_matched_hash_instret());
  publish(true);
  return live_loop();
}

int Node::backup_loop() {
  int exit_code = -1;
  for (;;) {
    cur_instret_ = machine_->instret();
    cur_mtime_ = machine_->mtime();
    peer_exec_records_ = executed_;  // shared with the channel thread for acks
    peer_exec_bytes_ = executed_bytes_;
    publish();
    std::deque<QueuedRecord> batch;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait_for(lock, o_.heartbeat, [this] { return !queue_.empty() || peer_dead_; });
      if (peer_dead_) break;
      batch.swap(queue_);
    }
    if (tap_) {
      // Nothing from the LAN reaches a backup's guest; keep the TAP drained.
      std::vector<std::vector<uint8_t>> frames;
      (void)tap_->read_frames(frames, 1024);
    }
    if (batch.empty()) continue;
    // Run the batch in pieces so the position reported stays fresh.
    if (Status s = apply_queued(batch, &exit_code); !s) {
      note("the replay diverged from the primary: {}", s.error());
      state_ = "diverged";
      publish(true);
      return kExitNodeDiverged;
    }
    cur_instret_ = machine_->instret();
    cur_mtime_ = machine_->mtime();
    peer_exec_records_ = executed_;
    peer_exec_bytes_ = executed_bytes_;
    Ack a{received_, executed_, machine_->instret(), machine_->mtime(), received_bytes_,
          executed_bytes_};
    (void)conn_->send(MsgType::kAck, encode_ack(a));
    if (exit_code >= 0) {
      note("the primary's guest stopped with status {}; replay complete, {} state hashes matched",
           exit_code, replayer_->state_hashes());
      state_ = "stopped";
      publish(true);
      return exit_code;
    }
  }
  std::string why;
  {
    std::lock_guard<std::mutex> lock(reason_mu_);
    why = dead_reason_;
  }
  return go_live(why);
}

int Node::backup_main() {
  if (Status s = open_host_side(); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  state_ = "joining";
  publish(true);
  const auto deadline = Clock::now() + o_.join_timeout;
  int fd = -1;
  for (bool told = false;;) {
    Result<int> c = connect_tcp(o_.primary, milliseconds(1000));
    if (c) {
      fd = *c;
      break;
    }
    if (!told) note("waiting for the primary at {} ({})", o_.primary, c.error());
    told = true;
    if (Clock::now() >= deadline) {
      note("no primary at {} within {} s", o_.primary, o_.join_timeout.count() / 1000);
      return kExitNodeBadInput;
    }
    pollfd pfd{wake_fd_, POLLIN, 0};
    poll(&pfd, 1, 200);  // retry backoff
  }
  conn_ = std::make_unique<Connection>(fd, o_.secret, Direction::kToPrimary, std::nullopt);
  conn_->set_stall_timeout(o_.timeout);
  Result<std::optional<Message>> m = conn_->receive(milliseconds(30'000));
  if (!m || !m->has_value() || (*m)->type != MsgType::kHello) {
    note("the primary at {} did not say hello: {} (is the secret the same on both hosts?)",
         o_.primary, !m ? m.error() : "no authentic message");
    return kExitNodeBadInput;
  }
  Result<Hello> hello = decode_hello(as_span((*m)->payload));
  auto refuse = [&](const std::string& why) {
    (void)conn_->send(MsgType::kHelloAck, encode_hello_ack({false, why}));
    (void)conn_->flush(milliseconds(1000));
    note("cannot pair: {}", why);
    return kExitNodeBadInput;
  };
  if (!hello) return refuse(hello.error());
  if (hello->vm != o_.vm) {
    return refuse(fmt::format("the primary runs vm '{}', this backup is for '{}'", hello->vm, o_.vm));
  }
  epoch_ = (*m)->epoch;
  conn_->set_epoch(epoch_);
  // Build the same machine from this host's images; their hashes must match.
  MachineSpec spec = o_.spec;
  spec.cmdline = hello->header.cmdline;
  spec.ram_size = hello->header.ram_size;
  auto meta = [&](const char* k) {
    auto it = hello->header.metadata.find(k);
    return it == hello->header.metadata.end() ? std::string() : it->second;
  };
  spec.entropy = meta("entropy") == "virtio-rng";
  spec.net_mac = meta("net.mac");
  if (!hello->header.initrd) spec.initrd_path.clear();
  if (!hello->header.disk) spec.disk_path.clear();
  Result<log::Header> mine = make_header(spec);
  if (!mine) return refuse(mine.error());
  if (Status s = log::check_same_machine(hello->header, *mine); !s) {
    return refuse("the hosts' machines differ: " + s.error());
  }
  header_ = hello->header;
  if (Status s = build_machine(spec, spec.entropy); !s) return refuse(s.error());
  replay_entropy_ = std::make_unique<ReplayEntropy>(*machine_);
  entropy_target_ = replay_entropy_.get();
  replayer_ = std::make_unique<Replayer>(*machine_, spec.entropy ? replay_entropy_.get() : nullptr,
                                         /*check_outputs=*/true);
  if (Status s = conn_->send(MsgType::kHelloAck, encode_hello_ack({true, ""})); !s) {
    note("{}", s.error());
    return kExitNodeError;
  }
  state_ = "replaying";
  note("paired with the primary at {} (vm '{}', epoch {})", o_.primary, o_.vm, epoch_.load());
  publish(true);
  channel_thread_ = std::thread([this] { backup_channel_thread(); });
  return backup_loop();
}

}  // namespace

int run_primary(const NodeOptions& options) {
  Node node(options, /*primary=*/true);
  return node.primary_main();
}

int run_backup(const NodeOptions& options) {
  Node node(options, /*primary=*/false);
  return node.backup_main();
}

}  // namespace ftvm::ft
