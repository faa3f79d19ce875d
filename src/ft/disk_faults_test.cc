// Tests of logged and replayed disk failures (disk_faults.h): the records a
// failure becomes, and a replica matching, reassembling and refusing them.
#include "ft/disk_faults.h"

#include <gtest/gtest.h>

namespace ftvm::ft {
namespace {

using vm::DiskRequest;
using vm::VirtioBlk;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 13 + i / 4096);
  return v;
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class DiskFaultsTest : public ::testing::Test {
 protected:
  DiskFaultsTest() : machine_(config()) {}
  static vm::MachineConfig config() {
    vm::MachineConfig c;
    c.ram_size = 16u << 20;
    return c;
  }
  // Stages every record of `request`'s failure at instret 0 (where the
  // test machine is).
  void stage(const DiskRequest& request, const std::optional<std::vector<uint8_t>>& after) {
    for (log::DiskError& e : disk_error_records(request, after)) replay_.stage(0, std::move(e));
  }
  vm::Machine machine_;
  ReplayDiskFaults replay_{machine_};
};

TEST(DiskErrorRecords, AFailedWriteIsChunkedToCoverItsRangeInOrder) {
  const DiskRequest w{VirtioBlk::kTypeOut, 16, 600 << 10};
  const auto after = pattern(600 << 10, 1);
  const std::vector<log::DiskError> r = disk_error_records(w, after);
  ASSERT_EQ(r.size(), 3u);
  uint64_t covered = 0;
  for (const log::DiskError& e : r) {
    EXPECT_EQ(e.op, VirtioBlk::kTypeOut);
    EXPECT_EQ(e.sector, 16u);
    EXPECT_EQ(e.length, uint64_t{600} << 10);
    EXPECT_FALSE(e.unreadable);
    EXPECT_EQ(e.chunk_offset, covered);
    EXPECT_LE(e.data.size(), log::kMaxDiskErrorChunk);
    EXPECT_TRUE(std::equal(e.data.begin(), e.data.end(), after.begin() + covered));
    covered += e.data.size();
    EXPECT_TRUE(log::check_record({0, e})) << "every chunk must be loggable";
  }
  EXPECT_EQ(covered, after.size());
}

TEST(DiskErrorRecords, ReadsAndFlushesAreOneRecordWithoutContents) {
  for (const DiskRequest& r : {DiskRequest{VirtioBlk::kTypeIn, 3, 4096},
                               DiskRequest{VirtioBlk::kTypeFlush, 0, 0}}) {
    const auto records = disk_error_records(r, std::nullopt);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_TRUE(records[0].data.empty());
    EXPECT_FALSE(records[0].unreadable);
  }
}

TEST(DiskErrorRecords, AWriteThatCouldNotBeReadBackSaysSo) {
  const auto records = disk_error_records({VirtioBlk::kTypeOut, 0, 512}, std::nullopt);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(records[0].unreadable);
}

TEST_F(DiskFaultsTest, AReplicaGetsBackTheContentsTheLiveSideLogged) {
  std::vector<log::DiskError> logged;
  LiveDiskFaults live([&logged](log::DiskError e) { logged.push_back(std::move(e)); });
  const DiskRequest w{VirtioBlk::kTypeOut, 64, 700 << 10};
  const auto after = pattern(700 << 10, 9);
  live.failed(w, after, "no space left on device");
  EXPECT_EQ(live.failures(), 1u);
  EXPECT_TRUE(Contains(live.last_failure(), "no space left on device")) << live.last_failure();
  for (log::DiskError& e : logged) replay_.stage(0, std::move(e));
  const vm::DiskFaults::Recorded r = replay_.recorded(w);
  EXPECT_TRUE(r.failed);
  ASSERT_TRUE(r.after.has_value());
  EXPECT_EQ(*r.after, after);
  EXPECT_TRUE(replay_.idle());
  EXPECT_EQ(replay_.divergence(), "");
}

TEST_F(DiskFaultsTest, OtherRequestsAtTheSameInstretArePerformed) {
  stage({VirtioBlk::kTypeIn, 8, 512}, std::nullopt);
  EXPECT_FALSE(replay_.recorded({VirtioBlk::kTypeIn, 0, 512}).failed);
  EXPECT_FALSE(replay_.recorded({VirtioBlk::kTypeOut, 8, 512}).failed);
  EXPECT_TRUE(replay_.recorded({VirtioBlk::kTypeIn, 8, 512}).failed);
  EXPECT_TRUE(replay_.idle());
}

TEST_F(DiskFaultsTest, ARecordedFailureTheReplayNeverMeetsIsADivergence) {
  stage({VirtioBlk::kTypeFlush, 0, 0}, std::nullopt);
  replay_.check_passed(0);  // still at its instret: it may yet come
  EXPECT_EQ(replay_.divergence(), "");
  replay_.check_passed(1);
  EXPECT_TRUE(Contains(replay_.divergence(), "flush failed at instret 0")) << replay_.divergence();
}

TEST_F(DiskFaultsTest, ChunksOutOfOrderAreADivergenceNotAWrongCopy) {
  const DiskRequest w{VirtioBlk::kTypeOut, 0, 600 << 10};
  std::vector<log::DiskError> records = disk_error_records(w, pattern(600 << 10, 2));
  std::swap(records[1], records[2]);
  for (log::DiskError& e : records) replay_.stage(0, std::move(e));
  const vm::DiskFaults::Recorded r = replay_.recorded(w);
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.after.has_value());  // the copy is left alone
  EXPECT_TRUE(Contains(replay_.divergence(), "not in order")) << replay_.divergence();
}

TEST_F(DiskFaultsTest, AContentsRecordTheReplicaCannotMirrorIsAHostFailure) {
  stage({VirtioBlk::kTypeOut, 0, 512}, std::nullopt);
  const vm::DiskFaults::Recorded r = replay_.recorded({VirtioBlk::kTypeOut, 0, 512});
  EXPECT_TRUE(r.failed);
  EXPECT_FALSE(r.after.has_value());
  EXPECT_TRUE(Contains(replay_.host_failure(), "could not read back")) << replay_.host_failure();
}

TEST_F(DiskFaultsTest, TheReplicasOwnFailureIsAHostFailureUntilItGoesLive) {
  replay_.failed({VirtioBlk::kTypeOut, 0, 512}, std::vector<uint8_t>(512), "I/O error");
  EXPECT_TRUE(Contains(replay_.host_failure(), "this host's copy of the disk failed"))
      << replay_.host_failure();
  ReplayDiskFaults gone_live(machine_);
  std::vector<log::DiskError> logged;
  LiveDiskFaults live([&logged](log::DiskError e) { logged.push_back(std::move(e)); });
  gone_live.set_live(&live);
  gone_live.failed({VirtioBlk::kTypeIn, 0, 512}, std::nullopt, "I/O error");
  EXPECT_EQ(gone_live.host_failure(), "");
  EXPECT_EQ(logged.size(), 1u);
}

}  // namespace
}  // namespace ftvm::ft
