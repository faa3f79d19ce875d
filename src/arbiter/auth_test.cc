// Authentication of the embedded arbiter protocol: requests and replies under
// the shared secret, forged and replayed requests, forged and replayed replies.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "arbiter/client.h"
#include "arbiter/protocol.h"
#include "arbiter/server.h"

namespace ftvm::arbiter {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const auth::Secret> make_secret(uint8_t fill) {
  std::vector<uint8_t> key(32, fill);
  return std::make_shared<const auth::Secret>(auth::Secret::from_bytes(key));
}

// A connected loopback socket to `port`.
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

// Sends `line` and returns the reply line, over a fresh connection.
std::string exchange(uint16_t port, const std::string& line) {
  const int fd = dial(port);
  if (fd < 0) return "(cannot connect)";
  const std::string out = line + "\n";
  if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    ::close(fd);
    return "(cannot send)";
  }
  std::string in;
  char buf[1024];
  while (in.find('\n') == std::string::npos) {
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    in.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return in.substr(0, in.find('\n'));
}

// An arbiter with a secret, serving on loopback from a thread.
class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftvm-arbiter-auth-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = ArbiterStore::create(dir_);
    ASSERT_TRUE(store.ok()) << store.error();
    store_ = std::move(*store);
    auto server = Server::bind("127.0.0.1:0", store_.get(), secret_.get(), 5s);
    ASSERT_TRUE(server.ok()) << server.error();
    server_ = std::move(*server);
    url_ = "ftvm://127.0.0.1:" + std::to_string(server_->port());
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

  std::unique_ptr<Client> client(std::shared_ptr<const auth::Secret> secret) {
    auto c = connect_arbiter(url_, std::move(secret));
    EXPECT_TRUE(c.ok()) << c.error();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::shared_ptr<const auth::Secret> secret_ = make_secret(0x5a);
  std::string dir_, url_;
  std::unique_ptr<ArbiterStore> store_;
  std::unique_ptr<Server> server_;
  std::future<Status> done_;
};

TEST_F(AuthServerTest, AuthenticatedRoundTrip) {
  auto c = client(secret_);
  ASSERT_NE(c, nullptr);
  auto a = c->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_TRUE(a->won);
  EXPECT_EQ(a->holder, c->claimant("alice"));
  auto b = c->claim("vm1", 1, "bob", 5s);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_FALSE(b->won);
  EXPECT_EQ(b->holder, c->claimant("alice"));
  EXPECT_EQ(b->held_epoch, 1u);
  auto again = c->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_TRUE(again->won);
  auto next = c->claim("vm1", 2, "bob", 5s);
  ASSERT_TRUE(next.ok()) << next.error();
  EXPECT_TRUE(next->won);
  EXPECT_EQ(server_->handler().forged(), 0u);
  EXPECT_EQ(server_->handler().replayed(), 0u);
}

TEST_F(AuthServerTest, RequestWithBadMacIsRejectedCountedAndNotGranted) {
  std::string line = encode_request(secret_.get(), "vm1", 1, "mallory", internal::next_seq());
  line.back() = line.back() == '0' ? '1' : '0';
  const std::string reply = exchange(server_->port(), line);
  EXPECT_EQ(reply.rfind("ERROR authentication failed: bad MAC", 0), 0u) << reply;
  EXPECT_EQ(server_->handler().forged(), 1u);
  auto c = client(secret_);
  ASSERT_NE(c, nullptr);
  auto g = c->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won) << "the forged request must not have been granted";
}

TEST_F(AuthServerTest, RequestWithoutMacIsRejectedCountedAndNotGranted) {
  for (const std::string line : {"CLAIM vm1 1 mallory", "CLAIM vm1 1 mallory 12345",
                                 "CLAIM vm1 1 mallory 12345 nothex", ""}) {
    const std::string reply = exchange(server_->port(), line);
    EXPECT_EQ(reply.rfind("ERROR authentication failed: missing MAC", 0), 0u) << reply;
  }
  EXPECT_EQ(server_->handler().forged(), 4u);
  auto c = client(secret_);
  ASSERT_NE(c, nullptr);
  auto g = c->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
}

