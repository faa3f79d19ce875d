// The virtio block device, one edge case per test: requests laid out as
// Linux's virtio_blk driver lays them out (header, data, status in their own
// descriptors) and in other framings the spec allows.
#include "vm/virtio_blk.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "vm/virtio_rng.h"
#include "vm/virtio_test_driver.h"

namespace ftvm::vm {
namespace {

using namespace ftvm::vm::testing;

constexpr uint64_t kHdr = kBufArea;            // request header
constexpr uint64_t kData = kBufArea + 0x1000;  // data buffers
constexpr uint64_t kStatusByte = kBufArea + 0x800;
constexpr uint64_t kDiskSectors = 64;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

class VirtioBlkTest : public ::testing::Test {
 protected:
  explicit VirtioBlkTest(bool read_only = false)
      : disk_(pattern(kDiskSectors * 512, 3), read_only),
        blk_(&disk_, "ftvm-disk-0"),
        dev_(ram_.memory(), &line_, &blk_),
        drv_(dev_, ram_) {}

  void bring_up() {
    ASSERT_TRUE(drv_.negotiate());
    q_ = drv_.setup_queue(0);
    drv_.driver_ok();
  }
  void header(uint32_t type, uint64_t sector) {
    ram_.put_le<uint32_t>(kHdr, type);
    ram_.put_le<uint32_t>(kHdr + 4, 0);
    ram_.put_le<uint64_t>(kHdr + 8, sector);
    ram_.put_le<uint8_t>(kStatusByte, 0xee);  // the device must overwrite it
  }
  // Sends a request as Linux does and returns the status byte.
  uint8_t request(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable) {
    header(type, sector);
    std::vector<Buf> bufs = {{kHdr, 16, false}};
    if (data_len != 0) bufs.push_back({kData, data_len, data_writable});
    bufs.push_back({kStatusByte, 1, true});
    q_.add(ram_, bufs);
    drv_.notify(0);
    return ram_.get_le<uint8_t>(kStatusByte);
  }
  uint32_t last_used_len() { return q_.used_elem(ram_, q_.used_idx(ram_) - 1).second; }
  std::vector<uint8_t> disk_bytes(uint64_t off, size_t n) {
    return std::vector<uint8_t>(disk_.bytes().begin() + off, disk_.bytes().begin() + off + n);
  }
  uint64_t config_u64_as_linux(uint64_t off) {  // two 32-bit reads
    uint64_t lo = 0, hi = 0;
    EXPECT_TRUE(dev_.read(kConfig + off, 4, lo));
    EXPECT_TRUE(dev_.read(kConfig + off + 4, 4, hi));
    return lo | hi << 32;
  }

  TestRam ram_;
  FakeLine line_;
  MemoryBlockBackend disk_;
  VirtioBlk blk_;
  VirtioMmio dev_;
  TestDriver drv_;
  TestQueue q_;
};

class VirtioBlkReadOnlyTest : public VirtioBlkTest {
 protected:
  VirtioBlkReadOnlyTest() : VirtioBlkTest(true) {}
};

TEST_F(VirtioBlkTest, IsDeviceTwoWithSegMaxBlkSizeAndFlush) {
  EXPECT_EQ(drv_.rd(kDeviceId), 2u);
  EXPECT_EQ(drv_.device_features(),
            (1ull << 32) | (1ull << VirtioBlk::kFSegMax) | (1ull << VirtioBlk::kFBlkSize) |
                (1ull << VirtioBlk::kFFlush));
}

TEST_F(VirtioBlkTest, ConfigHoldsCapacitySegMaxAndBlockSize) {
  EXPECT_EQ(config_u64_as_linux(0), kDiskSectors);
  uint64_t v = 0;
  ASSERT_TRUE(dev_.read(kConfig + 12, 4, v));
  EXPECT_EQ(v, 254u);
  ASSERT_TRUE(dev_.read(kConfig + 20, 4, v));
  EXPECT_EQ(v, 512u);
  ASSERT_TRUE(dev_.read(kConfig + 8, 4, v));  // size_max: not offered
  EXPECT_EQ(v, 0u);
  ASSERT_TRUE(dev_.read(kConfig + VirtioBlk::kConfigSize, 1, v));
  EXPECT_EQ(v, 0xffu);
}

TEST(VirtioBlkCapacity, PartialLastSectorIsNotCounted) {
  MemoryBlockBackend disk(std::vector<uint8_t>(3 * 512 + 100));
  VirtioBlk blk(&disk, "");
  EXPECT_EQ(blk.capacity_sectors(), 3u);
}

TEST_F(VirtioBlkTest, ConfigWritesAreIgnored) {
  EXPECT_TRUE(dev_.write(kConfig, 4, 0));
  EXPECT_EQ(config_u64_as_linux(0), kDiskSectors);
}

TEST_F(VirtioBlkTest, ReadReturnsDiskBytes) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 5, 1024, true), VirtioBlk::kStatusOk);
  EXPECT_EQ(ram_.get(kData, 1024), disk_bytes(5 * 512, 1024));
  EXPECT_EQ(last_used_len(), 1025u);
  EXPECT_EQ(drv_.take_interrupt(), kVirtioIntUsedBuffer);
}

