// Snapshot files: save and load round trips, atomic replacement, errors that
// name the path, and loading straight into a machine.
#include "hostio/snapshot_file.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace ftvm::hostio {
namespace {

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class SnapshotFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftvm-snapshot-file-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/machine.snap";
    ram_.assign(3 << 20, 0);
    for (size_t i = 0; i < 100000; ++i)
      ram_[(1 << 20) + i] = static_cast<uint8_t>(i * 7 + (i >> 9));
    state_.hart.instret = 4242;
    state_.hart.pc = vm::kRamBase + 0x40;
    state_.uart.scr = 0x77;
    info_.machine.ram_size = ram_.size();
    info_.machine.cmdline = "console=ttyS0";
    info_.instret = 4242;
  }
  void TearDown() override {
    for (const std::string& name : Entries()) ::unlink((dir_ + "/" + name).c_str());
    ::rmdir(dir_.c_str());
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    DIR* d = opendir(dir_.c_str());
    if (d == nullptr) return names;
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        names.push_back(e->d_name);
      }
    }
    closedir(d);
    return names;
  }
  void WriteFile(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
  }

  std::string dir_;
  std::string path_;
  std::vector<uint8_t> ram_;
  vm::MachineState state_;
  vm::SnapshotInfo info_;
};

TEST_F(SnapshotFileTest, SaveThenLoad) {
  Status s = save_snapshot(path_, info_, state_, ram_);
  ASSERT_TRUE(s.ok()) << s.error();
  auto d = load_snapshot(path_);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->info, info_);
  EXPECT_EQ(d->state.hart.pc, state_.hart.pc);
  EXPECT_EQ(d->state.uart.scr, 0x77);
  EXPECT_TRUE(d->ram == ram_);
  EXPECT_EQ(Entries(), std::vector<std::string>{"machine.snap"});
}

TEST_F(SnapshotFileTest, FileIsPrivateToItsOwner) {
  ASSERT_TRUE(save_snapshot(path_, info_, state_, ram_).ok());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SnapshotFileTest, SaveReplacesAnExistingFile) {
  WriteFile(path_, "old contents");
  ASSERT_TRUE(save_snapshot(path_, info_, state_, ram_).ok());
  auto d = load_snapshot(path_);
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(Entries(), std::vector<std::string>{"machine.snap"});
}

TEST_F(SnapshotFileTest, FailedEncodeLeavesTheOldFileAndNoTemporary) {
  WriteFile(path_, "old contents");
  vm::SnapshotInfo bad = info_;
  bad.instret = 1;  // differs from the state's
  Status s = save_snapshot(path_, bad, state_, ram_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "instret 1 differs")) << s.error();
  EXPECT_EQ(Entries(), std::vector<std::string>{"machine.snap"});
  std::ifstream f(path_);
  std::string contents((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(contents, "old contents");
}

TEST_F(SnapshotFileTest, SaveIntoAMissingDirectoryNamesThePath) {
  Status s = save_snapshot(dir_ + "/no/such/dir.snap", info_, state_, ram_);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), dir_ + "/no/such/dir.snap")) << s.error();
  EXPECT_TRUE(Entries().empty());
}

TEST_F(SnapshotFileTest, LoadMissingFile) {
  auto d = load_snapshot(dir_ + "/absent.snap");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.error(), "cannot open the snapshot '" + dir_ + "/absent.snap'"))
      << d.error();
}

TEST_F(SnapshotFileTest, LoadADirectory) {
  auto d = load_snapshot(dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.error(), "is not a regular file")) << d.error();
}

TEST_F(SnapshotFileTest, CorruptFileErrorStartsWithThePath) {
  WriteFile(path_, "not a snapshot at all");
  auto d = load_snapshot(path_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().rfind(path_ + ": offset 0: not an ftvm snapshot", 0), 0u) << d.error();
}

TEST_F(SnapshotFileTest, LoadIntoAMachine) {
  ASSERT_TRUE(save_snapshot(path_, info_, state_, ram_).ok());
  vm::MachineConfig config;
  config.ram_size = ram_.size();
  vm::Machine m(config);
  auto info = load_snapshot_into(path_, m);
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(*info, info_);
  EXPECT_EQ(m.instret(), 4242u);
  EXPECT_EQ(m.capture().uart.scr, 0x77);
  EXPECT_EQ(std::memcmp(m.bus().ram(), ram_.data(), ram_.size()), 0);
}

TEST_F(SnapshotFileTest, LoadIntoAMachineOfAnotherSize) {
  ASSERT_TRUE(save_snapshot(path_, info_, state_, ram_).ok());
  vm::MachineConfig config;
  config.ram_size = 16 << 20;
  vm::Machine m(config);
  auto info = load_snapshot_into(path_, m);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error(), path_ +
                              ": the snapshot holds 3145728 bytes of RAM but the machine has "
                              "16777216");
  EXPECT_EQ(m.instret(), 0u);
}

}  // namespace
}  // namespace ftvm::hostio
