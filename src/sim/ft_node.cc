// The real FT core in the simulator (see ft_node.h).
#include "sim/ft_node.h"

#include <fmt/format.h>

#include <algorithm>

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
  FtChannelLink(FtPair& pair, int side) : pair_(pair), side_(side) {}
  ~FtChannelLink() override { pair_.sides_[side_].endpoint = nullptr; }
  Status send(ft::MsgType type, const std::string& payload) override {
    FtPair::Side& s = pair_.sides_[side_];
    if (!pair_.world_.link().open(s.conn)) return make_error("the channel connection is closed");
    pair_.send(side_, type, payload);
    return {};
  }
  Stats stats() const override {
    const FtPair::Side& s = pair_.sides_[side_];
    Stats st;
    st.bytes_sent = s.bytes_sent;
    st.bytes_received = s.bytes_received;
    return st;
  }

 private:
  FtPair& pair_;
  int side_;
};

// ---- FtNode ----

FtNode::FtNode(World& world, FtPair& pair, int id, ft::Role role)
    : world_(world), pair_(pair), id_(id), start_role_(role), rng_(world.fork_rng()) {
  port_ = world_.lan().attach(kGuestMac, [this](const Frame& f) { on_frame(f); });
  world_.lan().set_up(port_, false);
  arbiter_ = std::make_unique<ArbiterClient>(*this);
}

FtNode::~FtNode() {
  core_.reset();  // its link first, while the pair is alive
}

bool FtNode::frozen() const { return world_.events().now() < frozen_until_; }

bool FtNode::serving() const {
  if (!alive_ || !core_) return false;
  const ft::NodeState s = core_->role().state();
  return core_->role().role() == ft::Role::kPrimary &&
         (s == ft::NodeState::kPaired || s == ft::NodeState::kSolo);
}

std::string FtNode::describe() const {
  if (!alive_) return fmt::format("node {} (down)", id_);
  if (!core_) return fmt::format("node {} (backup process, not joined)", id_);
  return fmt::format("node {} ({} {} epoch {}{})", id_, ft::role_name(core_->role().role()),
                     ft::state_name(core_->role().state()), core_->role().epoch(),
                     frozen() ? ", frozen" : "");
}

uint64_t FtNode::guest_instructions() const {
  return instructions_ + (machine_ ? machine_->instret() - world_.image().instret() : 0);
}

void FtNode::boot_machine() {
  if (machine_) instructions_ += machine_->instret() - world_.image().instret();
  machine_ = std::make_unique<vm::Machine>(guest_machine_config());
  world_.image().restore_into(*machine_);
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
  boot_machine();
  if (start_role_ == ft::Role::kPrimary) {
    new_core(ft::Role::kPrimary);
    world_.trace(fmt::format("node {}: primary starts, claims epoch 1", id_));
    schedule_step(world_.events().now());
  } else {
    world_.trace(fmt::format("node {}: backup process starts, waits for the primary", id_));
  }
}

void FtNode::join(uint64_t epoch, std::unique_ptr<ft::ChannelEndpoint> endpoint,
                  std::unique_ptr<ft::Link> link) {
  new_core(ft::Role::kBackup);
  core_->join(epoch, std::move(endpoint), std::move(link));
  schedule_step(world_.events().now());
}

void FtNode::restart() {
  if (alive_) return;
  start_role_ = ft::Role::kPrimary;  // with its original command line: epoch 1
  world_.trace(fmt::format("node {}: restarts as a primary of epoch 1", id_));
  alive_ = true;
  ++incarnation_;
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
  alive_ = false;
  ++incarnation_;
  core_.reset();
  if (machine_) instructions_ += machine_->instret() - world_.image().instret();
  machine_.reset();
  rx_.clear();
  tx_.clear();
  frozen_until_ = 0;
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
  });
}

void FtNode::partition_arbiter(Time duration) {
  arbiter_cut_until_ = std::max(arbiter_cut_until_, world_.events().now() + duration);
}

void FtNode::wake() {
  if (alive_ && core_) schedule_step(world_.events().now());
}