TEST_F(AuthServerTest, RequestUnderAnotherSecretIsRejectedCountedAndNotGranted) {
  auto wrong = client(make_secret(0x11));
  ASSERT_NE(wrong, nullptr);
  auto g = wrong->claim("vm1", 1, "mallory", 5s);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("bad MAC"), std::string::npos) << g.error();
  EXPECT_EQ(server_->handler().forged(), 1u);
  auto right = client(secret_);
  ASSERT_NE(right, nullptr);
  auto h = right->claim("vm1", 1, "alice", 5s);
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_TRUE(h->won);
}

TEST_F(AuthServerTest, PlainClientIsToldToUseTheSecret) {
  auto plain = client(nullptr);
  ASSERT_NE(plain, nullptr);
  auto g = plain->claim("vm1", 1, "alice", 5s);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("secret"), std::string::npos) << g.error();
  EXPECT_EQ(server_->handler().forged(), 1u);
}

TEST_F(AuthServerTest, ReplayedRequestIsRejectedAndCounted) {
  const uint64_t seq = internal::next_seq();
  const std::string first = encode_request(secret_.get(), "vm1", 1, "alice", seq);
  const std::string reply = exchange(server_->port(), first);
  EXPECT_EQ(reply.rfind("GRANTED vm1 1 alice ", 0), 0u) << reply;
  // The same line again, and an older one, are replays.
  const std::string again = exchange(server_->port(), first);
  EXPECT_EQ(again.rfind("ERROR replayed request", 0), 0u) << again;
  const std::string older =
      exchange(server_->port(), encode_request(secret_.get(), "vm1", 2, "alice", seq - 1));
  EXPECT_EQ(older.rfind("ERROR replayed request", 0), 0u) << older;
  EXPECT_EQ(server_->handler().replayed(), 2u);
  EXPECT_EQ(server_->handler().forged(), 0u);
  // The replay of the epoch-2 claim was not applied: bob can still win it.
  auto c = client(secret_);
  ASSERT_NE(c, nullptr);
  auto g = c->claim("vm1", 2, "bob", 5s);
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
  // Sequence numbers are per claimant: alice continues above her own.
  auto a = c->claim("vm1", 3, "alice", 5s);
  ASSERT_TRUE(a.ok()) << a.error();
  EXPECT_TRUE(a->won);
}

TEST_F(AuthServerTest, LatestIsAuthenticatedBothWays) {
  auto c = client(secret_);
  ASSERT_NE(c, nullptr);
  auto none = c->latest("vm1", 5s);
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_EQ(none->epoch, 0u);
  EXPECT_EQ(none->holder, "");
  ASSERT_TRUE(c->claim("vm1", 6, "host-a", 5s)->won);
  auto l = c->latest("vm1", 5s);
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_EQ(l->epoch, 6u);
  EXPECT_EQ(l->holder, c->claimant("host-a"));
  // Without the secret, or under another, nothing is told.
  EXPECT_FALSE(client(nullptr)->latest("vm1", 5s).ok());
  auto wrong = client(make_secret(0x12))->latest("vm1", 5s);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().find("bad MAC"), std::string::npos) << wrong.error();
  EXPECT_EQ(server_->handler().forged(), 2u);
}

TEST(ArbiterAuth, ClientRejectsAForgedOrReplayedLatest) {
  auto secret = make_secret(0x47);
  const std::string request = encode_latest_request(secret.get(), "vm1", 50);
  const std::string genuine =
      encode_latest_reply(secret.get(), request, 50, LatestGrant{"vm1", 3, "b#1"});
  auto ok = decode_latest_reply(secret.get(), request, "vm1", 50, genuine, "the arbiter");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->epoch, 3u);
  EXPECT_EQ(ok->holder, "b#1");
  // Recorded for an earlier request, or tampered with: refused.
  const std::string later = encode_latest_request(secret.get(), "vm1", 51);
  EXPECT_FALSE(decode_latest_reply(secret.get(), later, "vm1", 51, genuine, "x").ok());
  std::string tampered = genuine;
  tampered.replace(tampered.find(" 3 "), 3, " 1 ");
  EXPECT_FALSE(decode_latest_reply(secret.get(), request, "vm1", 50, tampered, "x").ok());
  EXPECT_FALSE(decode_latest_reply(secret.get(), request, "vm1", 50, "LATEST vm1 3 b#1", "x").ok());
  // Plain form: epoch 0 has holder "-".
  auto none = decode_latest_reply(nullptr, "LATEST vm1", "vm1", 0, "LATEST vm1 0 -", "x");
  ASSERT_TRUE(none.ok()) << none.error();
  EXPECT_EQ(none->epoch, 0u);
  EXPECT_FALSE(decode_latest_reply(nullptr, "LATEST vm1", "vm1", 0, "LATEST vm1 0 b", "x").ok());
  EXPECT_FALSE(decode_latest_reply(nullptr, "LATEST vm1", "vm1", 0, "LATEST vm2 4 b", "x").ok());
}

