// `ftvm primary` and `ftvm backup`: the real-world driver of a NodeCore
// (see node.h, node_core.h and docs/ft-protocol.md).
//
// The core decides everything; this file gives it the real world: the
// monotonic clock, the TAP, stdout, the arbiter client, and a logging
// channel over TCP. Threads: the main thread owns the machine and the core
// and waits (poll) between steps. A channel thread per paired node reads
// the peer's messages and hands them to the ChannelEndpoint, which answers
// at once (the backup acknowledges every batch of records on arrival,
// before executing it) and runs failure detection; it talks to the main
// thread only through the endpoint (a mutex) and an eventfd that wakes the
// main thread. No thread's timing can reach the machine's state: the
// backup applies records at the instret they name.
#include "ft/node.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>

#include "arbiter/client.h"
#include "ft/channel.h"
#include "ft/channel_endpoint.h"
#include "ft/join.h"
#include "ft/node_core.h"
#include "ft/pair_view.h"
#include "ft/status.h"
#include "ft/transfer.h"
#include "hostio/block_file.h"
#include "hostio/entropy.h"
#include "hostio/tap.h"
#include "hostio/terminal.h"
#include "vm/machine.h"

namespace ftvm::ft {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// SIGUSR1 asks a paired primary to hand over (`ftvm migrate`): the handler
// only sets the flag and wakes the main loop.
std::atomic<bool> g_handover_asked{false};
std::atomic<int> g_wake_fd{-1};
void on_handover_signal(int) {
  g_handover_asked = true;
  const int fd = g_wake_fd.load();
  const uint64_t one = 1;
  if (fd >= 0) (void)!write(fd, &one, sizeof one);
}

CoreTime mono_now() {
  return std::chrono::duration_cast<CoreTime>(Clock::now().time_since_epoch());
}

// Prints one log line with the wall-clock time.
void print_line(std::string_view line) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  fmt::print(stderr, "{:%H:%M:%S}.{:03d} ftvm {}\n", std::chrono::floor<std::chrono::seconds>(now),
             ms, line);
}

// The logging channel over a TCP connection: a thread reads messages and
// feeds the endpoint, sends what it answers, and sends heartbeats.
class TcpLink final : public Link {
 public:
  // `conn` may be shared with whoever watches the channel port for
  // replays of it (ChannelAcceptor::guard); the link stops using it when
  // destroyed.
  TcpLink(std::shared_ptr<Connection> conn, ChannelEndpoint* endpoint,
          std::chrono::milliseconds heartbeat)
      : conn_(std::move(conn)), endpoint_(endpoint), heartbeat_(heartbeat) {
    thread_ = std::thread([this] { run(); });
  }
  ~TcpLink() override {
    stop_ = true;
    conn_->shutdown();
    if (thread_.joinable()) thread_.join();
  }
  Status send(MsgType type, const std::string& payload) override {
    return conn_->send(type, payload);
  }
  Stats stats() const override {
    const RejectCounts& r = conn_->rejected();
    return {conn_->bytes_sent(),  conn_->bytes_received(), conn_->queued_bytes(),
            r.forged.load(),      r.replayed.load(),       r.stale_epoch.load(),
            r.wrong_direction.load(), r.timed_out.load()};
  }

 private:
  void run() {
    // The tick runs at least every heartbeat, and more often while messages
    // flow, so detection and heartbeats never wait for silence.
    const auto tick = std::max<std::chrono::milliseconds>(milliseconds(1), heartbeat_ / 2);
    while (!stop_) {
      Result<std::optional<Message>> m = conn_->receive(tick);
      if (!m) {
        if (!stop_) endpoint_->on_link_failed(m.error());
        return;
      }
      if (m->has_value()) {
        if (std::optional<ChannelEndpoint::Reply> r = endpoint_->on_message(mono_now(), **m)) {
          (void)conn_->send(r->type, r->payload);
        }
      }
      if (std::optional<ChannelEndpoint::Reply> r = endpoint_->on_tick(mono_now())) {
        (void)conn_->send(r->type, r->payload);
      }
      if (endpoint_->failed()) return;
    }
  }

