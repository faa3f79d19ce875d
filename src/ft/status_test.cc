// Tests for the status board and the control socket. Each test uses its own
// socket path under the test temp directory and removes it afterwards.
#include "ft/status.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace ftvm::ft {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// A Unix stream socket bound and listening at `path`, served by nobody.
int ListenUnix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  EXPECT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0) << std::strerror(errno);
  EXPECT_EQ(listen(fd, 4), 0);
  return fd;
}

TEST(StatusBoard, StartsAsAnEmptyObject) {
  StatusBoard board;
  EXPECT_EQ(board.text(), "{}");
}

TEST(StatusBoard, PublishReplacesTheText) {
  StatusBoard board;
  board.publish({{"role", "primary"}});
  board.publish({{"role", "backup"}, {"epoch", 3}});
  EXPECT_EQ(nlohmann::json::parse(board.text()),
            (nlohmann::json{{"role", "backup"}, {"epoch", 3}}));
  EXPECT_EQ(board.text().find('\n'), std::string::npos);  // one line
}

class ControlSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "ftvm_ctl_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".sock";
    ASSERT_LT(path_.size(), sizeof(sockaddr_un::sun_path)) << path_;
    ::unlink(path_.c_str());
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::unique_ptr<ControlServer> Start() {
    Result<std::unique_ptr<ControlServer>> s = ControlServer::start(path_, &board_);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string path_;
  StatusBoard board_;
};

TEST_F(ControlSocket, QueryReturnsThePublishedStatus) {
  board_.publish({{"role", "primary"}, {"records", 12}});
  auto server = Start();
  ASSERT_TRUE(server);
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ(*j, (nlohmann::json{{"role", "primary"}, {"records", 12}}));
}

TEST_F(ControlSocket, QueryBeforeAnyPublishIsEmpty) {
  auto server = Start();
  ASSERT_TRUE(server);
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ(*j, nlohmann::json::object());
}

TEST_F(ControlSocket, NextQuerySeesASecondPublish) {
  board_.publish({{"state", "syncing"}});
  auto server = Start();
  ASSERT_TRUE(server);
  Result<nlohmann::json> first = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ((*first)["state"], "syncing");
  board_.publish({{"state", "protected"}});
  Result<nlohmann::json> second = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ((*second)["state"], "protected");
}

TEST_F(ControlSocket, QueryWithNoServerFailsNamingThePath) {
  Result<nlohmann::json> j = query_status(path_, milliseconds(200));
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), path_)) << j.error();
}

TEST_F(ControlSocket, QueryOfADeadNodesSocketFileFails) {
  ::close(ListenUnix(path_));  // the file stays, nobody listens
  ASSERT_TRUE(Exists(path_));
  Result<nlohmann::json> j = query_status(path_, milliseconds(200));
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), path_)) << j.error();
}

TEST_F(ControlSocket, QueryTimesOutWhenNobodyAnswers) {
  const int fd = ListenUnix(path_);  // connects succeed, nothing is ever sent
  const auto start = Clock::now();
  Result<nlohmann::json> j = query_status(path_, milliseconds(50));
  const auto elapsed = Clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), "did not answer")) << j.error();
  EXPECT_GE(elapsed, milliseconds(45));
  EXPECT_LT(elapsed, milliseconds(500));
}

TEST_F(ControlSocket, UnreadableReplyIsAnError) {
  const int fd = ListenUnix(path_);
  std::thread fake([fd] {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, 1000) != 1) return;
    const int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    (void)!::send(c, "not json\n", 9, MSG_NOSIGNAL);
    ::close(c);
  });
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  fake.join();
  ::close(fd);
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), "unreadable")) << j.error();
}

TEST_F(ControlSocket, TooLongPathFailsToStart) {
  const std::string long_path = ::testing::TempDir() + std::string(sizeof(sockaddr_un::sun_path), 'p');
  Result<std::unique_ptr<ControlServer>> s = ControlServer::start(long_path, &board_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "longer than")) << s.error();
  EXPECT_FALSE(Exists(long_path));
}

TEST_F(ControlSocket, TooLongPathFailsToQuery) {
  const std::string long_path = ::testing::TempDir() + std::string(sizeof(sockaddr_un::sun_path), 'p');
  Result<nlohmann::json> j = query_status(long_path, milliseconds(100));
  ASSERT_FALSE(j.ok());
  EXPECT_TRUE(Contains(j.error(), "longer than")) << j.error();
}

TEST_F(ControlSocket, StartInAMissingDirectoryFails) {
  const std::string path = ::testing::TempDir() + "ftvm_no_such_dir/ctl.sock";
  Result<std::unique_ptr<ControlServer>> s = ControlServer::start(path, &board_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), path)) << s.error();
}

TEST_F(ControlSocket, ASecondNodeNeverTakesOverARunningNodesSocket) {
  board_.publish({{"node", "first"}});
  auto first = Start();
  ASSERT_TRUE(first);
  StatusBoard other;
  other.publish({{"node", "second"}});
  Result<std::unique_ptr<ControlServer>> second = ControlServer::start(path_, &other);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(Contains(second.error(), "control socket of a running node")) << second.error();
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ((*j)["node"], "first");
}

TEST_F(ControlSocket, AServerThatStopsLeavesANewerNodesSocketAlone) {
  auto old_server = Start();
  ASSERT_TRUE(old_server);
  // The file is replaced behind the old server's back (its node was taken
  // for dead), and the newer node serves it.
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  board_.publish({{"node", "newer"}});
  auto newer = Start();
  ASSERT_TRUE(newer);
  old_server.reset();
  ASSERT_TRUE(Exists(path_));
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ((*j)["node"], "newer");
}

TEST_F(ControlSocket, StartReplacesADeadNodesSocketFile) {
  ::close(ListenUnix(path_));
  ASSERT_TRUE(Exists(path_));
  board_.publish({{"fresh", true}});
  auto server = Start();
  ASSERT_TRUE(server);
  Result<nlohmann::json> j = query_status(path_, milliseconds(1000));
  ASSERT_TRUE(j.ok()) << j.error();
  EXPECT_EQ((*j)["fresh"], true);
}

TEST_F(ControlSocket, DestroyingTheServerRemovesTheSocketFile) {
  auto server = Start();
  ASSERT_TRUE(server);
  EXPECT_TRUE(Exists(path_));
  const auto start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_FALSE(Exists(path_));
  EXPECT_FALSE(query_status(path_, milliseconds(100)).ok());
}

}  // namespace
}  // namespace ftvm::ft
