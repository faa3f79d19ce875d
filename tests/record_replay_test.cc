// Integration tests of `ftvm run --record` and `ftvm replay`: real guest
// runs recorded to a file, replayed with every hash checked, and logs that
// are corrupt, of another version, for other images, or tampered with.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include "log/log_reader.h"
#include "log/log_writer.h"
#include "process.h"

namespace ftvm::test {
namespace {

using std::chrono::seconds;

const std::string kFtvm = FTVM_BINARY;

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

class RecordReplay : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access((guest_dir() + "/Image").c_str(), R_OK), 0)
        << "no guest image at " << guest_dir() << ": run guest/build.sh";
  }
  // Records a run that takes host entropy (the default: the device tree's
  // rng-seed and virtio-rng), idles on a timer, and prints.
  std::string record(const std::string& name, std::string* out = nullptr) {
    const std::string log = temp_path(name);
    ProcessResult r = run_process({kFtvm, "run", "--record", log, "--hash-interval", "20000000",
                                   "--",
                                   "cat /proc/sys/kernel/random/boot_id; head -c 16 /dev/urandom "
                                   "| od -x; head -c 16 /dev/hwrng | od -An -tx1; sleep 1; "
                                   "echo done"},
                                  seconds(120));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("done"), std::string::npos);
    if (out) *out = r.out;
    return log;
  }
};

TEST_F(RecordReplay, ARecordedRunReplaysWithEveryHashEqual) {
  const std::string log = record("ok.log");
  ProcessResult r = run_process({kFtvm, "replay", log}, seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("replay OK"), std::string::npos) << r.out << r.err;
  // Periodic checkpoints as well as the final one.
  EXPECT_EQ(r.out.find(" 2 checkpoints"), std::string::npos) << r.out;
}

// The log never names the engine: a recording made on either replays on
// the other with every hash equal.
TEST_F(RecordReplay, ARecordingOnOneEngineReplaysOnTheOther) {
  for (const char* engines : {"jit interp", "interp jit"}) {
    const std::string rec = engines[0] == 'j' ? "jit" : "interp";
    const std::string rep = engines[0] == 'j' ? "interp" : "jit";
    const std::string log = temp_path("cross-" + rec + ".log");
    ProcessResult r = run_process({kFtvm, "run", "--engine", rec, "--record", log,
                                   "--hash-interval", "20000000", "--",
                                   "head -c 16 /dev/urandom | od -x; cpubench | head -1; sleep 1"},
                                  seconds(180));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ProcessResult p = run_process({kFtvm, "replay", "--engine", rep, log}, seconds(180));
    EXPECT_EQ(p.exit_code, 0) << "recorded on " << rec << ", replayed on " << rep << ": " << p.err;
    EXPECT_NE(p.out.find("replay OK"), std::string::npos) << p.out << p.err;
  }
}

TEST_F(RecordReplay, TheHeaderCarriesTheRngSeedTheRunBootedWith) {
  const std::string log = record("seed.log");
  Result<log::LogReader> reader = log::LogReader::open(log);
  ASSERT_TRUE(reader.ok()) << reader.error();
  Result<log::Header> header = reader->header();
  ASSERT_TRUE(header.ok()) << header.error();
  ASSERT_EQ(header->metadata.count("rng-seed"), 1u);
  EXPECT_EQ(header->metadata.at("rng-seed").size(), 2u * 32) << "32 bytes, as hex";
  EXPECT_EQ(header->metadata.at("entropy"), "virtio-rng");
}

TEST_F(RecordReplay, AnotherRngSeedIsADivergence) {
  // The replay boots with the header's rng-seed: change it and the guest's
  // CRNG, so its state, differs from the recording's.
  const std::string good = record("s.log");
  Result<log::LogReader> reader = log::LogReader::open(good);
  ASSERT_TRUE(reader.ok()) << reader.error();
  Result<log::Header> header = reader->header();
  ASSERT_TRUE(header.ok()) << header.error();
  log::Header other = *header;
  std::string& seed = other.metadata["rng-seed"];
  ASSERT_FALSE(seed.empty());
  seed[0] = seed[0] == '0' ? '1' : '0';
  const std::string bad = temp_path("other-seed.log");
  Result<log::LogWriter> writer = log::LogWriter::create(bad, other);
  ASSERT_TRUE(writer.ok()) << writer.error();
  for (;;) {
    Result<std::optional<log::Record>> r = reader->next();
    ASSERT_TRUE(r.ok()) << r.error();
    if (!r->has_value()) break;
    ASSERT_TRUE(writer->append(**r).ok());
  }
  ASSERT_TRUE(writer->flush().ok());
  ProcessResult r = run_process({kFtvm, "replay", bad}, seconds(120));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("DIVERGED"), std::string::npos) << r.err;
}

