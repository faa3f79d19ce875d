// The real FT core in the simulator (see ft_node.h).
#include "sim/ft_node.h"

#include <fmt/format.h>

#include <algorithm>

#include "ft/join.h"
#include "sim/kv_protocol.h"

namespace ftvm::sim {
namespace {

constexpr size_t kTapQueueFrames = 256;
// Every step takes at least this long, so a run of state transitions
// cannot stall simulated time.
constexpr Time kMinStep = 100;
constexpr uint64_t kUnixEpochMs = 1'800'000'000'000;

ft::CoreOptions core_options(int id, uint64_t nonce) {
  ft::CoreOptions o;
  o.vm = World::kVmId;
  o.host_id = fmt::format("host-{}/{:016x}", id, nonce);
  o.epoch = 1;
  o.slice_instructions = 20'000;
  o.hash_interval = uint64_t{1} << 18;
  return o;
}

// The identity of a guest output for the audit: a KV reply's (client,
// request); 0 for anything else.
uint64_t output_identity(std::span<const uint8_t> frame) {
  std::optional<KvReply> r = decode_reply(frame);
  if (!r) return 0;
  return uint64_t{r->client_id} << 40 | (r->request_id & ((uint64_t{1} << 40) - 1));
}

std::vector<uint8_t> encode_message(ft::MsgType type, const std::string& payload) {
  std::vector<uint8_t> m;
  m.reserve(payload.size() + 1);
  m.push_back(static_cast<uint8_t>(type));
  m.insert(m.end(), payload.begin(), payload.end());
  return m;
}

}  // namespace

// ---- the arbiter client: the model, reached synchronously ----

class FtNode::ArbiterClient final : public arbiter::Client {
 public:
  explicit ArbiterClient(FtNode& node) : node_(node) {}
  Result<arbiter::Grant> claim(const std::string& vm, uint64_t epoch, const std::string& claimant,
                               std::chrono::milliseconds timeout) override {
    World& w = node_.world_;
    const Time now = w.events().now();
    if (!w.arbiter().up() || now < node_.arbiter_cut_until_) {
      node_.charge_ += std::chrono::nanoseconds(timeout).count();
      return make_error("no answer from the simulated arbiter");
    }
    node_.charge_ += node_.rng_.range(200, 2000) * kMicrosecond;
    const ArbiterAnswer a = w.arbiter().decide(vm, epoch, claimant);
    return arbiter::Grant{vm, epoch, a.holder, a.held_epoch, a.won};
  }
  Result<arbiter::LatestGrant> latest(const std::string& vm,
                                      std::chrono::milliseconds timeout) override {
    World& w = node_.world_;
    if (!w.arbiter().up() || w.events().now() < node_.arbiter_cut_until_) {
      node_.charge_ += std::chrono::nanoseconds(timeout).count();
      return make_error("no answer from the simulated arbiter");
    }
    return arbiter::LatestGrant{vm, w.arbiter().latest(vm), ""};
  }
  std::string describe() const override { return "sim-arbiter"; }

 private:
  FtNode& node_;
};

arbiter::Client& FtNode::arbiter() { return *arbiter_; }

// ---- the channel as the core's ft::Link ----

class FtChannelLink final : public ft::Link {
 public:
  FtChannelLink(FtPair& pair, uint64_t conn, int side) : pair_(pair), conn_(conn), side_(side) {}
  ~FtChannelLink() override {
    if (FtPair::Side* s = pair_.side(conn_, side_)) s->endpoint = nullptr;
  }
  Status send(ft::MsgType type, const std::string& payload) override {
    if (!pair_.world_.link().open(conn_)) return make_error("the channel connection is closed");
    pair_.send(conn_, side_, type, payload);
    return {};
  }
  Stats stats() const override {
    Stats st;
    if (const FtPair::Side* s = pair_.side(conn_, side_)) {
      st.bytes_sent = s->bytes_sent;
      st.bytes_received = s->bytes_received;
    }
    return st;
  }

