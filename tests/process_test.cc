// Tests of the integration tests' process runner itself: a test that starts
// processes from two threads at once (a guest on one, clients on another)
// must see each child's output end when that child ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <chrono>
#include <string>
#include <thread>

#include "process.h"

namespace ftvm::test {
namespace {

using std::chrono::seconds;

// The descriptors this process passes to every child it execs: 0-2 and
// whatever it inherited itself without close-on-exec.
std::string inheritable_fds() {
  std::set<int> fds;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(e.path().filename().string());
    const int flags = fcntl(fd, F_GETFD);
    if (fd <= 2 || (flags >= 0 && !(flags & FD_CLOEXEC))) fds.insert(fd);
  }
  std::string out;
  for (int fd : fds) out += std::to_string(fd) + " ";
  return out;
}

// Whether `pid` is blocked in nanosleep or clock_nanosleep,
// read from /proc/PID/syscall: the first field is the blocking call's number.
bool blocked_in_sleep(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  long nr = -1;
  if (!(in >> nr)) return false;
  return nr == SYS_nanosleep || nr == SYS_clock_nanosleep;
}

// A child started while another thread's child runs inherits none of that
// other child's pipes. (Before the pipes were close-on-exec, a guest started
// by one thread could hold a client's output pipe open for as long as the
// guest ran, and the client's caller waited for it until its deadline.)
TEST(RunProcess, AChildInheritsNoOtherChildsPipes) {
  const std::string flag = ::testing::TempDir() + "/run-process-" + std::to_string(getpid());
  unlink(flag.c_str());
  const std::string expected = inheritable_fds();
  ProcessResult sibling;
  std::thread t([&] {
    sibling = run_process({"/bin/sh", "-c", "touch " + flag + "; exec sleep 30"}, seconds(3));
  });
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (access(flag.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(access(flag.c_str(), F_OK), 0) << "the sibling never started";
  // The sibling's parent side holds the read ends of its pipes now. The
  // second child's descriptors are read from outside, once it is `sleep`:
  // a shell listing its own would see the pipes of its own pipeline.
  const std::string pid_file = flag + ".pid";
  unlink(pid_file.c_str());
  ProcessResult r;
  std::thread second([&] {
    r = run_process({"/bin/sh", "-c", "echo $$ > " + pid_file + ".tmp; mv " + pid_file +
                                          ".tmp " + pid_file + "; exec sleep 2"},
                    seconds(10));
  });
  std::string seen;
  for (;;) {
    std::ifstream in(pid_file);
    pid_t pid = 0;
    if (in >> pid && pid > 0) {
      std::error_code ec;
      const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
      // Listed only once `sleep` is blocked in its sleep: during its own
      // start-up (the dynamic loader, setlocale) it holds files open itself.
      if (!ec && exe.filename() == "sleep" && blocked_in_sleep(pid)) {
        std::set<int> fds;
        for (const auto& e : std::filesystem::directory_iterator(
                 "/proc/" + std::to_string(pid) + "/fd", ec)) {
          fds.insert(std::stoi(e.path().filename().string()));
        }
        for (int fd : fds) seen += std::to_string(fd) + " ";
        break;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::yield();
  }
  second.join();
  t.join();
  unlink(flag.c_str());
  unlink(pid_file.c_str());
  EXPECT_TRUE(sibling.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(seen, expected) << "descriptors a child inherited";
}

}  // namespace
}  // namespace ftvm::test
