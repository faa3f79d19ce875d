// ArbiterStore: one edge case of the test-and-set or of the grant file per test.
#include "arbiter/arbiter_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace ftvm::arbiter {
namespace {

class ArbiterStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftvm-arbiter-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Opens the store, making it first if there is none yet.
  std::unique_ptr<ArbiterStore> open_store() {
    auto s = std::filesystem::exists(file()) ? ArbiterStore::open(dir_) : ArbiterStore::create(dir_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error());
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::string file() const { return dir_ + "/grants.log"; }
  std::string read_all() const {
    std::ifstream in(file(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void write_all(const std::string& data) const {
    std::ofstream out(file(), std::ios::binary | std::ios::trunc);
    out << data;
  }

  std::string dir_;
};

TEST_F(ArbiterStoreTest, FirstClaimWins) {
  auto store = open_store();
  auto g = store->claim("vm1", 1, "alice");
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
  EXPECT_EQ(g->holder, "alice");
}

TEST_F(ArbiterStoreTest, SameClaimantIsIdempotent) {
  auto store = open_store();
  ASSERT_TRUE(store->claim("vm1", 1, "alice")->won);
  const auto size = read_all().size();
  auto again = store->claim("vm1", 1, "alice");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->won);
  EXPECT_EQ(read_all().size(), size);  // nothing new written
}

TEST_F(ArbiterStoreTest, SecondClaimantIsDenied) {
  auto store = open_store();
  ASSERT_TRUE(store->claim("vm1", 1, "alice")->won);
  auto g = store->claim("vm1", 1, "bob");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->won);
  EXPECT_EQ(g->holder, "alice");
}

TEST_F(ArbiterStoreTest, GrantsSurviveReopen) {
  ASSERT_TRUE(open_store()->claim("vm1", 1, "alice")->won);
  auto store = open_store();
  EXPECT_EQ(store->grant_count(), 1u);
  auto g = store->claim("vm1", 1, "bob");
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->won);
  EXPECT_EQ(g->holder, "alice");
}

TEST_F(ArbiterStoreTest, LowerOrEqualEpochIsDenied) {
  auto store = open_store();
  ASSERT_TRUE(store->claim("vm1", 5, "alice")->won);
  auto lower = store->claim("vm1", 4, "bob");
  ASSERT_TRUE(lower.ok());
  EXPECT_FALSE(lower->won);
  EXPECT_EQ(lower->holder, "alice");
  EXPECT_EQ(lower->held_epoch, 5u);
  EXPECT_TRUE(store->claim("vm1", 6, "bob")->won);
  EXPECT_TRUE(store->claim("vm2", 1, "bob")->won);  // other vms are independent
}

TEST_F(ArbiterStoreTest, TornTailIsIgnored) {
  {
    auto store = open_store();
    ASSERT_TRUE(store->claim("vm1", 1, "alice")->won);
    ASSERT_TRUE(store->claim("vm1", 2, "bob")->won);
  }
  const std::string data = read_all();
  const std::string one = [&] {
    // Size of the first record: reopen a fresh file with a single grant.
    std::filesystem::remove(file());
    EXPECT_TRUE(open_store()->claim("vm1", 1, "alice")->won);
    return read_all();
  }();
  write_all(data.substr(0, data.size() - 3));  // second record cut short
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->grant_count(), 1u);
  EXPECT_EQ(read_all(), one);  // the torn bytes are gone
  // Epoch 2 was never acknowledged, so it can be granted now, once.
  EXPECT_TRUE(store->claim("vm1", 2, "carol")->won);
  EXPECT_EQ(open_store()->claim("vm1", 2, "dave")->holder, "carol");
}

TEST_F(ArbiterStoreTest, CorruptMiddleRecordRefusesToOpenNamingOffset) {
  {
    auto store = open_store();
    ASSERT_TRUE(store->claim("vm1", 1, "aaa")->won);
    ASSERT_TRUE(store->claim("vm1", 2, "bbb")->won);
    ASSERT_TRUE(store->claim("vm1", 3, "ccc")->won);
  }
  std::string data = read_all();
  const size_t record = data.size() / 3;  // same-length names: equal records
  data[record + 12] ^= 0x40;              // a byte inside the second record's payload
  write_all(data);
  auto s = ArbiterStore::open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("offset " + std::to_string(record)), std::string::npos) << s.error();
}