  std::shared_ptr<Connection> conn_;
  ChannelEndpoint* endpoint_;
  std::chrono::milliseconds heartbeat_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class Node final : public CoreEnv {
 public:
  Node(const NodeOptions& o, bool primary) : o_(o), is_primary_(primary) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_wake_fd = wake_fd_;
    struct sigaction sa {};
    sa.sa_handler = on_handover_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
  }
  ~Node() override {
    stop_guard();
    core_.reset();  // its link's thread first
    if (listen_fd_ >= 0) close(listen_fd_);
    g_wake_fd = -1;
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  int primary_main();
  int backup_main();

  // ---- CoreEnv ----
  CoreTime now() override { return mono_now(); }
  uint64_t unix_ms() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
  void log(std::string_view line) override { print_line(line); }
  void read_frames(std::vector<std::vector<uint8_t>>& out) override {
    if (tap_) (void)tap_->read_frames(out, 1024);
  }
  bool write_frame(std::span<const uint8_t> frame) override {
    return !tap_ || static_cast<bool>(tap_->write_frame(frame));
  }
  void write_console(std::string_view bytes) override {
    hostio::write_all(STDOUT_FILENO, std::string(bytes));
  }
  arbiter::Client& arbiter() override { return *arbiter_; }

 private:
  template <typename... Args>
  void note(fmt::format_string<Args...> f, Args&&... args) {
    print_line(fmt::format("{} e{}: {}",
                           core_ ? role_name(core_->role().role())
                                 : std::string_view(is_primary_ ? "primary" : "backup"),
                           core_ ? core_->role().epoch() : o_.epoch,
                           fmt::format(f, std::forward<Args>(args)...)));
  }
  CoreOptions core_options(const log::Header& header) const;
  // `boots`: the machine starts from the images here (not from a state
  // transfer, which overwrites RAM and the disk anyway).
  Status build_machine(const MachineSpec& spec, bool with_entropy, bool boots = true);
  Status open_host_side();
  // This node's end of a channel: the primary's while it leads (a backup
  // gone live leads the channel of the backup it takes).
  std::unique_ptr<ChannelEndpoint> make_endpoint(bool primary_end) {
    return std::make_unique<ChannelEndpoint>(primary_end, o_.timeout, o_.heartbeat, mono_now(),
                                             [this] { wake(); });
  }
  // Runs the core until it exits. The primary accepts its backup meanwhile.
  int drive();
  // Serves the channel port for up to `wait`: a backup that completed the
  // handshake, or null (none yet, or it refused to `what`: noted).
  std::unique_ptr<Connection> accept_backup(milliseconds wait, const char* what);
  // Primary in kWaitingForBackup: one bounded attempt to pair.
  void try_pair(milliseconds wait);
  // A primary running alone: serves its channel port (opening it first on
  // a backup gone live) and starts a state transfer to a new backup.
  void try_reprotect();
  // One step of a running transfer; true while it has more to send now.
  bool transfer_step();
  void abandon_transfer(const std::string& why);
  // Watches the channel port for replays of the paired session (a thread).
  void start_guard();
  // The backup's join of a running primary: receives its state.
  int join_running(Joining& joining, const MachineSpec& spec, uint64_t epoch);
  Status open_channel_port();
  void stop_guard();
  void publish(bool force = false);
  // Appends this node's entry to the pair's history when it has just taken
  // an epoch: paired as primary (start), live after a takeover (failover),
  // or alone after losing its backup (solo); and marks this host's copy of
  // a writable disk with that epoch (pair_view.h, write_disk_mark).
  void record_history();
  void wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
  void drain_wake() {
    uint64_t v;
    (void)!read(wake_fd_, &v, sizeof v);
  }

  const NodeOptions& o_;
  const bool is_primary_;
  std::unique_ptr<hostio::FileBlockBackend> disk_;
  std::unique_ptr<vm::BlockBackend> disk_overlay_;
  // The live guest's randomness: the primary's --entropy source; a
  // backup's host source once it is live.
  std::unique_ptr<vm::EntropySource> live_entropy_;
  std::unique_ptr<vm::Machine> machine_;
  std::unique_ptr<NodeCore> core_;
  log::Header header_;
  std::unique_ptr<hostio::Tap> tap_;
  std::unique_ptr<arbiter::Client> arbiter_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  Clock::time_point join_deadline_{};
  // The channel port: pairing, then guarding it while paired (a thread).
  std::unique_ptr<ChannelAcceptor> acceptor_;
  std::shared_ptr<Connection> paired_conn_;  // kept alive while the guard reads it
  std::thread guard_thread_;
  // A state transfer to a joining backup (primary), and the channel it runs
  // on until the core takes it over at the pause.
  std::unique_ptr<TransferSender> sender_;
  std::unique_ptr<ChannelEndpoint> xfer_endpoint_;
  std::unique_ptr<TcpLink> xfer_link_;
  std::shared_ptr<Connection> xfer_conn_;
  std::deque<std::string> xfer_in_;
  // The transfer running now and the last one that ended, for status.
  std::optional<TransferProgress> transfer_, last_transfer_;
  Clock::time_point next_accept_{};

  // Status.
  StatusBoard board_;
  std::unique_ptr<ControlServer> control_;
  Clock::time_point last_publish_{};
  NodeState published_state_ = NodeState::kStarting;
  Role published_role_ = Role::kPrimary;
  uint64_t history_epoch_ = 0;  // the last epoch this node wrote to the history
  bool led_pair_ = false;       // this node has been a paired primary
  uint64_t rate_bytes_ = 0;
  Clock::time_point rate_at_ = Clock::now();
  double log_mbit_ = 0;
};

CoreOptions Node::core_options(const log::Header& header) const {
  CoreOptions c;
  c.vm = o_.vm;
  c.host_id = o_.host_id;
  c.epoch = o_.epoch;
  c.heartbeat = o_.heartbeat;
  c.timeout = o_.timeout;
  c.max_lag_ms = o_.max_lag_ms;
  c.max_lag_bytes = o_.max_lag_bytes;
  c.hash_interval = o_.hash_interval;
  auto it = header.metadata.find("net.mac");
  if (tap_ && it != header.metadata.end()) c.mac = vm::parse_mac(it->second);
  c.guest_ip = o_.guest_ip.empty() ? guest_ip_from_cmdline(header.cmdline) : o_.guest_ip;
  return c;
}

Status Node::build_machine(const MachineSpec& spec, bool with_entropy, bool boots) {
  // A read-only disk is the same file contents on both hosts; a writable
  // one is each host's own copy, equal at the join (the header's hash) and
  // kept equal by the replay, so each node writes its copy in place.
  Result<LoadedImages> images = load_images(spec, /*disk_in_place=*/true);
  if (!images) return make_error(images.error());
  disk_ = std::move(images->disk_file);
  disk_overlay_ = std::move(images->disk_overlay);
  vm::MachineConfig config = images->config;
  config.engine = o_.engine;
  if (with_entropy) config.entropy = core_->entropy_device();
  machine_ = std::make_unique<vm::Machine>(config);
  if (Status s = machine_->load_linux(images->kernel, images->initrd, spec.cmdline); !s) {
    return make_error(fmt::format("{}: {}", spec.kernel_path, s.error()));
  }
  // The first state hash reads every block of a writable disk; done here,
  // before the guest runs, it does not stall the guest at its first check.
  if (spec.disk_writable && boots) (void)machine_->state_digest();
  // A backup's guest flushes as the primary's did, but its copy only needs
  // to be durable once it goes live (it syncs then, record_history): until
  // then a real fdatasync at most once a second keeps the replay fast.
  if (spec.disk_writable && !is_primary_ && disk_) disk_->set_lazy_flush(milliseconds(1000));
  if (is_primary_) {
    live_entropy_ = hostio::entropy_source_for(o_.entropy);
  } else {
    live_entropy_ = std::make_unique<hostio::HostEntropy>();
  }
  core_->attach_machine(machine_.get(), live_entropy_.get());
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
  note("claims at the arbiter {} as {}", arbiter_->describe(), arbiter_->claimant(o_.host_id));
  if (!o_.control.empty()) {
    Result<std::unique_ptr<ControlServer>> server = ControlServer::start(o_.control, &board_);
    if (!server) return make_error(server.error());
    control_ = std::move(*server);
  }
  return {};
}

void Node::publish(bool force) {
  const auto now = Clock::now();
  if (!force && now - last_publish_ < milliseconds(100)) return;
  last_publish_ = now;
  NodeStatus st;
  if (core_) {
    st = core_->status();
  } else {
    st.role = is_primary_ ? Role::kPrimary : Role::kBackup;
    st.state = is_primary_ ? NodeState::kStarting : NodeState::kJoining;
    st.vm = o_.vm;
    st.host = o_.host_id;
    st.claimant = arbiter_ ? arbiter_->claimant(o_.host_id) : o_.host_id;
    // A backup learns the epoch from the primary's handshake: 0 until then.
    st.epoch = is_primary_ ? o_.epoch : 0;
  }
  st.pid = getpid();
  st.arbiter = o_.arbiter;
  if (machine_) {
    const vm::JitStats j = machine_->hart().jit_stats();
    st.engine = NodeStatus::Engine{vm::engine_name(machine_->hart().engine()), j.blocks_compiled,
                                   j.code_bytes, j.code_capacity, j.flushes, j.interpreted};
  }
  if (machine_ && machine_->has_disk()) {
    st.disk = NodeStatus::Disk{o_.spec.disk_path, disk_ && !disk_->read_only(),
                               machine_->disk_host_errors(), machine_->disk_last_host_error()};
  }
  const double dt = std::chrono::duration<double>(now - rate_at_).count();
  if (st.log.channel_bytes < rate_bytes_) rate_bytes_ = 0;  // a new link
  if (dt >= 1.0) {
    log_mbit_ = (st.log.channel_bytes - rate_bytes_) * 8.0 / dt / 1e6;
    rate_bytes_ = st.log.channel_bytes;
    rate_at_ = now;
  }
  st.log.mbit_per_s = log_mbit_;
  if (xfer_link_) {  // the channel of a state transfer in progress
    const Link::Stats ls = xfer_link_->stats();
    st.log.channel_bytes = ls.bytes_sent + ls.bytes_received;
    st.log.queued_bytes = ls.queued_bytes;
    st.rejected.forged += ls.forged;
    st.rejected.replayed += ls.replayed;
    st.rejected.stale_epoch += ls.stale_epoch;
    st.rejected.wrong_direction += ls.wrong_direction;
    st.rejected.timed_out += ls.timed_out;
  }
  if (acceptor_) {
    const RejectCounts& r = acceptor_->rejected();
    st.rejected.forged += r.forged;
    st.rejected.replayed += r.replayed;
    st.rejected.stale_epoch += r.stale_epoch;
    st.rejected.wrong_direction += r.wrong_direction;
    st.rejected.timed_out += r.timed_out;
    st.rejected.unexpected_connection = acceptor_->unexpected();
  }
  nlohmann::json j = to_json(st);
  if (sender_) transfer_ = sender_->progress();
  j["transfer"] = transfer_ ? to_json(*transfer_) : nlohmann::json(nullptr);
  j["last_transfer"] = last_transfer_ ? to_json(*last_transfer_) : nlohmann::json(nullptr);
  board_.publish(std::move(j));
}

void Node::record_history() {
  const bool disk_mark = disk_ && !disk_->read_only();
  if (o_.history.empty() && !disk_mark) return;
  const uint64_t epoch = core_->role().epoch();
  if (core_->role().role() != Role::kPrimary || epoch <= history_epoch_) return;
  HistoryKind kind;
  if (core_->role().state() == NodeState::kPaired) {
    kind = HistoryKind::kStart;
    led_pair_ = true;
  } else if (core_->role().state() == NodeState::kSolo) {
    // Alone after leading a pair (this node's first, or one it
    // re-protected), or live after replaying a lost primary's log.
    kind = is_primary_ || led_pair_           ? HistoryKind::kSolo
           : core_->took_over_by_handover() ? HistoryKind::kMigrate
                                            : HistoryKind::kFailover;
  } else {
    return;
  }
  history_epoch_ = epoch;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  if (!o_.history.empty()) {
    if (Status s = append_history(o_.history, {epoch, o_.host_id, kind, ms}); !s) {
      note("{} (the pair's history misses epoch {})", s.error(), epoch);
    }
  }
  // This host's copy of the disk is now the pair's most advanced: durable
  // first (a backup gone live had lazy flushes), then marked.
  if (disk_mark && disk_->lazy_flush()) {
    disk_->set_lazy_flush(std::nullopt);
    if (Status s = disk_->sync_now(); !s) note("{}", s.error());
  }
  if (disk_mark) {
    if (Status s = write_disk_mark(o_.spec.disk_path, {epoch, o_.host_id, kind, ms},
                                   machine_->instret());
        !s) {
      note("{} (a restart may not find this copy the most advanced)", s.error());
    }
  }
}

int Node::drive() {
  for (;;) {
    if (g_handover_asked.exchange(false)) {
      if (Status st = core_->request_handover(); !st) note("cannot hand over: {}", st.error());
    }
    const Step s = core_->step();
    // A change of role or state is published at once: `ftvm status` must
    // not show a node that has gone live as still claiming.
    const bool changed = core_->role().state() != published_state_ ||
                         core_->role().role() != published_role_;
    published_state_ = core_->role().state();
    published_role_ = core_->role().role();
    if (changed) record_history();
    publish(changed || (core_->role().state() != NodeState::kPaired &&
                        core_->role().state() != NodeState::kReplaying &&
                        core_->role().state() != NodeState::kSolo));
    if (paired_conn_ && !core_->paired()) stop_guard();  // the channel is over
    if (s.kind == Step::Kind::kExit) {
      publish(true);
      return s.exit_code;
    }
    if (core_->waiting_for_backup()) {
      if (Clock::now() >= join_deadline_) {
        note("no backup joined within {} s; start `ftvm backup --primary {}` on the other host",
             o_.join_timeout.count() / 1000, o_.listen);
        return kExitNodeBadInput;
      }
      try_pair(milliseconds(200));
      continue;
    }
    bool busy = false;
    if (sender_) {
      busy = transfer_step();
    } else if (core_->can_reprotect()) {
      try_reprotect();
      busy = sender_ != nullptr;
    }
    if (s.kind == Step::Kind::kWait && !busy) {
      CoreTime left = s.until - mono_now();
      // A primary alone looks at its channel port at least every 200 ms,
      // and a rate-limited transfer goes on while the guest idles.
      if (core_->can_reprotect() && !sender_) left = std::min<CoreTime>(left, milliseconds(200));
      if (sender_) left = std::min<CoreTime>(left, milliseconds(10));
      if (left <= CoreTime{0}) continue;
      std::vector<int> fds{wake_fd_};
      if (tap_) fds.push_back(tap_->fd());
      if (hostio::wait_any_readable(fds, left)) drain_wake();
    }
  }
}

Status Node::open_channel_port() {
  if (acceptor_) return {};
  Result<int> lfd = listen_tcp(o_.listen);
  if (!lfd) return make_error(lfd.error());
  listen_fd_ = *lfd;
  AcceptorOptions ao;
  ao.secret = o_.secret;
  ao.epoch = core_->role().epoch();
  ao.hello.vm = o_.vm;
  ao.hello.heartbeat_ms = static_cast<uint64_t>(o_.heartbeat.count());
  ao.hello.timeout_ms = static_cast<uint64_t>(o_.timeout.count());
  ao.hello.header = header_;
  ao.stall_timeout = o_.timeout;
  // An unauthenticated connection gets this long to answer the Hello; the
  // backup's handshake takes milliseconds (it builds its machine after).
  ao.handshake_timeout = std::max(milliseconds(1000), std::min(milliseconds(2000), o_.timeout));
  ao.ready_timeout = milliseconds(30'000);
  ao.note = [this](const std::string& line) { note("{}", line); };
  acceptor_ = std::make_unique<ChannelAcceptor>(listen_fd_, std::move(ao));
  return {};
}

void Node::try_reprotect() {
  if (o_.listen.empty()) return;
  const auto now = Clock::now();
  if (now < next_accept_) return;
  next_accept_ = now + milliseconds(200);
  if (!acceptor_) {
    if (Status s = open_channel_port(); !s) {
      note("cannot serve the channel port for a new backup: {}", s.error());
      next_accept_ = now + std::chrono::seconds(5);
      return;
    }
    note("running alone; a new backup may join on {} (ftvm backup --primary {})", o_.listen,
         o_.listen);
  }
  acceptor_->reoffer(core_->role().epoch(), /*running=*/true);
  std::unique_ptr<Connection> conn = accept_backup(milliseconds(0), "join");
  if (!conn) return;
  xfer_conn_ = std::move(conn);
  xfer_endpoint_ = make_endpoint(/*primary_end=*/true);
  xfer_link_ = std::make_unique<TcpLink>(xfer_conn_, xfer_endpoint_.get(), o_.heartbeat);
  SenderOptions so;
  so.max_bytes_per_s = o_.transfer_mbps * 1e6;
  sender_ = std::make_unique<TransferSender>(
      *machine_, disk_ && !disk_->read_only() ? disk_.get() : nullptr, so);
  transfer_ = sender_->progress();
  note("a new backup joins at instret {}: copying this machine's RAM{} while the guest runs",
       machine_->instret(), disk_ && !disk_->read_only() ? " and disk" : "");
  publish(true);
}

void Node::abandon_transfer(const std::string& why) {
  note("the state transfer to the new backup stopped ({}); the half-made backup is discarded "
       "and this node goes on alone",
       why);
  sender_->abandon();
  if (transfer_) {
    transfer_->phase = "failed";
    last_transfer_ = transfer_;
  }
  transfer_.reset();
  sender_.reset();
  xfer_link_.reset();  // its thread first
  xfer_endpoint_.reset();
  xfer_conn_.reset();
  xfer_in_.clear();
  publish(true);
}

bool Node::transfer_step() {
  if (!core_->can_reprotect()) {
    abandon_transfer("this node is no longer running alone");
    return false;
  }
  if (std::optional<std::string> why = xfer_endpoint_->failed()) {
    abandon_transfer(*why);
    return false;
  }
  xfer_endpoint_->set_local(mono_now(), {machine_->instret(), machine_->mtime(),
                                         core_->should_run(), 0, 0, false});
  xfer_endpoint_->take_transfer(xfer_in_);
  while (!xfer_in_.empty()) {
    const std::string m = std::move(xfer_in_.front());
    xfer_in_.pop_front();
    if (Status s = sender_->on_reply(as_span(m)); !s) {
      abandon_transfer(s.error());
      return false;
    }
  }
  std::vector<std::string> out;
  Result<bool> converged = sender_->pump(out);
  if (!converged) {
    abandon_transfer(converged.error());
    return false;
  }
  for (const std::string& m : out) {
    if (Status s = xfer_link_->send(MsgType::kTransfer, m); !s) {
      abandon_transfer(s.error());
      return false;
    }
  }
  if (!out.empty()) xfer_endpoint_->sent(mono_now());
  transfer_ = sender_->progress();
  if (!*converged) {
    publish();
    return !out.empty();
  }
  // The pause: between two slices, the rest and the state, then the log.
  Result<std::vector<std::string>> rest = sender_->finish();
  if (!rest) {
    abandon_transfer(rest.error());
    return false;
  }
  for (const std::string& m : *rest) {
    if (Status s = xfer_link_->send(MsgType::kTransfer, m); !s) {
      abandon_transfer(s.error());
      return false;
    }
  }
  const TransferProgress p = sender_->progress();
  sender_.reset();
  last_transfer_ = p;
  transfer_.reset();
  paired_conn_ = std::move(xfer_conn_);
  core_->reprotect(std::move(xfer_endpoint_), std::move(xfer_link_));
  note("re-protected: {} rounds, {:.1f} MB in {:.0f} ms ({} pages, {} disk blocks sent, {} "
       "already equal); the guest paused {:.1f} ms for the last copy",
       p.rounds, p.bytes / 1e6, p.elapsed_ms, p.pages, p.blocks, p.blocks_equal, p.pause_ms);
  if (!o_.history.empty()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    if (Status s = append_history(o_.history, {core_->role().epoch(), o_.host_id,
                                               HistoryKind::kReprotect, ms});
        !s) {
      note("{} (the pair's history misses this re-protection)", s.error());
    }
  }
  led_pair_ = true;
  start_guard();
  publish(true);
  return false;
}

void Node::start_guard() {
  // Anyone else on the channel port now: read, checked, counted, never applied.
  if (pipe2(stop_pipe_, O_CLOEXEC) == 0) {
    guard_thread_ = std::thread([this, c = paired_conn_.get()] { acceptor_->guard(stop_pipe_[0], c); });
  }
}

std::unique_ptr<Connection> Node::accept_backup(milliseconds wait, const char* what) {
  Result<std::optional<Accepted>> a = acceptor_->accept(wait);
  if (!a) {
    note("the channel port failed: {}", a.error());
    return nullptr;
  }
  if (!a->has_value()) return nullptr;
  if ((*a)->conn == nullptr) note("a backup refused to {}: {}", what, (*a)->refusal);
  return std::move((*a)->conn);
}

void Node::try_pair(milliseconds wait) {
  std::unique_ptr<Connection> conn = accept_backup(wait, "pair");
  if (!conn) return;
  paired_conn_ = std::move(conn);
  std::unique_ptr<ChannelEndpoint> endpoint = make_endpoint(/*primary_end=*/true);
  auto link = std::make_unique<TcpLink>(paired_conn_, endpoint.get(), o_.heartbeat);
  core_->pair(std::move(endpoint), std::move(link));
  start_guard();
  publish(true);
}

void Node::stop_guard() {
  if (stop_pipe_[1] >= 0) {
    const char c = 'x';
    (void)!write(stop_pipe_[1], &c, 1);
  }
  if (guard_thread_.joinable()) guard_thread_.join();
  for (int& fd : stop_pipe_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  paired_conn_.reset();  // closes the socket once the link has let go too
}

// ---- the primary ----

int Node::primary_main() {
  if (Status s = open_host_side(); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  Result<log::Header> header = make_header(o_.spec);
  if (!header) {
    note("{}", header.error());
    return kExitNodeBadInput;
  }
  header_ = *header;
  header_.metadata["ftvm.log.writer"] = "ftvm primary";
  core_ = std::make_unique<NodeCore>(Role::kPrimary, core_options(header_), *this);
  if (Status s = build_machine(o_.spec, o_.spec.entropy); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  publish(true);
  // Claim first: a node whose vm has moved on never listens.
  for (;;) {
    const Step s = core_->step();
    publish(true);
    if (s.kind == Step::Kind::kExit) return s.exit_code;
    if (core_->waiting_for_backup()) break;
    if (s.kind == Step::Kind::kWait) {
      const CoreTime left = s.until - mono_now();
      if (left > CoreTime{0}) {
        pollfd pfd{wake_fd_, POLLIN, 0};
        poll(&pfd, 1, static_cast<int>(std::chrono::ceil<milliseconds>(left).count()));
        drain_wake();
      }
    }
  }
  if (Status s = open_channel_port(); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
  note("holds vm '{}' epoch {}; waiting up to {} s for a backup on {}", o_.vm,
       core_->role().epoch(), o_.join_timeout.count() / 1000, o_.listen);
  join_deadline_ = Clock::now() + o_.join_timeout;
  const int rc = drive();
  stop_guard();
  return rc;
}

// ---- the backup ----

int Node::backup_main() {
  if (Status s = open_host_side(); !s) {
    note("{}", s.error());
    return kExitNodeBadInput;
  }
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
  JoinOptions jo;
  jo.secret = o_.secret;
  jo.vm = o_.vm;
  jo.timeout = milliseconds(30'000);
  jo.stall_timeout = o_.timeout;
  Result<Joining> joining = join_primary(fd, jo);  // checks the version and the vm
  if (!joining) {
    note("cannot pair with the primary at {}: {} (is the secret the same on both hosts?)",
         o_.primary, joining.error());
    return kExitNodeBadInput;
  }
  const Hello* hello = &joining->hello();
  auto refuse = [&](const std::string& why) {
    joining->refuse(why);
    note("cannot pair: {}", why);
    return kExitNodeBadInput;
  };
  const uint64_t epoch = joining->epoch();
  // Build the same machine from this host's images; their hashes must match.
  Result<MachineSpec> built = spec_from_header(hello->header, o_.spec);
  if (!built) return refuse(built.error());
  const MachineSpec& spec = *built;
  Result<log::Header> mine = make_header(spec);
  if (!mine) return refuse(mine.error());
  if (hello->running && spec.disk_writable && mine->disk && hello->header.disk &&
      mine->disk->size == hello->header.disk->size) {
    // Joining a running primary: the copy's contents come by transfer.
    mine->disk = hello->header.disk;
  }
  if (Status s = log::check_same_machine(hello->header, *mine); !s) {
    std::string hint;
    if (spec.disk_writable && hello->header.disk != mine->disk) {
      hint = fmt::format("; this host's copy of the disk ({}) is not the primary's: copy the "
                         "primary's over it before joining",
                         spec.disk_path);
    }
    return refuse("the hosts' machines differ: " + s.error() + hint);
  }
  header_ = hello->header;
  CoreOptions co = core_options(header_);
  co.epoch = epoch;
  core_ = std::make_unique<NodeCore>(Role::kBackup, co, *this);
  if (hello->running) {
    if (spec.disk_writable) {
      // Never overwrite a copy more advanced than the primary (a primary
      // that has not yet found out it was deposed), and never leave a
      // half-made copy that looks advanced.
      if (std::optional<uint64_t> mark = read_disk_mark_epoch(spec.disk_path); mark && *mark > epoch) {
        return refuse(fmt::format("this host's copy of the disk ({}) was marked at epoch {}, after "
                                  "the primary's epoch {}: that primary is stale",
                                  spec.disk_path, *mark, epoch));
      }
    }
    // The machine first: it opens (and locks) this host's copy, so a second
    // backup process on this host is refused before it touches the mark.
    if (Status s = build_machine(spec, spec.entropy, /*boots=*/false); !s) return refuse(s.error());
    if (spec.disk_writable) {
      if (Status s = remove_disk_mark(spec.disk_path); !s) return refuse(s.error());
    }
    return join_running(*joining, spec, epoch);
  }
  if (Status s = build_machine(spec, spec.entropy); !s) return refuse(s.error());
  Result<std::unique_ptr<Connection>> ready = joining->ready();
  if (!ready) {
    note("{}", ready.error());
    return kExitNodeError;
  }
  std::unique_ptr<ChannelEndpoint> endpoint = make_endpoint(/*primary_end=*/false);
  auto link = std::make_unique<TcpLink>(std::shared_ptr<Connection>(std::move(*ready)),
                                        endpoint.get(), o_.heartbeat);
  core_->join(epoch, std::move(endpoint), std::move(link));
  note("paired with the primary at {} (vm '{}', epoch {})", o_.primary, o_.vm, epoch);
  publish(true);
  return drive();
}

int Node::join_running(Joining& joining, const MachineSpec& spec, uint64_t epoch) {
  TransferReceiver receiver(*machine_, spec.disk_writable && disk_ ? disk_.get() : nullptr);
  transfer_ = receiver.progress();
  publish(true);
  // The copy's block hashes before the channel opens: reading the whole
  // copy takes a while, and the primary waits for Ready meanwhile anyway.
  Result<std::vector<std::string>> hashes = receiver.disk_hash_replies();
  if (!hashes) {
    joining.refuse(hashes.error());
    note("cannot join: {}", hashes.error());
    return kExitNodeBadInput;
  }
  Result<std::unique_ptr<Connection>> ready = joining.ready();
  if (!ready) {
    note("{}", ready.error());
    return kExitNodeError;
  }
  xfer_endpoint_ = make_endpoint(/*primary_end=*/false);
  xfer_link_ = std::make_unique<TcpLink>(std::shared_ptr<Connection>(std::move(*ready)),
                                         xfer_endpoint_.get(), o_.heartbeat);
  note("joining the running primary at {} (vm '{}', epoch {}) by state transfer", o_.primary,
       o_.vm, epoch);
  for (const std::string& h : *hashes) {
    if (Status s = xfer_link_->send(MsgType::kTransferReply, h); !s) {
      note("the primary's channel failed: {}", s.error());
      return kExitNodeBadInput;
    }
  }
  auto give_up = [&](const std::string& why) {
    transfer_->phase = "failed";
    publish(true);
    note("the state transfer failed ({}): this half-made backup is discarded and never goes live; "
         "start `ftvm backup --primary ADDR` again to join whichever node is primary",
         why);
    return kExitNodeBadInput;
  };
  std::deque<std::string> in;
  auto last_progress_note = Clock::now();
  for (;;) {
    Result<bool> done = join_pass(receiver, *machine_, *xfer_endpoint_, *xfer_link_, in,
                                  [] { return mono_now(); });
    if (!done) return give_up(done.error());
    transfer_ = receiver.progress();
    if (*done) break;
    if (Clock::now() - last_progress_note > std::chrono::seconds(2)) {
      last_progress_note = Clock::now();
      note("state transfer: round {}, {:.1f} MB received ({:.1f} MB/s)", transfer_->rounds,
           transfer_->bytes / 1e6, transfer_->elapsed_ms > 0 ? transfer_->bytes / 1e3 / transfer_->elapsed_ms : 0.0);
    }
    publish();
    pollfd pfd{wake_fd_, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(o_.heartbeat.count())) > 0) drain_wake();
  }
  last_transfer_ = transfer_;
  transfer_.reset();
  note("holds the primary's state at instret {} ({} rounds, {:.1f} MB, {} pages, {} disk blocks "
       "written in {:.0f} ms); replaying its log from there",
       receiver.final_instret(), last_transfer_->rounds, last_transfer_->bytes / 1e6,
       last_transfer_->pages, last_transfer_->blocks, last_transfer_->elapsed_ms);
  core_->join(epoch, std::move(xfer_endpoint_), std::move(xfer_link_));
  publish(true);
  return drive();
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