TEST(ArbiterAuth, PlainArbiterRefusesAuthenticatedRequests) {
  char tmpl[] = "/tmp/ftvm-arbiter-auth-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  {
    auto store = ArbiterStore::create(tmpl);
    ASSERT_TRUE(store.ok()) << store.error();
    RequestHandler h(store->get(), nullptr);
    auto secret = make_secret(1);
    const std::string reply = h.handle(encode_request(secret.get(), "vm1", 1, "alice", 7));
    EXPECT_EQ(reply.rfind("ERROR this arbiter runs without a secret", 0), 0u) << reply;
    EXPECT_EQ((*store)->grant_count(), 0u);
  }
  std::filesystem::remove_all(tmpl);
}

TEST(ArbiterAuth, SequenceNumbersIncrease) {
  uint64_t last = internal::next_seq();
  for (int i = 0; i < 1000; ++i) {
    const uint64_t s = internal::next_seq();
    ASSERT_GT(s, last);
    last = s;
  }
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  EXPECT_GE(last + 1'000'000'000u, static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u)
      << "sequence numbers follow the real-time clock, so they keep increasing across restarts";
}

// The reply checks, one edge case each.
class ReplyCheckTest : public ::testing::Test {
 protected:
  std::shared_ptr<const auth::Secret> secret_ = make_secret(0x33);
  const uint64_t seq_ = 1000;
  const std::string request_ = encode_request(secret_.get(), "vm1", 4, "alice", seq_);
  Result<Grant> check(const std::string& reply) {
    return decode_reply(secret_.get(), request_, "vm1", 4, "alice", seq_, reply, "the arbiter");
  }
};

TEST_F(ReplyCheckTest, GenuineGrantAndDenialAreAccepted) {
  auto g = check(encode_reply(secret_.get(), request_, seq_, Grant{"vm1", 4, "alice", 4, true}));
  ASSERT_TRUE(g.ok()) << g.error();
  EXPECT_TRUE(g->won);
  auto d = check(encode_reply(secret_.get(), request_, seq_, Grant{"vm1", 4, "bob", 9, false}));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_FALSE(d->won);
  EXPECT_EQ(d->holder, "bob");
  EXPECT_EQ(d->held_epoch, 9u);
}

TEST_F(ReplyCheckTest, ReplyWithBadMacIsRejected) {
  std::string reply =
      encode_reply(secret_.get(), request_, seq_, Grant{"vm1", 4, "alice", 4, true});
  reply.back() = reply.back() == 'a' ? 'b' : 'a';
  auto g = check(reply);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("failed authentication"), std::string::npos) << g.error();
}

TEST_F(ReplyCheckTest, ReplyUnderAnotherSecretIsRejected) {
  auto other = make_secret(0x34);
  auto g = check(encode_reply(other.get(), request_, seq_, Grant{"vm1", 4, "alice", 4, true}));
  EXPECT_FALSE(g.ok());
}

TEST_F(ReplyCheckTest, UnauthenticatedReplyIsRejected) {
  auto g = check("GRANTED vm1 4 alice");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("unauthenticated"), std::string::npos) << g.error();
}

TEST_F(ReplyCheckTest, ReplyToAnEarlierRequestIsRejected) {
  // A genuine reply recorded for an earlier request (its own seq) ...
  const std::string earlier = encode_request(secret_.get(), "vm1", 4, "alice", seq_ - 1);
  auto g = check(encode_reply(secret_.get(), earlier, seq_ - 1, Grant{"vm1", 4, "alice", 4, true}));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("replayed reply"), std::string::npos) << g.error();
  // ... even with its seq rewritten to ours: the MAC covers the request it answered.
  std::string reply =
      encode_reply(secret_.get(), earlier, seq_ - 1, Grant{"vm1", 4, "alice", 4, true});
  reply.replace(reply.find(std::to_string(seq_ - 1)), std::to_string(seq_ - 1).size(),
                std::to_string(seq_));
  auto h = check(reply);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().find("failed authentication"), std::string::npos) << h.error();
}

