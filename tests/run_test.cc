// Integration tests of `ftvm run`: a real ftvm process boots the real guest
// image (built by guest/build.sh) or is handed bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "process.h"

namespace ftvm::test {
namespace {

using std::chrono::seconds;

const std::string kFtvm = FTVM_BINARY;

bool have_guest() { return access((guest_dir() + "/Image").c_str(), R_OK) == 0; }

#define REQUIRE_GUEST() \
  ASSERT_TRUE(have_guest()) << "no guest image at " << guest_dir() << ": run guest/build.sh"

std::string strip_cr(std::string s) {
  std::erase(s, '\r');
  return s;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') {
      out.push_back(line);
      line.clear();
    } else {
      line += c;
    }
  }
  if (!line.empty()) out.push_back(line);
  return out;
}

std::string temp_file(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(RunGuest, EchoHelloPrintsHelloAndExitsZero) {
  REQUIRE_GUEST();
  ProcessResult r = run_process({kFtvm, "run", "--", "echo", "hello"}, seconds(120));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(strip_cr(r.out), "hello\n");
}

TEST(RunGuest, ExitStatusOfTheCommandIsFtvmsExitStatus) {
  REQUIRE_GUEST();
  ProcessResult r = run_process({kFtvm, "run", "--", "exit 7"}, seconds(120));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err;
}

TEST(RunGuest, ArgumentsWithSpacesAndQuotesArriveIntact) {
  REQUIRE_GUEST();
  ProcessResult r =
      run_process({kFtvm, "run", "--", "printf", "%s|", "a b", "it's", "$HOME"}, seconds(120));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(strip_cr(r.out), "a b|it's|$HOME|");
}

TEST(RunGuest, CpuinfoShowsAnRv64imafdcHart) {
  REQUIRE_GUEST();
  ProcessResult r = run_process({kFtvm, "run", "--", "cat", "/proc/cpuinfo"}, seconds(120));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rv64imafdc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sv39"), std::string::npos) << r.out;
}

TEST(RunGuest, SleepIdlesOnVirtualTimeAndUserModeReadsTheClock) {
  REQUIRE_GUEST();
  // `time` reads the time CSR from U-mode; `sleep` idles in WFI until the
  // timer, which exercises the time skip.
  ProcessResult r = run_process({kFtvm, "run", "--", "time sleep 1"}, seconds(60));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(strip_cr(r.out).find("real\t0m 1.00s"), std::string::npos) << r.out;
}

TEST(RunGuest, TwoBootsAreIdenticalToTheInstruction) {
  REQUIRE_GUEST();
  // Full kernel log on the console, printk timestamps included.
  // No outside randomness: the run is a pure function of its images.
  const std::vector<std::string> argv = {kFtvm,     "run",        "--entropy", "none",
                                         "--stats", "--state-hash", "--append", "loglevel=8",
                                         "--", "uname -a; cat /proc/uptime; dmesg | tail -3"};
  ProcessResult a = run_process(argv, seconds(180));
  ProcessResult b = run_process(argv, seconds(180));
  ASSERT_FALSE(a.timed_out || b.timed_out);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(a.out.find("] Linux version 6.1"), std::string::npos) << "no timestamped boot log";
  EXPECT_EQ(a.out, b.out) << "console output differs between two boots";
  std::smatch ma, mb;
  const std::regex instret("instret=([0-9]+)");
  ASSERT_TRUE(std::regex_search(a.err, ma, instret)) << a.err;
  ASSERT_TRUE(std::regex_search(b.err, mb, instret)) << b.err;
  EXPECT_EQ(ma[1], mb[1]) << "instret at power-off differs";
  const std::regex hash("state_hash=([0-9a-f]{64})");
  ASSERT_TRUE(std::regex_search(a.err, ma, hash)) << a.err;
  ASSERT_TRUE(std::regex_search(b.err, mb, hash)) << b.err;
  EXPECT_EQ(ma[1], mb[1]) << "machine state at power-off differs";
}

// The translator and the interpreter: the same boot and a Redis workload
// (the server, and clients making a process per request) end in the same
// state at the same instret, and so does a run cut off in the middle.
TEST(RunGuest, BothEnginesRunABootAndRedisToTheSameState) {
  REQUIRE_GUEST();
  const std::string work =
      "redis-server --daemonize yes --save '' --appendonly no >/dev/null; "
      "until redis-cli ping >/dev/null 2>&1; do sleep 0.1; done; "
      "for i in $(seq 60); do redis-cli set k$i v$i >/dev/null; redis-cli incr n >/dev/null; done; "
      "redis-cli dbsize; redis-cli get n; cpubench | head -1";
  auto run = [&](const char* engine, std::vector<std::string> extra) {
    std::vector<std::string> argv = {kFtvm, "run", "--engine", engine, "--entropy", "none",
                                     "--stats", "--state-hash"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("--");
    argv.push_back(work);
    return run_process(argv, seconds(300));
  };
  const std::regex instret("instret=([0-9]+)");
  const std::regex hash("state_hash=([0-9a-f]{64})");
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{}, std::vector<std::string>{"--max-instructions", "400000000"}}) {
    ProcessResult a = run("interp", extra);
    ProcessResult b = run("jit", extra);
    ASSERT_FALSE(a.timed_out || b.timed_out);
    const int want = extra.empty() ? 0 : 124;
    ASSERT_EQ(a.exit_code, want) << a.err;
    ASSERT_EQ(b.exit_code, want) << b.err;
    if (extra.empty()) {
      EXPECT_NE(a.out.find("61"), std::string::npos) << a.out;
    }
    EXPECT_EQ(a.out, b.out) << "console output differs between the engines";
    std::smatch ma, mb;
    ASSERT_TRUE(std::regex_search(a.err, ma, instret)) << a.err;
    ASSERT_TRUE(std::regex_search(b.err, mb, instret)) << b.err;
    EXPECT_EQ(ma[1], mb[1]) << "instret at the end differs";
    ASSERT_TRUE(std::regex_search(a.err, ma, hash)) << a.err;
    ASSERT_TRUE(std::regex_search(b.err, mb, hash)) << b.err;
    EXPECT_EQ(ma[1], mb[1]) << "machine state at the end differs";
  }
}

