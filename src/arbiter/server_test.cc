// The arbiter's server and client over real loopback TCP.
#include "arbiter/server.h"

#include "arbiter/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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
    auto store = ArbiterStore::open(dir_);
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
}

TEST_F(ArbiterServerTest, BadRequestGetsAClearError) {
  RequestHandler h(store_.get(), nullptr);
  EXPECT_EQ(h.handle("CLAIM vm1 x alice"), "ERROR epoch must be a decimal number below 2^64");
  EXPECT_EQ(h.handle("CLAIM vm1 18446744073709551616 alice"),
            "ERROR epoch must be a decimal number below 2^64");
  EXPECT_EQ(h.handle("HELLO"), "ERROR unknown request (expected CLAIM <vm> <epoch> <claimant>)");
  EXPECT_EQ(h.handle("CLAIM vm1 1 alice extra"), "ERROR expected CLAIM <vm> <epoch> <claimant>");
  EXPECT_EQ(h.handle("CLAIM vm1 1 alice"), "GRANTED vm1 1 alice");
  EXPECT_EQ(h.handle("CLAIM vm1 1 bob"), "DENIED vm1 1 alice 1");
  EXPECT_EQ(h.handle("CLAIM vm1 0 bob"), "DENIED vm1 0 alice 1");
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
  EXPECT_EQ(lost->holder, "alice");
  EXPECT_EQ(lost->held_epoch, 5u);
  EXPECT_EQ((*client)->describe(), "ftvm://" + addr_);
}

TEST(ArbiterServerDeadline, IdleConnectionIsClosedAtItsDeadline) {
  char tmpl[] = "/tmp/ftvm-arbiter-deadline-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto store = ArbiterStore::open(dir);
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
