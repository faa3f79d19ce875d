// Serialising a node's status: see node_status.h.
#include "ft/node_status.h"

namespace ftvm::ft {

nlohmann::json to_json(const NodeStatus& s) {
  nlohmann::json j;
  j["role"] = std::string(role_name(s.role));
  j["state"] = std::string(state_name(s.state));
  j["vm"] = s.vm;
  j["host"] = s.host;
  j["claimant"] = s.claimant;
  j["epoch"] = s.epoch;
  j["pid"] = s.pid;
  j["arbiter"] = s.arbiter;
  if (s.arbiter_unreachable) j["arbiter_unreachable"] = *s.arbiter_unreachable;
  j["instret"] = s.instret;
  j["guest_seconds"] = s.guest_seconds;
  j["uptime_seconds"] = s.uptime_seconds;
  j["should_run"] = s.should_run;
  nlohmann::json lag = nlohmann::json::object();
  if (s.primary_lag) {
    const PrimaryLag& l = *s.primary_lag;
    lag = {{"instructions", l.instructions},   {"guest_ms", l.guest_ms},
           {"bytes", l.bytes},                 {"unacked_records", l.unacked_records},
           {"max_guest_ms", l.max_guest_ms},   {"max_bytes", l.max_bytes},
           {"throttled", l.throttled},         {"throttle_episodes", l.throttle_episodes},
           {"throttled_ms", l.throttled_ms}};
  } else if (s.backup_lag) {
    const BackupLag& l = *s.backup_lag;
    lag = {{"queued_records", l.queued_records},
           {"received_records", l.received_records},
           {"executed_records", l.executed_records},
           {"queue_length", l.queue_length},
           {"primary_instret_at_last_heartbeat", l.primary_instret_at_last_heartbeat},
           {"bytes", l.bytes}};
  }
  j["lag"] = lag;
  j["log"] = {{"records", s.log.records},           {"acked_records", s.log.acked_records},
              {"bytes", s.log.bytes},               {"channel_bytes", s.log.channel_bytes},
              {"queued_bytes", s.log.queued_bytes}, {"mbit_per_s", s.log.mbit_per_s}};
  j["held"] = {{"outputs", s.held.outputs},
               {"bytes", s.held.bytes},
               {"max_outputs", s.held.max_outputs},
               {"fenced", s.held.fenced},
               {"stalls", s.held.stalls},
               {"stale_acks", s.held.stale_acks}};
  j["released"] = {{"frames", s.released.frames},
                   {"console_bytes", s.released.console_bytes},
                   {"tx_errors", s.released.tx_errors},
                   {"rx_dropped", s.released.rx_dropped}};
  j["rejected"] = {{"forged", s.rejected.forged},
                   {"replayed", s.rejected.replayed},
                   {"stale_epoch", s.rejected.stale_epoch},
                   {"wrong_direction", s.rejected.wrong_direction},
                   {"timed_out", s.rejected.timed_out},
                   {"unexpected_connection", s.rejected.unexpected_connection}};
  if (s.engine) {
    j["engine"] = {{"name", s.engine->name},
                   {"jit_blocks", s.engine->jit_blocks},
                   {"jit_code_bytes", s.engine->jit_code_bytes},
                   {"jit_code_capacity", s.engine->jit_code_capacity},
                   {"jit_flushes", s.engine->jit_flushes},
                   {"jit_interpreted", s.engine->jit_interpreted}};
  }
  if (s.checks) {
    j["checks"] = {{"state_hashes_matched", s.checks->state_hashes_matched},
                   {"last_matched_instret", s.checks->last_matched_instret},
                   {"checkpoints_matched", s.checks->checkpoints_matched}};
  }
  j["peer"] = {{"connected", s.peer.connected},
               {"last_heard_ms_ago", s.peer.last_heard_ms_ago},
               {"stuck_ms", s.peer.stuck_ms},
               {"longest_silence_ms", s.peer.longest_silence_ms}};
  if (s.last_failover) {
    const Failover& f = *s.last_failover;
    nlohmann::json fj = {{"at_unix_ms", f.at_unix_ms}, {"kind", f.kind},
                         {"from_epoch", f.from_epoch}, {"to_epoch", f.to_epoch},
                         {"reason", f.reason},         {"claim_ms", f.claim_ms},
                         {"instret", f.instret}};
    if (f.silence_ms) fj["silence_ms"] = *f.silence_ms;
    if (f.replayed_records) fj["replayed_records"] = *f.replayed_records;
    if (f.resent_frames) fj["resent_frames"] = *f.resent_frames;
    if (f.outputs_held_ms) fj["outputs_held_ms"] = *f.outputs_held_ms;
    if (f.replay_ms) fj["replay_ms"] = *f.replay_ms;
    if (f.detect_to_live_ms) fj["detect_to_live_ms"] = *f.detect_to_live_ms;
    if (f.state_hashes_matched) fj["state_hashes_matched"] = *f.state_hashes_matched;
    if (f.last_matched_hash_instret) fj["last_matched_hash_instret"] = *f.last_matched_hash_instret;
    j["last_failover"] = std::move(fj);
  }
  if (s.halted_because) j["halted_because"] = *s.halted_because;
  if (s.disk) {
    j["disk"] = {{"path", s.disk->path},
                 {"writable", s.disk->writable},
                 {"host_failures", s.disk->host_failures},
                 {"last_failure", s.disk->last_failure}};
  }
  return j;
}

}  // namespace ftvm::ft
