// The arbiter's server and client over real loopback TCP.
#include "arbiter/server.h"

#include "arbiter/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <thread>

namespace ftvm::arbiter {
namespace {

using namespace std::chrono_literals;

class ArbiterServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftvm-arbiter-server-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = ArbiterStore::create(dir_);
    ASSERT_TRUE(store.ok()) << store.error();
    store_ = std::move(*store);
    auto server = Server::bind("127.0.0.1:0", store_.get(), nullptr, 5s);
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(*server);
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
    done_ = std::async(std::launch::async, [this] { return server_->run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->stop();
      ASSERT_EQ(done_.wait_for(10s), std::future_status::ready);
      EXPECT_TRUE(done_.get().ok());
    }
    std::filesystem::remove_all(dir_);
  }

  std::string dir_, addr_;
  std::unique_ptr<ArbiterStore> store_;
  std::unique_ptr<Server> server_;
  std::future<Status> done_;
};

TEST_F(ArbiterServerTest, TwoConcurrentClientsOnlyOneWins) {
  auto client = connect_arbiter(addr_, nullptr);
  ASSERT_TRUE(client.ok()) << client.error();
  Client* c = client->get();
  auto a = std::async(std::launch::async, [c] { return c->claim("vm1", 7, "alice", 5s); });
  auto b = std::async(std::launch::async, [c] { return c->claim("vm1", 7, "bob", 5s); });
  ASSERT_EQ(a.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(b.wait_for(10s), std::future_status::ready);
  Result<Grant> ga = a.get(), gb = b.get();
  ASSERT_TRUE(ga.ok()) << ga.error();
  ASSERT_TRUE(gb.ok()) << gb.error();
  EXPECT_NE(ga->won, gb->won);
  EXPECT_EQ(ga->holder, gb->holder);
  EXPECT_EQ(ga->holder, c->claimant(ga->won ? "alice" : "bob"));
}

TEST_F(ArbiterServerTest, BadRequestGetsAClearError) {
  RequestHandler h(store_.get(), nullptr);
  EXPECT_EQ(h.handle("CLAIM vm1 x alice"), "ERROR epoch must be a decimal number below 2^64");
  EXPECT_EQ(h.handle("CLAIM vm1 18446744073709551616 alice"),
            "ERROR epoch must be a decimal number below 2^64");
  EXPECT_EQ(h.handle("HELLO"),
            "ERROR unknown request (expected CLAIM <vm> <epoch> <claimant> or LATEST <vm>)");
  EXPECT_EQ(h.handle("LATEST vm1"), "LATEST vm1 0 -");
  EXPECT_EQ(h.handle("CLAIM vm1 1 alice extra"), "ERROR expected CLAIM <vm> <epoch> <claimant>");
  EXPECT_EQ(h.handle("CLAIM vm1 1 alice"), "GRANTED vm1 1 alice");
  EXPECT_EQ(h.handle("CLAIM vm1 1 bob"), "DENIED vm1 1 alice 1");
  EXPECT_EQ(h.handle("CLAIM vm1 0 bob"), "DENIED vm1 0 alice 1");
  EXPECT_EQ(h.handle("LATEST vm1"), "LATEST vm1 1 alice");
  EXPECT_EQ(h.handle("LATEST vm1 x"), "ERROR expected LATEST <vm>");
}

TEST_F(ArbiterServerTest, AStaleEpochIsRefusedOverTheWireEvenToItsOwnHolder) {
  auto a = connect_arbiter(addr_, nullptr), b = connect_arbiter(addr_, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->claim("rs", 1, "host-a", 5s)->won);
  ASSERT_TRUE((*b)->claim("rs", 2, "host-b", 5s)->won);
  // host-a's node, restarted or not, asks for epoch 1 again: refused, told where the vm is.
  auto stale = (*a)->claim("rs", 1, "host-a", 5s);
  ASSERT_TRUE(stale.ok()) << stale.error();
  EXPECT_FALSE(stale->won);
  EXPECT_EQ(stale->held_epoch, 2u);
  EXPECT_EQ(stale->holder, (*b)->claimant("host-b"));
  EXPECT_EQ(Client::host_of(stale->holder), "host-b");
  // The holder retrying its latest grant wins; the same host id in another client does not.
  auto retry = (*b)->claim("rs", 2, "host-b", 5s);
  ASSERT_TRUE(retry.ok()) << retry.error();
  EXPECT_TRUE(retry->won);
  auto b2 = connect_arbiter(addr_, nullptr);
  ASSERT_TRUE(b2.ok());
  EXPECT_NE((*b2)->claimant("host-b"), (*b)->claimant("host-b"));
  auto other = (*b2)->claim("rs", 2, "host-b", 5s);
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_FALSE(other->won);
  EXPECT_EQ(other->holder, (*b)->claimant("host-b"));
  auto l = (*b2)->latest("rs", 5s);
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_EQ(l->epoch, 2u);
  EXPECT_EQ(l->holder, (*b)->claimant("host-b"));
}

TEST(ArbiterClientIdentity, ClaimantsAreHostIdPlusAFreshNonce) {
  auto a = connect_arbiter("127.0.0.1:7000", nullptr), b = connect_arbiter("127.0.0.1:7000", nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string id = (*a)->claimant("host-a");
  ASSERT_EQ(id.size(), std::string("host-a#").size() + kNonceHexDigits);
  EXPECT_EQ(id.rfind("host-a#", 0), 0u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 7), std::string::npos) << id;
  EXPECT_EQ((*a)->claimant("host-a"), id);  // stable within one client
  EXPECT_NE((*b)->claimant("host-a"), id);
  EXPECT_TRUE(valid_name((*a)->claimant(std::string(kMaxHostIdLength, 'h'))));
  EXPECT_FALSE(valid_host_id(std::string(kMaxHostIdLength + 1, 'h')));
  EXPECT_FALSE(valid_host_id("a#b"));
  auto g = (*a)->claim("vm1", 1, "a#b", 1s);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("'#'"), std::string::npos) << g.error();
}

TEST_F(ArbiterServerTest, DenialOverTheWireNamesHolderAndHeldEpoch) {
  auto client = connect_arbiter("ftvm://" + addr_, nullptr);
  ASSERT_TRUE(client.ok()) << client.error();
  auto won = (*client)->claim("vm1", 5, "alice", 5s);
  ASSERT_TRUE(won.ok()) << won.error();
  EXPECT_TRUE(won->won);
  auto lost = (*client)->claim("vm1", 3, "bob", 5s);
  ASSERT_TRUE(lost.ok()) << lost.error();
  EXPECT_FALSE(lost->won);
  EXPECT_EQ(lost->holder, (*client)->claimant("alice"));
  EXPECT_EQ(lost->held_epoch, 5u);
  EXPECT_EQ((*client)->describe(), "ftvm://" + addr_);
}

TEST(ArbiterServerDeadline, IdleConnectionIsClosedAtItsDeadline) {
  char tmpl[] = "/tmp/ftvm-arbiter-deadline-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto store = ArbiterStore::create(dir);
  ASSERT_TRUE(store.ok()) << store.error();
  auto server = Server::bind("127.0.0.1:0", store->get(), nullptr, 200ms);
  ASSERT_TRUE(server.ok()) << server.error();
  auto done = std::async(std::launch::async, [&] { return (*server)->run(); });

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((*server)->port());
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  // Send nothing: the server must close the connection (EOF) well before 5 s.
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c;
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0);
  ::close(fd);

