// The status contract: the field names and types `ftvm status --json`,
// `ftvm up`, the benchmarks and the campaign read (node_status.h).
#include "ft/node_status.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

TEST(NodeStatus, PinsThePerHostFields) {
  NodeStatus s;
  s.role = Role::kBackup;
  s.state = NodeState::kReplaying;
  s.vm = "rs";
  s.host = "host-b";
  s.epoch = 7;
  s.pid = 1234;
  s.instret = 99;
  s.backup_lag = BackupLag{};
  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j["role"], "backup");
  EXPECT_EQ(j["state"], "replaying");
  EXPECT_EQ(j["epoch"], 7);
  EXPECT_TRUE(j["epoch"].is_number_unsigned());
  EXPECT_EQ(j["pid"], 1234);
  EXPECT_EQ(j["instret"], 99);
  EXPECT_EQ(j["vm"], "rs");
  EXPECT_EQ(j["host"], "host-b");
  for (const char* k : {"arbiter", "guest_seconds", "uptime_seconds", "lag", "log", "held",
                        "released", "rejected", "peer"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  for (const char* k : {"queued_records", "received_records", "executed_records", "queue_length",
                        "primary_instret_at_last_heartbeat", "bytes"}) {
    EXPECT_TRUE(j["lag"].contains(k)) << k;
  }
  for (const char* k : {"records", "acked_records", "bytes", "channel_bytes", "queued_bytes",
                        "mbit_per_s"}) {
    EXPECT_TRUE(j["log"].contains(k)) << k;
  }
  for (const char* k : {"outputs", "bytes", "max_outputs", "fenced", "stalls", "stale_acks"}) {
    EXPECT_TRUE(j["held"].contains(k)) << k;
  }
  for (const char* k : {"forged", "replayed", "stale_epoch", "wrong_direction",
                        "unexpected_connection"}) {
    EXPECT_TRUE(j["rejected"].contains(k)) << k;
  }
  EXPECT_FALSE(j.contains("last_failover"));
  EXPECT_FALSE(j.contains("arbiter_unreachable"));
}

TEST(NodeStatus, PrimaryLagAndFailover) {
  NodeStatus s;
  s.role = Role::kPrimary;
  s.state = NodeState::kSolo;
  s.primary_lag = PrimaryLag{};
  s.primary_lag->guest_ms = 1.5;
  Failover f;
  f.kind = "took over (primary lost)";
  f.from_epoch = 1;
  f.to_epoch = 2;
  f.silence_ms = 501.0;
  s.last_failover = f;
  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j["state"], "solo");
  for (const char* k : {"instructions", "guest_ms", "bytes", "unacked_records", "max_guest_ms",
                        "max_bytes", "throttled", "throttle_episodes", "throttled_ms"}) {
    EXPECT_TRUE(j["lag"].contains(k)) << k;
  }
  EXPECT_EQ(j["last_failover"]["to_epoch"], 2);
  EXPECT_EQ(j["last_failover"]["silence_ms"], 501.0);
  EXPECT_FALSE(j["last_failover"].contains("replay_ms"));
}

}  // namespace
}  // namespace ftvm::ft
