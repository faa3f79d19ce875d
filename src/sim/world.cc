// One simulated world (see world.h).
#include "sim/world.h"

#include <fmt/format.h>

#include <cstdio>

#include "sim/ft_node.h"
#include "sim/sim_node.h"
#include "sim/standin_node.h"
#include "util/buggify.h"

namespace ftvm::sim {

std::optional<Bug> parse_bug(const std::string& name) {
  for (Bug b : {Bug::kNone, Bug::kLoseWrites, Bug::kSplitBrain, Bug::kForgetfulArbiter}) {
    if (to_string(b) == name) return b;
  }
  return std::nullopt;
}

std::string to_string(Bug bug) {
  switch (bug) {
    case Bug::kNone: return "none";
    case Bug::kLoseWrites: return "lose-writes";
    case Bug::kSplitBrain: return "split-brain";
    case Bug::kForgetfulArbiter: return "forgetful-arbiter";
  }
  return "?";
}

NodeSet stand_in_nodes(World& world) {
  NodeSet set;
  set.nodes.push_back(std::make_unique<StandInNode>(world, 0, 1));
  if (world.options().bug == Bug::kSplitBrain) {
    set.nodes.push_back(std::make_unique<StandInNode>(world, 1, 1, /*ignore_denial=*/true));
    set.start_later = {false, true};
  }
  if (world.options().bug == Bug::kForgetfulArbiter) {
    set.nodes.push_back(std::make_unique<StandInNode>(world, 1, 1));
    set.start_later = {false, true};
  }
  return set;
}

World::World(const GuestImage& image, WorldOptions options)
    : image_(image),
      options_(options),
      rng_(options.seed),
      invariants_(events_),
      audit_(invariants_),
      grant_audit_([this](const std::string& name, const std::string& detail) {
        invariants_.fail(name, detail);
      }) {
  // Faults of this seed. Each component draws from its own generator.
  LanFaults lf;
  if (options_.faults && rng_.below(4) != 0) {
    lf.loss_ppm = static_cast<uint32_t>(rng_.below(50'001));
    lf.dup_ppm = static_cast<uint32_t>(rng_.below(30'001));
    lf.reorder_ppm = static_cast<uint32_t>(rng_.below(100'001));
    lf.min_delay = rng_.range(10, 50) * kMicrosecond;
    lf.max_delay = lf.min_delay + rng_.range(0, 500) * kMicrosecond;
    lf.reorder_delay = rng_.range(0, 2000) * kMicrosecond;
  }
  lan_ = std::make_unique<Lan>(events_, rng_.fork(), lf);
  buggify_rng_ = rng_.fork();
  buggify::set_source(&World::buggify_fires, this);
  LinkFaults kf;
  kf.max_delay = kf.min_delay + rng_.range(0, 1000) * kMicrosecond;
  link_ = std::make_unique<Link>(events_, rng_.fork(), kf);
  arbiter_ = std::make_unique<ArbiterModel>(events_, rng_.fork(), &grant_audit_);
  trace(fmt::format("seed {}: lan {}", options_.seed, lf.describe()));

  lan_->set_observer([this](int, const Frame& f) {
    if (f.sender_node >= 0) audit_.received(f.sender_node, f.epoch, f.output_index, f.bytes);
  });
  counter_keys_ = {0, 1};
  register_keys_ = {2, 3};
  for (int c = 0; c < options_.clients; ++c) {
    ClientConfig cc;
    cc.id = static_cast<uint32_t>(c + 1);
    cc.counter_keys = counter_keys_;
    cc.register_keys = register_keys_;
    if (options_.verbose) cc.trace = [this](const std::string& line) { trace(line); };
    clients_.push_back(
        std::make_unique<KvClient>(events_, *lan_, rng_.fork(), &history_, std::move(cc)));
  }
  ClientConfig ac;
  ac.id = 1000;
  if (options_.verbose) ac.trace = [this](const std::string& line) { trace(line); };
  auditor_ = std::make_unique<KvClient>(events_, *lan_, rng_.fork(), &history_, std::move(ac));

  if (options_.bug != Bug::kNone) options_.nodes = NodeKind::kStandIn;
  NodeSet set = options_.make_nodes               ? options_.make_nodes(*this)
                : options_.nodes == NodeKind::kFtPair ? ft_pair_nodes(*this)
                                                      : stand_in_nodes(*this);
  keep_ = std::move(set.keep);
  nodes_ = std::move(set.nodes);
  start_later_ = std::move(set.start_later);
  unprotected_ = std::move(set.unprotected);
  start_later_.resize(nodes_.size(), false);

  invariants_.add("primary-serves", [this]() -> std::optional<std::string> {
    const Time deadline = options_.fault_end + options_.liveness_window;
    if (finished_ || events_.now() <= deadline || !arbiter_->up()) return std::nullopt;
    for (const auto& n : nodes_) {
      if (n->holds_vm()) {
        return fmt::format("faults stopped at {:.3f}s with the arbiter and {} up, but the "
                           "clients were not served by {:.3f}s ({} outputs released since)",
                           static_cast<double>(options_.fault_end) / kSecond, n->describe(),
                           static_cast<double>(deadline) / kSecond, audit_.released());
      }
    }
    return std::nullopt;
  });
}

World::~World() { buggify::set_source(nullptr, nullptr); }

bool World::buggify_fires(void* context, const char* site, double p) {
  World& w = *static_cast<World*>(context);
  if (w.calm_ || p <= 0 || !w.options_.faults) return false;
  // Each site is on for the whole run in about one seed of four.
  auto [it, fresh] = w.buggify_sites_.emplace(site, false);
  if (fresh) {
    it->second = w.buggify_rng_.below(4) == 0;
    w.trace(fmt::format("buggify: {} {}", site, it->second ? "on" : "off"));
  }
  if (!it->second) return false;
  return w.buggify_rng_.below(1'000'000) < static_cast<uint64_t>(p * 1'000'000);
}

void World::trace(const std::string& line) {
  if (!options_.verbose) return;
  std::printf("[%10.6f s] %s\n", static_cast<double>(events_.now()) / kSecond, line.c_str());
}

void World::note(uint64_t v) {
  fingerprint_ = (fingerprint_ ^ v) * 0x100000001b3ull;
}

void World::schedule_faults() {
  const Time end = options_.fault_end;
  if (!options_.faults) {
    events_.at(end, [this] { begin_calm(); });
    return;
  }
  // Arbiter outages.
  for (uint64_t i = 0, n = rng_.below(3); i < n; ++i) {
    const Time len = rng_.range(10, 300) * kMillisecond;
    const Time at = rng_.range(0, std::max<Time>(0, end - len));
    events_.at(at, [this, len] {
      if (calm_) return;
      trace(fmt::format("arbiter: down for {} ms", len / kMillisecond));
      arbiter_->set_up(false);
      events_.after(len, [this] {
        trace("arbiter: restarts (grants kept)");
        arbiter_->set_up(true);
      });
    });
  }
  // Node freezes (SIGSTOP / SIGCONT).
  for (uint64_t i = 0, n = rng_.below(4); i < n; ++i) {
    const Time len = rng_.range(5, 300) * kMillisecond;
    const Time at = rng_.range(0, std::max<Time>(0, end - len));
    const size_t node = rng_.below(nodes_.size());
    events_.at(at, [this, node, len] {
      if (!calm_) nodes_[node]->freeze(len);
    });
  }
  // Channel faults: partitions (a long one resets the connection), one-way
  // stalls, resets. Each is over before the faults stop.
  for (uint64_t i = 0, n = rng_.below(3); i < n; ++i) {
    const uint64_t kind = rng_.below(3);
    const Time len = rng_.range(1, 700) * kMillisecond;
    const Time at = rng_.range(0, std::max<Time>(0, end - len));
    const int side = static_cast<int>(rng_.below(2));
    events_.at(at, [this, kind, len, side] {
      if (calm_) return;
      if (kind == 0) {
        trace(fmt::format("channel: partitioned for {} ms", len / kMillisecond));
        link_->partition(len);
      } else if (kind == 1) {
        trace(fmt::format("channel: the {}'s sends stall for {} ms", side == 0 ? "primary" : "backup",
                           len / kMillisecond));
        link_->stall(side, len);
      } else {
        trace("channel: the connection resets");
        link_->reset_now();
      }
    });
  }
  // Process crashes (SIGKILL) of the FT pair's nodes, and restarts with the
  // original command line (which the arbiter must refuse); the arbiter cut
  // off from one host.
  if (options_.nodes == NodeKind::kFtPair && !options_.make_nodes && end > 200 * kMillisecond) {
    // One seed in two: one crash, plus up to one more per second of
    // faults; half of them hit whichever node serves at the time.
    const uint64_t crashes = rng_.below(2) == 0 ? 1 + rng_.below(1 + end / kSecond) : 0;
    for (uint64_t i = 0; i < crashes; ++i) {
      const Time at = rng_.range(100 * kMillisecond, end - 100 * kMillisecond);
      const size_t drawn = rng_.below(nodes_.size());
      const bool the_primary = rng_.below(2) == 0;
      const bool restart = rng_.below(2) == 0;
      const Time after = rng_.range(10, 300) * kMillisecond;
      events_.at(at, [this, drawn, the_primary, restart, after] {
        if (calm_) return;
        size_t node = drawn;
        if (the_primary) {
          for (size_t n = 0; n < nodes_.size(); ++n) {
            if (nodes_[n]->serving()) node = n;
          }
        }
        nodes_[node]->crash();
        if (restart) events_.after(after, [this, node] { nodes_[node]->restart(); });
      });
    }
    for (uint64_t i = 0, n = rng_.below(2); i < n; ++i) {
      const Time len = rng_.range(10, 300) * kMillisecond;
      const Time at = rng_.range(0, std::max<Time>(0, end - len));
      const size_t node = rng_.below(nodes_.size());
      events_.at(at, [this, node, len] {
        if (calm_) return;
        trace(fmt::format("arbiter: cut off from node {} for {} ms", node, len / kMillisecond));
        nodes_[node]->partition_arbiter(len);
      });
    }
  }
  // Deliberate bugs.
  if (options_.bug == Bug::kLoseWrites) {
    const Time at = rng_.range(300, 600) * kMillisecond;
    events_.at(at, [this] {
      nodes_[0]->crash();
      events_.after(kMillisecond, [this] { nodes_[0]->restart(); });
    });
  }
  if (options_.bug == Bug::kSplitBrain) {
    events_.at(5 * kMillisecond, [this] { nodes_[1]->start(); });
  }
  if (options_.bug == Bug::kForgetfulArbiter) {
    events_.at(300 * kMillisecond, [this] {
      trace("arbiter: restarts with its grants lost");
      arbiter_->forget_everything();
    });
    events_.at(400 * kMillisecond, [this] { nodes_[1]->start(); });
  }
  events_.at(end, [this] { begin_calm(); });
}

void World::begin_calm() {
  calm_ = true;
  trace("faults stop");
  lan_->calm();
  link_->calm();
  arbiter_->calm();
  arbiter_->set_up(true);
  events_.after(options_.calm_traffic, [this] { finish_traffic(); });
}

void World::finish_traffic() {
  for (const auto& c : clients_) {
    if (!c->idle()) {
      events_.after(kMillisecond, [this] { finish_traffic(); });
      return;
    }
  }
  trace("clients idle; final read of every key");
  std::vector<uint32_t> keys = counter_keys_;
  keys.insert(keys.end(), register_keys_.begin(), register_keys_.end());
  auditor_->read_all(keys, [this](std::map<uint32_t, int64_t> v) { final_audit(std::move(v)); });
}

void World::final_audit(std::map<uint32_t, int64_t> values) {
  finished_ = true;
  for (const auto& [k, v] : values) trace(fmt::format("final: key {} = {}", k, v));
  if (CheckResult r = check_linearizable(history_); !r.ok) {
    invariants_.fail("linearizable", r.problem);
  } else if (CheckResult w = check_acknowledged_writes(history_, values); !w.ok) {
    invariants_.fail("acknowledged-writes", w.problem);
  }
  await_protected();
}

void World::await_protected() {
  std::optional<std::string> why = unprotected_ ? unprotected_() : std::nullopt;
  if (!why || !invariants_.ok()) {
    events_.stop();
    return;
  }
  if (events_.now() >= options_.fault_end + options_.liveness_window) {
    invariants_.fail("reprotected", fmt::format("faults stopped at {:.3f}s, but by {:.3f}s {}",
                                                static_cast<double>(options_.fault_end) / kSecond,
                                                static_cast<double>(events_.now()) / kSecond,
                                                *why));
    events_.stop();
    return;
  }
  events_.after(kMillisecond, [this] { await_protected(); });
}

RunOutcome World::run() {
  schedule_faults();
  if (options_.setup) options_.setup(*this);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!start_later_[i]) nodes_[i]->start();
  }
  for (auto& c : clients_) {
    KvClient* client = c.get();
    events_.at(kMillisecond, [this, client] {
      client->start(options_.fault_end + options_.calm_traffic);
    });
  }
  const Time limit = options_.fault_end + options_.liveness_window + kMillisecond;
  events_.at(limit, [] {});
  while (!events_.stopped() && events_.step(limit)) invariants_.check_step();
  if (!finished_ && invariants_.ok()) {
    // No final read (no node left to serve it): what the clients saw must
    // still be linearizable.
    if (CheckResult r = check_linearizable(history_); !r.ok) {
      invariants_.fail("linearizable", r.problem);
    }
  }

  RunOutcome out;
  out.seed = options_.seed;
  out.breach = invariants_.breach();
  RunStats& s = out.stats;
  s.events = events_.executed();
  s.operations = history_.size();
  for (const auto& c : clients_) s.retransmissions += c->retransmissions();
  for (const Operation& o : history_) {
    if (o.completed) ++s.completed;
    note(o.client);
    note(static_cast<uint64_t>(o.invoked));
    note(o.completed ? static_cast<uint64_t>(*o.completed) : ~0ull);
    note(static_cast<uint64_t>(o.result));
  }
  s.frames = lan_->sent();
  s.frames_lost = lan_->lost();
  s.outputs_released = audit_.released();
  s.newest_epoch = audit_.newest_epoch();
  s.reprotections = reprotections_;
  s.transfers = transfers_;
  for (const auto& n : nodes_) s.guest_instructions += n->guest_instructions();
  s.end = events_.now();
  note(static_cast<uint64_t>(s.end));
  note(s.events);
  out.fingerprint = fingerprint_;
  if (options_.verbose) {
    for (const Operation& o : history_) trace("history: " + describe(o));
    if (out.breach) {
      trace(fmt::format("BROKEN: {} at {:.6f}s: {}", out.breach->invariant,
                        static_cast<double>(out.breach->at) / kSecond, out.breach->detail));
    }
  }
  return out;
}

RunOutcome run_seed(const GuestImage& image, const WorldOptions& options) {
  World world(image, options);
  return world.run();
}

}  // namespace ftvm::sim
