// The pair-level view of `ftvm status` and the pair's history file.
#include "ft/pair_view.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace ftvm::ft {
namespace {

using nlohmann::json;

json node(const char* host, const char* role, const char* state, uint64_t epoch,
          uint64_t hashes = 0) {
  return {{"host", host},   {"role", role}, {"state", state},
          {"epoch", epoch}, {"checks", {{"state_hashes_matched", hashes}}}};
}

TEST(PairSummary, APairedPairWithAMatchedHashIsPaired) {
  const json s = pair_summary({{"a", true, node("host-a", "primary", "paired", 4)},
                               {"b", true, node("host-b", "backup", "replaying", 4, 2)}},
                              json::array());
  EXPECT_EQ(s["epoch"], 4);
  EXPECT_EQ(s["primary"], "host-a");
  EXPECT_EQ(s["backup"], "host-b");
  EXPECT_EQ(s["paired"], true);
  EXPECT_TRUE(s["transfer"].is_null());
  EXPECT_TRUE(s["history"].is_array());
}

TEST(PairSummary, NotPairedUntilAStateHashHasMatched) {
  const json s = pair_summary({{"a", true, node("host-a", "primary", "paired", 4)},
                               {"b", true, node("host-b", "backup", "replaying", 4, 0)}},
                              json::array());
  EXPECT_EQ(s["backup"], "host-b");
  EXPECT_EQ(s["paired"], false);
}

TEST(PairSummary, AfterATakeoverTheSurvivorIsPrimaryAlone) {
  // Host a was killed (not running); host b took epoch 5 and runs solo.
  const json s = pair_summary({{"a", false, nullptr},
                               {"b", true, node("host-b", "primary", "solo", 5)}},
                              json::array());
  EXPECT_EQ(s["epoch"], 5);
  EXPECT_EQ(s["primary"], "host-b");
  EXPECT_TRUE(s["backup"].is_null());
  EXPECT_EQ(s["paired"], false);
}

TEST(PairSummary, AHaltedOrStaleNodeIsNeitherPrimaryNorBackup) {
  // Host a woke from a freeze: epoch 4, halted. Host b holds epoch 5.
  const json s = pair_summary({{"a", true, node("host-a", "primary", "halted", 4)},
                               {"b", true, node("host-b", "primary", "claiming", 5)}},
                              json::array());
  EXPECT_EQ(s["epoch"], 5);
  EXPECT_TRUE(s["primary"].is_null()) << "claiming is not serving yet";
  EXPECT_TRUE(s["backup"].is_null());
  const json none = pair_summary({{"a", true, nullptr}, {"b", false, nullptr}}, json::array());
  EXPECT_TRUE(none["epoch"].is_null());
  EXPECT_TRUE(none["primary"].is_null());
}

TEST(PairHistory, EntriesAppendDurablyAndATornLineIsSkipped) {
  const std::string path = ::testing::TempDir() + "/history-" + std::to_string(getpid());
  unlink(path.c_str());
  EXPECT_EQ(read_history(path).size(), 0u) << "a missing file is an empty history";
  ASSERT_TRUE(append_history(path, {3, "host-a", HistoryKind::kStart, 1000}).ok());
  ASSERT_TRUE(append_history(path, {4, "host-b", HistoryKind::kFailover, 2000}).ok());
  { std::ofstream(path, std::ios::app) << "{\"epoch\":5,\"ho"; }  // torn by a crash
  ASSERT_TRUE(append_history(path, {6, "host-b", HistoryKind::kSolo, 3000}).ok());
  size_t skipped = 0;
  const json h = read_history(path, &skipped);
  ASSERT_EQ(h.size(), 3u) << h.dump();
  EXPECT_EQ(skipped, 1u);
  EXPECT_EQ(h[2]["epoch"], 6) << "the entry after a torn line is whole";
  EXPECT_EQ(h[0]["epoch"], 3);
  EXPECT_EQ(h[0]["host"], "host-a");
  EXPECT_EQ(h[0]["kind"], "start");
  EXPECT_EQ(h[0]["at_unix_ms"], 1000);
  EXPECT_EQ(h[1]["kind"], "failover");
  unlink(path.c_str());
}

TEST(PairHistory, AnUnwritablePathIsAnErrorNamingIt) {
  Status s = append_history("/nonexistent-dir/history.jsonl", {1, "h", HistoryKind::kStart, 0});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("/nonexistent-dir/history.jsonl"), std::string::npos);
}

TEST(DiskMark, RecordsTheEpochAndReplacesTheLastWhole) {
  const std::string disk = ::testing::TempDir() + "/mark-" + std::to_string(getpid()) + ".img";
  EXPECT_FALSE(read_disk_mark_epoch(disk).has_value());
  ASSERT_TRUE(write_disk_mark(disk, {3, "host-a", HistoryKind::kStart, 1000}, 77).ok());
  EXPECT_EQ(read_disk_mark_epoch(disk), 3u);
  ASSERT_TRUE(write_disk_mark(disk, {5, "host-a", HistoryKind::kSolo, 2000}, 99).ok());
  EXPECT_EQ(read_disk_mark_epoch(disk), 5u);
  std::ifstream in(disk_mark_path(disk));
  const json j = json::parse(in);
  EXPECT_EQ(j["kind"], "solo");
  EXPECT_EQ(j["instret"], 99);
  EXPECT_NE(access((disk_mark_path(disk) + ".partial").c_str(), F_OK), 0);
  std::remove(disk_mark_path(disk).c_str());
}

TEST(DiskMark, AMarkThatDoesNotParseIsNoMark) {
  const std::string disk = ::testing::TempDir() + "/badmark-" + std::to_string(getpid()) + ".img";
  std::ofstream(disk_mark_path(disk)) << "{\"epoch\": 4";  // torn
  EXPECT_FALSE(read_disk_mark_epoch(disk).has_value());
  std::remove(disk_mark_path(disk).c_str());
}

TEST(MostAdvancedCopy, TheHigherMarkWins) {
  EXPECT_EQ(most_advanced_copy(3, 5, json::array()).host, "b");
  EXPECT_EQ(most_advanced_copy(7, 5, json::array()).host, "a");
  EXPECT_EQ(most_advanced_copy(std::nullopt, 2, json::array()).host, "b");
  // The marks outrank a history that says otherwise (it may be torn or lost).
  const json history = json::array({{{"epoch", 9}, {"host", "host-a"}, {"kind", "solo"}}});
  const CopyChoice c = most_advanced_copy(3, 4, history);
  EXPECT_EQ(c.host, "b");
  EXPECT_NE(c.why.find("epoch 4"), std::string::npos) << c.why;
}

TEST(MostAdvancedCopy, EqualMarksAreEqualCopiesAndGoToA) {
  EXPECT_EQ(most_advanced_copy(4, 4, json::array()).host, "a");
}

TEST(MostAdvancedCopy, WithoutMarksTheHistorysLastHolderWins) {
  const json history = json::array({{{"epoch", 1}, {"host", "host-a"}, {"kind", "start"}},
                                    {{"epoch", 2}, {"host", "host-b"}, {"kind", "failover"}}});
  EXPECT_EQ(most_advanced_copy(std::nullopt, std::nullopt, history).host, "b");
  EXPECT_EQ(most_advanced_copy(std::nullopt, std::nullopt, json::array()).host, "a");
}

}  // namespace
}  // namespace ftvm::ft