TEST_F(VirtioBlkTest, WriteStoresBytes) {
  bring_up();
  const std::vector<uint8_t> data = pattern(512, 100);
  ram_.put(kData, data.data(), data.size());
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 7, 512, false), VirtioBlk::kStatusOk);
  EXPECT_EQ(disk_bytes(7 * 512, 512), data);
  const std::vector<uint8_t> before = pattern(kDiskSectors * 512, 3);
  EXPECT_EQ(disk_bytes(8 * 512, 512),  // the next sector is untouched
            std::vector<uint8_t>(before.begin() + 8 * 512, before.begin() + 9 * 512));
  EXPECT_EQ(last_used_len(), 1u);
}

TEST_F(VirtioBlkTest, WriteThenReadRoundTrips) {
  bring_up();
  const std::vector<uint8_t> data = pattern(2048, 42);
  ram_.put(kData, data.data(), data.size());
  ASSERT_EQ(request(VirtioBlk::kTypeOut, 60, 2048, false), VirtioBlk::kStatusOk);
  std::fill(ram_.at(kData), ram_.at(kData) + 2048, 0);
  ASSERT_EQ(request(VirtioBlk::kTypeIn, 60, 2048, true), VirtioBlk::kStatusOk);
  EXPECT_EQ(ram_.get(kData, 2048), data);
}

TEST_F(VirtioBlkTest, RequestInOneReadableAndScatteredWritableBuffers) {
  bring_up();
  header(VirtioBlk::kTypeIn, 1);
  // Data split 100 + 412 bytes, and the status byte sharing the last buffer.
  q_.add(ram_, {{kHdr, 16, false}, {kData + 0x800, 100, true}, {kData, 413, true}});
  drv_.notify(0);
  const std::vector<uint8_t> want = disk_bytes(512, 512);
  EXPECT_EQ(ram_.get(kData + 0x800, 100), std::vector<uint8_t>(want.begin(), want.begin() + 100));
  EXPECT_EQ(ram_.get(kData, 412), std::vector<uint8_t>(want.begin() + 100, want.end()));
  EXPECT_EQ(ram_.get_le<uint8_t>(kData + 412), VirtioBlk::kStatusOk);
  EXPECT_EQ(last_used_len(), 513u);
}

TEST_F(VirtioBlkTest, WriteWithHeaderAndDataInOneBuffer) {
  bring_up();
  header(VirtioBlk::kTypeOut, 2);
  const std::vector<uint8_t> data = pattern(512, 9);
  ram_.put(kHdr + 16, data.data(), data.size());
  q_.add(ram_, {{kHdr, 16 + 512, false}, {kStatusByte, 1, true}});
  drv_.notify(0);
  EXPECT_EQ(ram_.get_le<uint8_t>(kStatusByte), VirtioBlk::kStatusOk);
  EXPECT_EQ(disk_bytes(2 * 512, 512), data);
}

TEST_F(VirtioBlkTest, FlushReachesTheBackendBeforeCompletion) {
  bring_up();
  EXPECT_EQ(disk_.flush_count(), 0u);
  EXPECT_EQ(request(VirtioBlk::kTypeFlush, 0, 0, false), VirtioBlk::kStatusOk);
  EXPECT_EQ(disk_.flush_count(), 1u);
  EXPECT_EQ(last_used_len(), 1u);
}

