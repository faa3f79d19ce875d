// Integration tests of the FT pair: real `ftvm up` pairs in network
// namespaces (arbiter, primary host, backup host, LAN, client), Redis in
// the guest, a real load from the client namespace, and real failures:
// SIGKILL, a cut logging link, a dead arbiter, hostile messages. Every test
// removes its pair (processes and namespaces) whether it passes or not.
//
// A LAN audit watches the two hosts' ports on the LAN switch (AF_PACKET in
// the LAN namespace) and timestamps every frame the guest's MAC sends from
// each host, so "the loser emits nothing more" is checked on the wire.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "auth/secret.h"
#include "ft/channel.h"
#include "process.h"

namespace ftvm::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using nlohmann::json;

const std::string kFtvm = FTVM_BINARY;
const std::string kLoad = FTVM_LOAD_BINARY;
const std::string kFtnet = FTVM_SOURCE_DIR "/scripts/ftnet.sh";
constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x77, 0x00, 0x0f};
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Under the sanitizers the machines run a few times slower: a longer
// failure timeout keeps a slow node from being taken for a dead one.
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

bool enter_netns(const std::string& ns) {
  const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = setns(fd, CLONE_NEWNET) == 0;  // this thread only
  close(fd);
  return ok;
}

// A field deep in a status document, or null when any part is missing.
json at(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return json();
    p = &(*p)[k];
  }
  return *p;
}
double num(const json& j, std::initializer_list<const char*> path) {
  const json v = at(j, path);
  return v.is_number() ? v.get<double>() : -1;
}
std::string str(const json& j, std::initializer_list<const char*> path) {
  const json v = at(j, path);
  return v.is_string() ? v.get<std::string>() : "";
}

// Frames sent by the guest's MAC into the LAN switch from each host's port.
class LanAudit {
 public:
  explicit LanAudit(const std::string& pair) {
    thread_ = std::thread([this, pair] { run(pair); });
    const auto deadline = Clock::now() + seconds(10);
    while (!ready_ && Clock::now() < deadline) std::this_thread::yield();
  }
  ~LanAudit() {
    stop_ = true;
    thread_.join();
  }
  bool ready() const { return ready_ && ok_; }
  // Frames from host `port` ("pri" or "bak") at or after `t`.
  size_t frames_since(const std::string& port, Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& v = port == "pri" ? pri_ : bak_;
    return static_cast<size_t>(std::count_if(v.begin(), v.end(), [&](auto x) { return x >= t; }));
  }

 private:
  void run(const std::string& pair) {
    if (!enter_netns(pair + "-lan")) {
      ready_ = true;
      return;
    }
    int fds[2];
    const char* ports[2] = {"veth-pri", "veth-bak"};
    for (int i = 0; i < 2; ++i) {
      fds[i] = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_protocol = htons(ETH_P_ALL);
      sll.sll_ifindex = static_cast<int>(if_nametoindex(ports[i]));
      const int big = 8 << 20;  // bursts must not overflow while the CPUs are busy
      setsockopt(fds[i], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
      if (fds[i] < 0 || sll.sll_ifindex == 0 ||
          bind(fds[i], reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
        ok_ = false;
      }
    }
    ready_ = true;
    while (!stop_ && ok_) {
      pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
      if (poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & POLLIN) == 0) continue;
        uint8_t buf[2048];
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        const ssize_t n = recvfrom(fds[i], buf, sizeof buf, MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 12 || from.sll_pkttype == PACKET_OUTGOING) continue;
        if (std::memcmp(buf + 6, kGuestMac, 6) != 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        (i == 0 ? pri_ : bak_).push_back(Clock::now());
      }
    }
    for (int fd : fds) close(fd);
  }

  std::thread thread_;
  std::atomic<bool> ready_{false}, stop_{false}, ok_{true};
  std::mutex mu_;
  std::vector<Clock::time_point> pri_, bak_;
};

class FtPair : public ::testing::Test {
 protected:
  void SetUp() override {
    run_dir_ = std::string(::testing::TempDir()) + "/ftvm-run-" + std::to_string(getpid());
    setenv("FTVM_RUN_DIR", run_dir_.c_str(), 1);
    // The arbiter's store of each test's pair, instead of /var/lib/ftvm.
    state_dir_ = std::string(::testing::TempDir()) + "/ftvm-state-" + std::to_string(getpid());
    setenv("FTVM_STATE_DIR", state_dir_.c_str(), 1);
    static int counter = 0;
    name_ = "fp" + std::to_string(getpid() % 100000) + static_cast<char>('a' + counter++ % 26);
  }
  void TearDown() override {
    for (pid_t pid : extra_pids_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    ProcessResult r = run_process({kFtvm, "down", "--name", name_}, seconds(60));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const char* role : {"lan", "client", "pri", "bak", "arb"}) {
      EXPECT_NE(access(("/run/netns/" + name_ + "-" + role).c_str(), F_OK), 0)
          << "namespace " << name_ << "-" << role << " left behind";
    }
    std::error_code ec;
    std::filesystem::remove_all(store(), ec);  // each test's pair name is its own
    std::filesystem::remove(state_dir_, ec);   // only if no other test's store is there
    if (!HasFailure()) {
      std::filesystem::remove_all(dir(), ec);  // logs are kept only when they explain a failure
      std::filesystem::remove(run_dir_, ec);   // only if no other test left its logs there
    } else {
      for (const char* f : {"a.log", "b.log", "arbiter.log"}) {
        std::ifstream in(dir() + "/" + f);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::cerr << "---- " << f << "\n" << text.substr(text.size() > 6000 ? text.size() - 6000 : 0);
      }
    }
  }

  std::string dir() const { return run_dir_ + "/" + name_; }
  // The pair's arbiter store (`ftvm up` keeps it across runs).
  std::string store() const { return state_dir_ + "/" + name_; }

