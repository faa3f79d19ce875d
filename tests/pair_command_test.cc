// `ftvm arbiter` and `ftvm kill` without booting a pair: the arbiter's store
// rules (--init), and which process `ftvm kill primary|backup` signals,
// against stand-in nodes (tests/tools/fake_node.cc) and bystander processes
// in a pair directory of the test's own.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace ftvm::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

const std::string kFtvm = FTVM_BINARY;
const std::string kFakeNode = FTVM_FAKE_NODE_BINARY;

std::string make_temp_dir(const char* what) {
  std::string tmpl =
      (fs::path(::testing::TempDir()) / (std::string("ftvm-") + what + "-XXXXXX"))
          .lexically_normal()
          .string();
  return mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
}

// Starts `argv` (stdin and stdout from and to /dev/null, stderr to
// `err_file` when given); returns its pid.
pid_t spawn(const std::vector<std::string>& argv, const std::string& err_file = "") {
  // Only async-signal-safe calls between fork and exec (see process.cc).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    const int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (!err_file.empty()) {
      const int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, STDERR_FILENO);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Whether child `pid` has exited (and reaps it), waiting up to `within`.
bool exited_within(pid_t pid, milliseconds within, int* status = nullptr) {
  const auto end = Clock::now() + within;
  for (;;) {
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      if (status != nullptr) *status = st;
      return true;
    }
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(milliseconds(10));  // polling interval under a deadline
  }
}