TEST_F(VirtioBlkTest, GetIdReturnsTheSerialNulPadded) {
  bring_up();
  std::fill(ram_.at(kData), ram_.at(kData) + 20, 0xff);
  EXPECT_EQ(request(VirtioBlk::kTypeGetId, 0, 20, true), VirtioBlk::kStatusOk);
  std::vector<uint8_t> want(20, 0);
  const std::string serial = "ftvm-disk-0";
  std::copy(serial.begin(), serial.end(), want.begin());
  EXPECT_EQ(ram_.get(kData, 20), want);
  EXPECT_EQ(last_used_len(), 21u);
}

TEST(VirtioBlkGetId, SerialLongerThanTwentyBytesIsCut) {
  TestRam ram;
  FakeLine line;
  MemoryBlockBackend disk(std::vector<uint8_t>(512));
  VirtioBlk blk(&disk, "0123456789abcdefghijKLMNOP");
  VirtioMmio dev(ram.memory(), &line, &blk);
  TestDriver drv(dev, ram);
  ASSERT_TRUE(drv.negotiate());
  TestQueue q = drv.setup_queue(0);
  drv.driver_ok();
  ram.put_le<uint32_t>(kHdr, VirtioBlk::kTypeGetId);
  q.add(ram, {{kHdr, 16, false}, {kData, 32, true}});
  drv.notify(0);
  const std::string first20 = "0123456789abcdefghij";
  EXPECT_EQ(ram.get(kData, 20), std::vector<uint8_t>(first20.begin(), first20.end()));
  EXPECT_EQ(ram.get_le<uint8_t>(kData + 20), 0u);  // the device wrote 20 bytes only
  EXPECT_EQ(ram.get_le<uint8_t>(kData + 31), VirtioBlk::kStatusOk);
}

TEST_F(VirtioBlkTest, GetIdIntoShortBufferWritesWhatFits) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeGetId, 0, 4, true), VirtioBlk::kStatusOk);
  EXPECT_EQ(ram_.get(kData, 4), (std::vector<uint8_t>{'f', 't', 'v', 'm'}));
  EXPECT_EQ(last_used_len(), 5u);
}

TEST_F(VirtioBlkTest, UnknownTypeIsUnsupported) {
  bring_up();
  EXPECT_EQ(request(11, 0, 0, false), VirtioBlk::kStatusUnsupp);  // DISCARD: not offered
  EXPECT_EQ(request(0x8000'0001u, 0, 512, false), VirtioBlk::kStatusUnsupp);  // legacy barrier
  EXPECT_EQ(last_used_len(), 1u);
}

TEST_F(VirtioBlkTest, ReadEndingAtCapacityIsFine) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, kDiskSectors - 2, 1024, true), VirtioBlk::kStatusOk);
}

TEST_F(VirtioBlkTest, ReadPastTheEndIsIoErr) {
  bring_up();
  std::fill(ram_.at(kData), ram_.at(kData) + 1024, 0x5a);
  EXPECT_EQ(request(VirtioBlk::kTypeIn, kDiskSectors - 1, 1024, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(ram_.get(kData, 1024), std::vector<uint8_t>(1024, 0x5a));  // no data moved
  EXPECT_EQ(last_used_len(), 1u);
}

TEST_F(VirtioBlkTest, SectorAtCapacityIsIoErr) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, kDiskSectors, 512, true), VirtioBlk::kStatusIoErr);
}

TEST_F(VirtioBlkTest, HugeSectorDoesNotWrapIntoRange) {
  bring_up();
  // sector * 512 wraps to 0 in 64 bits; the range check must not be fooled.
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 1ull << 55, 512, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(request(VirtioBlk::kTypeOut, ~0ull, 512, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_.bytes(), pattern(kDiskSectors * 512, 3));
}

TEST_F(VirtioBlkTest, WritePastTheEndIsIoErrAndWritesNothing) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeOut, kDiskSectors - 1, 1024, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_.bytes(), pattern(kDiskSectors * 512, 3));
}

TEST_F(VirtioBlkTest, PartialSectorLengthIsIoErr) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 0, 100, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 0, 513, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_.bytes(), pattern(kDiskSectors * 512, 3));
}

TEST_F(VirtioBlkTest, ZeroLengthReadIsOk) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 3, 0, true), VirtioBlk::kStatusOk);
  EXPECT_EQ(last_used_len(), 1u);
}

TEST_F(VirtioBlkReadOnlyTest, AdvertisesReadOnly) {
  EXPECT_TRUE(drv_.device_features() & (1ull << VirtioBlk::kFRo));
}