TEST_F(RecordReplay, HostEntropyDiffersBetweenLiveRuns) {
  std::string a, b;
  record("a.log", &a);
  record("b.log", &b);
  EXPECT_NE(a, b) << "two live runs saw the same entropy";
  // The boot id comes from the kernel's CRNG, seeded at boot by the rng-seed.
  EXPECT_NE(a.substr(0, 36), b.substr(0, 36)) << "two live runs have the same boot_id";
}

TEST_F(RecordReplay, ACorruptLogIsRefusedNamingTheOffset) {
  const std::string good = record("good.log");
  std::string bytes = slurp(good);
  ASSERT_GT(bytes.size(), 2000u);
  bytes[bytes.size() / 2] ^= 0x40;
  const std::string bad = temp_path("corrupt.log");
  spit(bad, bytes);
  ProcessResult r = run_process({kFtvm, "replay", bad}, seconds(120));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("offset"), std::string::npos) << r.err;
}

TEST_F(RecordReplay, ATruncatedLogIsRefusedWithoutACrash) {
  const std::string good = record("whole.log");
  const std::string bytes = slurp(good);
  for (size_t cut : {size_t{10}, size_t{200}, bytes.size() / 3, bytes.size() - 5}) {
    const std::string bad = temp_path("cut.log");
    spit(bad, bytes.substr(0, cut));
    ProcessResult r = run_process({kFtvm, "replay", bad}, seconds(120));
    EXPECT_TRUE(r.exit_code == 2 || r.exit_code == 3) << "cut at " << cut << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
}

TEST_F(RecordReplay, AnotherFormatVersionIsRefused) {
  std::string bytes = slurp(record("v.log"));
  bytes[8] = 9;  // the version field follows the 8-byte magic
  const std::string bad = temp_path("v9.log");
  spit(bad, bytes);
  ProcessResult r = run_process({kFtvm, "replay", bad}, seconds(60));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("version"), std::string::npos) << r.err;
}

TEST_F(RecordReplay, AMismatchedImageIsRefused) {
  const std::string log = record("m.log");
  const std::string other = temp_path("other-initrd");
  spit(other, "not the recorded initrd");
  ProcessResult r = run_process({kFtvm, "replay", "--initrd", other, log}, seconds(60));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("initrd"), std::string::npos) << r.err;
}

TEST_F(RecordReplay, TamperedEntropyIsADivergenceAtItsInstret) {
  const std::string good = record("t.log");
  Result<log::LogReader> reader = log::LogReader::open(good);
  ASSERT_TRUE(reader.ok()) << reader.error();
  Result<log::Header> header = reader->header();
  ASSERT_TRUE(header.ok()) << header.error();
  const std::string bad = temp_path("tampered.log");
  Result<log::LogWriter> writer = log::LogWriter::create(bad, *header);
  ASSERT_TRUE(writer.ok()) << writer.error();
  bool tampered = false;
  for (;;) {
    Result<std::optional<log::Record>> r = reader->next();
    ASSERT_TRUE(r.ok()) << r.error();
    if (!r->has_value()) break;
    log::Record rec = **r;
    if (auto* e = std::get_if<log::Entropy>(&rec.payload); e && !tampered) {
      e->bytes[0] ^= 1;
      tampered = true;
    }
    ASSERT_TRUE(writer->append(rec).ok());
  }
  ASSERT_TRUE(tampered) << "the recording has no entropy record";
  ASSERT_TRUE(writer->flush().ok());
  ProcessResult r = run_process({kFtvm, "replay", bad}, seconds(120));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("DIVERGED"), std::string::npos) << r.err;
}

// A recorded guest that writes its disk: the run keeps the disk's starting
// contents beside the log, the replay starts from them under a
// copy-on-write overlay (its state hashes cover the disk's blocks) and
// leaves both files as they were.
TEST_F(RecordReplay, AGuestThatWritesItsDiskReplaysFromTheKeptStartingContents) {
  const std::string disk = temp_path("rw-" + std::to_string(getpid()) + ".img");
  const std::string log = temp_path("rw-" + std::to_string(getpid()) + ".log");
  const std::string snap = log + ".snap";
  std::string start = "hello-start" + std::string((4 << 20) - 11, '\0');
  spit(disk, start);
  ProcessResult r = run_process(
      {kFtvm, "run", "--record", log, "--disk", disk, "--hash-interval", "10000000",
       "--snapshot-at", "60000000", "--snapshot-file", snap, "--",
       "head -c 11 /dev/vda; echo; echo written-by-guest | dd of=/dev/vda bs=512 seek=100 "
       "conv=fsync 2>/dev/null; dd if=/dev/vda bs=512 skip=100 count=1 2>/dev/null | head -c 16; "
       "echo; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done"},
      seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("hello-start\nwritten-by-guest"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("starting contents are kept in " + log + ".disk"), std::string::npos)
      << r.err;
  EXPECT_EQ(slurp(log + ".disk"), start) << "the kept copy is not the starting contents";
  const std::string after = slurp(disk);
  ASSERT_EQ(after.substr(512 * 100, 16), "written-by-guest");

  ProcessResult replay = run_process({kFtvm, "replay", log}, seconds(120));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay OK"), std::string::npos) << replay.out << replay.err;
  EXPECT_EQ(replay.out.find(" 0 checkpoints"), std::string::npos) << replay.out;
  EXPECT_EQ(slurp(log + ".disk"), start) << "the replay wrote the kept copy";
  EXPECT_EQ(slurp(disk), after) << "the replay wrote the live disk";

  // A snapshot does not hold the disk: resuming one is refused, saying why.
  ProcessResult from = run_process({kFtvm, "replay", log, "--from", snap}, seconds(60));
  EXPECT_NE(from.exit_code, 0);
  EXPECT_NE(from.err.find("replay the whole log"), std::string::npos) << from.err;

  // Starting contents that changed since are another machine.
  std::string changed = start;
  changed[5] = 'X';
  spit(log + ".disk", changed);
  ProcessResult bad = run_process({kFtvm, "replay", log}, seconds(60));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("disk"), std::string::npos) << bad.err;
  for (const std::string& f : {disk, log, log + ".disk", snap}) std::remove(f.c_str());
}

