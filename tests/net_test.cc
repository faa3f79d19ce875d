// Integration tests of the guest's network: a real LAN in network
// namespaces made by scripts/netns.sh (removed again after every test, pass
// or fail), the guest on its TAP, clients in the client namespace.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "process.h"

namespace ftvm::test {
namespace {

using std::chrono::seconds;

const std::string kFtvm = FTVM_BINARY;
const std::string kNetns = FTVM_SOURCE_DIR "/scripts/netns.sh";

// The guest's network comes up from ftvm.net= when the image's init knows
// it; configure it by hand otherwise.
const std::string kGuestNetUp =
    "ip addr show eth0 | grep -q 10.77.0.15 || "
    "{ ip link set eth0 up && ip addr add 10.77.0.15/24 dev eth0; }; ";

class GuestLan : public ::testing::Test {
 protected:
  void SetUp() override {
    ProcessResult r = run_process({"/bin/bash", kNetns, "up", lan_}, seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override {
    ProcessResult r = run_process({"/bin/bash", kNetns, "down", lan_}, seconds(30));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(access(("/run/netns/" + lan_ + "-host").c_str(), F_OK), 0) << "namespace left behind";
  }
  std::vector<std::string> ftvm(std::vector<std::string> extra, const std::string& cmd) {
    std::vector<std::string> argv = {kFtvm, "run", "--net", "--lan", lan_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.push_back(kGuestNetUp + cmd);
    return argv;
  }
  const std::string lan_ = "ftt" + std::to_string(getpid());
};

TEST_F(GuestLan, TheGuestReachesTheLan) {
  ProcessResult r = run_process(ftvm({}, "ping -c 2 -W 3 10.77.0.1"), seconds(60));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 packets received"), std::string::npos) << r.out;
}

TEST_F(GuestLan, AClientReachesTheGuest) {
  ProcessResult guest;
  std::thread vm([&] {
    // The guest stays up until a client has reached it (or 20 s pass), and
    // then 3 s more, so the client's ping is answered before it powers off
    // (seeing the client's ARP request comes before answering its echo).
    guest = run_process(ftvm({}, "i=0; while [ $i -lt 200 ] && ! [ -e /tmp/seen ]; do "
                                 "grep -q 10.77.0.2 /proc/net/arp && touch /tmp/seen; "
                                 "sleep 0.1; i=$((i+1)); done; [ -e /tmp/seen ] && sleep 3"),
                        seconds(60));
  });
  bool reached = false;
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (!reached && std::chrono::steady_clock::now() < deadline) {
    ProcessResult ping = run_process(
        {"/bin/bash", kNetns, "exec-client", lan_, "ping", "-c", "1", "-W", "1", "10.77.0.15"},
        seconds(10));
    reached = ping.exit_code == 0;
  }
  vm.join();
  EXPECT_TRUE(reached) << "no ping reply from the guest";
  EXPECT_EQ(guest.exit_code, 0) << guest.out << guest.err;
}

TEST_F(GuestLan, ARecordedNetworkRunReplays) {
  const std::string log = ::testing::TempDir() + "/net-" + lan_ + ".log";
  ProcessResult r = run_process(ftvm({"--record", log}, "ping -c 3 -W 3 10.77.0.1"), seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ProcessResult replay = run_process({kFtvm, "replay", log}, seconds(60));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay OK"), std::string::npos) << replay.out << replay.err;
}

// A snapshot taken in the middle of a recorded network run, restored and
// fed the rest of the recorded events, reaches the same state hashes at the
// same instret as the uninterrupted run.
TEST_F(GuestLan, ASnapshotMidRunContinuesLikeTheUninterruptedRun) {
  const std::string log = ::testing::TempDir() + "/mid-" + lan_ + ".log";
  const std::string snap = ::testing::TempDir() + "/mid-" + lan_ + ".snap";
  ProcessResult r = run_process(
      ftvm({"--record", log, "--snapshot-at", "100000000", "--snapshot-file", snap,
            "--hash-interval", "3000000"},
           "ping -c 2 -W 3 10.77.0.1 >/dev/null; i=0; while [ $i -lt 5000 ]; do i=$((i+1)); "
           "done; ping -c 3 -W 3 10.77.0.1"),
      seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_NE(r.err.find("snapshot at instret 100000000"), std::string::npos) << r.err;
  ProcessResult replay = run_process({kFtvm, "replay", log, "--from", snap}, seconds(90));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay OK"), std::string::npos) << replay.out << replay.err;
  EXPECT_EQ(replay.out.find(" 0 checkpoints"), std::string::npos) << replay.out;
}

// Redis in the guest serves redis-benchmark from the client namespace; the
// whole run is recorded and replays with every hash and output equal.
TEST_F(GuestLan, RedisBenchmarkRunIsRecordedAndReplays) {
  const std::string log = ::testing::TempDir() + "/redis-" + lan_ + ".log";
  ProcessResult guest;
  std::thread vm([&] {
    guest = run_process(
        ftvm({"--record", log, "--append", "ftvm.service=redis"},
             "i=0; until [ \"$(redis-cli get ftvm-test-done 2>/dev/null)\" = 1 ] || [ $i -ge 600 ]; "
             "do sleep 0.2; i=$((i+1)); done; redis-cli dbsize"),
        seconds(240));
  });
  auto client = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/bin/bash", kNetns, "exec-client", lan_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, seconds(120));
  };
  bool up = false;
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (!up && std::chrono::steady_clock::now() < deadline) {
    ProcessResult ping = run_process(
        {"/bin/bash", kNetns, "exec-client", lan_, "redis-cli", "-h", "10.77.0.15", "ping"},
        seconds(10));
    up = ping.out.find("PONG") != std::string::npos;
  }
  ProcessResult bench;
  if (up) {
    bench = client({"redis-benchmark", "-h", "10.77.0.15", "-c", "50", "-n", "2000", "-t",
                    "set,get", "-q"});
  }
  ProcessResult set = client({"redis-cli", "-h", "10.77.0.15", "set", "ftvm-test-done", "1"});
  vm.join();
  ASSERT_TRUE(up) << "redis in the guest never answered PING\n" << guest.out << guest.err;
  EXPECT_EQ(bench.exit_code, 0) << bench.out << bench.err;
  EXPECT_NE(bench.out.find("SET:"), std::string::npos) << bench.out;
  EXPECT_NE(bench.out.find("GET:"), std::string::npos) << bench.out;
  ASSERT_EQ(guest.exit_code, 0) << guest.out << guest.err;
  ProcessResult replay = run_process({kFtvm, "replay", log}, seconds(240));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay OK"), std::string::npos) << replay.out << replay.err;
}

}  // namespace
}  // namespace ftvm::test
