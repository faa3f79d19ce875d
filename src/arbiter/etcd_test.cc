// The etcd backend against a real etcd process, started by each test on
// loopback ports chosen free, in a temporary data directory.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "arbiter/client.h"
#include "arbiter/etcd_client.h"

namespace ftvm::arbiter {
namespace {

using namespace std::chrono_literals;
using internal::Clock;

// The `etcd` executable on PATH, or "" when it is not installed.
std::string find_etcd() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/etcd";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A loopback TCP port nobody listens on right now.
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof sa;
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  const std::string t = s.str();
  return t.size() > 4000 ? "..." + t.substr(t.size() - 4000) : t;
}

class EtcdArbiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string etcd = find_etcd();
    ASSERT_FALSE(etcd.empty())
        << "etcd is not installed (no `etcd` on PATH): run scripts/install-deps.sh, which "
           "installs the Debian package etcd-server";
    char tmpl[] = "/tmp/ftvm-arbiter-etcd-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A port picked free may be taken before etcd binds it; then etcd exits
    // and we try other ports.
    std::string why;
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) why = start(etcd);
    ASSERT_GT(pid_, 0) << why;
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline = Clock::now() + 10s;
      int status = 0;
      pid_t r = 0;
      while ((r = ::waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
      }
      if (r == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Starts etcd and waits until it is healthy; returns why not otherwise
  // (then pid_ is -1 again).
  std::string start(const std::string& etcd) {
    const uint16_t client_port = free_port(), peer_port = free_port();
    const std::string client = fmt::format("http://127.0.0.1:{}", client_port);
    const std::string peer = fmt::format("http://127.0.0.1:{}", peer_port);
    const std::string log = dir_ + "/etcd.log";
    std::vector<std::string> args = {etcd,
                                     "--name=ftvm-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=ftvm-test=" + peer,
                                     "--initial-cluster-state=new"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd < 0) return "cannot create " + log;
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Dies with the test process, whatever way that ends.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    if (pid < 0) return "cannot fork";
    pid_ = pid;
    // Ready when /health says so; give up at the deadline.
    const auto deadline = Clock::now() + 30s;
    const Endpoint ep{"127.0.0.1", client_port};
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "etcd exited during start-up; its log:\n" + read_text(log);
      }
      auto r = internal::http_request(ep, "GET", "/health", "", Clock::now() + 1s, "etcd", 1s);
      if (r.ok() && r->status == 200 && r->body.find("\"true\"") != std::string::npos) {
        url_ = fmt::format("etcd://127.0.0.1:{}", client_port);
        return "";
      }
      std::this_thread::sleep_for(20ms);  // poll interval, not synchronisation
    }
    return "etcd did not become healthy within 30 s; its log:\n" + read_text(log);
  }

  std::unique_ptr<Client> client() {
    auto c = connect_arbiter(url_, nullptr);
    EXPECT_TRUE(c.ok()) << c.error();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::string dir_, url_;
  pid_t pid_ = -1;
};

TEST_F(EtcdArbiterTest, FirstClaimWins) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  auto g = c->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
  EXPECT_EQ(g->holder, c->claimant("alice"));
  EXPECT_EQ(g->epoch, 1u);
  EXPECT_EQ(c->describe(), url_);
}

TEST_F(EtcdArbiterTest, SecondClaimantForTheSameEpochIsDeniedWithTheHolderNamed) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->claim("vm1", 3, "alice", 5s).ok());
  auto g = c->claim("vm1", 3, "bob", 5s);
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_FALSE(g->won);
  EXPECT_EQ(g->holder, c->claimant("alice"));
  EXPECT_EQ(g->held_epoch, 3u);
}