 private:
  FtPair& pair_;
  uint64_t conn_;
  int side_;
};

// ---- FtNode ----

namespace {
// A supervised joiner gives up when no primary took it within this long.
constexpr Time kJoinerPatience = 400 * kMillisecond;
}  // namespace

FtNode::FtNode(World& world, FtPair& pair, int id, ft::Role role)
    : world_(world), pair_(pair), id_(id), start_role_(role), rng_(world.fork_rng()) {
  port_ = world_.lan().attach(kGuestMac, [this](const Frame& f) { on_frame(f); });
  world_.lan().set_up(port_, false);
  arbiter_ = std::make_unique<ArbiterClient>(*this);
}

FtNode::~FtNode() {
  // Their links first, while the pair is alive.
  core_.reset();
  xfer_link_.reset();
}

bool FtNode::frozen() const { return world_.events().now() < frozen_until_; }

bool FtNode::serving() const {
  if (!alive_ || !core_ || joining_) return false;
  const ft::NodeState s = core_->role().state();
  return core_->role().role() == ft::Role::kPrimary &&
         (s == ft::NodeState::kPaired || s == ft::NodeState::kSolo);
}

bool FtNode::takes_joiner() const {
  if (!alive_ || !core_ || joining_ || sender_ || frozen()) return false;
  return core_->waiting_for_backup() || core_->can_reprotect();
}

std::string FtNode::describe() const {
  if (!alive_) return fmt::format("node {} (down)", id_);
  if (!core_) return fmt::format("node {} (backup process, not joined)", id_);
  if (joining_) return fmt::format("node {} (backup process, receiving the state transfer)", id_);
  return fmt::format("node {} ({} {} epoch {}{}{})", id_, ft::role_name(core_->role().role()),
                     ft::state_name(core_->role().state()), core_->role().epoch(),
                     sender_ ? ", sending a state transfer" : "", frozen() ? ", frozen" : "");
}

uint64_t FtNode::instret() const { return machine_ ? machine_->instret() : 0; }

uint64_t FtNode::guest_instructions() const {
  return instructions_ + (machine_ ? machine_->instret() - base_instret_ : 0);
}

void FtNode::boot_machine() {
  if (machine_) instructions_ += machine_->instret() - base_instret_;
  machine_ = std::make_unique<vm::Machine>(guest_machine_config());
  world_.image().restore_into(*machine_);
  base_instret_ = machine_->instret();
}

void FtNode::blank_machine() {
  if (machine_) instructions_ += machine_->instret() - base_instret_;
  // RAM all zeros and the reset state: the transfer fills both.
  machine_ = std::make_unique<vm::Machine>(guest_machine_config());
  base_instret_ = machine_->instret();
}

void FtNode::new_core(ft::Role role) {
  const uint64_t nonce = rng_.next();
  core_ = std::make_unique<ft::NodeCore>(role, core_options(id_, nonce), *this);
  core_->attach_machine(machine_.get(), nullptr);
}

void FtNode::start() {
  alive_ = true;
  ++incarnation_;
  world_.lan().set_up(port_, true);
  if (start_role_ == ft::Role::kPrimary) {
    boot_machine();
    new_core(ft::Role::kPrimary);
    joined_once_ = true;
    world_.trace(fmt::format("node {}: primary starts, claims epoch 1", id_));
    schedule_step(world_.events().now());
  } else {
    // The pair's first backup waits for its primary as long as it takes.
    world_.trace(fmt::format("node {}: backup process starts, waits for the primary", id_));
    pair_.poll();
  }
}

void FtNode::start_joiner(Time patience) {
  if (alive_) return;
  alive_ = true;
  ++incarnation_;
  joined_once_ = false;
  world_.lan().set_up(port_, true);
  world_.trace(fmt::format("node {}: a new backup process starts, to join a running primary", id_));
  const uint64_t incarnation = incarnation_;
  world_.events().after(patience, [this, incarnation, patience] {
    if (incarnation != incarnation_ || !waiting_to_join()) return;
    give_up(fmt::format("no primary took this backup within {} ms", patience / kMillisecond));
  });
  pair_.poll();
}

void FtNode::join(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
                  std::unique_ptr<ft::Link> link) {
  boot_machine();
  new_core(ft::Role::kBackup);
  joined_once_ = true;
  core_->join(epoch, std::move(endpoint), std::move(link));
  schedule_step(world_.events().now());
}

void FtNode::begin_transfer(uint64_t conn, std::unique_ptr<ft::ChannelEndpoint> endpoint,
                            std::unique_ptr<ft::Link> link) {
  xfer_conn_ = conn;
  xfer_endpoint_ = std::move(endpoint);
  xfer_link_ = std::move(link);
  ft::SenderOptions so;
  if (world_.options().transfer_window) so.window = *world_.options().transfer_window;
  sender_ = std::make_unique<ft::TransferSender>(*machine_, nullptr, so);
  world_.trace(fmt::format("node {}: a new backup joins at instret {}: copying RAM while the "
                           "guest runs",
                           id_, machine_->instret()));
  wake();
}

void FtNode::join_running(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
                          std::unique_ptr<ft::Link> link) {
  // As node.cc: the core exists (and holds the machine) before the state
  // arrives; it steps only once the transfer is done.
  blank_machine();
  new_core(ft::Role::kBackup);
  joining_ = true;
  join_epoch_ = epoch;
  xfer_endpoint_ = std::move(endpoint);
  xfer_link_ = std::move(link);
  receiver_ = std::make_unique<ft::TransferReceiver>(*machine_, nullptr);
  // One join in four runs on a slow host: 4-16 ms to apply each page (the
  // 64 pages of the guest's RAM then take 0.26-1 s to write).
  apply_ns_per_page_ = rng_.below(4) == 0 ? rng_.range(4, 16) * kMillisecond : 0;
  if (world_.options().joiner_apply_ns_per_page) {
    apply_ns_per_page_ = *world_.options().joiner_apply_ns_per_page;
  }
  Result<std::vector<std::string>> hashes = receiver_->disk_hash_replies();
  if (!hashes) {
    give_up(hashes.error());
    return;
  }
  for (const std::string& h : *hashes) {
    if (Status s = xfer_link_->send(ft::MsgType::kTransferReply, h); !s) {
      give_up(s.error());
      return;
    }
  }
  world_.trace(fmt::format("node {}: joining the running primary (epoch {}) by state transfer",
                           id_, epoch));
  schedule_step(world_.events().now());
}

bool FtNode::transfer_step() {
  const auto now = std::chrono::nanoseconds(world_.events().now());
  if (!core_->can_reprotect()) {
    abandon_transfer("this node is no longer running alone");
    return false;
  }
  if (std::optional<std::string> why = xfer_endpoint_->failed()) {
    abandon_transfer(*why);
    return false;
  }
  xfer_endpoint_->set_local(now, {machine_->instret(), machine_->mtime(), core_->should_run(), 0,
                                  0, false});
  xfer_endpoint_->take_transfer(xfer_in_);
  while (!xfer_in_.empty()) {
    const std::string m = std::move(xfer_in_.front());
    xfer_in_.pop_front();
    if (Status st = sender_->on_reply(std::span(reinterpret_cast<const uint8_t*>(m.data()), m.size()));
        !st) {
      abandon_transfer(st.error());
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
    if (Status st = xfer_link_->send(ft::MsgType::kTransfer, m); !st) {
      abandon_transfer(st.error());
      return false;
    }
  }
  if (!out.empty()) xfer_endpoint_->sent(now);
  if (!*converged) return !out.empty();
  // The pause: between two slices, the rest and the state, then the log.
  Result<std::vector<std::string>> rest = sender_->finish();
  if (!rest) {
    abandon_transfer(rest.error());
    return false;
  }
  for (const std::string& m : *rest) {
    if (Status st = xfer_link_->send(ft::MsgType::kTransfer, m); !st) {
      abandon_transfer(st.error());
      return false;
    }
  }
  const ft::TransferProgress p = sender_->progress();
  sender_.reset();
  world_.trace(fmt::format("node {}: re-protected at instret {}: {} rounds, {} bytes, {} pages",
                           id_, machine_->instret(), p.rounds, p.bytes, p.pages));
  core_->reprotect(std::move(xfer_endpoint_), std::move(xfer_link_));
  xfer_conn_ = 0;
  world_.count_reprotection();
  return false;
}

void FtNode::abandon_transfer(const std::string& why) {
  world_.trace(fmt::format("node {}: the state transfer stopped ({}); the half-made backup is "
                           "discarded, this node goes on alone",
                           id_, why));
  sender_->abandon();
  sender_.reset();
  xfer_link_.reset();
  xfer_endpoint_.reset();
  xfer_in_.clear();
  pair_.close_connection(xfer_conn_);
  xfer_conn_ = 0;
}

void FtNode::join_step() {
  // A joiner's host may be slow to write what arrives (a loaded host): each
  // page applied costs apply_ns_per_page_ of simulated time, which the
  // reports to the primary see as it passes.
  const Time start = world_.events().now();
  auto units = [&] { return receiver_->progress().pages + receiver_->progress().blocks; };
  const uint64_t units_before = units();
  auto now = [&] {
    return std::chrono::nanoseconds(start +
                                    static_cast<Time>(units() - units_before) * apply_ns_per_page_);
  };
  Result<bool> done = ft::join_pass(*receiver_, *machine_, *xfer_endpoint_, *xfer_link_, xfer_in_,
                                    now);
  const Time took = std::max<Time>(kMinStep, now().count() - start);
  busy_until_ = start + took;
  if (!done) {
    give_up(done.error());
    return;
  }
  if (!*done) {
    if (took > kMinStep) {
      // The pass ran at once here, but on the host it lasts until
      // busy_until_, reporting bounded work all the while: its closing
      // report (waiting for the next message) is true only from then on, and
      // the next pass (at busy_until_ or later) makes it.
      xfer_endpoint_->set_local(std::chrono::nanoseconds(start),
                                {machine_->instret(), machine_->mtime(), /*should_run=*/false, 0,
                                 0, /*checkpointing=*/true});
      schedule_step(busy_until_);
      return;
    }
    // Woken when the next message arrives; the heartbeat bounds the wait.
    schedule_step(world_.events().now() + 50 * kMillisecond);
    return;
  }
  const ft::TransferProgress p = receiver_->progress();
  world_.trace(fmt::format("node {}: holds the primary's state at instret {} ({} rounds, {} "
                           "bytes, {:.1f} ms to apply at {} us a page); replaying its log from "
                           "there",
                           id_, receiver_->final_instret(), p.rounds, p.bytes,
                           static_cast<double>(took) / kMillisecond,
                           apply_ns_per_page_ / kMicrosecond));
  receiver_.reset();
  joining_ = false;
  joined_once_ = true;
  xfer_conn_ = 0;
  base_instret_ = machine_->instret();
  core_->join(join_epoch_, std::move(xfer_endpoint_), std::move(xfer_link_));
  schedule_step(busy_until_);
}

void FtNode::give_up(const std::string& why) {
  world_.trace(fmt::format("node {}: exits with status {}: the join failed ({}); this backup "
                           "never went live",
                           id_, ft::kExitNodeBadInput, why));
  gone(/*reset=*/true);
}

void FtNode::restart() {
  if (alive_) return;
  if (start_role_ != ft::Role::kPrimary) {
    start_joiner(kJoinerPatience);
    return;
  }
  // With its original command line: a primary of epoch 1.
  world_.trace(fmt::format("node {}: restarts as a primary of epoch 1", id_));
  alive_ = true;
  ++incarnation_;
  joined_once_ = true;
  world_.lan().set_up(port_, true);
  boot_machine();
  new_core(ft::Role::kPrimary);
  schedule_step(world_.events().now());
}

void FtNode::crash() {
  if (!alive_) return;
  const bool reset = rng_.below(2) == 0;
  world_.trace(fmt::format("node {}: crashes ({})", id_,
                           reset ? "its connections reset" : "silently"));
  gone(reset);
}

void FtNode::gone(bool reset) {
  alive_ = false;
  ++incarnation_;
  if (sender_) sender_->abandon();
  sender_.reset();
  receiver_.reset();
  xfer_link_.reset();
  xfer_endpoint_.reset();
  xfer_in_.clear();
  xfer_conn_ = 0;
  joining_ = false;
  core_.reset();
  if (machine_) instructions_ += machine_->instret() - base_instret_;
  machine_.reset();
  rx_.clear();
  tx_.clear();
  frozen_until_ = 0;
  busy_until_ = 0;
  if (step_event_) world_.events().cancel(*step_event_);
  step_event_.reset();
  world_.lan().set_up(port_, false);
  pair_.node_crashed(this, reset);
}

void FtNode::freeze(Time duration) {
  if (!alive_) return;
  frozen_until_ = std::max(frozen_until_, world_.events().now() + duration);
  world_.trace(fmt::format("node {}: frozen for {} ms", id_, duration / kMillisecond));
  const uint64_t incarnation = incarnation_;
  world_.events().at(frozen_until_, [this, incarnation] {
    if (incarnation != incarnation_ || !alive_ || frozen()) return;
    world_.trace(fmt::format("node {}: thawed", id_));
    pair_.node_thawed(this);
    wake();
    pair_.poll();
  });
}

void FtNode::partition_arbiter(Time duration) {
  arbiter_cut_until_ = std::max(arbiter_cut_until_, world_.events().now() + duration);
}

void FtNode::wake() {
  if (alive_ && core_) schedule_step(world_.events().now());
}

void FtNode::schedule_step(Time at) {
  // One main loop: the next step never starts before the last one ended.
  at = std::max({at, world_.events().now(), busy_until_});
  if (step_event_ && step_at_ <= at) return;
  if (step_event_) world_.events().cancel(*step_event_);
  step_at_ = at;
  step_event_ = world_.events().at(at, [this] { run_step(); });
}

void FtNode::run_step() {
  step_event_.reset();
  if (!alive_ || !core_) return;
  if (frozen()) return;  // the thaw wakes it
  if (joining_) {
    join_step();
    return;
  }
  charge_ = 0;
  const uint64_t before = machine_->instret();
  const ft::Step s = core_->step();
  const Time now = world_.events().now();
  const Time took =
      std::max<Time>(kMinStep, static_cast<Time>(machine_->instret() - before) + charge_);
  busy_until_ = now + took;
  // What the step wrote leaves when the step is over, in order.
  if (!tx_.empty()) {
    const uint64_t incarnation = incarnation_;
    auto frames = std::move(tx_);
    tx_.clear();
    world_.events().at(now + took, [this, incarnation, frames = std::move(frames)] {
      if (incarnation != incarnation_ || !alive_) return;
      for (const auto& [epoch, bytes] : frames) {
        const uint64_t identity = output_identity(bytes);
        world_.audit().produced(id_, epoch, identity, bytes, /*released=*/true);
        world_.note(identity);
        world_.lan().send(port_, Frame{bytes, id_, epoch, identity});
      }
    });
  }
  if (world_.options().trace_steps) {
    static constexpr const char* kKinds[] = {"continue", "wait", "exit"};
    world_.trace(fmt::format("node {}: step in {} took {} ns: {} (until {:.6f} s), instret {}, "
                             "mtime {}, should run {}",
                             id_, ft::state_name(core_->role().state()), took,
                             kKinds[static_cast<int>(s.kind)],
                             static_cast<double>(s.until.count()) / kSecond, machine_->instret(),
                             machine_->mtime(), core_->should_run()));
  }
  if (s.kind == ft::Step::Kind::kExit) {
    exited(s.exit_code);
    return;
  }
  // As node.cc's main loop: a transfer goes on between slices; a primary
  // that takes a backup looks for one.
  bool busy = false;
  if (sender_) {
    busy = transfer_step();
  } else if (takes_joiner()) {
    pair_.poll();
  }
  if (s.kind == ft::Step::Kind::kContinue || busy) {
    schedule_step(now + took);
    return;
  }
  Time until = std::max(now + took, Time{s.until.count()});
  if (sender_) until = std::min(until, now + 10 * kMillisecond);
  schedule_step(until);
}

void FtNode::exited(int code) {
  world_.trace(fmt::format("node {}: exits with status {}", id_, code));
  if (code == ft::kExitNodeDiverged) {
    world_.invariants().fail("replay-matches",
                             fmt::format("node {}'s replay diverged from the primary", id_));
  } else if (code != ft::kExitDeposed) {
    world_.invariants().fail("node-exits-cleanly",
                             fmt::format("node {} exited with status {}", id_, code));
  }
  // The process is gone; its peer notices through the channel.
  gone(/*reset=*/true);
}

// ---- CoreEnv ----

ft::CoreTime FtNode::now() { return ft::CoreTime{world_.events().now() + charge_}; }

uint64_t FtNode::unix_ms() {
  return kUnixEpochMs + static_cast<uint64_t>(world_.events().now() / kMillisecond);
}

void FtNode::log(std::string_view line) {
  if (world_.verbose()) world_.trace(fmt::format("node {}: {}", id_, line));
}

void FtNode::read_frames(std::vector<std::vector<uint8_t>>& out) {
  for (auto& f : rx_) out.push_back(std::move(f));
  rx_.clear();
}

bool FtNode::write_frame(std::span<const uint8_t> frame) {
  tx_.emplace_back(core_ ? core_->role().epoch() : 0,
                   std::vector<uint8_t>(frame.begin(), frame.end()));
  return true;
}

void FtNode::on_frame(const Frame& frame) {
  if (!alive_) return;
  if (rx_.size() < kTapQueueFrames) rx_.push_back(frame.bytes);
  if (!frozen()) wake();
}

// ---- FtPair ----

FtPair::FtPair(World& world) : world_(world), rng_(world.fork_rng()) {
  for (int side = 0; side < 2; ++side) {
    sim::Link::Endpoint e;
    e.on_connected = [this](uint64_t conn) {
      if (connecting_ && conn == connecting_conn_ && ++connected_ends_ == 2) connected(conn);
    };
    e.on_message = [this, side](uint64_t conn, const std::vector<uint8_t>& m) {
      deliver(conn, side, m);
    };
    e.on_closed = [this, side](uint64_t conn) { closed(side, conn); };
    world_.link().set_endpoint(side, std::move(e));
  }
}

FtPair::~FtPair() = default;

void FtPair::set_nodes(std::vector<FtNode*> nodes) {
  nodes_ = std::move(nodes);
  backoff_.assign(nodes_.size(), 20 * kMillisecond);
  restart_at_.assign(nodes_.size(), -1);
  world_.events().after(20 * kMillisecond, [this] { supervise(); });
}

FtPair::Side* FtPair::side(uint64_t conn, int side) {
  auto it = conns_.find(conn);
  return it == conns_.end() ? nullptr : &it->second.sides[side];
}

void FtPair::poll() {
  if (connecting_) return;
  std::vector<FtNode*> primaries, joiners;
  for (FtNode* n : nodes_) {
    if (n->takes_joiner()) primaries.push_back(n);
    if (n->waiting_to_join() && !n->frozen()) joiners.push_back(n);
  }
  if (primaries.empty() || joiners.empty()) return;
  FtNode* primary = primaries[primaries.size() == 1 ? 0 : rng_.below(primaries.size())];
  FtNode* joiner = joiners[joiners.size() == 1 ? 0 : rng_.below(joiners.size())];
  connecting_ = true;
  connecting_primary_ = primary;
  connecting_joiner_ = joiner;
  connected_ends_ = 0;
  world_.trace(fmt::format("channel: node {} connects to node {}", joiner->id(), primary->id()));
  world_.link().connect(1);
  // 0 when a partition makes the attempt fail (on_closed(0) then).
  connecting_conn_ = world_.link().connection();
}

void FtPair::connected(uint64_t conn) {
  connecting_ = false;
  FtNode* primary = connecting_primary_;
  FtNode* joiner = connecting_joiner_;
  if (!primary->takes_joiner() || !joiner->waiting_to_join() || joiner->frozen()) {
    world_.link().close(conn);
    return;
  }
  const bool running = !primary->core()->waiting_for_backup();
  Conn& c = conns_[conn];
  c.epoch = primary->core()->role().epoch();
  const auto now = std::chrono::nanoseconds(world_.events().now());
  const ft::CoreOptions o;  // the core's defaults: heartbeat and timeout
  for (int side = 0; side < 2; ++side) {
    Side& s = c.sides[side];
    s.node = side == 0 ? primary : joiner;
    s.conn = conn;
    FtNode* node = s.node;
    auto endpoint = std::make_unique<ft::ChannelEndpoint>(side == 0, o.timeout, o.heartbeat, now,
                                                          [node] { node->wake(); });
    s.endpoint = endpoint.get();
    auto link = std::make_unique<FtChannelLink>(*this, conn, side);
    if (side == 0) {
      if (running) {
        primary->begin_transfer(conn, std::move(endpoint), std::move(link));
      } else {
        primary->core()->pair(std::move(endpoint), std::move(link));
      }
    } else if (running) {
      joiner->join_running(c.epoch, std::move(endpoint), std::move(link));
    } else {
      joiner->join(c.epoch, std::move(endpoint), std::move(link));
    }
    world_.events().after(std::chrono::nanoseconds(o.heartbeat).count() / 2,
                          [this, side, conn] { tick(conn, side); });
  }
  if (running) {
    world_.trace(fmt::format("channel: node {} joins node {} by state transfer in epoch {}",
                             joiner->id(), primary->id(), c.epoch));
    transfer_started(primary, joiner);
  } else {
    world_.trace(fmt::format("channel: paired in epoch {}", c.epoch));
    ++joins_;
  }
  primary->wake();
}

void FtPair::closed(int side, uint64_t conn) {
  if (connecting_ && (conn == 0 || conn == connecting_conn_) && connected_ends_ < 2) {
    // A connection attempt failed or was reset before it formed: the next
    // poll tries again.
    connecting_ = false;
    return;
  }
  Side* s = this->side(conn, side);
  if (s == nullptr || s->endpoint == nullptr) return;
  world_.trace(fmt::format("channel: node {} sees the connection reset",
                           s->node ? s->node->id() : -1));
  s->endpoint->on_link_failed("connection reset by peer");
  if (s->node) s->node->wake();
}

void FtPair::send(uint64_t conn, int side, ft::MsgType type, const std::string& payload) {
  Side* s = this->side(conn, side);
  if (s == nullptr) return;
  std::vector<uint8_t> m = encode_message(type, payload);
  s->bytes_sent += m.size();
  world_.link().send(side, conn, std::move(m));
}

void FtPair::deliver(uint64_t conn, int side, const std::vector<uint8_t>& bytes) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Side& s = it->second.sides[side];
  if (s.endpoint == nullptr || s.node == nullptr || !s.node->alive()) return;
  if (s.node->frozen()) {
    s.waiting.push_back(bytes);
    return;
  }
  s.bytes_received += bytes.size();
  ft::Message m;
  m.type = static_cast<ft::MsgType>(bytes.at(0));
  m.direction = side == 0 ? ft::Direction::kToPrimary : ft::Direction::kToBackup;
  m.epoch = it->second.epoch;
  m.seq = s.next_seq++;
  m.payload.assign(bytes.begin() + 1, bytes.end());
  const auto now = std::chrono::nanoseconds(world_.events().now());
  if (std::optional<ft::ChannelEndpoint::Reply> r = s.endpoint->on_message(now, m)) {
    send(conn, side, r->type, r->payload);
  }
  if (s.endpoint != nullptr) {
    if (std::optional<ft::ChannelEndpoint::Reply> r = s.endpoint->on_tick(now)) {
      send(conn, side, r->type, r->payload);
    }
  }
}

void FtPair::tick(uint64_t conn, int side) {
  Side* s = this->side(conn, side);
  if (s == nullptr || s->endpoint == nullptr || s->node == nullptr || !s->node->alive()) return;
  const ft::CoreOptions o;
  world_.events().after(std::chrono::nanoseconds(o.heartbeat).count() / 2,
                        [this, side, conn] { tick(conn, side); });
  if (s->node->frozen()) return;
  const auto now = std::chrono::nanoseconds(world_.events().now());
  if (std::optional<ft::ChannelEndpoint::Reply> r = s->endpoint->on_tick(now)) {
    send(conn, side, r->type, r->payload);
  }
  if (s->endpoint != nullptr && s->endpoint->failed()) s->node->wake();
}

void FtPair::node_crashed(FtNode* node, bool reset) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i] != node) continue;
    // The supervisor backs off only after joins that failed.
    backoff_[i] = node->joined_once() ? 20 * kMillisecond
                                      : std::min<Time>(2 * backoff_[i], 320 * kMillisecond);
    restart_at_[i] = -1;
  }
  if (connecting_ && (node == connecting_primary_ || node == connecting_joiner_)) {
    // The attempt fails when its ends connect (or at once, with a reset).
    if (reset) world_.link().reset_now();
    return;
  }
  if (!reset) return;
  for (auto& [conn, c] : conns_) {
    if (c.sides[0].node == node || c.sides[1].node == node) world_.link().close(conn);
  }
}