TEST(RunBadInput, AnUnknownEngineIsRefused) {
  ProcessResult r = run_process({kFtvm, "run", "--engine", "turbo", "--", "true"}, seconds(30));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown --engine 'turbo' (use interp or jit)"), std::string::npos) << r.err;
}

TEST(RunGuest, MaxInstructionsStopsWithItsOwnExitStatus) {
  REQUIRE_GUEST();
  ProcessResult r = run_process({kFtvm, "run", "--max-instructions", "100000", "--", "true"},
                                seconds(60));
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_NE(r.err.find("--max-instructions"), std::string::npos) << r.err;
}

TEST(RunGuest, DiskWritesReachTheImageFile) {
  REQUIRE_GUEST();
  const std::string image = temp_file("disk.img", std::string(4 << 20, '\0'));
  ProcessResult r = run_process(
      {kFtvm, "run", "--disk", image, "--", "printf ftvm-disk-ok | dd of=/dev/vda conv=fsync 2>/dev/null"},
      seconds(60));
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::ifstream in(image, std::ios::binary);
  std::string head(13, '\0');
  in.read(head.data(), 13);
  EXPECT_EQ(head, std::string("ftvm-disk-ok\0", 13));
}

TEST(RunGuest, ADiskImageAnotherProcessWritesIsRefused) {
  // This test process holds the image as a running ftvm node does.
  const std::string image = temp_file("locked.img", std::string(1 << 20, 'x'));
  const int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ProcessResult r = run_process(
      {kFtvm, "run", "--disk", image, "--", "printf clobbered | dd of=/dev/vda conv=fsync"},
      seconds(60));
  ::close(fd);
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("in use by another process"), std::string::npos) << r.err;
  std::ifstream in(image, std::ios::binary);
  std::string head(9, '\0');
  in.read(head.data(), 9);
  EXPECT_EQ(head, "xxxxxxxxx") << "the refused run wrote the image";
}