// A disk that really fails on the recording host: its image lies on a 1 MiB
// tmpfs (in a mount namespace of the run's own), so the guest's 2 MiB write
// runs out of space part-way and the guest sees an I/O error. The run logs
// the failure with what reached the disk; the replay, on a healthy copy,
// completes the same request with the same error, takes the same contents,
// and every state hash (which covers the disk) matches.
TEST_F(RecordReplay, AHostDiskFailureIsLoggedAndTheReplaySeesTheSame) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (a tmpfs in a mount namespace)";
  const std::string dir = temp_path("full-" + std::to_string(getpid()));
  const std::string log = dir + ".log";
  std::filesystem::create_directories(dir);
  const std::string guest =
      "dd if=/dev/urandom of=/dev/vda bs=64k count=32 oflag=direct 2>&1 | grep -o 'I/O error' "
      "| head -n 1; dd if=/dev/vda bs=64k count=32 iflag=direct 2>/dev/null | md5sum; "
      "echo disk-test-done";
  ProcessResult r = run_process(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
       "mount -t tmpfs -o size=1m ftvm-test \"$1\" && truncate -s 8M \"$1/disk\" && "
       "exec \"$2\" run --record \"$3\" --disk \"$1/disk\" --hash-interval 10000000 -- \"$4\"",
       "sh", dir, kFtvm, log, guest},
      seconds(180));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("I/O error"), std::string::npos) << "the guest saw no error:\n" << r.out;
  EXPECT_NE(r.out.find("disk-test-done"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("the disk failed on this host"), std::string::npos) << r.err;

  // The log holds the failure, with the contents of the failed write.
  Result<log::LogReader> reader = log::LogReader::open(log);
  ASSERT_TRUE(reader.ok()) << reader.error();
  size_t disk_errors = 0, with_contents = 0;
  for (;;) {
    auto next = reader->next();
    ASSERT_TRUE(next.ok()) << next.error();
    if (!next->has_value()) break;
    if (auto* e = std::get_if<log::DiskError>(&(*next)->payload)) {
      ++disk_errors;
      if (!e->data.empty()) ++with_contents;
    }
  }
  EXPECT_GT(disk_errors, 0u);
  EXPECT_GT(with_contents, 0u);

  // The replay's disk (the kept starting contents under an overlay) has room:
  // only the log makes its guest see the failure.
  ProcessResult replay = run_process({kFtvm, "replay", log}, seconds(180));
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("replay OK"), std::string::npos) << replay.out << replay.err;
  EXPECT_EQ(replay.out.find(" 0 checkpoints"), std::string::npos) << replay.out;

  // Without the records, the replay's guest would have written the disk
  // fully: the log is what makes it the same run.
  const std::string stripped = log + ".stripped";
  {
    Result<log::LogReader> in = log::LogReader::open(log);
    ASSERT_TRUE(in.ok());
    Result<log::Header> h = in->header();
    ASSERT_TRUE(h.ok());
    Result<log::LogWriter> out = log::LogWriter::create(stripped, *h);
    ASSERT_TRUE(out.ok()) << out.error();
    for (;;) {
      auto next = in->next();
      ASSERT_TRUE(next.ok());
      if (!next->has_value()) break;
      if (std::holds_alternative<log::DiskError>((*next)->payload)) continue;
      ASSERT_TRUE(out->append(**next).ok());
    }
    ASSERT_TRUE(out->flush().ok());
  }
  ProcessResult diverged = run_process({kFtvm, "replay", stripped, "--disk", log + ".disk"},
                                       seconds(180));
  EXPECT_EQ(diverged.exit_code, 3) << diverged.out << diverged.err;
  for (const std::string& f : {log, log + ".disk", stripped}) std::remove(f.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace ftvm::test