void FtPair::close_connection(uint64_t conn) { world_.link().close(conn); }

void FtPair::node_thawed(FtNode* node) {
  for (auto& [conn, c] : conns_) {
    for (int side = 0; side < 2; ++side) {
      Side& s = c.sides[side];
      if (s.node != node) continue;
      std::deque<std::vector<uint8_t>> waiting;
      waiting.swap(s.waiting);
      for (const auto& m : waiting) deliver(conn, side, m);
    }
  }
}

void FtPair::transfer_started(FtNode* primary, FtNode* joiner) {
  world_.count_transfer();
  if (world_.calm() || !world_.options().faults) return;
  // Faults in the middle of a transfer (which takes a few ms here).
  const uint64_t what = rng_.below(16);
  const Time at = rng_.range(0, 3 * kMillisecond);
  FtNode* victim = what == 0 || what == 2 ? primary : joiner;
  if (what == 0 || what == 1 || what == 3) {
    world_.events().after(at, [this, victim] {
      if (world_.calm()) return;
      world_.trace(fmt::format("node {}: killed mid-transfer", victim->id()));
      victim->crash();
    });
  } else if (what == 2 || what == 4) {
    const Time len = rng_.range(5, 600) * kMillisecond;
    world_.events().after(at, [this, victim, len] {
      if (!world_.calm()) victim->freeze(len);
    });
  }
}