TEST_F(EtcdArbiterTest, LowerEpochAfterAHigherIsDenied) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  auto a = c->claim("vm1", 5, "alice", 5s);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(a->won);
  for (uint64_t epoch : {0u, 3u, 4u}) {
    for (const char* who : {"alice", "bob"}) {
      auto g = c->claim("vm1", epoch, who, 5s);
      ASSERT_TRUE(g.ok()) << g.error();
      EXPECT_FALSE(g->won) << who << " epoch " << epoch;
      EXPECT_EQ(g->holder, c->claimant("alice"));
      EXPECT_EQ(g->held_epoch, 5u);
    }
  }
  auto next = c->claim("vm1", 6, "bob", 5s);
  ASSERT_TRUE(next.ok()) << next.error();
  EXPECT_TRUE(next->won);
  // Other vms are independent.
  auto other = c->claim("vm2", 1, "carol", 5s);
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_TRUE(other->won);
}

TEST_F(EtcdArbiterTest, RepeatOfAWonClaimReturnsTheSameGrant) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  auto first = c->claim("vm1", 2, "alice", 5s);
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_TRUE(first->won);
  auto again = c->claim("vm1", 2, "alice", 5s);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_TRUE(again->won);
  EXPECT_EQ(again->holder, c->claimant("alice"));
  EXPECT_EQ(again->epoch, 2u);
  EXPECT_EQ(again->held_epoch, 2u);
}

TEST_F(EtcdArbiterTest, AStaleEpochIsRefusedEvenToItsOwnHolder) {
  auto a = client(), b = client();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto latest = a->latest("rs", 5s);
  ASSERT_TRUE(latest.ok()) << latest.error();
  EXPECT_EQ(latest->epoch, 0u);
  ASSERT_TRUE(a->claim("rs", 1, "host-a", 5s)->won);
  ASSERT_TRUE(b->claim("rs", 2, "host-b", 5s)->won);
  // host-a's own grant of epoch 1, repeated after the vm moved on: refused.
  auto stale = a->claim("rs", 1, "host-a", 5s);
  ASSERT_TRUE(stale.ok()) << stale.error();
  EXPECT_FALSE(stale->won);
  EXPECT_EQ(stale->held_epoch, 2u);
  EXPECT_EQ(stale->holder, b->claimant("host-b"));
  // The latest grant's holder retrying wins; the same host id with a new nonce does not.
  auto retry = b->claim("rs", 2, "host-b", 5s);
  ASSERT_TRUE(retry.ok()) << retry.error();
  EXPECT_TRUE(retry->won);
  auto b2 = client();
  ASSERT_NE(b2, nullptr);
  auto other = b2->claim("rs", 2, "host-b", 5s);
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_FALSE(other->won);
  EXPECT_EQ(other->holder, b->claimant("host-b"));
  latest = b2->latest("rs", 5s);
  ASSERT_TRUE(latest.ok()) << latest.error();
  EXPECT_EQ(latest->epoch, 2u);
  EXPECT_EQ(latest->holder, b->claimant("host-b"));
}

TEST_F(EtcdArbiterTest, ConcurrentClaimantsExactlyOneWins) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  // Epoch 1 races on a vm with no grant yet, the later epochs on one with a grant.
  for (uint64_t epoch = 1; epoch <= 4; ++epoch) {
    std::vector<std::future<Result<Grant>>> claims;
    for (int i = 0; i < 6; ++i) {
      claims.push_back(std::async(std::launch::async, [&c, epoch, i] {
        return c->claim("vm1", epoch, "node" + std::to_string(i), 10s);
      }));
    }
    int winners = 0;
    std::set<std::string> holders;
    for (auto& f : claims) {
      Result<Grant> g = f.get();
      ASSERT_TRUE(g.ok()) << g.error();
      winners += g->won ? 1 : 0;
      holders.insert(g->holder);
      EXPECT_EQ(g->won, g->holder == c->claimant("node" + std::to_string(&f - &claims[0])));
      EXPECT_EQ(g->held_epoch, epoch);
    }
    EXPECT_EQ(winners, 1) << "epoch " << epoch;
    EXPECT_EQ(holders.size(), 1u) << "everyone must agree on the holder of epoch " << epoch;
  }
}