void FtNode::schedule_step(Time at) {
  at = std::max(at, world_.events().now());
  if (step_event_ && step_at_ <= at) return;
  if (step_event_) world_.events().cancel(*step_event_);
  step_at_ = at;
  step_event_ = world_.events().at(at, [this] { run_step(); });
}

void FtNode::run_step() {
  step_event_.reset();
  if (!alive_ || !core_) return;
  if (frozen()) return;  // the thaw wakes it
  charge_ = 0;
  const uint64_t before = machine_->instret();
  const ft::Step s = core_->step();
  const Time now = world_.events().now();
  const Time took =
      std::max<Time>(kMinStep, static_cast<Time>(machine_->instret() - before) + charge_);
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
  if (core_->waiting_for_backup()) pair_.primary_waiting();
  if (world_.options().trace_steps) {
    static constexpr const char* kKinds[] = {"continue", "wait", "exit"};
    world_.trace(fmt::format("node {}: step in {} took {} ns: {} (until {:.6f} s), instret {}, "
                             "mtime {}, should run {}",
                             id_, ft::state_name(core_->role().state()), took,
                             kKinds[static_cast<int>(s.kind)],
                             static_cast<double>(s.until.count()) / kSecond, machine_->instret(),
                             machine_->mtime(), core_->should_run()));
  }
  switch (s.kind) {
    case ft::Step::Kind::kContinue: schedule_step(now + took); break;
    case ft::Step::Kind::kWait: schedule_step(std::max(now + took, Time{s.until.count()})); break;
    case ft::Step::Kind::kExit: exited(s.exit_code); break;
  }
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
  alive_ = false;
  ++incarnation_;
  core_.reset();
  if (machine_) instructions_ += machine_->instret() - world_.image().instret();
  machine_.reset();
  world_.lan().set_up(port_, false);
  pair_.node_crashed(this, /*reset=*/true);
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

FtPair::FtPair(World& world) : world_(world) {
  for (int side = 0; side < 2; ++side) {
    sim::Link::Endpoint e;
    e.on_connected = [this](uint64_t conn) {
      if (connecting_ && conn == connecting_conn_ && ++connected_ends_ == 2) connected(conn);
    };
    e.on_message = [this, side](uint64_t conn, const std::vector<uint8_t>& m) {
      if (paired_ && conn == sides_[side].conn) deliver(side, m);
    };
    e.on_closed = [this, side](uint64_t conn) {
      if (!paired_) {
        // A connection attempt failed or was reset before the pair formed:
        // the primary's next step tries again.
        if (connecting_ && (conn == 0 || conn == connecting_conn_)) connecting_ = false;
        return;
      }
      Side& s = sides_[side];
      if (conn != s.conn || s.endpoint == nullptr) return;
      world_.trace(fmt::format("channel: node {} sees the connection reset",
                               s.node ? s.node->id() : -1));
      s.endpoint->on_link_failed("connection reset by peer");
      if (s.node) s.node->wake();
    };
    world_.link().set_endpoint(side, std::move(e));
  }
}

FtPair::~FtPair() = default;

void FtPair::set_nodes(FtNode* primary, FtNode* backup) {
  sides_[0].node = primary;
  sides_[1].node = backup;
}

void FtPair::primary_waiting() {
  if (connecting_ || paired_) return;
  if (!sides_[1].node->alive()) return;  // no backup process to join
  connecting_ = true;
  connected_ends_ = 0;
  world_.trace("channel: the backup connects to the primary");
  world_.link().connect(1);
  // 0 when a partition makes the attempt fail (on_closed(0) then).
  connecting_conn_ = world_.link().connection();
}

void FtPair::connected(uint64_t conn) {
  FtNode* primary = sides_[0].node;
  FtNode* backup = sides_[1].node;
  if (!primary->alive() || !primary->core() || !primary->core()->waiting_for_backup() ||
      !backup->alive()) {
    world_.link().close(conn);
    connecting_ = false;
    return;
  }
  paired_ = true;
  pair_epoch_ = primary->core()->role().epoch();
  const auto now = std::chrono::nanoseconds(world_.events().now());
  const ft::CoreOptions o;  // the core's defaults: heartbeat and timeout
  for (int side = 0; side < 2; ++side) {
    Side& s = sides_[side];
    s.conn = conn;
    s.next_seq = 1;
    FtNode* node = s.node;
    auto endpoint = std::make_unique<ft::ChannelEndpoint>(side == 0, o.timeout, o.heartbeat, now,
                                                          [node] { node->wake(); });
    s.endpoint = endpoint.get();
    auto link = std::make_unique<FtChannelLink>(*this, side);
    if (side == 0) {
      primary->core()->pair(std::move(endpoint), std::move(link));
    } else {
      backup->join(pair_epoch_, std::move(endpoint), std::move(link));
    }
    world_.events().after(std::chrono::nanoseconds(o.heartbeat).count() / 2,
                          [this, side, conn] { tick(side, conn); });
  }
  world_.trace(fmt::format("channel: paired in epoch {}", pair_epoch_));
  primary->wake();
}

void FtPair::send(int side, ft::MsgType type, const std::string& payload) {
  Side& s = sides_[side];
  std::vector<uint8_t> m = encode_message(type, payload);
  s.bytes_sent += m.size();
  world_.link().send(side, s.conn, std::move(m));
}

void FtPair::deliver(int side, const std::vector<uint8_t>& bytes) {
  Side& s = sides_[side];
  if (s.endpoint == nullptr || s.node == nullptr || !s.node->alive()) return;
  if (s.node->frozen()) {
    s.waiting.push_back(bytes);
    return;
  }
  s.bytes_received += bytes.size();
  ft::Message m;
  m.type = static_cast<ft::MsgType>(bytes.at(0));
  m.direction = side == 0 ? ft::Direction::kToPrimary : ft::Direction::kToBackup;
  m.epoch = pair_epoch_;
  m.seq = s.next_seq++;
  m.payload.assign(bytes.begin() + 1, bytes.end());
  const auto now = std::chrono::nanoseconds(world_.events().now());
  if (std::optional<ft::ChannelEndpoint::Reply> r = s.endpoint->on_message(now, m)) {
    send(side, r->type, r->payload);
  }
  if (s.endpoint != nullptr) {
    if (std::optional<ft::ChannelEndpoint::Reply> r = s.endpoint->on_tick(now)) {
      send(side, r->type, r->payload);
    }
  }
}

void FtPair::tick(int side, uint64_t conn) {
  Side& s = sides_[side];
  if (s.conn != conn || s.endpoint == nullptr || s.node == nullptr || !s.node->alive()) return;
  const ft::CoreOptions o;
  world_.events().after(std::chrono::nanoseconds(o.heartbeat).count() / 2,
                        [this, side, conn] { tick(side, conn); });
  if (s.node->frozen()) return;
  const auto now = std::chrono::nanoseconds(world_.events().now());
  if (std::optional<ft::ChannelEndpoint::Reply> r = s.endpoint->on_tick(now)) {
    send(side, r->type, r->payload);
  }
  if (s.endpoint != nullptr && s.endpoint->failed()) s.node->wake();
}

void FtPair::node_crashed(FtNode* node, bool reset) {
  if (!paired_) {
    if (reset && connecting_) world_.link().reset_now();
    return;
  }
  if (reset) world_.link().reset_now();
  (void)node;
}

void FtPair::node_thawed(FtNode* node) {
  for (int side = 0; side < 2; ++side) {
    Side& s = sides_[side];
    if (s.node != node) continue;
    std::deque<std::vector<uint8_t>> waiting;
    waiting.swap(s.waiting);
    for (const auto& m : waiting) deliver(side, m);
  }
}

NodeSet ft_pair_nodes(World& world) {
  auto pair = std::make_shared<FtPair>(world);
  NodeSet set;
  auto primary = std::make_unique<FtNode>(world, *pair, 0, ft::Role::kPrimary);
  auto backup = std::make_unique<FtNode>(world, *pair, 1, ft::Role::kBackup);
  pair->set_nodes(primary.get(), backup.get());
  set.nodes.push_back(std::move(primary));
  set.nodes.push_back(std::move(backup));
  set.keep = pair;
  return set;
}

}  // namespace ftvm::sim