void FtPair::supervise() {
  world_.events().after(20 * kMillisecond, [this] { supervise(); });
  if (!supervised_) {
    poll();
    return;
  }
  const Time now = world_.events().now();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    FtNode* n = nodes_[i];
    if (n->alive()) continue;
    if (restart_at_[i] < 0) {
      restart_at_[i] = now + backoff_[i];
    } else if (now >= restart_at_[i]) {
      restart_at_[i] = -1;
      n->start_joiner(kJoinerPatience);
    }
  }
  poll();
}

std::optional<std::string> FtPair::unprotected() const {
  if (!supervised_) return std::nullopt;
  const FtNode* primary = nullptr;
  for (const FtNode* n : nodes_) {
    if (n->serving()) primary = n;
  }
  // No node serving: nothing to protect (primary-serves judges that).
  if (primary == nullptr) return std::nullopt;
  const uint64_t epoch = primary->core()->role().epoch();
  if (primary->core()->role().state() == ft::NodeState::kPaired) {
    for (const FtNode* n : nodes_) {
      if (n != primary && n->holds_vm() && n->core()->role().role() == ft::Role::kBackup &&
          n->core()->role().state() == ft::NodeState::kReplaying &&
          n->core()->role().epoch() == epoch) {
        return std::nullopt;
      }
    }
  }
  std::string others;
  for (const FtNode* n : nodes_) {
    if (n != primary) others += (others.empty() ? "" : "; ") + n->describe();
  }
  return fmt::format("{} is not protected by a backup ({})", primary->describe(), others);
}