TEST_F(EtcdArbiterTest, SameAnswersAsTheEmbeddedStore) {
  auto c = client();
  ASSERT_NE(c, nullptr);
  char tmpl[] = "/tmp/ftvm-arbiter-etcd-store-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  {
    auto store = ArbiterStore::create(tmpl);
    ASSERT_TRUE(store.ok()) << store.error();
    uint64_t x = 12345;  // a fixed LCG: the same claims on every run
    for (int i = 0; i < 60; ++i) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      const std::string vm = "vm" + std::to_string((x >> 33) % 2);
      const uint64_t epoch = (x >> 40) % 8;
      const std::string who = "node" + std::to_string((x >> 50) % 3);
      auto want = (*store)->claim(vm, epoch, c->claimant(who));
      auto got = c->claim(vm, epoch, who, 5s);
      ASSERT_TRUE(want.ok()) << want.error();
      ASSERT_TRUE(got.ok()) << got.error();
      EXPECT_EQ(got->won, want->won) << i;
      EXPECT_EQ(got->holder, want->holder) << i;
      EXPECT_EQ(c->latest(vm, 5s)->epoch, (*store)->latest(vm).epoch) << i;
      EXPECT_EQ(got->held_epoch, want->held_epoch) << i;
    }
  }
  std::filesystem::remove_all(tmpl);
}

TEST(EtcdArbiterClient, NothingListeningIsAnErrorWithinTheTimeout) {
  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  auto c = connect_arbiter(fmt::format("etcd://127.0.0.1:{}", port), nullptr);
  ASSERT_TRUE(c.ok()) << c.error();
  const auto start = Clock::now();
  auto g = (*c)->claim("vm1", 1, "alice", 1s);
  EXPECT_FALSE(g.ok());
  EXPECT_LT(Clock::now() - start, 1500ms);
}

TEST(EtcdArbiterClient, SilentServerIsAnErrorWithinTheTimeout) {
  // Accepts connections (the kernel does) but never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  auto c = connect_arbiter(fmt::format("etcd://127.0.0.1:{}", ntohs(sa.sin_port)), nullptr);
  ASSERT_TRUE(c.ok()) << c.error();
  const auto start = Clock::now();
  auto g = (*c)->claim("vm1", 1, "alice", 300ms);
  EXPECT_FALSE(g.ok());
  EXPECT_GE(Clock::now() - start, 250ms);
  EXPECT_LT(Clock::now() - start, 1500ms);
  ::close(fd);
}

TEST(EtcdArbiterClient, Base64RoundTrip) {
  const std::vector<std::string> samples = {"",      "f",      "fo",
                                            "foo",   "foob",   "fooba",
                                            "foobar", std::string("\0\xff\x10", 3)};
  for (const std::string& s : samples) {
    const std::string e = internal::base64_encode(s);
    EXPECT_EQ(internal::base64_decode(e), s);
  }
  EXPECT_EQ(internal::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(internal::base64_decode("Zm9vYg=="), "foob");
  EXPECT_FALSE(internal::base64_decode("Zm9").has_value());
  EXPECT_FALSE(internal::base64_decode("Zm=v").has_value());
  EXPECT_FALSE(internal::base64_decode("Zm9v!A==").has_value());
}

TEST(EtcdArbiterClient, KeysAreDistinctPerVmAndEpoch) {
  // Fixed-width epochs keep (vm, epoch) -> key one-to-one even for vm ids with slashes.
  EXPECT_NE(internal::etcd_grant_key("a/00000000000000000001", 2),
            internal::etcd_grant_key("a", 1));
  EXPECT_EQ(internal::etcd_grant_key("vm1", 7), "ftvm/arbiter/grant/vm1/00000000000000000007");
  EXPECT_EQ(internal::etcd_latest_key("vm1"), "ftvm/arbiter/latest/vm1");
}

}  // namespace
}  // namespace ftvm::arbiter