TEST(ArbiterCommand, AMissingStoreIsAnErrorSayingToInit) {
  const std::string dir = make_temp_dir("arbiter-cmd");
  ASSERT_FALSE(dir.empty());
  ProcessResult r = run_process(
      {kFtvm, "arbiter", "--listen", "127.0.0.1:0", "--data", dir + "/store"}, seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("ftvm arbiter --init"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/store"));
  // A directory without its grant file is no store either: nothing is recreated.
  fs::create_directories(dir + "/store");
  r = run_process({kFtvm, "arbiter", "--listen", "127.0.0.1:0", "--data", dir + "/store"},
                  seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/store/grants.log"));
  fs::remove_all(dir);
}

TEST(ArbiterCommand, InitMakesAStoreOnceAndRefusesAnExistingOne) {
  const std::string dir = make_temp_dir("arbiter-cmd");
  ASSERT_FALSE(dir.empty());
  const std::string store = dir + "/a/b";
  const std::string log = dir + "/arbiter.log";
  const pid_t pid =
      spawn({kFtvm, "arbiter", "--listen", "127.0.0.1:0", "--data", store, "--init"}, log);
  auto text = [&] {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const auto end = Clock::now() + seconds(20);
  while (text().find("listening") == std::string::npos && Clock::now() < end) {
    std::this_thread::sleep_for(milliseconds(10));  // polling interval under a deadline
  }
  EXPECT_NE(text().find("the new store"), std::string::npos) << text();
  EXPECT_TRUE(fs::exists(store + "/grants.log"));
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_TRUE(exited_within(pid, milliseconds(10000), &status));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ProcessResult r = run_process(
      {kFtvm, "arbiter", "--listen", "127.0.0.1:0", "--data", store, "--init"}, seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// A pair directory of fake processes under FTVM_RUN_DIR.
class PairKill : public ::testing::Test {
 protected:
  void SetUp() override {
    run_dir_ = make_temp_dir("pair-kill");
    ASSERT_FALSE(run_dir_.empty());
    setenv("FTVM_RUN_DIR", run_dir_.c_str(), 1);
    dir_ = run_dir_ + "/pk";
    fs::create_directories(dir_);
  }
  void TearDown() override {
    for (pid_t pid : pids_) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    unsetenv("FTVM_RUN_DIR");
    fs::remove_all(run_dir_);
  }

  std::string sock(const char* host) const { return dir_ + "/" + host + ".sock"; }
  void write_pid(const char* host, pid_t pid) const {
    std::ofstream(dir_ + "/" + host + ".pid") << pid << "\n";
  }
  // A stand-in node for `host`, its pid in the pair's pid file.
  pid_t node(const char* host, const std::string& role, const std::string& state, int epoch) {
    const pid_t pid = spawn({kFakeNode, role == "backup" ? "backup" : "primary", "--control",
                             sock(host), "--role", role, "--state", state, "--epoch",
                             std::to_string(epoch)});
    pids_.push_back(pid);
    write_pid(host, pid);
    wait_for_socket(sock(host));
    return pid;
  }
  static void wait_for_socket(const std::string& path) {
    const auto end = Clock::now() + seconds(10);
    while (!fs::exists(path) && Clock::now() < end) {
      std::this_thread::sleep_for(milliseconds(10));  // polling interval under a deadline
    }
    ASSERT_TRUE(fs::exists(path)) << path;
  }
  // A process that is no node but names the pair's files in its arguments.
  pid_t bystander(std::vector<std::string> words) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "sleep 60; :", "sh"};
    argv.insert(argv.end(), words.begin(), words.end());
    const pid_t pid = spawn(argv);
    pids_.push_back(pid);
    return pid;
  }
  ProcessResult ftvm_kill(const std::string& which) {
    return run_process({kFtvm, "kill", which, "--name", "pk"}, seconds(30));
  }

  std::string run_dir_, dir_;
  std::vector<pid_t> pids_;
};

TEST_F(PairKill, PrimaryIsTheNodeAtTheHighestEpoch) {
  // Host a took over at epoch 3; host b is an old primary at epoch 2 still
  // claiming (it woke up from a freeze): `kill primary` means host a.
  const pid_t a = node("a", "primary", "solo", 3);
  const pid_t b = node("b", "primary", "claiming", 2);
  ProcessResult r = ftvm_kill("primary");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("host a"), std::string::npos) << r.err;
  EXPECT_TRUE(exited_within(a, milliseconds(5000)));
  EXPECT_FALSE(exited_within(b, milliseconds(0)));
}

TEST_F(PairKill, AHaltedNodeIsNeverThePrimary) {
  const pid_t a = node("a", "primary", "halted", 7);
  const pid_t b = node("b", "backup", "replaying", 6);
  ProcessResult r = ftvm_kill("primary");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  r = ftvm_kill("backup");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(exited_within(b, milliseconds(5000)));
  EXPECT_FALSE(exited_within(a, milliseconds(0)));
}

TEST_F(PairKill, AProcessThatMerelyNamesThePairIsNeverSignalled) {
  // The pid file names a process whose arguments mention the pair's files --
  // a reused pid, say -- and no node answers on the control socket.
  const pid_t other = bystander({dir_ + "/a.log", "--control", sock("a")});
  write_pid("a", other);
  for (const char* which : {"primary", "backup", "a"}) {
    ProcessResult r = ftvm_kill(which);
    EXPECT_EQ(r.exit_code, 1) << which << ": " << r.err;
  }
  EXPECT_FALSE(exited_within(other, milliseconds(0))) << "a bystander was signalled";
}

TEST_F(PairKill, AStatusFromAnotherPidIsNotBelieved) {
  // The pid file names a process that looks like a node by its arguments,
  // while the primary answering on host a's socket is another process.
  const pid_t other = bystander({"primary", "--control", sock("a")});
  const pid_t real = spawn({kFakeNode, "primary", "--control", sock("a"), "--role", "primary",
                            "--state", "paired", "--epoch", "1"});
  pids_.push_back(real);
  wait_for_socket(sock("a"));
  write_pid("a", other);
  ProcessResult r = ftvm_kill("primary");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("ignored"), std::string::npos) << r.err;
  EXPECT_FALSE(exited_within(other, milliseconds(0))) << "a bystander was signalled";
  EXPECT_FALSE(exited_within(real, milliseconds(0)));
}

}  // namespace
}  // namespace ftvm::test