TEST_F(VirtioBlkReadOnlyTest, WriteIsIoErrAndLeavesTheDisk) {
  bring_up();
  const std::vector<uint8_t> data(512, 0x77);
  ram_.put(kData, data.data(), data.size());
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 0, 512, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_.bytes(), pattern(kDiskSectors * 512, 3));
  EXPECT_EQ(blk_.host_errors(), 0u);  // refused by the device, not a host failure
}

TEST_F(VirtioBlkReadOnlyTest, ReadAndFlushStillWork) {
  bring_up();
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 0, 512, true), VirtioBlk::kStatusOk);
  EXPECT_EQ(request(VirtioBlk::kTypeFlush, 0, 0, false), VirtioBlk::kStatusOk);
}

TEST_F(VirtioBlkTest, HostReadErrorIsIoErrAndCounted) {
  bring_up();
  disk_.set_failing(true);
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 0, 512, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(blk_.host_errors(), 1u);
  EXPECT_NE(blk_.last_host_error().find("injected read failure"), std::string::npos);
  EXPECT_FALSE(dev_.needs_reset());
}

TEST_F(VirtioBlkTest, HostFlushErrorIsIoErr) {
  bring_up();
  disk_.set_failing(true);
  EXPECT_EQ(request(VirtioBlk::kTypeFlush, 0, 0, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(blk_.host_errors(), 1u);
}

// --- host failures and DiskFaults (how a replicated machine keeps its copies equal) ---

// Records what the device reports, and answers recorded() with `next`.
struct TestFaults final : DiskFaults {
  struct Failure {
    DiskRequest request;
    std::optional<std::vector<uint8_t>> after;
    std::string why;
  };
  std::vector<DiskRequest> asked;
  std::vector<Failure> failures;
  std::optional<DiskRequest> fail_request;  // recorded() says this one failed
  std::optional<std::vector<uint8_t>> recorded_after;
  Recorded recorded(const DiskRequest& r) override {
    asked.push_back(r);
    if (fail_request && *fail_request == r) return {true, recorded_after};
    return {};
  }
  void failed(const DiskRequest& r, const std::optional<std::vector<uint8_t>>& after,
              const std::string& why) override {
    failures.push_back({r, after, why});
  }
};

// A disk whose writes stop with an error after `budget` more bytes (reads work).
struct PartialWriteDisk final : BlockBackend {
  MemoryBlockBackend inner;
  uint64_t budget = 0;
  explicit PartialWriteDisk(std::vector<uint8_t> bytes) : inner(std::move(bytes)) {}
  uint64_t size() const override { return inner.size(); }
  bool read_only() const override { return false; }
  Status read(uint64_t off, std::span<uint8_t> out) override { return inner.read(off, out); }
  Status write(uint64_t off, std::span<const uint8_t> data) override {
    const uint64_t n = std::min<uint64_t>(budget, data.size());
    budget -= n;
    if (Status s = inner.write(off, data.first(n)); !s) return s;
    if (n < data.size()) return make_error("no space left on device");
    return {};
  }
  Status flush() override { return inner.flush(); }
};

TEST_F(VirtioBlkTest, AFailedReadZeroesItsDataAndIsReported) {
  bring_up();
  TestFaults faults;
  blk_.set_faults(&faults);
  const std::vector<uint8_t> junk(1024, 0xcc);
  ram_.put(kData, junk.data(), junk.size());
  disk_.set_failing(true);
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 4, 1024, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(ram_.get(kData, 1024), std::vector<uint8_t>(1024, 0));  // never half a read
  ASSERT_EQ(faults.failures.size(), 1u);
  EXPECT_EQ(faults.failures[0].request, (DiskRequest{VirtioBlk::kTypeIn, 4, 1024}));
  EXPECT_FALSE(faults.failures[0].after.has_value());
  EXPECT_NE(faults.failures[0].why.find("injected read failure"), std::string::npos);
}

TEST(VirtioBlkFaults, AFailedWriteIsReadBackWithWhateverReachedTheDisk) {
  TestRam ram;
  FakeLine line;
  PartialWriteDisk disk(pattern(kDiskSectors * 512, 3));
  VirtioBlk blk(&disk, "d");
  VirtioMmio dev(ram.memory(), &line, &blk);
  TestDriver drv(dev, ram);
  ASSERT_TRUE(drv.negotiate());
  TestQueue q = drv.setup_queue(0);
  drv.driver_ok();
  TestFaults faults;
  blk.set_faults(&faults);
  disk.budget = 512;  // the first sector of two reaches the disk
  const std::vector<uint8_t> data = pattern(1024, 99);
  ram.put(kData, data.data(), data.size());
  ram.put_le<uint32_t>(kHdr, VirtioBlk::kTypeOut);
  ram.put_le<uint32_t>(kHdr + 4, 0);
  ram.put_le<uint64_t>(kHdr + 8, 2);
  q.add(ram, {{kHdr, 16, false}, {kData, 1024, false}, {kStatusByte, 1, true}});
  drv.notify(0);
  EXPECT_EQ(ram.get_le<uint8_t>(kStatusByte), VirtioBlk::kStatusIoErr);
  ASSERT_EQ(faults.failures.size(), 1u);
  EXPECT_EQ(faults.failures[0].request, (DiskRequest{VirtioBlk::kTypeOut, 2, 1024}));
  ASSERT_TRUE(faults.failures[0].after.has_value());
  std::vector<uint8_t> expected(data.begin(), data.begin() + 512);
  const std::vector<uint8_t> old = pattern(kDiskSectors * 512, 3);
  expected.insert(expected.end(), old.begin() + 3 * 512, old.begin() + 4 * 512);
  EXPECT_EQ(*faults.failures[0].after, expected);
  EXPECT_EQ(blk.dirty_blocks()[0], 1);
}

TEST_F(VirtioBlkTest, ARecordedWriteFailureTakesTheRecordedContentsInsteadOfTheWrite) {
  bring_up();
  std::fill(blk_.dirty_blocks().begin(), blk_.dirty_blocks().end(), uint8_t{0});
  TestFaults faults;
  faults.fail_request = DiskRequest{VirtioBlk::kTypeOut, 8, 1024};
  faults.recorded_after = std::vector<uint8_t>(1024, 0x42);
  blk_.set_faults(&faults);
  const std::vector<uint8_t> data(1024, 0x77);
  ram_.put(kData, data.data(), data.size());
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 8, 1024, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_bytes(8 * 512, 1024), std::vector<uint8_t>(1024, 0x42));
  EXPECT_EQ(blk_.host_errors(), 0u);
  EXPECT_TRUE(faults.failures.empty());
  EXPECT_EQ(blk_.dirty_blocks()[1], 1);  // sector 8 is in the second 4 KiB block
  // The next request is performed as usual.
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 10, 1024, false), VirtioBlk::kStatusOk);
  EXPECT_EQ(disk_bytes(10 * 512, 1024), data);
  ASSERT_EQ(faults.asked.size(), 2u);
}