// What every boot prints about its randomness: the kernel's boot id (drawn
// from its CRNG, which the device tree's rng-seed seeds) and bytes of
// /dev/urandom and of the virtio-rng device.
const char kRandomness[] =
    "cat /proc/sys/kernel/random/boot_id; head -c 16 /dev/urandom | od -x; "
    "head -c 16 /dev/hwrng | od -An -tx1";

TEST(RunGuest, TwoLiveBootsHaveTheirOwnRandomness) {
  REQUIRE_GUEST();
  // The default: host entropy.
  const std::vector<std::string> argv = {kFtvm, "run", "--", kRandomness};
  ProcessResult a = run_process(argv, seconds(120));
  ProcessResult b = run_process(argv, seconds(120));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::vector<std::string> la = lines(a.out), lb = lines(b.out);
  ASSERT_GE(la.size(), 3u) << a.out;
  ASSERT_GE(lb.size(), 3u) << b.out;
  EXPECT_EQ(la[0].size(), 36u) << "not a boot id: " << la[0];
  EXPECT_NE(la[0], lb[0]) << "two boots have the same boot_id";
  EXPECT_NE(la[1], lb[1]) << "two boots read the same /dev/urandom bytes";
  EXPECT_NE(la.back(), lb.back()) << "two boots read the same /dev/hwrng bytes";
}

TEST(RunGuest, SeededEntropyIsTheSameOnEveryRun) {
  REQUIRE_GUEST();
  const std::vector<std::string> argv = {kFtvm, "run", "--entropy", "seed:7", "--", kRandomness};
  ProcessResult a = run_process(argv, seconds(120));
  ProcessResult b = run_process(argv, seconds(120));
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GE(lines(a.out).size(), 3u) << a.out;
  // Another seed, other randomness.
  ProcessResult c = run_process({kFtvm, "run", "--entropy", "seed:8", "--", kRandomness},
                                seconds(120));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(lines(c.out)[0], lines(a.out)[0]) << "seeds 7 and 8 give the same boot_id";
}

TEST(RunBadInput, AnUnknownEntropyChoiceIsRefused) {
  for (const char* bad : {"bogus", "seed:", "seed:x"}) {
    ProcessResult r = run_process({kFtvm, "run", "--entropy", bad, "--", "true"}, seconds(10));
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find(std::string("--entropy ") + bad), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(bad == std::string("bogus") ? "none, host" : "number"), std::string::npos)
        << r.err;
  }
}

TEST(RunGuest, ARestoredSnapshotEndsInTheSameStateAsTheUninterruptedRun) {
  REQUIRE_GUEST();
  const std::string snap = ::testing::TempDir() + "/mid.snap";
  const std::string cmd = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; echo counted $i";
  // No outside randomness: the resumed run gets no input the whole run did not.
  ProcessResult whole = run_process({kFtvm, "run", "--entropy", "none", "--snapshot-at", "70000000",
                                     "--snapshot-file", snap, "--state-hash", "--", cmd},
                                    seconds(120));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  ASSERT_NE(whole.err.find("snapshot at instret 70000000"), std::string::npos) << whole.err;
  ProcessResult resumed = run_process(
      {kFtvm, "run", "--entropy", "none", "--restore", snap, "--state-hash"}, seconds(120));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  std::smatch a, b;
  const std::regex hash("state_hash=([0-9a-f]{64})");
  ASSERT_TRUE(std::regex_search(whole.err, a, hash));
  ASSERT_TRUE(std::regex_search(resumed.err, b, hash));
  EXPECT_EQ(a[1], b[1]);
  EXPECT_NE(resumed.out.find("counted 300"), std::string::npos) << resumed.out;
}