  void up(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kFtvm, "up", "--name", name_, "--memory", "128"};
    if (std::find(extra.begin(), extra.end(), "--hash-interval") == extra.end()) {
      argv.insert(argv.end(), {"--hash-interval", "200000000"});
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    // Most tests look at what one failure leaves behind: no new backup.
    if (!reprotect_) argv.push_back("--no-reprotect");
    if (kSanitized && std::find(extra.begin(), extra.end(), "--timeout-ms") == extra.end()) {
      argv.insert(argv.end(), {"--timeout-ms", "3000"});
    }
    ProcessResult r = run_process(argv, seconds(240));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Mounts the tmpfs of a SmallDisk (declared below the fixture).
  template <typename Small>
  void small_disk(Small& small) {
    struct stat image{};
    ASSERT_EQ(stat((guest_dir() + "/data.img").c_str(), &image), 0);
    const uint64_t mib = (static_cast<uint64_t>(image.st_blocks) * 512 >> 20) + 5;
    std::filesystem::create_directories(small.dir);
    ASSERT_EQ(run_process({"/usr/bin/mount", "-t", "tmpfs", "-o",
                           "size=" + std::to_string(mib) + "m", "ftvm-test", small.dir},
                          seconds(10))
                  .exit_code,
              0);
    small.mounted = true;
  }

  json status() {
    ProcessResult r = run_process({kFtvm, "status", "--name", name_, "--json"}, seconds(20));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json::object() : j;
  }
  json node(const json& s, const char* host) {
    if (!s.contains("hosts") || !s["hosts"].contains(host)) return json::object();
    return s["hosts"][host];
  }
  static std::string role_of(const json& n) {
    if (!at(n, {"running"}).is_boolean() || !n["running"].get<bool>() ||
        !at(n, {"status"}).is_object()) {
      return "gone";
    }
    return str(n, {"status", "role"});
  }

  // Waits until `pred(status)` holds, or fails after `deadline`.
  template <typename Pred>
  json wait_for(Pred pred, seconds deadline, const char* what) {
    const auto end = Clock::now() + deadline;
    json s;
    for (;;) {
      s = status();
      if (pred(s)) return s;
      if (Clock::now() >= end) {
        ADD_FAILURE() << "timed out waiting for " << what << "; last status " << s.dump();
        return s;
      }
      std::this_thread::sleep_for(milliseconds(100));  // polling interval under a deadline
    }
  }

  // The load runs in the client namespace until `duration` has passed.
  struct Load {
    std::thread thread;
    ProcessResult result;
    json report;
    ~Load() {
      if (thread.joinable()) thread.join();  // a failed assertion returned early
    }
  };
  std::unique_ptr<Load> start_load(int duration_s, int connections = 4,
                                   std::vector<std::string> extra = {}) {
    auto load = std::make_unique<Load>();
    const std::string out = dir() + "/load.json";
    load->thread = std::thread([this, l = load.get(), duration_s, connections, out, extra] {
      std::vector<std::string> argv = {"/bin/bash", kFtnet, "exec", name_, "client", kLoad,
                                       "--connections", std::to_string(connections), "--duration",
                                       std::to_string(duration_s), "--out", out};
      argv.insert(argv.end(), extra.begin(), extra.end());
      l->result = run_process(argv, seconds(duration_s + 120));
      std::ifstream in(out);
      l->report = json::parse(in, nullptr, false);
    });
    return load;
  }
  void finish(Load& load) {
    load.thread.join();
    ASSERT_FALSE(load.result.timed_out);
    ASSERT_TRUE(load.report.is_object()) << load.result.err;
  }
  // Waits until the primary has released `frames` frames since it started.
  void wait_for_traffic(const char* host, double frames) {
    wait_for(
        [&](const json& s) {
          const json n = node(s, host);
          return num(n, {"status", "released", "frames"}) >= frames;
        },
        seconds(60), "client traffic through the primary");
  }

  void expect_load_survived(const Load& load) {
    EXPECT_EQ(load.result.exit_code, 0) << load.report.dump() << load.result.err;
    EXPECT_EQ(at(load.report, {"ok"}), json(true));
    EXPECT_EQ(at(load.report, {"errors"}).size(), 0u) << at(load.report, {"errors"}).dump();
    EXPECT_EQ(num(load.report, {"reconnects"}), 0);
    EXPECT_GT(num(load.report, {"acked"}), 100);
    EXPECT_EQ(num(load.report, {"verify", "ok"}), num(load.report, {"acked"}));
    EXPECT_EQ(num(load.report, {"verify", "missing"}), 0);
    EXPECT_EQ(num(load.report, {"verify", "wrong"}), 0);
  }

  pid_t spawn(const std::vector<std::string>& argv) {
    // Only async-signal-safe calls between fork and exec (see process.cc).
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string log_path = dir() + "/arbiter.log";
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_RDWR);
      dup2(null, STDIN_FILENO);
      const int log = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
      execv(args[0], args.data());
      _exit(127);
    }
    extra_pids_.push_back(pid);
    return pid;
  }

  std::string run_dir_, state_dir_;
  std::string name_;
  std::vector<pid_t> extra_pids_;
  bool reprotect_ = false;  // up() leaves the supervisor on
};