NodeSet ft_pair_nodes(World& world) {
  auto pair = std::make_shared<FtPair>(world);
  Rng rng = world.fork_rng();
  const WorldOptions& o = world.options();
  const bool supervised = o.reprotect ? *o.reprotect : rng.below(4) != 0;
  const int hosts = o.hosts ? *o.hosts : (rng.below(4) == 0 ? 3 : 2);
  NodeSet set;
  std::vector<FtNode*> nodes;
  for (int id = 0; id < hosts; ++id) {
    auto n = std::make_unique<FtNode>(world, *pair, id,
                                      id == 0 ? ft::Role::kPrimary : ft::Role::kBackup);
    nodes.push_back(n.get());
    set.nodes.push_back(std::move(n));
  }
  if (hosts > 2) {
    // The third host's backup process starts during the faults and
    // competes with the others for the primary.
    set.start_later = {false, false, true};
    FtNode* third = nodes[2];
    const Time at = rng.range(0, o.fault_end);
    world.events().at(at, [third] { third->start_joiner(kJoinerPatience); });
  }
  pair->set_nodes(std::move(nodes));
  pair->set_supervised(supervised);
  world.trace(fmt::format("ft pair: {} hosts, re-protection {}", hosts, supervised ? "on" : "off"));
  FtPair* p = pair.get();
  set.unprotected = [p]() { return p->unprotected(); };
  set.keep = pair;
  return set;
}

}  // namespace ftvm::sim