TEST_F(ArbiterStoreTest, AStaleEpochIsNeverGrantedAgainEvenToItsOwnHolder) {
  auto store = open_store();
  ASSERT_TRUE(store->claim("vm1", 1, "a#1")->won);
  ASSERT_TRUE(store->claim("vm1", 2, "b#2")->won);
  // a's own earlier grant, repeated after the vm moved on: refused, naming the latest.
  auto stale = store->claim("vm1", 1, "a#1");
  ASSERT_TRUE(stale.ok()) << stale.error();
  EXPECT_FALSE(stale->won);
  EXPECT_EQ(stale->held_epoch, 2u);
  EXPECT_EQ(stale->holder, "b#2");
  // The holder of the latest grant retrying it is told it won.
  auto retry = store->claim("vm1", 2, "b#2");
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->won);
  EXPECT_EQ(retry->held_epoch, 2u);
  // The same host in a new process (another nonce) is refused.
  auto other = store->claim("vm1", 2, "b#3");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->won);
  EXPECT_EQ(other->holder, "b#2");
  EXPECT_FALSE(store->claim("vm1", 1, "b#2")->won);
  // And the same after a restart of the arbiter.
  store.reset();
  store = open_store();
  EXPECT_FALSE(store->claim("vm1", 1, "a#1")->won);
  EXPECT_TRUE(store->claim("vm1", 2, "b#2")->won);
  EXPECT_EQ(store->claim("vm1", 2, "a#1")->holder, "b#2");
  EXPECT_EQ(store->grant_count(), 2u);
}

TEST_F(ArbiterStoreTest, LatestIsTheHighestGrantAndSurvivesReopen) {
  auto store = open_store();
  EXPECT_EQ(store->latest("vm1").epoch, 0u);
  EXPECT_EQ(store->latest("vm1").holder, "");
  ASSERT_TRUE(store->claim("vm1", 3, "a#1")->won);
  ASSERT_TRUE(store->claim("vm1", 7, "b#1")->won);
  ASSERT_FALSE(store->claim("vm1", 5, "a#1")->won);
  store.reset();
  store = open_store();
  const LatestGrant l = store->latest("vm1");
  EXPECT_EQ(l.vm_id, "vm1");
  EXPECT_EQ(l.epoch, 7u);
  EXPECT_EQ(l.holder, "b#1");
  EXPECT_EQ(store->latest("vm2").epoch, 0u);
}

TEST_F(ArbiterStoreTest, AMissingGrantFileIsNeverRecreated) {
  ASSERT_TRUE(open_store()->claim("vm1", 4, "a#1")->won);
  std::filesystem::remove(file());  // e.g. a restore from a backup made before the store
  auto s = ArbiterStore::open(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("ftvm arbiter --init"), std::string::npos) << s.error();
  EXPECT_FALSE(std::filesystem::exists(file()));
  auto none = ArbiterStore::open(dir_ + "/never-made");
  ASSERT_FALSE(none.ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/never-made"));
}

TEST_F(ArbiterStoreTest, CreateRefusesAnExistingStoreAndMakesParents) {
  ASSERT_TRUE(open_store()->claim("vm1", 1, "a#1")->won);
  auto again = ArbiterStore::create(dir_);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("already exists"), std::string::npos) << again.error();
  EXPECT_EQ(open_store()->grant_count(), 1u);  // untouched
  auto deep = ArbiterStore::create(dir_ + "/x/y");
  ASSERT_TRUE(deep.ok()) << deep.error();
  EXPECT_EQ((*deep)->grant_count(), 0u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/x/y/grants.log"));
}

TEST_F(ArbiterStoreTest, BadNamesAreRejected) {
  auto store = open_store();
  EXPECT_FALSE(store->claim("vm 1", 1, "alice").ok());
  EXPECT_FALSE(store->claim("vm1", 1, "").ok());
}

}  // namespace
}  // namespace ftvm::arbiter