  (*server)->stop();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(done.get().ok());
  std::filesystem::remove_all(dir);
}

// A blocking loopback connection to `port`, or -1.
int dial(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads from `fd` until the peer closes it (true) or `within` passes
// (false); what arrived is appended to `got`.
bool closed_within(int fd, std::chrono::milliseconds within, std::string* got = nullptr) {
  const auto end = std::chrono::steady_clock::now() + within;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
    char buf[256];
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return true;  // EOF or reset
    if (got != nullptr) got->append(buf, static_cast<size_t>(r));
  }
}

TEST(ArbiterServerLimits, ConnectionsBeyondTheCapAreRefusedAtOnce) {
  char tmpl[] = "/tmp/ftvm-arbiter-cap-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto store = ArbiterStore::create(dir);
  ASSERT_TRUE(store.ok()) << store.error();
  auto server = Server::bind("127.0.0.1:0", store->get(), nullptr, 20s, 2);
  ASSERT_TRUE(server.ok()) << server.error();
  auto done = std::async(std::launch::async, [&] { return (*server)->run(); });
  const uint16_t port = (*server)->port();
  // Two idle connections hold both places (each proven accepted by an answer).
  int held[2];
  for (int& fd : held) {
    fd = dial(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, "LATEST vm1\n", 11, MSG_NOSIGNAL), 11);
    std::string got;
    while (got.find('\n') == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, 5000), 1);
      char buf[64];
      const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      ASSERT_GT(r, 0);
      got.append(buf, static_cast<size_t>(r));
    }
    EXPECT_EQ(got, "LATEST vm1 0 -\n");
  }
  // A third is closed at once, told why -- long before the 20 s idle timeout.
  const int third = dial(port);
  ASSERT_GE(third, 0);
  std::string got;
  EXPECT_TRUE(closed_within(third, 5s, &got));
  EXPECT_EQ(got, "ERROR too many connections; try again\n");
  ::close(third);
  // A place freed is a place for a claim.
  ::close(held[0]);
  auto client = connect_arbiter("127.0.0.1:" + std::to_string(port), nullptr);
  ASSERT_TRUE(client.ok());
  Result<Grant> g = make_error("not tried");
  for (const auto end = std::chrono::steady_clock::now() + 5s;
       !g.ok() && std::chrono::steady_clock::now() < end;) {
    g = (*client)->claim("vm1", 1, "host-a", 1s);  // refused until the server saw the close
  }
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
  ::close(held[1]);
  (*server)->stop();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(done.get().ok());
  EXPECT_GE((*server)->refused(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(ArbiterServerLimits, OutOfDescriptorsTheServerNeitherSpinsNorStrandsClients) {
  char tmpl[] = "/tmp/ftvm-arbiter-emfile-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_TRUE(ArbiterStore::create(dir).ok());
  int stop[2], report[2];
  ASSERT_EQ(::pipe2(stop, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The server in a child whose descriptors all get used up.
    auto store = ArbiterStore::open(dir);
    if (!store.ok()) ::_exit(10);
    auto server = Server::bind("127.0.0.1:0", store->get(), nullptr, 5s);
    if (!server.ok()) ::_exit(11);
    const uint16_t port = (*server)->port();
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_cur, 64);
    ::setrlimit(RLIMIT_NOFILE, &lim);
    while (::dup(report[1]) >= 0) {
    }
    if (errno != EMFILE) ::_exit(12);
    if (::write(report[1], &port, sizeof port) != sizeof port) ::_exit(13);
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    if (!(*server)->run(stop[0]).ok()) ::_exit(14);
    ::getrusage(RUSAGE_SELF, &after);
    auto us = [](const rusage& r) {
      return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1'000'000L + r.ru_utime.tv_usec +
             r.ru_stime.tv_usec;
    };
    const long cpu_ms = (us(after) - us(before)) / 1000;
    const uint64_t refused = (*server)->refused();
    if (::write(report[1], &cpu_ms, sizeof cpu_ms) != sizeof cpu_ms ||
        ::write(report[1], &refused, sizeof refused) != sizeof refused)
      ::_exit(15);
    ::_exit(0);
  }
  ::close(report[1]);
  uint16_t port = 0;
  pollfd p{report[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  ASSERT_EQ(::read(report[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  // Connections the server has no descriptor for are closed, not left waiting.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    const int fd = dial(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, "LATEST vm1\n", 11, MSG_NOSIGNAL), 11);
    EXPECT_TRUE(closed_within(fd, 3s)) << "connection " << i << " was stranded";
    ::close(fd);
  }
  // One more left pending a while: the loop must sleep, not spin, meanwhile.
  const int pending = dial(port);
  std::this_thread::sleep_for(1s);  // an observation window, not a synchronisation
  const double window_ms = std::chrono::duration<double, std::milli>(
                               std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(::write(stop[1], "x", 1), 1);
  long cpu_ms = -1;
  uint64_t refused = 0;
  p = {report[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  EXPECT_EQ(::read(report[0], &cpu_ms, sizeof cpu_ms), static_cast<ssize_t>(sizeof cpu_ms));
  EXPECT_EQ(::read(report[0], &refused, sizeof refused), static_cast<ssize_t>(sizeof refused));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(cpu_ms, window_ms / 4) << "the server spun for " << cpu_ms << " ms of CPU in "
                                   << window_ms << " ms";
  EXPECT_GE(refused, 3u);
  if (pending >= 0) ::close(pending);
  for (int fd : {stop[0], stop[1], report[0]}) ::close(fd);
  std::filesystem::remove_all(dir);
}

TEST(ArbiterClient, UnreachableArbiterIsAnError) {
  // Port 1 on loopback: nothing listens there in the test environment.
  auto client = connect_arbiter("127.0.0.1:1", nullptr);
  ASSERT_TRUE(client.ok()) << client.error();
  auto g = (*client)->claim("vm1", 1, "alice", 2s);
  EXPECT_FALSE(g.ok());
}

TEST(ArbiterClient, BadUrlsAreNamed) {
  for (const char* url : {"", "127.0.0.1", "http://127.0.0.1:7000", "ftvm://host:7000",
                          "etcd://127.0.0.1:99999", "127.0.0.1:0"}) {
    auto c = connect_arbiter(url, nullptr);
    ASSERT_FALSE(c.ok()) << url;
    EXPECT_NE(c.error().find(std::string("'") + url + "'"), std::string::npos) << c.error();
  }
  for (const char* url : {"127.0.0.1:7000", "ftvm://127.0.0.1:7000", "etcd://127.0.0.1:2379",
                          "etcd://localhost:2379"}) {
    EXPECT_TRUE(connect_arbiter(url, nullptr).ok()) << url;
  }
}

}  // namespace
}  // namespace ftvm::arbiter