TEST(RunBadInput, ACorruptSnapshotIsRefused) {
  REQUIRE_GUEST();
  const std::string snap = ::testing::TempDir() + "/c.snap";
  ProcessResult r = run_process({kFtvm, "run", "--snapshot-at", "30000000", "--snapshot-file",
                                 snap, "--", "true"},
                                seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(snap, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 10000u);
  bytes[bytes.size() / 2] ^= 0x10;
  const std::string bad = temp_file("corrupt.snap", bytes);
  ProcessResult q = run_process({kFtvm, "run", "--restore", bad}, seconds(30));
  EXPECT_EQ(q.exit_code, 2) << q.err;
  EXPECT_NE(q.err.find("offset"), std::string::npos) << q.err;
  const std::string cut = temp_file("cut.snap", bytes.substr(0, 1000));
  ProcessResult t = run_process({kFtvm, "run", "--restore", cut}, seconds(30));
  EXPECT_EQ(t.exit_code, 2) << t.err;
}

TEST(RunBadInput, MissingKernelIsAOneLineError) {
  ProcessResult r = run_process({kFtvm, "run", "--kernel", "/nonexistent/Image"}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot open kernel '/nonexistent/Image'"), std::string::npos) << r.err;
}

TEST(RunBadInput, TruncatedKernelIsRejected) {
  const std::string path = temp_file("truncated-Image", std::string(40, 'x'));
  ProcessResult r = run_process({kFtvm, "run", "--kernel", path}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("too short"), std::string::npos) << r.err;
}

TEST(RunBadInput, AFileThatIsNoKernelIsRejected) {
  const std::string path = temp_file("not-a-kernel", std::string(4096, 'A'));
  ProcessResult r = run_process({kFtvm, "run", "--kernel", path}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a RISC-V Linux Image"), std::string::npos) << r.err;
}

TEST(RunBadInput, TruncatedRealKernelIsRejected) {
  REQUIRE_GUEST();
  std::ifstream in(guest_dir() + "/Image", std::ios::binary);
  std::string head(64, '\0');
  in.read(head.data(), 64);
  const std::string path = temp_file("head-of-Image", head);
  // A header promising a large image with almost nothing behind it: it
  // loads, then the guest executes zeros, an illegal instruction, which
  // traps to M-mode where there is no firmware.
  const std::string empty_initrd = temp_file("one-byte-initrd", "x");
  ProcessResult r = run_process({kFtvm, "run", "--kernel", path, "--initrd", empty_initrd,
                                 "--max-instructions", "1000000"},
                                seconds(20));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.exit_code == 2 || r.exit_code == 125 || r.exit_code == 124) << r.exit_code;
}

TEST(RunBadInput, ADirectoryIsNoKernel) {
  ProcessResult r = run_process({kFtvm, "run", "--kernel", "/tmp"}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not a regular file"), std::string::npos) << r.err;
}

TEST(RunBadInput, MissingInitrdIsAOneLineError) {
  REQUIRE_GUEST();
  ProcessResult r = run_process(
      {kFtvm, "run", "--kernel", guest_dir() + "/Image", "--initrd", "/nonexistent/initrd"},
      seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot open initrd"), std::string::npos) << r.err;
}

TEST(RunBadInput, ElfForAnotherMachineIsRejected) {
  ProcessResult r = run_process({kFtvm, "run", "--elf", "/bin/true"}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not RISC-V"), std::string::npos) << r.err;
}

TEST(RunBadInput, TruncatedElfIsRejected) {
  std::ifstream in("/bin/true", std::ios::binary);
  std::string head(100, '\0');
  in.read(head.data(), 100);
  const std::string path = temp_file("truncated.elf", head);
  ProcessResult r = run_process({kFtvm, "run", "--elf", path}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(r.err.empty());
}

TEST(RunBadInput, KernelGivenToElfIsRejectedAndElfGivenAsKernelToo) {
  ProcessResult r = run_process({kFtvm, "run", "--kernel", "/bin/true"}, seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ELF"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ftvm::test