TEST_F(FtPair, KillingThePrimaryUnderLoadLosesNoAcknowledgedWrite) {
  ASSERT_NO_FATAL_FAILURE(up());
  LanAudit audit(name_);
  ASSERT_TRUE(audit.ready());
  // Sanitized machines run several times slower, and every SET is an fsync
  // of Redis's append-only file (a journal commit in the guest): a longer
  // load, and less traffic before the kill.
  auto load = start_load(kSanitized ? 25 : 12);
  wait_for_traffic("a", kSanitized ? 200 : 3000);
  {
    // The pair as a whole, before the kill: host a primary, host b backup.
    const json p = status();
    EXPECT_EQ(p.value("primary", json()), "host-a") << p.dump();
    EXPECT_EQ(p.value("backup", json()), "host-b") << p.dump();
    EXPECT_EQ(p.value("epoch", json()), 1) << p.dump();
    ASSERT_TRUE(p.contains("history") && p["history"].is_array()) << p.dump();
    ASSERT_GE(p["history"].size(), 1u) << p.dump();
    EXPECT_EQ(p["history"].back().value("kind", ""), "start");
    EXPECT_EQ(p["history"].back().value("host", ""), "host-a");
    EXPECT_TRUE(p.contains("paired") && p["paired"].is_boolean());
    EXPECT_TRUE(p.contains("transfer"));
  }
  ProcessResult k = run_process({kFtvm, "kill", "primary", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const auto killed = Clock::now();
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  // The same connections carried on within the failover bound.
  EXPECT_LT(num(load->report, {"max_stall_ms"}), kSanitized ? 20000.0 : 5000.0);
  EXPECT_GE(num(load->report, {"max_stall_ms"}), 0);

  const json s = status();
  const json b = node(s, "b");
  ASSERT_EQ(role_of(b), "primary") << s.dump();
  EXPECT_EQ(role_of(node(s, "a")), "gone");
  EXPECT_EQ(num(b, {"status", "epoch"}), 2);
  const json f = at(b, {"status", "last_failover"});
  ASSERT_TRUE(f.is_object()) << b.dump();
  // The backup checked the primary's state hash at an instret both reached.
  // (A sanitized build is killed earlier, often before the first checkpoint.)
  if (!kSanitized) {
    EXPECT_GE(num(f, {"state_hashes_matched"}), 1) << f.dump();
    EXPECT_GT(num(f, {"last_matched_hash_instret"}), 0);
  }
  EXPECT_LE(num(f, {"last_matched_hash_instret"}), num(f, {"instret"}));
  // The pair as a whole: host b alone at epoch 2, after a failover.
  EXPECT_EQ(s.value("primary", json()), "host-b") << s.dump();
  EXPECT_TRUE(s.value("backup", json("x")).is_null()) << s.dump();
  EXPECT_EQ(s.value("paired", true), false);
  EXPECT_EQ(s.value("epoch", json()), 2);
  ASSERT_TRUE(s.contains("history") && s["history"].size() >= 2) << s.dump();
  EXPECT_EQ(s["history"].back().value("kind", ""), "failover");
  EXPECT_EQ(s["history"].back().value("host", ""), "host-b");
  EXPECT_EQ(s["history"].back().value("epoch", 0), 2);
  // On the wire: the new primary talks from host b, the dead one never again.
  EXPECT_GT(audit.frames_since("bak", killed), kSanitized ? 0u : 10u);
  EXPECT_EQ(audit.frames_since("pri", killed + milliseconds(50)), 0u);
}

// The log never names the engine: a primary on the translator and a backup
// on the interpreter stay in step (the backup checks the primary's state
// hash every 50 M instructions), and the backup takes over as usual.
TEST_F(FtPair, APrimaryOnTheTranslatorAndABackupOnTheInterpreterStayInStep) {
  if (kSanitized) GTEST_SKIP() << "the ISA tests and a boot cover both engines under sanitizers";
  ASSERT_NO_FATAL_FAILURE(
      up({"--engine", "jit", "--engine-b", "interp", "--hash-interval", "50000000"}));
  auto load = start_load(12);
  wait_for_traffic("a", 2000);
  const json s = wait_for(
      [&](const json& st) {
        const json c = at(node(st, "b"), {"status", "checks", "state_hashes_matched"});
        return c.is_number() && c.get<double>() >= 3;
      },
      seconds(60), "the backup to match three of the primary's state hashes");
  EXPECT_EQ(str(node(s, "a"), {"status", "engine", "name"}), "jit") << s.dump();
  EXPECT_EQ(str(node(s, "b"), {"status", "engine", "name"}), "interp") << s.dump();
  EXPECT_GT(num(node(s, "a"), {"status", "engine", "jit_code_bytes"}), 0) << s.dump();
  EXPECT_LE(num(node(s, "a"), {"status", "engine", "jit_code_bytes"}),
            num(node(s, "a"), {"status", "engine", "jit_code_capacity"}));
  ProcessResult k = run_process({kFtvm, "kill", "primary", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  EXPECT_EQ(role_of(node(status(), "b")), "primary");
}

// A primary whose main loop is stuck while its channel thread lives on
// (here: only the main thread is stopped, by ptrace; in life: a blocked
// write, a livelock) keeps heartbeating. Its heartbeats carry the main
// loop's progress, so the backup sees a guest that should run and does not
// advance, and takes over; the woken primary then halts and sends nothing.
TEST_F(FtPair, APrimaryWhoseMainLoopIsStuckIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(up());
  LanAudit audit(name_);
  ASSERT_TRUE(audit.ready());
  auto load = start_load(20);
  wait_for_traffic("a", 2000);
  const pid_t pid = static_cast<pid_t>(num(node(status(), "a"), {"status", "pid"}));
  ASSERT_GT(pid, 0);
  // The main thread's tid is the pid; ptrace stops that thread alone.
  ASSERT_EQ(ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0) << strerror(errno);
  int ws = 0;
  ASSERT_EQ(waitpid(pid, &ws, __WALL), pid);
  const auto stuck = Clock::now();
  const json after = wait_for(
      [&](const json& s) { return str(node(s, "b"), {"status", "role"}) == "primary"; },
      seconds(kSanitized ? 60 : 20), "the backup to replace the stuck primary");
  // Usually the backup sees a guest that should run and does not advance.
  // When the stop lands while the main thread holds a lock the channel
  // thread needs (the endpoint's, or the socket's while writing), the
  // channel falls silent too and silence is the reason: replaced either way.
  const std::string reason = str(node(after, "b"), {"status", "last_failover", "reason"});
  EXPECT_TRUE(reason.find("has not advanced") != std::string::npos ||
              reason.find("silent") != std::string::npos)
      << after.dump();
  ASSERT_EQ(ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0) << strerror(errno);
  const auto woken = Clock::now();
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  // The woken primary never speaks again: it fences, loses the claim, halts.
  EXPECT_EQ(audit.frames_since("pri", woken + milliseconds(50)), 0u);
  EXPECT_GT(audit.frames_since("bak", stuck), 0u);
  const json s = status();
  EXPECT_NE(role_of(node(s, "a")), "primary") << s.dump();
  EXPECT_EQ(num(node(s, "b"), {"status", "epoch"}), 2);
}

TEST_F(FtPair, KillingTheBackupLetsThePrimaryGoSolo) {
  // A killed backup's connection closes at once; the longer failure timeout
  // only keeps a primary starved of CPU by a busy machine from being taken
  // for dead before the kill (which this test is not about).
  ASSERT_NO_FATAL_FAILURE(up({"--timeout-ms", "2000"}));
  auto load = start_load(8);
  wait_for_traffic("a", 2000);
  ProcessResult k = run_process({kFtvm, "kill", "backup", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const json after = wait_for(
      [&](const json& s) {
        const json a = node(s, "a");
        return role_of(a) == "primary" && str(a, {"status", "state"}) == "solo";
      },
      seconds(30), "the primary to go solo");
  const double released = num(node(after, "a"), {"status", "released", "frames"});
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  const json s = status();
  const json st = at(node(s, "a"), {"status"});
  EXPECT_EQ(num(st, {"epoch"}), 2) << s.dump();
  EXPECT_EQ(str(st, {"last_failover", "kind"}), "went solo (backup lost)");
  // Outputs flow again after going solo.
  EXPECT_GT(num(st, {"released", "frames"}), released + 100);
  EXPECT_EQ(num(st, {"held", "outputs"}), 0);
  // The pair's history: host a started epoch 1 and went on alone at 2.
  ASSERT_TRUE(s.contains("history") && s["history"].size() >= 2) << s.dump();
  EXPECT_EQ(s["history"].back().value("kind", ""), "solo");
  EXPECT_EQ(s["history"].back().value("host", ""), "host-a");
  EXPECT_EQ(s["history"].back().value("epoch", 0), 2);
  EXPECT_EQ(s.value("primary", json()), "host-a");
  EXPECT_TRUE(s.value("backup", json("x")).is_null());
}

// Puts host `h`'s copy of the pair's disk (store()/h) on a tmpfs with 5 MiB
// more room than the guest image's disk has data, which the guest's writes
// soon fill; the other host's copy has room. Removed (after `ftvm down`: a
// file open on it keeps it busy) when the returned guard goes.
struct SmallDisk {
  std::string name, dir;
  bool mounted = false;
  ~SmallDisk() {
    if (!mounted) return;
    run_process({kFtvm, "down", "--name", name}, seconds(60));
    EXPECT_EQ(run_process({"/usr/bin/umount", dir}, seconds(30)).exit_code, 0)
        << "tmpfs left at " << dir;
  }
};

// The backup's own copy of the disk fails: it cannot follow any more and
// leaves the pair (exit 3), saying why; the primary goes solo and the
// clients carry on, losing nothing.
TEST_F(FtPair, ABackupWhoseDiskFailsLeavesAndThePrimaryGoesOnAlone) {
  SmallDisk small{name_, store() + "/b"};
  ASSERT_NO_FATAL_FAILURE(small_disk(small));
  ASSERT_NO_FATAL_FAILURE(up({"--timeout-ms", "2000"}));
  // 16 KiB values, each in Redis's append-only file: the backup's copy is
  // full after about 300 (a second or so); 4 s of them (at most about 2000,
  // 32 MiB) leave room in the guest's own 64 MiB file system.
  auto load = start_load(4, 2, {"--value-size", "16384"});
  const json after = wait_for(
      [&](const json& s) {
        const json a = node(s, "a");
        return role_of(a) == "primary" && str(a, {"status", "state"}) == "solo";
      },
      seconds(kSanitized ? 120 : 60), "the primary to go solo when the backup's disk fails");
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  EXPECT_EQ(role_of(node(after, "b")), "gone") << after.dump();
  std::ifstream in(dir() + "/b.log");
  const std::string b_log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(b_log.find("leaving the pair"), std::string::npos) << b_log;
  EXPECT_NE(b_log.find("this host's copy of the disk failed"), std::string::npos) << b_log;
  EXPECT_EQ(str(node(status(), "a"), {"status", "last_failover", "kind"}), "went solo (backup lost)");
}

// The primary's own copy fails: its guest sees I/O errors (Redis, which
// cannot write its append-only file, gives up), and the backup's guest sees
// the same ones, since the failures are in the log with what reached the
// primary's disk. The backup never leaves, and the state hashes, which
// cover each host's copy, go on matching: the copies stay equal.
TEST_F(FtPair, APrimaryDiskFailureIsSeenByBothGuestsAndTheCopiesStayEqual) {
  SmallDisk small{name_, store() + "/a"};
  ASSERT_NO_FATAL_FAILURE(small_disk(small));
  ASSERT_NO_FATAL_FAILURE(up({"--timeout-ms", "2000", "--hash-interval", "5000000"}));
  auto load = start_load(4, 2, {"--value-size", "16384"});
  ASSERT_NO_FATAL_FAILURE(finish(*load));  // it fails once Redis cannot write: the guest's business
  const json failed = wait_for(
      [&](const json& s) { return num(node(s, "a"), {"status", "disk", "host_failures"}) > 0; },
      seconds(60), "the primary's disk to fail");
  const double hashes = num(node(failed, "b"), {"status", "checks", "state_hashes_matched"});
  const json later = wait_for(
      [&](const json& s) {
        return num(node(s, "b"), {"status", "checks", "state_hashes_matched"}) >= hashes + 2;
      },
      seconds(kSanitized ? 180 : 90), "two more state hashes to match after the failure");
  EXPECT_EQ(str(node(later, "a"), {"status", "state"}), "paired") << later.dump();
  EXPECT_EQ(str(node(later, "b"), {"status", "state"}), "replaying") << later.dump();
  EXPECT_EQ(num(node(later, "b"), {"status", "disk", "host_failures"}), 0) << later.dump();
  std::ifstream in(dir() + "/a.log");
  const std::string a_log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(a_log.find("logged for the backup"), std::string::npos) << a_log;
}

TEST_F(FtPair, CuttingTheLoggingLinkLeavesExactlyOneSideRunning) {
  ASSERT_NO_FATAL_FAILURE(up());
  LanAudit audit(name_);
  ASSERT_TRUE(audit.ready());
  auto load = start_load(10);
  wait_for_traffic("a", 2000);
  ProcessResult c = run_process({"/bin/bash", kFtnet, "cut-log", name_}, seconds(20));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const auto cut = Clock::now();
  const json s = wait_for(
      [&](const json& st) {
        const std::string a = role_of(node(st, "a")), b = role_of(node(st, "b"));
        return (a == "gone") != (b == "gone") && (a == "primary" || b == "primary") &&
               str(node(st, a == "gone" ? "b" : "a"), {"status", "state"}) == "solo";
      },
      seconds(30), "exactly one side to carry on");
  const bool a_won = role_of(node(s, "a")) == "primary";
  const std::string winner = a_won ? "a" : "b";
  EXPECT_EQ(num(node(s, winner.c_str()), {"status", "epoch"}), 2);
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  // The loser emitted nothing after the cut (a primary's outputs were held
  // for acknowledgements that could no longer come; a backup never emits).
  const std::string loser_port = a_won ? "bak" : "pri";
  EXPECT_EQ(audit.frames_since(loser_port, cut + milliseconds(20)), 0u);
  EXPECT_GT(audit.frames_since(a_won ? "pri" : "bak", cut), 0u);
  std::ifstream log(dir() + "/" + (a_won ? "b" : "a") + ".log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("halting for good"), std::string::npos) << text;
}

TEST_F(FtPair, WithoutTheArbiterNobodyGoesLiveUntilItReturns) {
  ASSERT_NO_FATAL_FAILURE(up());
  LanAudit audit(name_);
  ASSERT_TRUE(audit.ready());
  auto load = start_load(12);
  wait_for_traffic("a", 2000);
  ProcessResult k = run_process({kFtvm, "kill", "arbiter", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  ProcessResult c = run_process({"/bin/bash", kFtnet, "cut-log", name_}, seconds(20));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const auto cut = Clock::now();
  // Both sides notice the silence and wait for the arbiter...
  json s = wait_for(
      [&](const json& st) {
        const json a = node(st, "a"), b = node(st, "b");
        return str(a, {"status", "state"}) == "claiming" &&
               str(b, {"status", "state"}) == "claiming" &&
               at(a, {"status", "arbiter_unreachable"}).is_string() &&
               at(b, {"status", "arbiter_unreachable"}).is_string();
      },
      seconds(30), "both sides to wait for the arbiter");
  // ... and stay that way: nobody goes live, nothing held is released.
  const double a_released = num(node(s, "a"), {"status", "released", "frames"});
  std::this_thread::sleep_for(seconds(2));  // an observation window, not a synchronisation
  s = status();
  EXPECT_EQ(str(node(s, "a"), {"status", "state"}), "claiming");
  EXPECT_EQ(str(node(s, "b"), {"status", "state"}), "claiming");
  EXPECT_EQ(num(node(s, "a"), {"status", "released", "frames"}), a_released);
  const auto window_end = Clock::now();
  EXPECT_EQ(audit.frames_since("pri", cut + milliseconds(20)), 0u);
  EXPECT_EQ(audit.frames_since("bak", cut), 0u);

  // The arbiter returns, with its grants intact: exactly one side carries on.
  spawn({"/usr/bin/ip", "netns", "exec", name_ + "-arb", kFtvm, "arbiter", "--listen",
         "10.79.0.1:7000", "--data", store(), "--secret", dir() + "/secret"});
  s = wait_for(
      [&](const json& st) {
        const std::string a = role_of(node(st, "a")), b = role_of(node(st, "b"));
        return (a == "gone") != (b == "gone") &&
               str(node(st, a == "gone" ? "b" : "a"), {"status", "state"}) == "solo";
      },
      seconds(30), "exactly one side to carry on once the arbiter is back");
  const bool a_won = role_of(node(s, "a")) == "primary";
  EXPECT_EQ(num(node(s, a_won ? "a" : "b"), {"status", "epoch"}), 2);
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  EXPECT_EQ(audit.frames_since(a_won ? "bak" : "pri", window_end), 0u);
}

// Restarting a whole pair keeps its arbiter store and its disks: each host's
// copy of /data (Redis's append-only file, fsynced before every reply) lives
// in the pair's state directory; after a failover the survivor's copy is the
// most advanced, and the next `ftvm up` starts both hosts from it, so every
// write a client saw acknowledged, before and after the failover, is there.
TEST_F(FtPair, ANewBackupJoinsAfterEachFailureSoFiveSuccessiveKillsLoseNoWrite) {
  reprotect_ = true;
  ASSERT_NO_FATAL_FAILURE(up());
  auto load = start_load(kSanitized ? 120 : 45);
  wait_for_traffic("a", kSanitized ? 200 : 1000);
  // Each kill: the backup takes over, the supervisor starts a new backup on
  // the dead host, it joins the running primary by state transfer, and the
  // pair is protected again: a state hash -- RAM, devices and the disk copy
  // -- matched between the two hosts since the join.
  std::vector<std::string> expected = {"start host-a 1"};
  json s;
  for (int kill = 1; kill <= 5; ++kill) {
    const std::string from = kill % 2 == 1 ? "a" : "b", to = kill % 2 == 1 ? "b" : "a";
    const int epoch = kill + 1;
    ProcessResult k = run_process({kFtvm, "kill", "primary", "--name", name_}, seconds(20));
    ASSERT_EQ(k.exit_code, 0) << k.err;
    EXPECT_NE(k.err.find("host " + from), std::string::npos) << k.err;
    s = wait_for(
        [&](const json& st) {
          return at(st, {"primary"}) == json("host-" + to) &&
                 at(st, {"backup"}) == json("host-" + from) && at(st, {"epoch"}) == json(epoch) &&
                 at(st, {"paired"}) == json(true);
        },
        seconds(kSanitized ? 180 : 60), "the pair to be protected again");
    const json t = at(node(s, to.c_str()), {"status", "last_transfer"});
    EXPECT_EQ(str(t, {"phase"}), "done") << kill << t.dump();
    EXPECT_GE(num(t, {"pages"}), 128 * 256) << kill << t.dump();  // every page of 128 MiB once
    EXPECT_LT(num(t, {"pause_ms"}), 1000) << kill << t.dump();
    EXPECT_GE(num(node(s, from.c_str()), {"status", "checks", "state_hashes_matched"}), 1) << kill;
    expected.push_back("failover host-" + to + " " + std::to_string(epoch));
    expected.push_back("reprotect host-" + to + " " + std::to_string(epoch));
    wait_for_traffic(to.c_str(), num(node(s, to.c_str()), {"status", "released", "frames"}) + 200);
  }
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  std::vector<std::string> kinds;
  for (const json& e : at(s, {"history"})) {
    kinds.push_back(e.value("kind", "") + " " + e.value("host", "") + " " +
                    std::to_string(e.value("epoch", 0)));
  }
  EXPECT_EQ(kinds, expected) << at(s, {"history"}).dump();
  EXPECT_TRUE(at(s, {"supervisor", "running"}) == json(true)) << s.dump();
}

TEST_F(FtPair, MigrationMovesThePrimaryBackAndForthWithoutLosingAWrite) {
  reprotect_ = true;
  ASSERT_NO_FATAL_FAILURE(up());
  auto load = start_load(kSanitized ? 60 : 25);
  wait_for_traffic("a", kSanitized ? 200 : 1000);
  for (const auto& [to, epoch] : {std::pair{"b", 2}, std::pair{"a", 3}}) {
    ProcessResult m = run_process({kFtvm, "migrate", "--name", name_}, seconds(180));
    ASSERT_EQ(m.exit_code, 0) << m.err;
    EXPECT_NE(m.err.find("done: host-" + std::string(to) + " is primary"), std::string::npos)
        << m.err;
    const json s = status();
    EXPECT_EQ(at(s, {"primary"}), json(std::string("host-") + to)) << s.dump();
    EXPECT_EQ(at(s, {"epoch"}), json(epoch)) << s.dump();
    EXPECT_EQ(at(s, {"paired"}), json(true)) << s.dump();
    const json f = at(node(s, to), {"status", "last_failover"});
    EXPECT_EQ(str(f, {"kind"}), "took over (planned migration)") << f.dump();
    wait_for_traffic(to, 200);
  }
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  std::vector<std::string> kinds;
  for (const json& e : at(status(), {"history"})) {
    kinds.push_back(e.value("kind", "") + " " + e.value("host", "") + " " +
                    std::to_string(e.value("epoch", 0)));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"start host-a 1", "migrate host-b 2",
                                             "reprotect host-b 2", "migrate host-a 3",
                                             "reprotect host-a 3"}));
  // The old primaries handed over and stopped cleanly.
  std::ifstream alog(dir() + "/a.log");
  const std::string a((std::istreambuf_iterator<char>(alog)), std::istreambuf_iterator<char>());
  EXPECT_NE(a.find("the handover is complete"), std::string::npos) << a.substr(a.size() - 3000);
}

TEST_F(FtPair, MigratingWithoutTheArbiterIsRefusedAndChangesNothing) {
  // Frequent state hashes: the idle pair counts as protected within seconds.
  ASSERT_NO_FATAL_FAILURE(up({"--hash-interval", "5000000"}));
  wait_for([&](const json& st) { return at(st, {"paired"}) == json(true); }, seconds(60),
           "the pair to be protected");
  ProcessResult k = run_process({kFtvm, "kill", "arbiter", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  ProcessResult m = run_process({kFtvm, "migrate", "--name", name_}, seconds(30));
  EXPECT_EQ(m.exit_code, 1) << m.err;
  EXPECT_NE(m.err.find("does not answer"), std::string::npos) << m.err;
  const json s = status();
  EXPECT_EQ(str(node(s, "a"), {"status", "state"}), "paired") << s.dump();
  EXPECT_EQ(str(node(s, "b"), {"status", "state"}), "replaying") << s.dump();
}

TEST_F(FtPair, MigratingAPairThatIsNotProtectedIsRefused) {
  ASSERT_NO_FATAL_FAILURE(up());
  ProcessResult k = run_process({kFtvm, "kill", "backup", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  wait_for([&](const json& st) { return str(node(st, "a"), {"status", "state"}) == "solo"; },
           seconds(30), "the primary to go solo");
  ProcessResult m = run_process({kFtvm, "migrate", "--name", name_}, seconds(30));
  EXPECT_EQ(m.exit_code, 1) << m.err;
  EXPECT_NE(m.err.find("is not protected"), std::string::npos) << m.err;
  EXPECT_EQ(str(node(status(), "a"), {"status", "state"}), "solo");  // nothing was touched
}

TEST_F(FtPair, AJoinCutShortByEitherSideLeavesNoHalfMadeBackup) {
  reprotect_ = true;
  // A slow transfer (about 30 MB at 4 MB/s) leaves time to kill either side
  // in the middle of it.
  ASSERT_NO_FATAL_FAILURE(up({"--transfer-mbps", "4"}));
  auto kill = [&](const char* which) {
    ProcessResult k = run_process({kFtvm, "kill", which, "--name", name_}, seconds(20));
    ASSERT_EQ(k.exit_code, 0) << k.err;
  };
  auto joining_midway = [&](const json& st) {
    return at(st, {"transfer"}).is_object() && str(st, {"transfer", "phase"}) == "precopy" &&
           num(st, {"transfer", "bytes"}) > 2e6;
  };
  const seconds patience(kSanitized ? 180 : 60);
  auto load = start_load(kSanitized ? 40 : 20);
  wait_for_traffic("a", kSanitized ? 100 : 500);

  // The joining backup dies: the primary discards the transfer and serves on
  // alone at its epoch; the supervisor's next backup joins from scratch.
  ASSERT_NO_FATAL_FAILURE(kill("backup"));
  wait_for(joining_midway, patience, "a new backup's transfer under way");
  ASSERT_NO_FATAL_FAILURE(kill("backup"));
  json s = wait_for(
      [&](const json& st) {
        return str(node(st, "a"), {"status", "last_transfer", "phase"}) == "failed";
      },
      patience, "the primary to give the transfer up");
  EXPECT_EQ(str(node(s, "a"), {"status", "state"}), "solo") << s.dump();
  EXPECT_EQ(num(node(s, "a"), {"status", "epoch"}), 2) << s.dump();
  // Two joiners at once on host b: a second backup process (the saved
  // command, as an operator might start it) while the supervisor's joins is
  // refused, and the first join goes on.
  wait_for(joining_midway, patience, "the supervisor's retry under way");
  {
    std::ifstream f(dir() + "/b.backup.json");
    const json argv = json::parse(f, nullptr, false);
    ASSERT_TRUE(argv.is_array() && !argv.empty()) << dir() << "/b.backup.json";
    std::vector<std::string> cmd = {"/usr/bin/ip", "netns", "exec", name_ + "-bak"};
    for (const json& a : argv) cmd.push_back(a.get<std::string>());
    ProcessResult second = run_process(cmd, seconds(60));
    ASSERT_FALSE(second.timed_out) << second.err;
    EXPECT_EQ(second.exit_code, 2) << second.err;
    const json now = status();
    EXPECT_TRUE(at(now, {"transfer"}).is_object() || at(now, {"paired"}) == json(true))
        << "the first joiner was disturbed: " << now.dump();
  }
  s = wait_for(
      [&](const json& st) {
        return at(st, {"backup"}) == json("host-b") && at(st, {"paired"}) == json(true) &&
               at(st, {"epoch"}) == json(2);
      },
      patience, "a retried join to protect the pair");
  EXPECT_EQ(str(node(s, "a"), {"status", "last_transfer", "phase"}), "done") << s.dump();
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);

  // The primary dies in the middle of a join: the half-made backup never
  // goes live (nobody claims the next epoch) and says so.
  ASSERT_NO_FATAL_FAILURE(kill("backup"));
  wait_for(joining_midway, patience, "another transfer under way");
  ASSERT_NO_FATAL_FAILURE(kill("primary"));
  s = wait_for(
      [&](const json& st) {
        return role_of(node(st, "a")) == "gone" && role_of(node(st, "b")) == "gone";
      },
      patience, "the joining backup to give up");
  EXPECT_TRUE(at(s, {"primary"}).is_null()) << s.dump();
  const json& history = at(s, {"history"});
  ASSERT_TRUE(history.is_array() && !history.empty()) << s.dump();
  // The last epoch taken is the primary's going solo: no takeover after it.
  EXPECT_EQ(history.back().value("kind", ""), "solo") << history.dump();
  EXPECT_EQ(history.back().value("host", ""), "host-a") << history.dump();
  EXPECT_EQ(history.back().value("epoch", 0), 3) << history.dump();
  std::ifstream blog(dir() + "/b.log");
  const std::string b((std::istreambuf_iterator<char>(blog)), std::istreambuf_iterator<char>());
  EXPECT_NE(b.find("the state transfer failed"), std::string::npos) << b.substr(b.size() - 2000);
  EXPECT_NE(b.find("never goes live"), std::string::npos);
}

TEST_F(FtPair, ARestartedPairKeepsItsStoreAndStartsAtTheNextEpoch) {
  ASSERT_NO_FATAL_FAILURE(up());
  EXPECT_TRUE(std::filesystem::exists(store() + "/grants.log"));
  EXPECT_TRUE(std::filesystem::exists(store() + "/a/data.img"));
  EXPECT_TRUE(std::filesystem::exists(store() + "/b/data.img"));
  // `ftvm up` empties the run directory: the reports are kept with the store.
  auto keep_report = [&](const std::string& as) {
    std::filesystem::copy_file(dir() + "/load.json", store() + "/" + as,
                               std::filesystem::copy_options::overwrite_existing);
  };
  auto before = start_load(3);
  ASSERT_NO_FATAL_FAILURE(finish(*before));
  expect_load_survived(*before);
  keep_report("before.json");
  ProcessResult k = run_process({kFtvm, "kill", "primary", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  wait_for([&](const json& st) { return role_of(node(st, "b")) == "primary" &&
                                        num(node(st, "b"), {"status", "epoch"}) == 2; },
           seconds(30), "the backup to take over at epoch 2");
  // The survivor marked its copy with the epoch it took.
  {
    std::ifstream mark(store() + "/b/data.img.epoch.json");
    const json m = json::parse(mark, nullptr, false);
    EXPECT_EQ(m.value("epoch", 0), 2) << m.dump();
    EXPECT_EQ(m.value("kind", ""), "failover") << m.dump();
  }
  auto after = start_load(2);
  ASSERT_NO_FATAL_FAILURE(finish(*after));
  expect_load_survived(*after);
  keep_report("after.json");
  ProcessResult d = run_process({kFtvm, "down", "--name", name_}, seconds(60));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  // Up again: the grant history is still there, and the pair goes on from it.
  ProcessResult r = run_process({kFtvm, "up", "--name", name_, "--memory", "128",
                                 "--hash-interval", "200000000"},
                                seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("last held epoch 2 (by host-b#"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("no arbiter store yet"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("host b's copy is the most advanced"), std::string::npos) << r.err;
  const json s = status();
  EXPECT_EQ(str(node(s, "a"), {"status", "state"}), "paired") << s.dump();
  EXPECT_EQ(num(node(s, "a"), {"status", "epoch"}), 3) << s.dump();
  EXPECT_EQ(str(node(s, "b"), {"status", "role"}), "backup") << s.dump();
  // Redis reloaded its append-only file: every acknowledged write is there.
  for (const char* report : {"before.json", "after.json"}) {
    ProcessResult v = run_process({"/bin/bash", kFtnet, "exec", name_, "client", kLoad,
                                   "--verify-report", store() + "/" + report},
                                  seconds(120));
    EXPECT_EQ(v.exit_code, 0) << report << ": " << v.out << v.err;
    const json j = json::parse(v.out, nullptr, false);
    EXPECT_GT(num(j, {"verify", "ok"}), 100) << report << ": " << v.out;
  }
}

TEST_F(FtPair, ForgedReplayedAndStaleMessagesAreRejectedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(up());
  Result<auth::Secret> secret = auth::Secret::load(dir() + "/secret");
  ASSERT_TRUE(secret) << secret.error();
  const auth::Secret wrong = auth::Secret::from_bytes(std::vector<uint8_t>(32, 7));
  // A forged acknowledgement would release held outputs early if applied.
  const std::string ack = ft::encode_ack({1'000'000'000, 1'000'000'000, 0, 0, 0, 0});
  std::string bytes;
  using ft::Direction;
  using ft::Message;
  using ft::MsgType;
  bytes += ft::seal_message(wrong, Message{MsgType::kAck, Direction::kToPrimary, 1, 1u << 30, ack});
  bytes += ft::seal_message(*secret, Message{MsgType::kAck, Direction::kToPrimary, 1, 1, ack});
  bytes += ft::seal_message(*secret, Message{MsgType::kAck, Direction::kToPrimary, 0, 1u << 30, ack});
  bytes += ft::seal_message(*secret, Message{MsgType::kAck, Direction::kToBackup, 1, 1u << 30, ack});
  std::string tampered =
      ft::seal_message(*secret, Message{MsgType::kAck, Direction::kToPrimary, 1, 1u << 31, ack});
  tampered[30] ^= 1;
  bytes += tampered;
  bool sent = false;
  std::thread intruder([&] {
    if (!enter_netns(name_ + "-bak")) return;
    Result<int> fd = ft::connect_tcp("10.78.0.1:7100", milliseconds(5000));
    if (!fd) return;
    sent = send(*fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
    shutdown(*fd, SHUT_WR);
    char c;
    pollfd p{*fd, POLLIN, 0};
    poll(&p, 1, 5000);  // the primary closes it after reading
    (void)!recv(*fd, &c, 1, 0);
    close(*fd);
  });
  intruder.join();
  ASSERT_TRUE(sent);
  const json s = wait_for(
      [&](const json& st) {
        const json r = at(node(st, "a"), {"status", "rejected"});
        return num(r, {"forged"}) >= 2 && num(r, {"replayed"}) >= 1 &&
               num(r, {"stale_epoch"}) >= 1 && num(r, {"wrong_direction"}) >= 1;
      },
      seconds(20), "the primary to count the rejected messages");
  const json a = at(node(s, "a"), {"status"});
  EXPECT_EQ(str(a, {"state"}), "paired");
  EXPECT_EQ(num(a, {"epoch"}), 1);
  // Nothing was applied: the acknowledged position is still the backup's.
  EXPECT_LE(num(a, {"log", "acked_records"}), num(a, {"log", "records"}));
  EXPECT_GE(num(a, {"log", "acked_records"}), 0);
  auto load = start_load(4);
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
}

TEST_F(FtPair, ABackupThatFallsBehindSlowsThePrimaryDown) {
  // A long failure timeout: the stopped backup is slow, not dead.
  ASSERT_NO_FATAL_FAILURE(up({"--timeout-ms", "20000", "--max-lag-ms", "100"}));
  auto load = start_load(8);
  wait_for_traffic("a", 2000);
  ProcessResult k = run_process({kFtvm, "kill", "backup", "--signal", "STOP", "--name", name_},
                                seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  // The primary runs on until the lag bound, then stops running the guest.
  const json first = wait_for(
      [&](const json& st) { return at(node(st, "a"), {"status", "lag", "throttled"}) == json(true); },
      seconds(20), "the primary to throttle");
  const double instret = num(node(first, "a"), {"status", "instret"});
  std::this_thread::sleep_for(seconds(1));  // an observation window, not a synchronisation
  const json second = status();
  const json a = at(node(second, "a"), {"status"});
  EXPECT_EQ(str(a, {"state"}), "paired");
  EXPECT_EQ(num(a, {"instret"}), instret) << "the primary kept running past the lag bound";
  EXPECT_EQ(at(a, {"lag", "throttled"}), json(true));
  EXPECT_GE(num(a, {"lag", "guest_ms"}), 100);
  k = run_process({kFtvm, "kill", "backup", "--signal", "CONT", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  // Once the backup runs again it catches up, and the primary moves on.
  const json moving = wait_for(
      [&](const json& st) { return num(node(st, "a"), {"status", "instret"}) > instret; },
      seconds(60), "the primary to run again after the backup caught up");
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  const json end = status();
  EXPECT_EQ(str(node(end, "a"), {"status", "state"}), "paired");
  EXPECT_EQ(str(node(end, "b"), {"status", "role"}), "backup");
  EXPECT_GT(num(node(end, "a"), {"status", "instret"}), instret) << end.dump();
  EXPECT_GE(num(node(end, "a"), {"status", "lag", "throttle_episodes"}), 1);
}

TEST_F(FtPair, AFrozenPrimaryThatWakesUpAfterTheTakeoverEmitsNothing) {
  ASSERT_NO_FATAL_FAILURE(up());
  LanAudit audit(name_);
  ASSERT_TRUE(audit.ready());
  auto load = start_load(12);
  wait_for_traffic("a", 2000);
  // Freeze the primary: its sockets stay open, it sends nothing (a hung host).
  ProcessResult k = run_process({kFtvm, "kill", "a", "--signal", "STOP", "--name", name_},
                                seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  wait_for([&](const json& st) { return role_of(node(st, "b")) == "primary" &&
                                        str(node(st, "b"), {"status", "state"}) == "solo"; },
           seconds(30), "the backup to take over by silence");
  // The old primary wakes up holding outputs, some of them acknowledged
  // before the backup left: it must release none, lose the claim and halt.
  k = run_process({kFtvm, "kill", "a", "--signal", "CONT", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  const auto woke = Clock::now();
  wait_for([&](const json& st) { return role_of(node(st, "a")) == "gone"; }, seconds(30),
           "the old primary to halt");
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  EXPECT_EQ(audit.frames_since("pri", woke), 0u);
  std::ifstream log(dir() + "/a.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("halting for good"), std::string::npos) << text;
  EXPECT_NE(text.find("releasing nothing until"), std::string::npos) << text;
  const json s = status();
  EXPECT_EQ(num(node(s, "b"), {"status", "epoch"}), 2);
  EXPECT_EQ(str(node(s, "b"), {"status", "last_failover", "kind"}), "took over (primary lost)");
}

TEST_F(FtPair, FailoverWithTheEtcdArbiter) {
  ASSERT_NO_FATAL_FAILURE(up({"--arbiter", "etcd"}));
  auto load = start_load(10);
  wait_for_traffic("a", 2000);
  ProcessResult k = run_process({kFtvm, "kill", "primary", "--name", name_}, seconds(20));
  ASSERT_EQ(k.exit_code, 0) << k.err;
  ASSERT_NO_FATAL_FAILURE(finish(*load));
  expect_load_survived(*load);
  const json s = status();
  ASSERT_EQ(role_of(node(s, "b")), "primary") << s.dump() << "\nkill: " << k.err << "\nload: "
                                              << load->report.dump();
  EXPECT_EQ(num(node(s, "b"), {"status", "epoch"}), 2);
  EXPECT_NE(str(node(s, "b"), {"status", "arbiter"}).find("etcd://"), std::string::npos);
}

}  // namespace
}  // namespace ftvm::test