TEST_F(ReplyCheckTest, ReplyForAnotherClaimIsRejected) {
  // Authentic, but answering a claim by bob with the same seq.
  const std::string bobs = encode_request(secret_.get(), "vm1", 4, "bob", seq_);
  EXPECT_FALSE(
      check(encode_reply(secret_.get(), bobs, seq_, Grant{"vm1", 4, "bob", 4, true})).ok());
  // Authentic and bound to our request, but granting someone else: garbled.
  EXPECT_FALSE(
      check(encode_reply(secret_.get(), request_, seq_, Grant{"vm1", 4, "bob", 4, true})).ok());
  EXPECT_FALSE(
      check(encode_reply(secret_.get(), request_, seq_, Grant{"vm2", 4, "alice", 4, true})).ok());
}

TEST_F(ReplyCheckTest, ErrorReplyIsAnErrorNotADecision) {
  auto g = check("ERROR authentication failed: bad MAC");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().find("refused: authentication failed"), std::string::npos) << g.error();
}

// A fake arbiter on loopback that answers one request with `answer(request)`.
class FakeArbiter {
 public:
  explicit FakeArbiter(std::function<std::string(const std::string&)> answer) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof sa;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this, answer = std::move(answer)] {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string in;
      char buf[1024];
      while (in.find('\n') == std::string::npos) {
        const ssize_t r = ::recv(c, buf, sizeof buf, 0);
        if (r <= 0) break;
        in.append(buf, static_cast<size_t>(r));
      }
      const std::string out = answer(in.substr(0, in.find('\n'))) + "\n";
      [[maybe_unused]] ssize_t w = ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~FakeArbiter() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "ftvm://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

uint64_t seq_of(const std::string& request) {
  std::istringstream in(request);
  std::string t[5];
  for (auto& s : t) in >> s;
  return std::stoull(t[4]);
}

TEST(ArbiterAuth, ClientRejectsAForgedGrant) {
  auto secret = make_secret(0x44);
  FakeArbiter fake([](const std::string& request) {
    return "GRANTED vm1 1 alice " + std::to_string(seq_of(request)) + " " + std::string(64, '0');
  });
  auto c = connect_arbiter(fake.url(), secret);
  ASSERT_TRUE(c.ok()) << c.error();
  auto g = (*c)->claim("vm1", 1, "alice", 5s);
  ASSERT_FALSE(g.ok()) << "a forged grant was believed";
  EXPECT_NE(g.error().find("failed authentication"), std::string::npos) << g.error();
}

TEST(ArbiterAuth, ClientRejectsARecordedGrantReplayedToALaterRequest) {
  auto secret = make_secret(0x45);
  // A genuine grant, recorded from an earlier exchange.
  const std::string old_request = encode_request(secret.get(), "vm1", 1, "alice", 5);
  const std::string recorded =
      encode_reply(secret.get(), old_request, 5, Grant{"vm1", 1, "alice", 1, true});
  FakeArbiter fake([&](const std::string&) { return recorded; });
  auto c = connect_arbiter(fake.url(), secret);
  ASSERT_TRUE(c.ok()) << c.error();
  auto g = (*c)->claim("vm1", 1, "alice", 5s);
  ASSERT_FALSE(g.ok()) << "a replayed grant was believed";
  EXPECT_NE(g.error().find("replayed reply"), std::string::npos) << g.error();
}

TEST(ArbiterAuth, ClientWithSecretRejectsAPlainGrant) {
  auto secret = make_secret(0x46);
  FakeArbiter fake([](const std::string&) { return std::string("GRANTED vm1 1 alice"); });
  auto c = connect_arbiter(fake.url(), secret);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_FALSE((*c)->claim("vm1", 1, "alice", 5s).ok());
}

}  // namespace
}  // namespace ftvm::arbiter