TEST_F(VirtioBlkTest, ARecordedReadFailureNeverTouchesTheDisk) {
  bring_up();
  TestFaults faults;
  faults.fail_request = DiskRequest{VirtioBlk::kTypeIn, 0, 512};
  blk_.set_faults(&faults);
  disk_.set_failing(true);  // a read would fail here too: it must not happen
  const std::vector<uint8_t> junk(512, 0xcc);
  ram_.put(kData, junk.data(), junk.size());
  EXPECT_EQ(request(VirtioBlk::kTypeIn, 0, 512, true), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(ram_.get(kData, 512), std::vector<uint8_t>(512, 0));
  EXPECT_EQ(blk_.host_errors(), 0u);
  EXPECT_TRUE(faults.failures.empty());
}

TEST_F(VirtioBlkTest, ARecordedFlushFailureCompletesWithIoErr) {
  bring_up();
  TestFaults faults;
  faults.fail_request = DiskRequest{VirtioBlk::kTypeFlush, 0, 0};
  blk_.set_faults(&faults);
  EXPECT_EQ(request(VirtioBlk::kTypeFlush, 0, 0, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(disk_.flush_count(), 0u);
}

TEST_F(VirtioBlkTest, AReplicaWhoseOwnCopyFailsTellsItsFaults) {
  bring_up();
  TestFaults faults;
  faults.fail_request = DiskRequest{VirtioBlk::kTypeOut, 0, 512};
  faults.recorded_after = std::vector<uint8_t>(512, 1);
  blk_.set_faults(&faults);
  disk_.set_failing(true);
  EXPECT_EQ(request(VirtioBlk::kTypeOut, 0, 512, false), VirtioBlk::kStatusIoErr);
  ASSERT_EQ(faults.failures.size(), 1u);
  EXPECT_NE(faults.failures[0].why.find("recorded contents"), std::string::npos);
}

TEST_F(VirtioBlkTest, RequestsTheDeviceRefusesAreNotDiskFailures) {
  bring_up();
  TestFaults faults;
  blk_.set_faults(&faults);
  EXPECT_EQ(request(VirtioBlk::kTypeIn, kDiskSectors, 512, true), VirtioBlk::kStatusIoErr);
  EXPECT_TRUE(faults.asked.empty());
  EXPECT_TRUE(faults.failures.empty());
}

TEST_F(VirtioBlkTest, ShortHeaderNeedsReset) {
  bring_up();
  q_.add(ram_, {{kHdr, 8, false}, {kStatusByte, 1, true}});
  drv_.notify(0);
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_EQ(q_.used_idx(ram_), 0u);
}

TEST_F(VirtioBlkTest, MissingStatusByteNeedsReset) {
  bring_up();
  header(VirtioBlk::kTypeFlush, 0);
  q_.add(ram_, {{kHdr, 16, false}});
  drv_.notify(0);
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_EQ(disk_.flush_count(), 0u);
}

TEST_F(VirtioBlkTest, DataBufferOutsideRamFailsBeforeTouchingTheDisk) {
  bring_up();
  header(VirtioBlk::kTypeOut, 0);
  q_.add(ram_, {{kHdr, 16, false}, {kRamBase + kRamSize - 256, 512, false},
                {kStatusByte, 1, true}});
  drv_.notify(0);
  EXPECT_TRUE(dev_.needs_reset());
  EXPECT_EQ(disk_.bytes(), pattern(kDiskSectors * 512, 3));
}

TEST_F(VirtioBlkTest, ReadIsReportedToTheWriteObserver) {
  bring_up();
  ram_.observed.clear();
  ASSERT_EQ(request(VirtioBlk::kTypeIn, 0, 4096, true), VirtioBlk::kStatusOk);
  ASSERT_FALSE(ram_.observed.empty());
  EXPECT_EQ(ram_.observed[0], (GuestRange{kData, 4096}));
}

TEST_F(VirtioBlkTest, RequestsCompleteInAvailOrder) {
  bring_up();
  // Write then read of the same sector in one notify: the read sees the write.
  header(VirtioBlk::kTypeOut, 9);
  const std::vector<uint8_t> data(512, 0xab);
  ram_.put(kData, data.data(), data.size());
  q_.add(ram_, {{kHdr, 16, false}, {kData, 512, false}, {kStatusByte, 1, true}});
  ram_.put_le<uint32_t>(kHdr + 0x20, VirtioBlk::kTypeIn);
  ram_.put_le<uint64_t>(kHdr + 0x28, 9);
  q_.add(ram_, {{kHdr + 0x20, 16, false}, {kData + 0x1000, 512, true}, {kStatusByte + 1, 1, true}});
  drv_.notify(0);
  EXPECT_EQ(ram_.get(kData + 0x1000, 512), data);
  EXPECT_EQ(q_.used_idx(ram_), 2u);
}

// Rings and requests of seeded random garbage, biased towards almost-valid
// values: the device must never touch memory outside RAM (the sanitizer
// build checks), never abort, and either complete requests or fail cleanly.
TEST(VirtioBlkRandom, GarbageRingsNeverEscapeRam) {
  SeededEntropy rnd(2024);
  auto r32 = [&rnd] {
    uint32_t v;
    rnd.fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  };
  unsigned completed = 0, failed = 0;
  for (int iter = 0; iter < 300; ++iter) {
    TestRam ram;
    FakeLine line;
    MemoryBlockBackend disk(std::vector<uint8_t>(8 * 512), r32() % 4 == 0);
    VirtioBlk blk(&disk, "fuzz");
    VirtioMmio dev(ram.memory(), &line, &blk);
    TestDriver drv(dev, ram);
    ASSERT_TRUE(drv.negotiate());
    TestQueue q = drv.setup_queue(0, static_cast<uint16_t>(1u << (r32() % 5)));  // 1..16
    drv.driver_ok();
    for (int round = 0; round < 8 && !dev.needs_reset(); ++round) {
      if (r32() % 4 != 0) {
        // A plausible request: header, data, status, with random fields.
        const uint64_t hdr = kBufArea + 32 * (r32() % 32);
        ram.put_le<uint32_t>(hdr, r32() % 10);
        ram.put_le<uint64_t>(hdr + 8, r32() % 12);
        const uint32_t data_len = r32() % 4 == 0 ? r32() % 2000 : 512 * (r32() % 4);
        const bool data_writable = r32() % 2 == 0;
        std::vector<Buf> bufs = {{hdr, 16, false}};
        if (data_len != 0) bufs.push_back({kBufArea + 0x1000, data_len, data_writable});
        bufs.push_back({kBufArea + 0x800, 1, true});
        if (bufs.size() <= q.num) q.add(ram, bufs);
      } else {
        for (uint16_t i = 0; i < q.num; ++i) {
          const uint32_t pick = r32();
          uint64_t addr = kBufArea + r32() % 0x1000;
          if (pick % 16 == 0) addr = kRamBase + kRamSize - r32() % 64;
          if (pick % 16 == 1) addr = ~0ull - r32() % 64;
          if (pick % 16 == 2) addr = kRamBase - 1 - r32() % 64;
          const uint32_t len = pick % 8 == 3 ? r32() : r32() % 1200;
          const uint16_t flags = static_cast<uint16_t>(pick % 32 == 4 ? r32() : (r32() & 3));
          const uint16_t next = static_cast<uint16_t>(r32() % (q.num + 1));
          q.write_desc(ram, i, addr, len, flags, next);
        }
        const uint32_t n = r32() % (q.num + 2);
        for (uint32_t k = 0; k < n; ++k) {
          q.publish(ram, static_cast<uint16_t>(r32() % (q.num + 1)));
        }
      }
      drv.notify(0);
    }
    completed += q.used_idx(ram);
    failed += dev.needs_reset() ? 1 : 0;
  }
  // Both outcomes occur, so the test reaches past the first checks.
  EXPECT_GT(completed, 50u);
  EXPECT_GT(failed, 50u);
}

}  // namespace
}  // namespace ftvm::vm

namespace ftvm::vm {
namespace {

using namespace ftvm::vm::testing;

// A writable disk's blocks are guest state: a write marks exactly the 4 KiB
// blocks it touches, so the state digest rehashes just those.
TEST_F(VirtioBlkTest, AWriteMarksTheBlocksItTouches) {
  bring_up();
  std::vector<uint8_t>& dirty = blk_.dirty_blocks();
  ASSERT_EQ(dirty.size(), (kDiskSectors * 512 + 4095) / 4096);
  EXPECT_TRUE(std::all_of(dirty.begin(), dirty.end(), [](uint8_t d) { return d != 0; }))
      << "nothing has hashed the disk yet";
  std::fill(dirty.begin(), dirty.end(), uint8_t{0});
  // Sectors 7..8 are bytes 3584..4607: the end of block 0, the start of 1.
  const std::vector<uint8_t> data = pattern(1024, 9);
  ram_.put(kData, data.data(), data.size());
  ASSERT_EQ(request(VirtioBlk::kTypeOut, 7, 1024, false), VirtioBlk::kStatusOk);
  EXPECT_EQ(dirty[0], 1);
  EXPECT_EQ(dirty[1], 1);
  for (size_t b = 2; b < dirty.size(); ++b) EXPECT_EQ(dirty[b], 0) << "block " << b;
  // Reads and refused writes mark nothing.
  std::fill(dirty.begin(), dirty.end(), uint8_t{0});
  ASSERT_EQ(request(VirtioBlk::kTypeIn, 16, 512, true), VirtioBlk::kStatusOk);
  ASSERT_EQ(request(VirtioBlk::kTypeOut, kDiskSectors, 512, false), VirtioBlk::kStatusIoErr);
  EXPECT_TRUE(std::all_of(dirty.begin(), dirty.end(), [](uint8_t d) { return d == 0; }));
}

// A write the host fails half-way still marks its blocks: whatever the copy
// now holds is hashed again.
TEST_F(VirtioBlkTest, AFailedWriteStillMarksItsBlocks) {
  bring_up();
  std::vector<uint8_t>& dirty = blk_.dirty_blocks();
  std::fill(dirty.begin(), dirty.end(), uint8_t{0});
  disk_.set_failing(true);
  ASSERT_EQ(request(VirtioBlk::kTypeOut, 16, 512, false), VirtioBlk::kStatusIoErr);
  EXPECT_EQ(dirty[2], 1);
}

TEST_F(VirtioBlkReadOnlyTest, AReadOnlyDiskTracksNothing) {
  EXPECT_TRUE(blk_.dirty_blocks().empty());
}

}  // namespace
}  // namespace ftvm::vm
