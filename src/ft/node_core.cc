// The step-driven core of an FT node: see node_core.h.
#include "ft/node_core.h"

#include <arpa/inet.h>

#include <algorithm>

#include "util/buggify.h"
namespace ftvm::ft {
namespace {

constexpr size_t kMaxBatchBytes = size_t{1} << 20;  // well under kMaxMessageBody
constexpr uint64_t kTicksPerMs = vm::kTimebaseHz / 1000;
constexpr std::chrono::milliseconds kClaimRetry{100};
constexpr std::chrono::milliseconds kClaimTimeout{1000};

double ms_between(CoreTime a, CoreTime b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

std::string guest_ip_from_cmdline(const std::string& cmdline) {
  const size_t at = cmdline.find("ftvm.net=");
  if (at == std::string::npos) return {};
  const size_t start = at + 9;
  const size_t end = cmdline.find_first_of("/, ", start);
  return cmdline.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

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

NodeCore::NodeCore(Role role, const CoreOptions& options, CoreEnv& env)
    : initial_role_(role),
      o_(options),
      env_(env),
      rm_(role, options.epoch),
      stream_(&gate_, options.hash_interval, kMaxBatchBytes) {
  started_ = env_.now();
  last_alive_ = started_;
}

NodeCore::~NodeCore() { unpair(); }

vm::EntropySource* NodeCore::entropy_device() { return &entropy_device_; }

void NodeCore::EntropyDevice::fill(std::span<uint8_t> out) {
  NodeCore& c = *core;
  if (c.replay_entropy_ != nullptr && !c.entropy_live_) {
    c.replay_entropy_->fill(out);  // a backup: from the log
    return;
  }
  if (c.live_entropy_ == nullptr) {
    std::fill(out.begin(), out.end(), 0);
    return;
  }
  c.live_entropy_->fill(out);
  // A primary records what the guest was given, at this instret.
  c.append({c.machine_->instret(), log::Entropy{log::Bytes(out.begin(), out.end())}});
}

void NodeCore::attach_machine(vm::Machine* machine, vm::EntropySource* live_entropy) {
  machine_ = machine;
  live_entropy_ = live_entropy;
  machine_->set_console_sink([this](uint8_t b) {
    outputs_.add_console({&b, 1});
    if (replayer_) replayer_->outputs().add_console({&b, 1});
    emit(false, {&b, 1});
  });
  machine_->set_frame_sink([this](std::span<const uint8_t> f) {
    outputs_.add_frame(f);
    if (replayer_) replayer_->outputs().add_frame(f);
    emit(true, f);
  });
  // A primary logs each host failure of the disk at the instret the guest
  // met it, so the backup's guest meets it too (a solo primary logs nothing).
  live_disk_faults_ = std::make_unique<LiveDiskFaults>([this](log::DiskError e) {
    const uint64_t at = machine_->instret();
    if (e.chunk_offset == 0) {
      note("this host's disk failed at instret {}: {}; the guest sees an I/O error{}", at,
           live_disk_faults_->last_failure(), paired() ? " (logged for the backup)" : "");
    }
    append({at, std::move(e)});
  });
  if (initial_role_ == Role::kBackup) {
    replay_entropy_ = std::make_unique<ReplayEntropy>(*machine_);
    replayer_ = std::make_unique<Replayer>(*machine_, replay_entropy_.get(), /*check_outputs=*/true);
    replay_disk_faults_ = std::make_unique<ReplayDiskFaults>(*machine_);
    replayer_->set_disk_faults(replay_disk_faults_.get());
    machine_->set_disk_faults(replay_disk_faults_.get());
  } else {
    machine_->set_disk_faults(live_disk_faults_.get());
  }
}

void NodeCore::pair(std::unique_ptr<ChannelEndpoint> endpoint, std::unique_ptr<Link> link) {
  FTVM_CHECK(rm_.state() == NodeState::kWaitingForBackup);
  endpoint_ = std::move(endpoint);
  link_ = std::move(link);
  rm_.backup_joined();
  stream_.set_active(true);
  gate_.set_mode(OutputGate::Mode::kPaired);
  last_alive_ = env_.now();
  unacked_batches_.clear();
  acked_batch_sent_ = acked_progress_shown_ = env_.now();
  instret_changed_at_ = appended_instret_since_ = env_.now();
  idle_reported_at_ = CoreTime{0};
  reported_not_running_ = false;
  note("paired with the backup; the guest starts");
}

void NodeCore::reprotect(std::unique_ptr<ChannelEndpoint> endpoint, std::unique_ptr<Link> link) {
  FTVM_CHECK(can_reprotect() && gate_.mode() == OutputGate::Mode::kDirect);
  // A solo primary's outputs are free to leave; any still queued (a step
  // that did not get to them) go now, before the new backup's log starts.
  release_now();
  FTVM_CHECK(gate_.held() == 0);
  endpoint_ = std::move(endpoint);
  link_ = std::move(link);
  rm_.reprotected();
  // A new log: the backup's replay starts at this instret with record 0,
  // its output digest empty, and a state hash due at once.
  gate_ = OutputGate();
  stream_ = LogStream(&gate_, o_.hash_interval, kMaxBatchBytes);
  stream_.set_base_mtime(machine_->mtime());
  outputs_ = log::OutputDigester();
  stream_.set_active(true);
  gate_.set_mode(OutputGate::Mode::kPaired);
  throttled_ = false;
  last_alive_ = env_.now();
  unacked_batches_.clear();
  acked_batch_sent_ = acked_progress_shown_ = env_.now();
  instret_changed_at_ = appended_instret_since_ = env_.now();
  idle_reported_at_ = CoreTime{0};
  reported_not_running_ = false;
  deferred_since_.reset();
  note("a new backup holds this machine's state at instret {}: paired again, outputs wait for "
       "its acknowledgement",
       machine_->instret());
}

void NodeCore::join(uint64_t epoch, std::unique_ptr<ChannelEndpoint> endpoint,
                    std::unique_ptr<Link> link) {
  endpoint_ = std::move(endpoint);
  link_ = std::move(link);
  rm_.joined(epoch);
  gate_.set_mode(OutputGate::Mode::kDropped);
}

void NodeCore::unpair() {
  // The link goes first: its thread may still be feeding the endpoint.
  link_.reset();
  stream_.set_active(false);
  deferred_since_.reset();
}

// ---- the log stream ----

void NodeCore::append(const log::Record& record) {
  // Records are appended at the machine's current instret.
  appended_instret_since_ = instret_changed_at_;
  if (stream_.append(record)) flush_batch();
}

void NodeCore::report_not_running(bool running) {
  if (!paired() || rm_.role() != Role::kPrimary) return;
  // A heartbeat sent by the main loop itself, in order with its records:
  // once the backup has heard a later batch, it has heard this too, and it
  // counts a guest not meant to run as not stuck from then on. When the
  // guest runs again the backup hears that too, or it would go on taking
  // this node's records for those of a guest not meant to run.
  const CoreTime now = env_.now();
  if (running ? !reported_not_running_ : now - idle_reported_at_ < o_.heartbeat) return;
  if (Status s = link_->send(MsgType::kHeartbeat,
                             encode_heartbeat({machine_->instret(), machine_->mtime(), running}));
      !s) {
    endpoint_->on_link_failed(s.error());
    return;
  }
  if (!running) idle_reported_at_ = now;
  reported_not_running_ = !running;
  endpoint_->sent(now);
}

void NodeCore::flush_batch() {
  if (!paired()) return;
  // Fault point: the batch waits for a later flush (a slow sender).
  if (FTVM_BUGGIFY(0.2)) return;
  std::optional<LogStream::Batch> b = stream_.take_batch();
  if (!b) return;
  if (Status s = link_->send(MsgType::kRecords, encode_records(b->first, b->encoded)); !s) {
    endpoint_->on_link_failed(s.error());
  }
  if (rm_.role() == Role::kPrimary) {
    unacked_batches_.push_back({stream_.records(), env_.now(),
                                std::max(appended_instret_since_, idle_reported_at_)});
  }
  endpoint_->sent(env_.now());
  deferred_since_.reset();
}

void NodeCore::send_progress() {
  if (paired() && machine_->instret() > stream_.last_instret()) {
    append({machine_->instret(), log::Progress{}});
  }
  flush_batch();
  if (!paired()) deferred_since_.reset();
}

CoreTime NodeCore::idle_flush_delay() const {
  // Well inside the flow-control bound and the heartbeat: the backup's lag
  // while the guest idles stays small, and the batch replaces a heartbeat.
  return std::min<CoreTime>(o_.heartbeat / 2, std::chrono::milliseconds(o_.max_lag_ms) / 4);
}

bool NodeCore::defer_idle_records(CoreTime now) {
  // An idle guest wakes for every timer tick, and each wake is a TimeSkip
  // and a Progress record: sent one batch each, they were most of the log's
  // bytes while nothing happened. Nothing waits for them (no output is held,
  // no input came in), so they gather for a while; the Progress is left out,
  // as the next wake's TimeSkip marks the same instret. A record that does
  // not reach the backup before a failover is one the guest's outputs never
  // depended on: the backup goes live from an earlier point of the same
  // execution.
  if (!paired() || rm_.role() != Role::kPrimary || gate_.held() > 0) return false;
  if (!deferred_since_) deferred_since_ = now;
  return now - *deferred_since_ < idle_flush_delay();
}

void NodeCore::checkpoint_maybe() {
  if (!paired() || !stream_.checkpoint_due(machine_->instret())) return;
  report_progress(/*checkpointing=*/true);
  append({machine_->instret(), log::StateHash{machine_->state_digest()}});
  report_progress();
  append({machine_->instret(), outputs_.digest()});
}

// ---- outputs and the Output Rule ----

void NodeCore::check_stall() {
  const CoreTime now = env_.now();
  if (paired() && rm_.role() == Role::kPrimary && now - last_alive_ > o_.timeout / 2) {
    // Acknowledgements read from now on may predate a takeover: only one for
    // a record written after this point proves the backup is still ours.
    if (machine_ != nullptr) append({machine_->instret(), log::Progress{}});
    gate_.fence(stream_.records());
    ++stalls_;
    note("this node did not run for {:.0f} ms; releasing nothing until the backup acknowledges "
         "the log again",
         ms_between(last_alive_, now));
  }
  last_alive_ = now;
}

bool NodeCore::fresh_before_send() {
  if (!paired() || rm_.role() != Role::kPrimary) return true;
  if (env_.now() - last_alive_ > o_.timeout / 2) {
    check_stall();
    return false;
  }
  last_alive_ = env_.now();
  return true;
}

void NodeCore::emit(bool frame, std::span<const uint8_t> bytes) {
  if (gate_.mode() == OutputGate::Mode::kDropped) {
    if (frame && rm_.role() == Role::kBackup) remember_replayed_frame(bytes);
    return;
  }
  check_stall();  // the guest may have been frozen in the middle of a slice
  // The machine reports an output from inside the producing instruction,
  // before it retires: the output belongs to instret + 1, and the backup
  // must hold a log entry at or after that before it may leave.
  const uint64_t at = machine_->instret() + 1;
  if (gate_.produce(at, frame, bytes)) {
    HeldOutput out{at, gate_.records(), frame, {bytes.begin(), bytes.end()}};
    if (fresh_before_send()) {
      send_output(out);
    } else {
      gate_.requeue_front({std::move(out)});  // fenced now: waits for a new acknowledgement
    }
  }
}

uint64_t NodeCore::timeout_ticks() const {
  return static_cast<uint64_t>(o_.timeout.count()) * kTicksPerMs;
}

void NodeCore::remember_replayed_frame(std::span<const uint8_t> bytes) {
  // The primary released each of these frames once this node acknowledged
  // a record at or after it, unless it died first: a backup that goes live
  // cannot tell which, so it sends again those of the last failure timeout
  // of guest time (TCP takes duplicates; without them a reply the dead
  // primary held waits for the guest's own retransmission, seconds later).
  const uint64_t now = machine_->mtime();
  const uint64_t window = timeout_ticks();
  replayed_bytes_ += bytes.size();
  replayed_frames_.push_back({now, {bytes.begin(), bytes.end()}});
  while (!replayed_frames_.empty() &&
         (replayed_frames_.front().first + window < now || replayed_bytes_ > kMaxReplayedBytes)) {
    replayed_bytes_ -= replayed_frames_.front().second.size();
    replayed_frames_.pop_front();
  }
}

void NodeCore::release_live_outputs() {
  hold_live_outputs_until_.reset();
  for (const std::vector<uint8_t>& bytes : resend_) {
    if (!env_.write_frame(bytes)) ++tx_errors_;
    ++released_frames_;
  }
  resend_.clear();
  gate_.set_mode(OutputGate::Mode::kDirect);
  release_acked();
}

void NodeCore::send_output(const HeldOutput& out) {
  if (out.frame) {
    if (!env_.write_frame(out.bytes)) ++tx_errors_;
    ++released_frames_;
  } else {
    console_out_.append(out.bytes.begin(), out.bytes.end());
    released_console_ += out.bytes.size();
  }
}

void NodeCore::release_acked() {
  // Fault point: held outputs wait one step longer than they must.
  if (FTVM_BUGGIFY(0.1)) return;
  release_now();
}

void NodeCore::release_now() {
  const bool leading = paired() && rm_.role() == Role::kPrimary;
  if (leading) {
    const uint64_t acked = endpoint_->acked();
    while (!unacked_batches_.empty() && unacked_batches_.front().records_after <= acked) {
      acked_batch_sent_ = std::max(acked_batch_sent_, unacked_batches_.front().sent);
      acked_progress_shown_ = std::max(acked_progress_shown_, unacked_batches_.front().progress_shown);
      unacked_batches_.pop_front();
    }
    gate_.on_ack(acked);
  }
  std::vector<HeldOutput> out;
  gate_.take_releasable(out);
  // An acknowledgement proves the backup had not taken over when it heard
  // the acknowledged batch, and it takes over only after hearing nothing
  // for the failure timeout: so no earlier than that batch's sending plus
  // the timeout. An acknowledgement that arrives later than half of that
  // (it waited in a stalled link, or this node did not read it) proves
  // nothing now: fence, and release only on an acknowledgement of a record
  // written after this point.
  //
  // The backup also takes over when this node's guest should run but its
  // instret has not moved for the timeout, and it may decide so the moment
  // it hears a batch (it was itself frozen, say): the acknowledgement then
  // proves nothing about the future. Once it has heard the batch, though, it
  // has seen the instret the batch shows, which this guest reached at
  // progress_shown (or heard, in order, that the guest was not meant to
  // run): it finds the guest stuck no earlier than that plus the timeout.
  // So the same margin applies to that time too.
  const bool stale = env_.now() - acked_batch_sent_ > o_.timeout / 2 ||
                     env_.now() - acked_progress_shown_ > o_.timeout / 2;
  if (leading && !out.empty() && stale) {
    gate_.requeue_front(std::move(out));
    out.clear();
    if (!gate_.fenced()) {
      if (machine_ != nullptr) append({machine_->instret(), log::Progress{}});
      gate_.fence(stream_.records());
      ++stale_acks_;
      if (env_.now() - stale_ack_noted_ > std::chrono::seconds(1)) {
        stale_ack_noted_ = env_.now();
        note("the backup's newest acknowledgement is of a batch sent {:.0f} ms ago, showing "
             "guest progress of {:.0f} ms ago: holding {} outputs until it acknowledges a record "
             "written now ({} times so far)",
             ms_between(acked_batch_sent_, env_.now()),
             ms_between(acked_progress_shown_, env_.now()), gate_.held(), stale_acks_);
      }
    }
  }
  // A node frozen between the check above and a write (SIGSTOP, a hung
  // host) must not send what it took: the backup may have taken over
  // meanwhile. Checked before every output, so the window is one write.
  for (size_t i = 0; i < out.size(); ++i) {
    if (!fresh_before_send()) {
      gate_.requeue_front({std::make_move_iterator(out.begin() + i),
                           std::make_move_iterator(out.end())});
      break;
    }
    send_output(out[i]);
  }
  flush_console();
}

void NodeCore::flush_console() {
  if (console_out_.empty()) return;
  env_.write_console(console_out_);
  console_out_.clear();
}

void NodeCore::report_progress(bool checkpointing) {
  if (!endpoint_) return;
  LocalProgress p;
  p.checkpointing = checkpointing;
  p.instret = machine_->instret();
  p.mtime = machine_->mtime();
  p.should_run = should_run_;
  p.executed = executed_;
  p.executed_bytes = executed_bytes_;
  endpoint_->set_local(env_.now(), p);
}

// ---- the steps ----

Step NodeCore::step() {
  switch (rm_.state()) {
    case NodeState::kStarting:
      rm_.start();
      claim_start_ = env_.now();
      from_epoch_ = rm_.epoch();
      return {};
    case NodeState::kClaiming:
      return claim_step();
    case NodeState::kWaitingForBackup:
      return wait_until(env_.now() + o_.heartbeat);
    case NodeState::kJoining:
      return wait_until(env_.now() + o_.heartbeat);
    case NodeState::kPaired:
    case NodeState::kSolo:
      return finishing_ ? finishing_step() : live_step();
    case NodeState::kReplaying:
      return backup_step();
    case NodeState::kReplayingTail:
      return replay_tail_step();
    case NodeState::kGoingLive:
      return {};
    case NodeState::kHalted:
    case NodeState::kStopped:
    case NodeState::kDiverged:
      return exit(rm_.exit_code());
  }
  return exit(kExitNodeError);
}

Step NodeCore::claim_step() {
  if (handover_ == HandoverState::kSent && env_.now() < handover_claim_at_) {
    return wait_until(handover_claim_at_);  // the backup claims first
  }
  Result<arbiter::Grant> g =
      env_.arbiter().claim(o_.vm, rm_.claim_epoch(), o_.host_id, kClaimTimeout);
  if (!g) {
    arbiter_wait_ = g.error();
    if (!told_unreachable_) {
      note("cannot reach the arbiter {} ({}); nobody goes live and nothing held is released "
           "until it answers",
           env_.arbiter().describe(), g.error());
      told_unreachable_ = true;
    }
    return wait_until(env_.now() + kClaimRetry);
  }
  if (told_unreachable_) {
    note("the arbiter answered after {:.0f} ms", ms_between(claim_start_, env_.now()));
  }
  told_unreachable_ = false;
  arbiter_wait_.clear();
  const Action a = rm_.claim_answered(g->won, g->held_epoch);
  if (a == Action::kHalt) return halt(*g);
  return on_claim_won(*g);
}

Step NodeCore::halt(const arbiter::Grant& g) {
  if (handover_ == HandoverState::kSent) {
    halted_because_ = fmt::format("handed over: epoch {} is held by {} (planned migration)",
                                  g.held_epoch, g.holder);
    note("the handover is complete: {} holds epoch {}; this node stops", g.holder, g.held_epoch);
    gate_.set_mode(OutputGate::Mode::kDropped);
    should_run_ = false;
    unpair();
    return exit(0);
  }
  if (rm_.has_been_live() || initial_role_ == Role::kBackup) {
    halted_because_ = fmt::format(
        "vm '{}' has moved on: epoch {} is held by {}. This node halted for good and never "
        "sends again; to protect the running primary, start a new backup that joins it "
        "(ftvm backup --vm {} --primary ADDR:PORT)",
        o_.vm, g.held_epoch, g.holder, o_.vm);
  } else {
    halted_because_ = fmt::format(
        "vm '{}' has moved on: epoch {} is held by {}, so this primary must not start it again "
        "at epoch {}. If that primary is running, join it as its backup (ftvm backup --vm {} "
        "--primary ADDR:PORT); `ftvm up` starts a pair at the vm's next epoch by itself",
        o_.vm, g.held_epoch, g.holder, rm_.claim_epoch(), o_.vm);
  }
  note("lost epoch {} (the vm is at epoch {}, held by {}): halting for good; {} held outputs are "
       "dropped, never sent. {}",
       rm_.claim_epoch(), g.held_epoch, g.holder, gate_.held(), *halted_because_);
  gate_.set_mode(OutputGate::Mode::kDropped);
  should_run_ = false;
  unpair();
  return exit(kExitDeposed);
}

Step NodeCore::on_claim_won(const arbiter::Grant& g) {
  (void)g;
  const CoreTime now = env_.now();
  switch (rm_.state()) {
    case NodeState::kWaitingForBackup:
      note("holds vm '{}' epoch {}; waiting for a backup", o_.vm, rm_.epoch());
      return {};
    case NodeState::kSolo: {
      Failover f;
      f.at_unix_ms = env_.unix_ms();
      f.kind = "went solo (backup lost)";
      f.from_epoch = from_epoch_;
      f.to_epoch = rm_.epoch();
      f.reason = rm_.reason();
      f.claim_ms = ms_between(claim_start_, now);
      f.instret = machine_->instret();
      last_failover_ = f;
      if (handover_ == HandoverState::kSent) {
        note("the handover did not happen (the backup failed before it took over); running on");
        handover_ = HandoverState::kNone;
        f.kind = "went solo (the backup failed during a handover)";
        last_failover_ = f;
      }
      note("won epoch {}: running solo; releasing {} held outputs", rm_.epoch(), gate_.held());
      gate_.set_mode(OutputGate::Mode::kDirect);
      release_acked();
      last_alive_ = now;
      return {};
    }
    case NodeState::kGoingLive: {
      // Bring guest time back in step with the wall clock: the end of the
      // log is where the old primary was when its last message left it;
      // the time since then passed for the clients too. This is the first
      // input the new primary gives its guest, after every instret the old
      // one logged, so every output a client saw has been reproduced.
      const double since_s =
          std::chrono::duration<double>(now - endpoint_->last_heard()).count();
      // The old primary releases an acknowledged output only while the
      // batch it acknowledges is less than half the timeout old, and this
      // node heard that batch no earlier than it was sent: half the timeout
      // after the last message heard, nothing of the old epoch can leave it
      // any more. A takeover after silence is past that already; one after
      // a connection reset holds its outputs until then. (A handover
      // released everything before it was sent.)
      const CoreTime quiet_from = endpoint_->last_heard() + o_.timeout / 2;
      const uint64_t log_end_mtime = machine_->mtime();
      const uint64_t target = machine_->mtime() + static_cast<uint64_t>(since_s * vm::kTimebaseHz);
      if (target > machine_->mtime()) machine_->skip_time_to(target);
      unpair();
      endpoint_.reset();
      replay_entropy_->set_fallback(live_entropy_);
      // Every logged entropy read lies before the tail's end: from here the
      // guest's randomness is this host's, logged for any later backup.
      entropy_live_ = true;
      replay_disk_faults_->set_live(live_disk_faults_.get());
      // The frames replayed in the last timeout before the end of the log,
      // then the outputs of the replayed tail, are sent: the old primary may
      // or may not have released them, and TCP takes duplicates. (A handover
      // released everything first.)
      const uint64_t window = timeout_ticks();
      resend_.clear();
      for (auto& [at, bytes] : replayed_frames_) {
        if (took_over_by_handover_ || at + window < log_end_mtime) continue;
        resend_.push_back(std::move(bytes));
      }
      replayed_frames_.clear();
      replayed_bytes_ = 0;
      const uint64_t resent_frames = resend_.size();
      if (!took_over_by_handover_ && now < quiet_from) {
        hold_live_outputs_until_ = quiet_from;
        gate_.set_mode(OutputGate::Mode::kHolding);
      } else {
        release_live_outputs();
      }
      if (o_.mac && !o_.guest_ip.empty()) {
        garp_ = gratuitous_arp(*o_.mac, o_.guest_ip);
        for (int i = 0; i < 2; ++i) (void)env_.write_frame(garp_);
        for (int ms : {100, 500, 1000, 2000, 5000}) {
          garp_at_.push_back(now + std::chrono::milliseconds(ms));
        }
        note("announced {} at {} (gratuitous ARP, repeated for 5 s)", o_.guest_ip,
             vm::format_mac(*o_.mac));
      }
      rm_.live();
      Failover f;
      f.at_unix_ms = env_.unix_ms();
      f.kind = took_over_by_handover_ ? "took over (planned migration)" : "took over (primary lost)";
      f.from_epoch = from_epoch_;
      f.to_epoch = rm_.epoch();
      f.reason = rm_.reason();
      f.claim_ms = ms_between(claim_start_, now);
      f.instret = machine_->instret();
      f.silence_ms = silence_ms_;
      f.replayed_records = tail_records_;
      f.resent_frames = resent_frames;
      f.outputs_held_ms = hold_live_outputs_until_ ? ms_between(now, *hold_live_outputs_until_) : 0.0;
      f.replay_ms = tail_replay_ms_;
      f.detect_to_live_ms = ms_between(detected_at_, now);
      f.state_hashes_matched = replayer_->state_hashes();
      f.last_matched_hash_instret = replayer_->last_matched_hash_instret();
      last_failover_ = f;
      note("live as primary at instret {} ({} records replayed in {:.1f} ms; {:.1f} ms from "
           "detection; {} state hashes matched the old primary, the last at instret {}; {} "
           "frames of the last {} ms of the log sent again; outputs held {:.1f} ms more, until "
           "the old primary can release nothing)",
           machine_->instret(), tail_records_, tail_replay_ms_, ms_between(detected_at_, now),
           replayer_->state_hashes(), replayer_->last_matched_hash_instret(), resent_frames,
           o_.timeout.count(), *f.outputs_held_ms);
      last_alive_ = now;
      return {};
    }
    default:
      FTVM_CHECK(false);
  }
  return {};
}

void NodeCore::finish(int exit_code) {
  should_run_ = false;
  finish_code_ = exit_code;
  if (paired()) {
    append({machine_->instret(), outputs_.digest()});
    append({machine_->instret(), log::End{exit_code}});
    flush_batch();
    finishing_ = true;
    finish_deadline_ = env_.now() + o_.timeout;
    return;
  }
  finishing_ = true;
  finish_deadline_ = env_.now();
}

Step NodeCore::finishing_step() {
  if (hold_live_outputs_until_) {
    if (env_.now() < *hold_live_outputs_until_) return wait_until(*hold_live_outputs_until_);
    release_live_outputs();
  }
  if (paired()) {
    release_acked();
    const bool done = endpoint_->acked() >= stream_.records();
    if (!done && !endpoint_->failed() && env_.now() < finish_deadline_) {
      return wait_until(std::min(finish_deadline_, env_.now() + o_.heartbeat));
    }
    if (!done) {
      // Going solo first: what is held may leave only with the next epoch.
      const std::string why = endpoint_->failed().value_or(
          "the backup did not acknowledge the end of the run");
      from_epoch_ = rm_.epoch();
      gate_.set_mode(OutputGate::Mode::kHolding);
      rm_.peer_failed(why);
      unpair();
      claim_start_ = env_.now();
      note("{}; holding {} outputs and claiming epoch {} before the run ends", why, gate_.held(),
           rm_.claim_epoch());
      finish_deadline_ = env_.now();  // finishing resumes below once the claim is won
      return {};
    }
  }
  gate_.set_mode(OutputGate::Mode::kDirect);
  release_acked();
  note("the guest stopped; exit status {}", finish_code_);
  unpair();
  rm_.guest_stopped(finish_code_);
  return exit(finish_code_);
}

Step NodeCore::live_step() {
  const CoreTime now = env_.now();
  report_progress();
  check_stall();
  if (hold_live_outputs_until_ && now >= *hold_live_outputs_until_) release_live_outputs();
  while (!garp_at_.empty() && garp_at_.front() <= now) {
    (void)env_.write_frame(garp_);
    garp_at_.pop_front();
  }
  if (paired()) {
    if (std::optional<std::string> why = endpoint_->failed()) {
      should_run_ = false;
      from_epoch_ = rm_.epoch();
      gate_.set_mode(OutputGate::Mode::kHolding);
      rm_.peer_failed(*why);
      if (handover_ == HandoverState::kSent) {
        // The backup closes the channel as it takes over; give it time to
        // win the epoch first (if it failed instead, this node goes on).
        handover_claim_at_ = now + std::max<std::chrono::milliseconds>(o_.timeout * 2,
                                                                        std::chrono::seconds(1));
        note("the backup closed the channel after the handover ({}); claiming epoch {} in {} ms "
             "unless it has taken it",
             *why, rm_.claim_epoch(),
             std::chrono::duration_cast<std::chrono::milliseconds>(handover_claim_at_ - now).count());
      } else {
        note("{}; holding {} outputs and claiming epoch {} to go on alone", *why, gate_.held(),
             rm_.claim_epoch());
      }
      unpair();
      claim_start_ = now;
      return {};
    }
    if (handover_ != HandoverState::kNone) return handover_step();
  }
  if (pace_epoch_ != rm_.epoch() || !pacer_.started()) {
    // Pacing restarts from here after a pause for the arbiter.
    pacer_.restart(now, machine_->mtime());
    pace_epoch_ = rm_.epoch();
  }
  release_acked();
  if (paired() && stream_.over_lag(machine_->mtime(), endpoint_->peer_exec().mtime,
                                   endpoint_->peer_exec().bytes, o_.max_lag_ms * kTicksPerMs,
                                   o_.max_lag_bytes)) {
    // Flow control: let the backup catch up before running further.
    if (!throttled_) {
      ++throttle_episodes_;
      throttle_since_ = now;
    }
    throttled_ = true;
    should_run_ = false;
    report_progress();
    report_not_running(false);
    flush_batch();
    return wait_until(now + o_.heartbeat);
  }
  if (throttled_) throttled_ms_ += ms_between(throttle_since_, now);
  throttled_ = false;
  // Inputs, each applied and logged at the current instret.
  size_t fed = 0;
  {
    std::vector<std::vector<uint8_t>> frames;
    env_.read_frames(frames);
    rx_.add(frames);
    fed = rx_.deliver(
        *machine_,
        [this](std::vector<uint8_t>&& f) {
          append({machine_->instret(), log::NetFrame{std::move(f)}});
        },
        // Fault point: the rest of a burst reaches the guest a slice later.
        [] { return !FTVM_BUGGIFY(0.2); });
  }
  if (idle_until_) {
    // The guest was idle, waiting for its timer.
    if (fed == 0 && rx_.empty()) {
      if (now < *idle_until_) {
        CoreTime wake = std::min(*idle_until_, now + o_.heartbeat);
        if (hold_live_outputs_until_) wake = std::min(wake, *hold_live_outputs_until_);
        if (deferred_since_) {
          const CoreTime due = *deferred_since_ + idle_flush_delay();
          if (now >= due) {
            send_progress();
          } else {
            wake = std::min(wake, due);
          }
        }
        return wait_until(wake);
      }
      if (idle_wake_at_) {
        append({machine_->instret(), log::TimeSkip{*idle_wake_at_}});
        machine_->skip_time_to(*idle_wake_at_);
      }
    }
    idle_until_.reset();
    idle_wake_at_.reset();
  }
  // From here until the guest idles, its instret should advance: a main
  // loop stuck anywhere below (say, writing console output nobody reads)
  // shows in the heartbeats as an instret that does not move.
  should_run_ = true;
  report_progress();
  report_not_running(true);
  // Inputs go to the backup before the slice runs; a timer wake's TimeSkip
  // may wait with the slice's records.
  if (fed > 0 || !deferred_since_) flush_batch();
  const uint64_t before = machine_->instret();
  // Fault point: a short slice, so records and outputs fall at other instrets.
  const uint64_t slice =
      FTVM_BUGGIFY(0.1) ? 1 + machine_->instret() % 4096 : o_.slice_instructions;
  const vm::RunResult r = machine_->run(slice);
  if (machine_->instret() != before) instret_changed_at_ = env_.now();
  if (r.status == vm::RunStatus::kPowerOff) {
    finish(static_cast<int>(machine_->exit_status() & 0xff));
    return {};
  }
  if (r.status == vm::RunStatus::kReset) {
    note("the guest asked for a reboot; stopping");
    finish(0);
    return {};
  }
  if (r.status == vm::RunStatus::kError) {
    note("machine stopped: {}", machine_->error());
    finish(kExitNodeError);
    return {};
  }
  checkpoint_maybe();
  const bool quiet = r.status == vm::RunStatus::kIdle && fed == 0 && rx_.empty();
  // Every output of the slice needs a log entry at or after its instret
  // before it may leave: the slice's end is one.
  if (!(quiet && defer_idle_records(env_.now()))) send_progress();
  release_acked();
  report_progress();
  if (quiet) {
    should_run_ = false;  // nothing the guest can do until an interrupt
    report_progress();
    const std::optional<uint64_t> wake_at = machine_->next_wakeup();
    const CoreTime target =
        wake_at ? pacer_.wall_time_of(*wake_at)
                : now + std::chrono::milliseconds(100);
    idle_until_ = target;
    idle_wake_at_ = wake_at;
    CoreTime wake = std::min(target, env_.now() + o_.heartbeat);
    if (deferred_since_) wake = std::min(wake, *deferred_since_ + idle_flush_delay());
    if (hold_live_outputs_until_) wake = std::min(wake, *hold_live_outputs_until_);
    return wait_until(wake);
  }
  if (r.status == vm::RunStatus::kIdle && machine_->instret() == before) should_run_ = false;
  return {};
}

Status NodeCore::request_handover() {
  if (rm_.role() != Role::kPrimary || rm_.state() != NodeState::kPaired || !paired() ||
      finishing_) {
    return make_error(fmt::format("only a paired primary can hand over (this node is {} {})",
                                  role_name(rm_.role()), state_name(rm_.state())));
  }
  if (handover_ == HandoverState::kNone) {
    handover_ = HandoverState::kRequested;
    note("handing over to the backup (planned migration): the guest stops at instret {}",
         machine_->instret());
  }
  return {};
}

Step NodeCore::handover_step() {
  const CoreTime now = env_.now();
  // The guest never runs here again: no new input, no new output.
  should_run_ = false;
  report_progress();
  report_not_running(false);
  if (machine_->instret() > stream_.last_instret()) {
    append({machine_->instret(), log::Progress{}});
  }
  flush_batch();
  release_acked();
  if (handover_ == HandoverState::kRequested && endpoint_->acked() >= stream_.records() &&
      gate_.held() == 0) {
    if (Status s = link_->send(MsgType::kHandover,
                               encode_handover({stream_.records(), machine_->instret()}));
        !s) {
      endpoint_->on_link_failed(s.error());
      return {};
    }
    endpoint_->sent(now);
    handover_ = HandoverState::kSent;
    note("every record acknowledged and every output released: told the backup to take over "
         "epoch {}",
         rm_.epoch() + 1);
  }
  return wait_until(now + o_.heartbeat);
}

Status NodeCore::apply_queued(int* exit_code, size_t max_records) {
  size_t n = 0;
  while (!queue_.empty() && n < max_records) {
    QueuedRecord& q = queue_.front();
    // Checking a state hash is bounded work, not the guest running.
    const bool hash = std::holds_alternative<log::StateHash>(q.record.payload);
    if (hash) report_progress(/*checkpointing=*/true);
    if (Status s = replayer_->apply(q.record); !s) return s;
    ++executed_;
    executed_bytes_ += q.size;
    queue_.pop_front();
    ++n;
    report_progress();  // the channel thread tells the primary this replay advances
    if (replayer_->ended()) {
      *exit_code = replayer_->exit_status();
      return {};
    }
  }
  return {};
}

Step NodeCore::backup_step() {
  const CoreTime now = env_.now();
  // Nothing from the LAN reaches a backup's guest; keep the NIC drained.
  std::vector<std::vector<uint8_t>> frames;
  env_.read_frames(frames);
  if (std::optional<std::string> why = endpoint_->failed()) {
    detected_at_ = now;
    silence_ms_ = ms_between(endpoint_->last_heard(), now);
    from_epoch_ = rm_.epoch();
    rm_.peer_failed(*why);
    note("{}; replaying the {} records received, outputs held, before claiming epoch {}", *why,
         endpoint_->received() - std::min(endpoint_->received(), executed_), rm_.epoch() + 1);
    gate_.set_mode(OutputGate::Mode::kHolding);
    tail_start_ = now;
    return {};
  }
  if (std::optional<Handover> h = endpoint_->handover()) {
    // Every record came before the handover: replay them all, then claim.
    detected_at_ = now;
    silence_ms_ = 0;
    from_epoch_ = rm_.epoch();
    took_over_by_handover_ = true;
    rm_.peer_failed("the primary handed over (planned migration)");
    note("the primary handed over at instret {}; replaying the {} records received, then "
         "claiming epoch {}",
         h->instret, endpoint_->received() - std::min(endpoint_->received(), executed_),
         rm_.epoch() + 1);
    gate_.set_mode(OutputGate::Mode::kHolding);
    tail_start_ = now;
    return {};
  }
  endpoint_->take_records(queue_);
  should_run_ = !queue_.empty();
  report_progress();
  if (queue_.empty()) return wait_until(now + o_.heartbeat);
  int exit_code = -1;
  // Fault point: the replay takes one record a step (a slow backup).
  if (Status s = apply_queued(&exit_code, FTVM_BUGGIFY(0.2) ? 1 : o_.records_per_step); !s) {
    if (replayer_->host_disk_failed()) {
      note("leaving the pair: {}; this copy of the disk can no longer follow the primary's",
           s.error());
    } else {
      note("the replay diverged from the primary: {}", s.error());
    }
    rm_.diverged(s.error());
    unpair();
    return exit(kExitNodeDiverged);
  }
  should_run_ = !queue_.empty() || endpoint_->received() > executed_;
  report_progress();
  // Tell the primary at once how far the backup got (flow control); the
  // fault point leaves it to the next ack or heartbeat.
  if (!FTVM_BUGGIFY(0.1)) {
    const Status s = link_->send(
        MsgType::kAck, encode_ack({endpoint_->received(), executed_, machine_->instret(),
                                   machine_->mtime(), endpoint_->received_bytes(), executed_bytes_,
                                   should_run_}));
    if (s) endpoint_->sent(env_.now());
  }
  if (exit_code >= 0) {
    note("the primary's guest stopped with status {}; replay complete, {} state hashes matched",
         exit_code, replayer_->state_hashes());
    unpair();
    rm_.guest_stopped(exit_code);
    return exit(exit_code);
  }
  return {};
}

Step NodeCore::replay_tail_step() {
  // Replay the whole tail first, outputs held: a backup whose tail
  // diverges must not take the next epoch and then die holding it.
  unpair();  // nothing more arrives; the endpoint keeps what it received
  endpoint_->take_records(queue_);
  tail_records_ = queue_.size();
  int exit_code = -1;
  if (Status s = apply_queued(&exit_code, queue_.size()); !s) {
    note("the replay of the tail {}: {}; not claiming, halting",
         replayer_->host_disk_failed() ? "failed on this host's disk" : "diverged from the primary",
         s.error());
    rm_.diverged(s.error());
    gate_.set_mode(OutputGate::Mode::kDropped);
    return exit(kExitNodeDiverged);
  }
  tail_replay_ms_ = ms_between(tail_start_, env_.now());
  if (exit_code >= 0) {
    gate_.set_mode(OutputGate::Mode::kDropped);
    note("the primary's run had ended; exit status {}", exit_code);
    rm_.guest_stopped(exit_code);
    return exit(exit_code);
  }
  rm_.tail_replayed();
  claim_start_ = env_.now();
  note("replayed {} records in {:.1f} ms (instret {}); claiming epoch {} to go live",
       tail_records_, tail_replay_ms_, machine_->instret(), rm_.claim_epoch());
  return {};
}

NodeStatus NodeCore::status() const {
  NodeStatus st;
  const CoreTime now = env_.now();
  st.role = rm_.role();
  st.state = rm_.state();
  st.vm = o_.vm;
  st.host = o_.host_id;
  st.claimant = env_.arbiter().claimant(o_.host_id);
  st.epoch = rm_.epoch();
  if (!arbiter_wait_.empty()) st.arbiter_unreachable = arbiter_wait_;
  if (machine_ != nullptr) {
    st.instret = machine_->instret();
    st.guest_seconds = machine_->guest_seconds();
  }
  st.uptime_seconds = std::chrono::duration<double>(now - started_).count();
  st.should_run = should_run_;
  if (primary_side() && paired()) {
    PrimaryLag lag;
    const PeerExec pe = endpoint_->peer_exec();
    const uint64_t instret = machine_->instret();
    lag.instructions = instret > pe.instret ? instret - pe.instret : 0;
    lag.guest_ms =
        machine_->mtime() > pe.mtime ? (machine_->mtime() - pe.mtime) / double(kTicksPerMs) : 0.0;
    lag.bytes = stream_.bytes() > pe.bytes ? stream_.bytes() - pe.bytes : 0;
    lag.unacked_records = stream_.records() - std::min(stream_.records(), endpoint_->acked());
    lag.max_guest_ms = o_.max_lag_ms;
    lag.max_bytes = o_.max_lag_bytes;
    lag.throttled = throttled_;
    lag.throttle_episodes = throttle_episodes_;
    lag.throttled_ms = throttled_ms_ + (throttled_ ? ms_between(throttle_since_, now) : 0.0);
    st.primary_lag = lag;
  } else if (rm_.role() == Role::kBackup && endpoint_) {
    BackupLag lag;
    const uint64_t received = endpoint_->received();
    lag.queued_records = received - std::min(received, executed_);
    lag.received_records = received;
    lag.executed_records = executed_;
    lag.queue_length = queue_.size() + endpoint_->queue_length();
    lag.primary_instret_at_last_heartbeat = endpoint_->primary_instret_at_last_heartbeat();
    lag.bytes = endpoint_->received_bytes() - std::min(endpoint_->received_bytes(), executed_bytes_);
    st.backup_lag = lag;
  }
  if (primary_side()) {
    st.log.records = stream_.records();
    st.log.acked_records = endpoint_ ? endpoint_->acked() : gate_.acked();
    st.log.bytes = stream_.bytes();
  } else if (endpoint_) {
    st.log.records = endpoint_->received();
    st.log.acked_records = endpoint_->received();
    st.log.bytes = endpoint_->received_bytes();
  }
  if (link_) {
    const Link::Stats ls = link_->stats();
    st.log.channel_bytes = primary_side() ? ls.bytes_sent : ls.bytes_received;
    st.log.queued_bytes = ls.queued_bytes;
    st.rejected.forged = ls.forged;
    st.rejected.replayed = ls.replayed;
    st.rejected.stale_epoch = ls.stale_epoch;
    st.rejected.wrong_direction = ls.wrong_direction;
    st.rejected.timed_out = ls.timed_out;
  }
  st.held.outputs = gate_.held();
  st.held.bytes = gate_.held_bytes();
  st.held.max_outputs = gate_.held_max();
  st.held.fenced = gate_.fenced();
  st.held.stalls = stalls_;
  st.held.stale_acks = stale_acks_;
  st.released = {released_frames_, released_console_, tx_errors_, rx_.dropped()};
  if (replayer_) {
    st.checks = NodeStatus::Checks{replayer_->state_hashes(), replayer_->last_matched_hash_instret(),
                                   replayer_->checkpoints()};
  }
  st.peer.connected = link_ != nullptr && endpoint_ && !endpoint_->failed();
  st.peer.last_heard_ms_ago = endpoint_ ? ms_between(endpoint_->last_heard(), now) : -1.0;
  st.peer.stuck_ms = endpoint_ ? std::chrono::duration<double, std::milli>(
                                     endpoint_->peer_stuck_for(now)).count()
                               : 0.0;
  if (endpoint_) {
    st.peer.longest_silence_ms =
        std::chrono::duration<double, std::milli>(endpoint_->longest_silence()).count();
  }
  st.last_failover = last_failover_;
  st.halted_because = halted_because_;
  return st;
}

}  // namespace ftvm::ft
