// Tests for the snapshot format (docs/snapshot-format.md): round trips of a
// state with every field set and RAM with random, compressible and zero
// regions; a restore into a real machine that then runs on identically;
// what the encoder refuses; and one corruption per test, each reported at the
// offset the spec names.
#include "vm/snapshot.h"
#include "vm/test_program.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

namespace ftvm::vm {
namespace {

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// splitmix64: a fixed sequence, the same on every host.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Every field of MachineState given a value of its own, none the default.
MachineState DistinctiveState() {
  uint64_t n = 0x1000;
  auto next = [&n] {
    ++n;
    return 0x0101010101010101ull * (n % 251) + n;
  };
  MachineState m;
  HartState& h = m.hart;
  for (auto& v : h.x) v = next();
  for (auto& v : h.f) v = next();
  h.pc = next();
  h.instret = 123456789;
  h.priv = Priv::kSupervisor;
  h.wfi = true;
  h.reservation_valid = true;
  h.reservation_addr = next();
  h.fflags = 0x15;
  h.frm = 4;
  for (uint64_t* p :
       {&h.mstatus,       &h.medeleg,    &h.mideleg,  &h.mie,   &h.mip,        &h.mtvec,
        &h.mscratch,      &h.mepc,       &h.mcause,   &h.mtval, &h.mcounteren, &h.menvcfg,
        &h.mcountinhibit, &h.stvec,      &h.sscratch, &h.sepc,  &h.scause,     &h.stval,
        &h.satp,          &h.scounteren, &h.senvcfg}) {
    *p = next();
  }
  for (auto& v : h.counter_offset) v = next();
  for (auto& v : h.counter_frozen) v = next();
  h.seip_external = true;
  for (auto& v : h.pmpaddr) v = next();
  for (size_t i = 0; i < h.pmpcfg.size(); ++i) h.pmpcfg[i] = static_cast<uint8_t>(0x80 + i);
  Uart16550::State& u = m.uart;
  for (size_t i = 0; i < u.rx_fifo.size(); ++i) u.rx_fifo[i] = static_cast<uint8_t>('a' + i);
  u.rx_count = 11;
  u.ier = 0x0f;
  u.fcr = 0xc9;
  u.lcr = 0x83;
  u.mcr = 0x1b;
  u.scr = 0x5a;
  u.dll = 0x01;
  u.dlm = 0x02;
  u.overrun = true;
  u.thr_ipending = true;
  m.clint.msip = true;
  m.clint.mtimecmp = next();
  Plic::State& p = m.plic;
  for (auto& v : p.priority) v = static_cast<uint32_t>(next());
  for (auto& v : p.level) v = static_cast<uint32_t>(next());
  for (auto& v : p.claimed) v = static_cast<uint32_t>(next());
  for (auto& e : p.enable) {
    for (auto& v : e) v = static_cast<uint32_t>(next());
  }
  for (auto& v : p.threshold) v = static_cast<uint32_t>(next());
  for (VirtioMmio::State& v : m.virtio) {
    v.status = static_cast<uint32_t>(next());
    v.device_features_sel = static_cast<uint32_t>(next());
    v.driver_features_sel = static_cast<uint32_t>(next());
    v.driver_features = next();
    v.queue_sel = static_cast<uint32_t>(next());
    v.interrupt_status = static_cast<uint32_t>(next());
    v.config_generation = static_cast<uint32_t>(next());
    for (VirtioMmio::QueueState& q : v.queues) {
      q.num = static_cast<uint16_t>(next());
      q.ready = true;
      q.desc = next();
      q.avail = next();
      q.used = next();
      q.last_avail = static_cast<uint16_t>(next());
      q.used_idx = static_cast<uint16_t>(next());
    }
  }
  VirtioNet::State net;
  net.mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  net.link_up = false;
  net.rx_frames = next();
  net.rx_bytes = next();
  net.rx_dropped = next();
  net.tx_frames = next();
  net.tx_bytes = next();
  net.tx_dropped = next();
  m.net = net;
  m.sbi_mode = true;
  m.sbi_timecmp = next();
  m.time_skipped = next();
  m.tohost = next();
  m.power = 2;
  m.exit_status = 0xdeadbeef;
  return m;
}

// Field by field (HartState and MachineState have no operator==; the
// device states do).
void ExpectSameState(const MachineState& a, const MachineState& b) {
  const HartState& x = a.hart;
  const HartState& y = b.hart;
  EXPECT_EQ(x.x, y.x);
  EXPECT_EQ(x.f, y.f);
  EXPECT_EQ(x.pc, y.pc);
  EXPECT_EQ(x.instret, y.instret);
  EXPECT_EQ(x.priv, y.priv);
  EXPECT_EQ(x.wfi, y.wfi);
  EXPECT_EQ(x.reservation_valid, y.reservation_valid);
  EXPECT_EQ(x.reservation_addr, y.reservation_addr);
  EXPECT_EQ(x.fflags, y.fflags);
  EXPECT_EQ(x.frm, y.frm);
  EXPECT_EQ(x.mstatus, y.mstatus);
  EXPECT_EQ(x.medeleg, y.medeleg);
  EXPECT_EQ(x.mideleg, y.mideleg);
  EXPECT_EQ(x.mie, y.mie);
  EXPECT_EQ(x.mip, y.mip);
  EXPECT_EQ(x.mtvec, y.mtvec);
  EXPECT_EQ(x.mscratch, y.mscratch);
  EXPECT_EQ(x.mepc, y.mepc);
  EXPECT_EQ(x.mcause, y.mcause);
  EXPECT_EQ(x.mtval, y.mtval);
  EXPECT_EQ(x.mcounteren, y.mcounteren);
  EXPECT_EQ(x.menvcfg, y.menvcfg);
  EXPECT_EQ(x.mcountinhibit, y.mcountinhibit);
  EXPECT_EQ(x.stvec, y.stvec);
  EXPECT_EQ(x.sscratch, y.sscratch);
  EXPECT_EQ(x.sepc, y.sepc);
  EXPECT_EQ(x.scause, y.scause);
  EXPECT_EQ(x.stval, y.stval);
  EXPECT_EQ(x.satp, y.satp);
  EXPECT_EQ(x.scounteren, y.scounteren);
  EXPECT_EQ(x.senvcfg, y.senvcfg);
  EXPECT_EQ(x.counter_offset, y.counter_offset);
  EXPECT_EQ(x.counter_frozen, y.counter_frozen);
  EXPECT_EQ(x.seip_external, y.seip_external);
  EXPECT_EQ(x.pmpaddr, y.pmpaddr);
  EXPECT_EQ(x.pmpcfg, y.pmpcfg);
  EXPECT_TRUE(a.uart == b.uart);
  EXPECT_TRUE(a.clint == b.clint);
  EXPECT_TRUE(a.plic == b.plic);
  for (size_t i = 0; i < a.virtio.size(); ++i) EXPECT_TRUE(a.virtio[i] == b.virtio[i]) << i;
  EXPECT_EQ(a.net, b.net);
  EXPECT_EQ(a.sbi_mode, b.sbi_mode);
  EXPECT_EQ(a.sbi_timecmp, b.sbi_timecmp);
  EXPECT_EQ(a.time_skipped, b.time_skipped);
  EXPECT_EQ(a.tohost, b.tohost);
  EXPECT_EQ(a.power, b.power);
  EXPECT_EQ(a.exit_status, b.exit_status);
}

// `size` bytes: random, then zero, then repetitive text, then zero, and so
// on in blocks of `block` bytes (so a chunk may mix them).
std::vector<uint8_t> MixedRam(size_t size, size_t block, uint64_t seed) {
  std::vector<uint8_t> ram(size, 0);
  Rng rng{seed};
  const std::string text = "the quick brown fox jumps over the lazy dog; ";
  for (size_t at = 0, i = 0; at < size; at += block, ++i) {
    const size_t n = std::min(block, size - at);
    if (i % 4 == 0) {
      for (size_t j = 0; j < n; ++j) ram[at + j] = static_cast<uint8_t>(rng.next());
    } else if (i % 4 == 2) {
      for (size_t j = 0; j < n; ++j)
        ram[at + j] = static_cast<uint8_t>(text[(at + j) % text.size()]);
    }
  }
  return ram;
}

SnapshotInfo InfoFor(const MachineState& m, uint64_t ram_size) {
  SnapshotInfo info;
  info.machine.ram_size = ram_size;
  info.machine.cmdline = "console=ttyS0 quiet";
  info.machine.kernel = {3480872, log::Sha256{1, 2, 3}};
  info.machine.initrd = log::ImageDigest{1645227, log::Sha256{4, 5, 6}};
  info.machine.metadata = {{"ftvm.version", "test"}};
  info.instret = m.hart.instret;
  return info;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

uint32_t GetU32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}
void PutU32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void PutU64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
uint32_t Crc(const std::string& s, size_t from, size_t to) {
  return static_cast<uint32_t>(::crc32(::crc32(0, Z_NULL, 0),
                                       reinterpret_cast<const Bytef*>(s.data() + from),
                                       static_cast<uInt>(to - from)));
}

struct SectionAt {
  size_t offset;
  uint32_t type;
  uint32_t length;
  size_t payload() const { return offset + 12; }
  size_t end() const { return offset + 16 + length; }
};

// The sections of a well-formed snapshot.
std::vector<SectionAt> Sections(const std::string& s) {
  std::vector<SectionAt> out;
  for (size_t at = kSnapshotPrefixSize; at + 16 <= s.size();) {
    out.push_back({at, GetU32(s, at), GetU32(s, at + 4)});
    at = out.back().end();
  }
  return out;
}

// Makes both checksums of `sec` (as its bytes now say) correct again.
void FixCrcs(std::string& s, size_t section_offset) {
  PutU32(s, section_offset + 8, Crc(s, section_offset, section_offset + 8));
  const size_t end = section_offset + 12 + GetU32(s, section_offset + 4);
  PutU32(s, end, Crc(s, section_offset, end));
}

// Offsets in the state payload, from the spec's field table.
constexpr size_t kInstretField = 528;
constexpr size_t kPrivField = 536;
constexpr size_t kWfiField = 537;
constexpr size_t kFrmField = 551;
constexpr size_t kRxCountField = 916;
constexpr size_t kNetField = 3615;
constexpr size_t kTohostField = 3688;
constexpr size_t kPowerField = 3697;

// A small snapshot: 16 chunks of 4 KiB, of all three encodings, and a
// 1 KiB tail chunk.
class SmallSnapshot : public ::testing::Test {
 protected:
  static constexpr size_t kRamSize = 16 * 4096 + 1024;
  void SetUp() override {
    state_ = DistinctiveState();
    ram_ = MixedRam(kRamSize, 4096, 7);
    SnapshotOptions o;
    o.chunk_size = 4096;
    auto e = encode_snapshot(InfoFor(state_, kRamSize), state_, ram_, o);
    ASSERT_TRUE(e.ok()) << e.error();
    file_ = *e;
    sections_ = Sections(file_);
    ASSERT_EQ(sections_.size(), 3u + 17u);
  }

  std::string Error(const std::string& file) const {
    auto d = decode_snapshot(Bytes(file), "snap");
    EXPECT_FALSE(d.ok());
    return d.ok() ? "" : d.error();
  }
  const SectionAt& description() const { return sections_[0]; }
  const SectionAt& state() const { return sections_[1]; }
  const SectionAt& ram() const { return sections_[2]; }
  const SectionAt& chunk(size_t i) const { return sections_[3 + i]; }
  uint8_t encoding(size_t i) const { return static_cast<uint8_t>(file_[chunk(i).payload() + 8]); }
  // The first chunk stored with `encoding`.
  size_t first_chunk_with(uint8_t e) const {
    for (size_t i = 0; i < 17; ++i) {
      if (encoding(i) == e) return i;
    }
    ADD_FAILURE() << "no chunk with encoding " << int{e};
    return 0;
  }
  // The file with state payload byte `field` set to `v`, checksums fixed.
  std::string with_state_byte(size_t field, uint8_t v) const {
    std::string f = file_;
    f[state().payload() + field] = static_cast<char>(v);
    FixCrcs(f, state().offset);
    return f;
  }

  MachineState state_;
  std::vector<uint8_t> ram_;
  std::string file_;
  std::vector<SectionAt> sections_;
};

// ---- round trips ----

TEST(SnapshotRoundTrip, EveryFieldAndTheRam) {
  const MachineState m = DistinctiveState();
  const size_t size = 3 * (1 << 20) + 12345;  // a short last chunk
  const std::vector<uint8_t> ram = MixedRam(size, 64 << 10, 1);
  const SnapshotInfo info = InfoFor(m, size);
  auto e = encode_snapshot(info, m, ram);
  ASSERT_TRUE(e.ok()) << e.error();
  auto d = decode_snapshot(Bytes(*e));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->info, info);
  ExpectSameState(d->state, m);
  EXPECT_TRUE(d->ram == ram);
}

TEST(SnapshotRoundTrip, DefaultStateAndAbsentTohost) {
  MachineState m;
  std::vector<uint8_t> ram(4096, 0);
  auto e = encode_snapshot(InfoFor(m, ram.size()), m, ram);
  ASSERT_TRUE(e.ok()) << e.error();
  auto d = decode_snapshot(Bytes(*e));
  ASSERT_TRUE(d.ok()) << d.error();
  ExpectSameState(d->state, m);
  EXPECT_FALSE(d->state.tohost.has_value());
  EXPECT_FALSE(d->state.net.has_value());
  EXPECT_TRUE(d->ram == ram);
}

TEST(SnapshotRoundTrip, EveryZstdLevelExtreme) {
  const MachineState m = DistinctiveState();
  const std::vector<uint8_t> ram = MixedRam(1 << 20, 4096, 3);
  for (int level : {-5, 1, 19}) {
    SnapshotOptions o;
    o.zstd_level = level;
    auto e = encode_snapshot(InfoFor(m, ram.size()), m, ram, o);
    ASSERT_TRUE(e.ok()) << e.error();
    auto d = decode_snapshot(Bytes(*e));
    ASSERT_TRUE(d.ok()) << level << ": " << d.error();
    EXPECT_TRUE(d->ram == ram) << level;
  }
}

TEST(SnapshotRoundTrip, StateSectionHasTheSpecsSize) {
  const MachineState m = DistinctiveState();
  std::vector<uint8_t> ram(4096, 1);
  auto e = encode_snapshot(InfoFor(m, ram.size()), m, ram);
  ASSERT_TRUE(e.ok());
  const std::vector<SectionAt> s = Sections(*e);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[1].type, 2u);
  EXPECT_EQ(s[1].length, kStateSectionSize);
  EXPECT_EQ(kStateSectionSize, 3702u);
}

uint64_t GetLe(const std::string& s, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}

TEST(SnapshotRoundTrip, StateFieldOffsetsAreTheSpecs) {
  const MachineState m = DistinctiveState();
  std::vector<uint8_t> ram(4096, 1);
  auto e = encode_snapshot(InfoFor(m, ram.size()), m, ram);
  ASSERT_TRUE(e.ok());
  const size_t p = Sections(*e)[1].payload();
  EXPECT_EQ(GetLe(*e, p + 0, 8), m.hart.x[0]);
  EXPECT_EQ(GetLe(*e, p + 256, 8), m.hart.x[32]);
  EXPECT_EQ(GetLe(*e, p + 264, 8), m.hart.f[0]);
  EXPECT_EQ(GetLe(*e, p + 520, 8), m.hart.pc);
  EXPECT_EQ(GetLe(*e, p + 528, 8), m.hart.instret);
  EXPECT_EQ(GetLe(*e, p + 536, 1), 1u);  // priv S
  EXPECT_EQ(GetLe(*e, p + 539, 8), m.hart.reservation_addr);
  EXPECT_EQ(GetLe(*e, p + 547, 4), m.hart.fflags);
  EXPECT_EQ(GetLe(*e, p + 551, 4), m.hart.frm);
  EXPECT_EQ(GetLe(*e, p + 555, 8), m.hart.mstatus);
  EXPECT_EQ(GetLe(*e, p + 715, 8), m.hart.senvcfg);
  EXPECT_EQ(GetLe(*e, p + 723, 8), m.hart.counter_offset[0]);
  EXPECT_EQ(GetLe(*e, p + 739, 8), m.hart.counter_frozen[0]);
  EXPECT_EQ(GetLe(*e, p + 755, 1), 1u);  // seip_external
  EXPECT_EQ(GetLe(*e, p + 756, 8), m.hart.pmpaddr[0]);
  EXPECT_EQ(GetLe(*e, p + 884, 1), m.hart.pmpcfg[0]);
  EXPECT_EQ(GetLe(*e, p + 900, 1), m.uart.rx_fifo[0]);
  EXPECT_EQ(GetLe(*e, p + 916, 1), m.uart.rx_count);
  EXPECT_EQ(GetLe(*e, p + 923, 1), m.uart.dlm);
  EXPECT_EQ(GetLe(*e, p + 925, 1), 1u);  // thr_ipending
  EXPECT_EQ(GetLe(*e, p + 926, 1), 1u);  // clint.msip
  EXPECT_EQ(GetLe(*e, p + 927, 8), m.clint.mtimecmp);
  EXPECT_EQ(GetLe(*e, p + 935, 4), m.plic.priority[0]);
  EXPECT_EQ(GetLe(*e, p + 1319, 4), m.plic.level[0]);
  EXPECT_EQ(GetLe(*e, p + 1331, 4), m.plic.claimed[0]);
  EXPECT_EQ(GetLe(*e, p + 1355, 4), m.plic.enable[1][0]);
  EXPECT_EQ(GetLe(*e, p + 1371, 4), m.plic.threshold[1]);
  EXPECT_EQ(GetLe(*e, p + 1375, 4), m.virtio[0].status);
  EXPECT_EQ(GetLe(*e, p + 1375 + 280 + 12, 8), m.virtio[1].driver_features);
  EXPECT_EQ(GetLe(*e, p + 1375 + 280 + 28, 4), m.virtio[1].config_generation);
  EXPECT_EQ(GetLe(*e, p + 1375 + 7 * 280 + 32 + 7 * 31 + 3, 8), m.virtio[7].queues[7].desc);
  EXPECT_EQ(GetLe(*e, p + 1375 + 7 * 280 + 32 + 7 * 31 + 29, 2), m.virtio[7].queues[7].used_idx);
  EXPECT_EQ(GetLe(*e, p + 3615, 1), 1u);  // net present
  EXPECT_EQ(GetLe(*e, p + 3616, 1), m.net->mac[0]);
  EXPECT_EQ(GetLe(*e, p + 3622, 1), 0u);  // link_up false
  EXPECT_EQ(GetLe(*e, p + 3663, 8), m.net->tx_dropped);
  EXPECT_EQ(GetLe(*e, p + 3671, 1), 1u);  // sbi_mode
  EXPECT_EQ(GetLe(*e, p + 3672, 8), m.sbi_timecmp);
  EXPECT_EQ(GetLe(*e, p + 3680, 8), m.time_skipped);
  EXPECT_EQ(GetLe(*e, p + 3688, 1), 1u);  // tohost present
  EXPECT_EQ(GetLe(*e, p + 3689, 8), *m.tohost);
  EXPECT_EQ(GetLe(*e, p + 3697, 1), m.power);
  EXPECT_EQ(GetLe(*e, p + 3698, 4), m.exit_status);
}

TEST(SnapshotRoundTrip, ZeroRamCostsAlmostNothing) {
  const MachineState m = DistinctiveState();
  const std::vector<uint8_t> ram(64 << 20, 0);
  SnapshotInfo info;  // no cmdline, initrd, disk or metadata
  info.machine.ram_size = ram.size();
  info.instret = m.hart.instret;
  auto e = encode_snapshot(info, m, ram);
  ASSERT_TRUE(e.ok());
  // Prefix, description (16 + 172), state (16 + 3702), RAM (16 + 16), and
  // 64 chunks of 16 + 12 bytes each.
  EXPECT_EQ(e->size(), 12u + 188 + 3718 + 32 + 64 * 28);
  auto d = decode_snapshot(Bytes(*e));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->info, info);
  EXPECT_TRUE(d->ram == ram);
}

TEST(SnapshotRoundTrip, ZeroPagesInsideAChunkCostAlmostNothing) {
  const MachineState m;
  std::vector<uint8_t> ram(1 << 20, 0);
  Rng rng{9};
  for (size_t i = 0; i < 4096; ++i) ram[i] = static_cast<uint8_t>(rng.next());  // one page
  auto e = encode_snapshot(InfoFor(m, ram.size()), m, ram);
  ASSERT_TRUE(e.ok());
  EXPECT_LT(e->size(), 4096 + kStateSectionSize + 1024);
}

TEST_F(SmallSnapshot, UsesAllThreeChunkEncodings) {
  EXPECT_EQ(encoding(0), 1);  // random: raw
  EXPECT_EQ(encoding(1), 0);  // zero
  EXPECT_EQ(encoding(2), 2);  // text: zstd
  EXPECT_EQ(chunk(1).length, 12u);
  EXPECT_EQ(chunk(0).length, 12u + 4096);
  EXPECT_EQ(chunk(16).length, 12u + 1024);  // the short tail, random: raw
}

TEST_F(SmallSnapshot, DecodesIntoABufferOverwritingWhatWasThere) {
  std::vector<uint8_t> buf(kRamSize, 0xcc);
  auto d = decode_snapshot_into(Bytes(file_), buf, "snap");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_TRUE(buf == ram_);
  ExpectSameState(d->state, state_);
  EXPECT_EQ(d->info.instret, state_.hart.instret);
}

TEST_F(SmallSnapshot, DecodeIntoABufferOfTheWrongSize) {
  std::vector<uint8_t> buf(kRamSize - 1);
  auto d = decode_snapshot_into(Bytes(file_), buf, "snap");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error(), "snap: the snapshot holds 66560 bytes of RAM but the machine has 66559");
}

TEST_F(SmallSnapshot, InfoNeedsOnlyThePrefixAndTheDescription) {
  auto info = decode_snapshot_info(Bytes(file_.substr(0, description().end())), "snap");
  ASSERT_TRUE(info.ok()) << info.error();
  EXPECT_EQ(*info, InfoFor(state_, kRamSize));
}

// ---- a real machine ----

using testing::Addi;
using testing::Jal0;
using testing::Sd;

TEST(SnapshotMachine, RestoredMachineCapturesTheSameStateAndRunsOnIdentically) {
  MachineConfig config;
  config.ram_size = 16 << 20;
  config.net_mac = kDefaultGuestMac;  // so the state holds a NIC's too
  Machine a(config);
  // A loop that counts in x5 and stores each count at x6, x6 += 8.
  const uint32_t program[] = {Addi(5, 5, 1), Sd(5, 6), Addi(6, 6, 8), Jal0(-12)};
  std::memcpy(a.bus().ram(), program, sizeof program);
  MachineState start = a.capture();
  start.hart.pc = kRamBase;
  start.hart.priv = Priv::kMachine;
  start.hart.x[6] = kRamBase + 0x10000;
  a.restore(start);
  ASSERT_EQ(a.run(10'001).status, RunStatus::kBudget);

  const MachineState captured = a.capture();
  auto e = encode_snapshot(InfoFor(captured, config.ram_size), captured,
                           {a.bus().ram(), a.bus().ram_size()});
  ASSERT_TRUE(e.ok()) << e.error();
  Machine b(config);
  auto d = decode_snapshot_into(Bytes(*e), {b.bus().ram(), b.bus().ram_size()}, "snap");
  ASSERT_TRUE(d.ok()) << d.error();
  b.restore(d->state);
  ExpectSameState(b.capture(), captured);
  ASSERT_TRUE(captured.net.has_value());
  EXPECT_EQ(b.instret(), 10'001u);
  EXPECT_EQ(b.state_digest(), a.state_digest());

  ASSERT_EQ(a.run(5000).status, RunStatus::kBudget);
  ASSERT_EQ(b.run(5000).status, RunStatus::kBudget);
  EXPECT_EQ(b.state_digest(), a.state_digest());
  EXPECT_EQ(b.hart().state().x[5], a.hart().state().x[5]);
  EXPECT_GT(b.hart().state().x[5], 3000u);
}

// ---- what the encoder refuses ----

std::string EncodeError(const SnapshotInfo& info, const MachineState& m,
                        const std::vector<uint8_t>& ram, const SnapshotOptions& o = {}) {
  auto e = encode_snapshot(info, m, ram, o);
  EXPECT_FALSE(e.ok());
  return e.ok() ? "" : e.error();
}

TEST(SnapshotEncode, RamSizeDiffersFromTheDescription) {
  MachineState m;
  std::vector<uint8_t> ram(8192);
  EXPECT_EQ(EncodeError(InfoFor(m, 4096), m, ram),
            "cannot encode a snapshot: the description's RAM size is 4096 but the RAM image is "
            "8192 bytes");
}

TEST(SnapshotEncode, EmptyRam) {
  MachineState m;
  EXPECT_TRUE(Contains(EncodeError(InfoFor(m, 0), m, {}), "0 bytes of RAM"));
}

TEST(SnapshotEncode, InstretDiffersFromTheState) {
  MachineState m;
  std::vector<uint8_t> ram(4096);
  SnapshotInfo info = InfoFor(m, ram.size());
  info.instret = 5;
  EXPECT_EQ(EncodeError(info, m, ram),
            "cannot encode a snapshot: instret 5 differs from the state's hart.instret 0");
}

TEST(SnapshotEncode, ChunkSizeNotAPowerOfTwo) {
  MachineState m;
  std::vector<uint8_t> ram(4096);
  SnapshotOptions o;
  o.chunk_size = 3 << 12;
  EXPECT_TRUE(Contains(EncodeError(InfoFor(m, ram.size()), m, ram, o), "chunk size 12288"));
}

TEST(SnapshotEncode, ZstdLevelOutOfRange) {
  MachineState m;
  std::vector<uint8_t> ram(4096);
  SnapshotOptions o;
  o.zstd_level = 99;
  EXPECT_TRUE(Contains(EncodeError(InfoFor(m, ram.size()), m, ram, o), "zstd level 99"));
}

TEST(SnapshotEncode, InvalidPrivilege) {
  MachineState m;
  m.hart.priv = static_cast<Priv>(2);
  std::vector<uint8_t> ram(4096);
  EXPECT_EQ(EncodeError(InfoFor(m, ram.size()), m, ram),
            "cannot encode a snapshot: hart.priv is 2, not 0, 1 or 3");
}

TEST(SnapshotEncode, FrmOutOfRange) {
  MachineState m;
  m.hart.frm = 8;
  std::vector<uint8_t> ram(4096);
  EXPECT_EQ(EncodeError(InfoFor(m, ram.size()), m, ram),
            "cannot encode a snapshot: hart.frm is 0x8, more than 0x7");
}

TEST(SnapshotEncode, PowerOutOfRange) {
  MachineState m;
  m.power = 4;
  std::vector<uint8_t> ram(4096);
  EXPECT_EQ(EncodeError(InfoFor(m, ram.size()), m, ram),
            "cannot encode a snapshot: power is 4, more than 3");
}

TEST(SnapshotEncode, SinkErrorStopsTheEncoder) {
  MachineState m;
  std::vector<uint8_t> ram(3 * 4096, 1);
  SnapshotOptions o;
  o.chunk_size = 4096;
  int calls = 0;
  Status s = encode_snapshot_to(InfoFor(m, ram.size()), m, ram, o, [&](std::span<const uint8_t>) {
    return ++calls == 2 ? Status(make_error("disk full")) : Status{};
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), "disk full");
  EXPECT_EQ(calls, 2);
}

TEST(SnapshotEncode, ProgressAfterEveryChunk) {
  MachineState m;
  std::vector<uint8_t> ram(2 * 4096 + 100, 1);
  SnapshotOptions o;
  o.chunk_size = 4096;
  std::vector<uint64_t> seen;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, ram.size());
    seen.push_back(done);
  };
  ASSERT_TRUE(encode_snapshot(InfoFor(m, ram.size()), m, ram, o).ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{4096, 8192, 8292}));
}

// ---- the prefix ----

TEST_F(SmallSnapshot, EmptyFile) {
  EXPECT_EQ(Error(""), "snap: offset 0: empty file, not a snapshot");
}

TEST_F(SmallSnapshot, BadMagic) {
  std::string f = file_;
  f[3] = 'X';
  EXPECT_EQ(Error(f),
            "snap: offset 0: not an ftvm snapshot (starts with 89 46 54 58 4d 53 4e "
            "50, expected 89 46 54 56 4d 53 4e 50)");
}

TEST_F(SmallSnapshot, AnEventLogIsNotASnapshot) {
  std::string f = file_;
  std::memcpy(f.data(), log::kMagic, 8);
  EXPECT_TRUE(Contains(Error(f), "snap: offset 0: not an ftvm snapshot"));
}

TEST_F(SmallSnapshot, NewerVersion) {
  std::string f = file_;
  PutU32(f, 8, 2);
  EXPECT_EQ(Error(f),
            "snap: offset 8: snapshot format version 2 is not supported (this build "
            "reads version 1 only)");
}

TEST_F(SmallSnapshot, VersionIsCheckedBeforeAnythingElse) {
  std::string f = file_.substr(0, 12);
  PutU32(f, 8, 0);
  EXPECT_TRUE(Contains(Error(f), "offset 8: snapshot format version 0"));
}

TEST_F(SmallSnapshot, TruncatedPrefix) {
  EXPECT_EQ(Error(file_.substr(0, 10)),
            "snap: offset 0: truncated: the 12-byte prefix is cut short at 10 bytes");
}

TEST_F(SmallSnapshot, TruncatedAtEveryOffset) {
  for (size_t n = 0; n < file_.size(); ++n) {
    auto d = decode_snapshot(Bytes(file_).first(n), "snap");
    ASSERT_FALSE(d.ok()) << n;
    ASSERT_EQ(d.error().rfind("snap: offset ", 0), 0u) << n << ": " << d.error();
    if (n >= ram().end()) {
      // Cut inside the chunks: named as a truncated chunk section.
      ASSERT_TRUE(Contains(d.error(), "truncated RAM chunk section")) << n << ": " << d.error();
    }
  }
}

TEST_F(SmallSnapshot, TruncatedAtAChunkBoundaryNamesTheMissingChunk) {
  EXPECT_EQ(Error(file_.substr(0, chunk(5).offset)),
            "snap: offset " + std::to_string(chunk(5).offset) +
                ": truncated RAM chunk section: its header needs 12 bytes, only 0 remain");
}

TEST_F(SmallSnapshot, BytesAfterTheLastChunk) {
  EXPECT_EQ(Error(file_ + "x"),
            "snap: offset " + std::to_string(file_.size()) + ": 1 bytes after the last RAM chunk");
}

// ---- section framing ----

TEST_F(SmallSnapshot, DescriptionChecksumMismatch) {
  std::string f = file_;
  f[description().payload() + 40] ^= 1;
  const std::string e = Error(f);
  EXPECT_TRUE(Contains(e, "snap: offset 12: description section checksum mismatch")) << e;
}

TEST_F(SmallSnapshot, StateChecksumMismatch) {
  std::string f = file_;
  f[state().payload() + 100] ^= 0x80;
  EXPECT_TRUE(Contains(
      Error(f), "offset " + std::to_string(state().offset) + ": state section checksum mismatch"));
}

TEST_F(SmallSnapshot, RamSectionChecksumMismatch) {
  std::string f = file_;
  f[ram().payload() + 1] ^= 1;
  EXPECT_TRUE(Contains(
      Error(f), "offset " + std::to_string(ram().offset) + ": RAM section checksum mismatch"));
}

TEST_F(SmallSnapshot, ZeroChunkChecksumMismatch) {
  const size_t i = first_chunk_with(0);
  std::string f = file_;
  f[chunk(i).end() - 1] ^= 1;  // the checksum itself
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(i).offset) +
                                     ": RAM chunk section checksum mismatch"));
}

TEST_F(SmallSnapshot, RawChunkChecksumMismatch) {
  const size_t i = first_chunk_with(1);
  std::string f = file_;
  f[chunk(i).payload() + 12 + 2000] ^= 4;
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(i).offset) +
                                     ": RAM chunk section checksum mismatch"));
}

TEST_F(SmallSnapshot, ZstdChunkChecksumMismatch) {
  const size_t i = first_chunk_with(2);
  std::string f = file_;
  f[chunk(i).payload() + 12 + 10] ^= 4;
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(i).offset) +
                                     ": RAM chunk section checksum mismatch"));
}

TEST_F(SmallSnapshot, LastChunkChecksumMismatch) {
  std::string f = file_;
  f[chunk(16).payload() + 12 + 1023] ^= 4;
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(16).offset) +
                                     ": RAM chunk section checksum mismatch"));
}

TEST_F(SmallSnapshot, SectionHeaderChecksumMismatch) {
  std::string f = file_;
  f[state().offset + 4] ^= 1;  // its length
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(state().offset) +
                                     ": state section header checksum mismatch"));
}

TEST_F(SmallSnapshot, ChunkLengthThatLiesIsCaughtAtTheChunk) {
  // One byte longer, header checksum made to match: the section checksum is
  // then looked for one byte too far and does not match.
  const size_t i = first_chunk_with(2);
  std::string f = file_;
  PutU32(f, chunk(i).offset + 4, chunk(i).length + 1);
  PutU32(f, chunk(i).offset + 8, Crc(f, chunk(i).offset, chunk(i).offset + 8));
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(i).offset) +
                                     ": RAM chunk section checksum mismatch"));
}

TEST_F(SmallSnapshot, ChunkLengthPastTheEndOfTheFile) {
  std::string f = file_;
  PutU32(f, chunk(16).offset + 4, chunk(16).length + 100);
  PutU32(f, chunk(16).offset + 8, Crc(f, chunk(16).offset, chunk(16).offset + 8));
  EXPECT_TRUE(Contains(Error(f), "offset " + std::to_string(chunk(16).offset) +
                                     ": RAM chunk section length 1136 is outside [12, 1036]"));
}

TEST_F(SmallSnapshot, ChunkLengthOverTheLimitIsRejectedBeforeReading) {
  std::string f = file_;
  PutU32(f, chunk(3).offset + 4, 0xffffffff);
  PutU32(f, chunk(3).offset + 8, Crc(f, chunk(3).offset, chunk(3).offset + 8));
  EXPECT_TRUE(Contains(Error(f), "RAM chunk section length 4294967295 is outside [12, 4108]"));
}

TEST_F(SmallSnapshot, StateLengthWrong) {
  std::string f = file_;
  PutU32(f, state().offset + 4, kStateSectionSize - 1);
  PutU32(f, state().offset + 8, Crc(f, state().offset, state().offset + 8));
  EXPECT_TRUE(Contains(Error(f), "state section length 3701 is wrong, must be 3702"));
}

TEST_F(SmallSnapshot, SectionOfTheWrongType) {
  std::string f = file_;
  PutU32(f, state().offset, 3);
  FixCrcs(f, state().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(state().offset) +
                          ": expected the state section (type 2), found a section of type 3");
}

TEST_F(SmallSnapshot, ChunksInTheWrongOrder) {
  std::string f = file_.substr(0, chunk(3).offset);
  f += file_.substr(chunk(4).offset, chunk(4).end() - chunk(4).offset);
  f += file_.substr(chunk(3).offset, chunk(3).end() - chunk(3).offset);
  f += file_.substr(chunk(5).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(3).payload()) +
                          ": RAM chunk 3 holds RAM offset 0x4000, expected 0x3000");
}

TEST_F(SmallSnapshot, MissingChunk) {
  std::string f = file_.substr(0, chunk(3).offset) + file_.substr(chunk(4).offset);
  EXPECT_TRUE(Contains(Error(f), "RAM chunk 3 holds RAM offset 0x4000, expected 0x3000"));
}

// ---- the description ----

TEST_F(SmallSnapshot, DescriptionEventLogHeaderCorrupt) {
  // The embedded header's own checksum, at the end of the section payload;
  // the section checksum is fixed so the inner one is what fails.
  std::string f = file_;
  const size_t inner_crc = description().end() - 8;
  f[inner_crc] ^= 1;
  FixCrcs(f, description().offset);
  const std::string e = Error(f);
  EXPECT_TRUE(Contains(
      e, "snap: offset " + std::to_string(inner_crc) + ": description: header checksum mismatch"))
      << e;
}

TEST_F(SmallSnapshot, DescriptionWithBytesAfterTheEventLogHeader) {
  std::string f =
      file_.substr(0, description().end() - 4) + "xyz" + file_.substr(description().end() - 4);
  PutU32(f, 16, description().length + 3);
  FixCrcs(f, description().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(description().end() - 4) +
                          ": description: 3 bytes after the event-log header");
}

TEST_F(SmallSnapshot, DescriptionInstretDiffersFromTheState) {
  std::string f = file_;
  PutU64(f, description().payload(), 5);
  FixCrcs(f, description().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(state().payload() + kInstretField) +
                          ": state: hart.instret 123456789 differs from the description's "
                          "instret 5");
}

TEST_F(SmallSnapshot, DeclaredRamOverTheCapIsRejectedBeforeAllocating) {
  std::string f = file_;
  const size_t ram_field = description().payload() + 8 + 16;
  PutU64(f, ram_field, (uint64_t{64} << 30) + 1);
  // The embedded header's checksum covers the field too.
  const size_t inner = description().payload() + 8;
  const size_t inner_crc = description().end() - 8;
  PutU32(f, inner_crc, Crc(f, inner, inner_crc));
  FixCrcs(f, description().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(ram_field) +
                          ": description: RAM size 68719476737 is outside [1, 68719476736]");
}

TEST_F(SmallSnapshot, DeclaredRamWithoutItsChunksAllocatesNothing) {
  // 64 GiB declared in both places, checksums right, but only 17 chunks:
  // the decoder fails on the missing chunks before allocating any RAM.
  std::string f = file_;
  const uint64_t big = uint64_t{64} << 30;
  const size_t inner = description().payload() + 8;
  const size_t inner_crc = description().end() - 8;
  PutU64(f, inner + 16, big);
  PutU32(f, inner_crc, Crc(f, inner, inner_crc));
  FixCrcs(f, description().offset);
  PutU64(f, ram().payload(), big);
  FixCrcs(f, ram().offset);
  EXPECT_TRUE(Contains(Error(f),
                       "RAM chunk 16 is stored raw with 1024 bytes of data, must be "
                       "4096"));
}

// ---- the state ----

TEST_F(SmallSnapshot, InvalidBool) {
  EXPECT_EQ(Error(with_state_byte(kWfiField, 2)),
            "snap: offset " + std::to_string(state().payload() + kWfiField) +
                ": state: hart.wfi is 2, not 0 or 1");
}

TEST_F(SmallSnapshot, InvalidPrivilege) {
  EXPECT_EQ(Error(with_state_byte(kPrivField, 2)),
            "snap: offset " + std::to_string(state().payload() + kPrivField) +
                ": state: hart.priv is 2, not 0, 1 or 3");
}

TEST_F(SmallSnapshot, InvalidPowerState) {
  EXPECT_EQ(Error(with_state_byte(kPowerField, 4)),
            "snap: offset " + std::to_string(state().payload() + kPowerField) +
                ": state: power is 4, more than 3");
}

TEST_F(SmallSnapshot, FrmOutOfRange) {
  EXPECT_EQ(Error(with_state_byte(kFrmField, 8)),
            "snap: offset " + std::to_string(state().payload() + kFrmField) +
                ": state: hart.frm is 0x8, more than 0x7");
}

TEST_F(SmallSnapshot, UartFifoCountOverItsSize) {
  EXPECT_EQ(Error(with_state_byte(kRxCountField, 17)),
            "snap: offset " + std::to_string(state().payload() + kRxCountField) +
                ": state: uart.rx_count is 17, more than 16");
}

TEST_F(SmallSnapshot, TohostPresenceFlagNotABool) {
  EXPECT_EQ(Error(with_state_byte(kTohostField, 7)),
            "snap: offset " + std::to_string(state().payload() + kTohostField) +
                ": state: tohost presence flag is 7, not 0 or 1");
}

TEST_F(SmallSnapshot, AbsentTohostWithAValue) {
  EXPECT_EQ(Error(with_state_byte(kTohostField, 0)),
            "snap: offset " + std::to_string(state().payload() + kTohostField + 1) +
                ": state: tohost is absent but its value is " +
                fmt::format("{:#x}", *state_.tohost) + ", not 0");
}

TEST_F(SmallSnapshot, BoolInAVirtqueue) {
  // virtio[0].queues[0].ready: after the hart (900), UART (26), CLINT (9),
  // PLIC (440) and slot 0's registers (32), past queues[0].num (2).
  const size_t at = 900 + 26 + 9 + 440 + 32 + 2;
  EXPECT_EQ(Error(with_state_byte(at, 0xff)),
            "snap: offset " + std::to_string(state().payload() + at) +
                ": state: virtio[0].queues[0].ready is 255, not 0 or 1");
}

TEST_F(SmallSnapshot, NetPresenceFlagNotABool) {
  EXPECT_EQ(Error(with_state_byte(kNetField, 2)),
            "snap: offset " + std::to_string(state().payload() + kNetField) +
                ": state: net presence flag is 2, not 0 or 1");
}

TEST_F(SmallSnapshot, AbsentNetWithFields) {
  // The MAC's first byte is 0x52.
  EXPECT_EQ(Error(with_state_byte(kNetField, 0)),
            "snap: offset " + std::to_string(state().payload() + kNetField + 1) +
                ": state: net is absent but byte 0 of its fields is 0x52, not 0");
}

TEST_F(SmallSnapshot, NetLinkUpNotABool) {
  EXPECT_EQ(Error(with_state_byte(kNetField + 7, 9)),
            "snap: offset " + std::to_string(state().payload() + kNetField + 7) +
                ": state: net.link_up is 9, not 0 or 1");
}

// ---- the RAM section and chunks ----

TEST_F(SmallSnapshot, RamSizeDiffersFromTheDescription) {
  std::string f = file_;
  PutU64(f, ram().payload(), kRamSize - 4096);
  FixCrcs(f, ram().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(ram().payload()) +
                          ": RAM: size 62464 differs from the description's RAM size 66560");
}

TEST_F(SmallSnapshot, ChunkSizeNotAPowerOfTwo) {
  std::string f = file_;
  PutU32(f, ram().payload() + 8, 5000);
  FixCrcs(f, ram().offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(ram().payload() + 8) +
                          ": RAM: chunk size 5000 is not a power of two in [4096, 16777216]");
}

TEST_F(SmallSnapshot, RamReservedNotZero) {
  std::string f = file_;
  f[ram().payload() + 12] = 1;
  FixCrcs(f, ram().offset);
  EXPECT_TRUE(Contains(Error(f), "RAM: reserved field is 0x1, must be zero"));
}

TEST_F(SmallSnapshot, UnknownChunkEncoding) {
  std::string f = file_;
  f[chunk(1).payload() + 8] = 3;
  FixCrcs(f, chunk(1).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(1).payload() + 8) +
                          ": RAM chunk 1 has unknown encoding 3");
}

TEST_F(SmallSnapshot, ChunkReservedNotZero) {
  std::string f = file_;
  f[chunk(1).payload() + 11] = 1;
  FixCrcs(f, chunk(1).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(1).payload() + 9) +
                          ": RAM chunk 1: reserved bytes are 00 00 01, must be zero");
}

TEST_F(SmallSnapshot, RawChunkMarkedZero) {
  const size_t i = first_chunk_with(1);
  std::string f = file_;
  f[chunk(i).payload() + 8] = 0;
  FixCrcs(f, chunk(i).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(i).offset) + ": RAM chunk " +
                          std::to_string(i) + " is all zero but carries 4096 bytes of data");
}

TEST_F(SmallSnapshot, RawChunkMarkedZstd) {
  const size_t i = first_chunk_with(1);
  std::string f = file_;
  f[chunk(i).payload() + 8] = 2;
  FixCrcs(f, chunk(i).offset);
  EXPECT_TRUE(Contains(Error(f), "is zstd with 4096 bytes of data, must be in [1, 4095]"));
}

TEST_F(SmallSnapshot, ZstdChunkMarkedRaw) {
  const size_t i = first_chunk_with(2);
  std::string f = file_;
  f[chunk(i).payload() + 8] = 1;
  FixCrcs(f, chunk(i).offset);
  EXPECT_TRUE(Contains(Error(f), "is stored raw with"));
}

TEST_F(SmallSnapshot, ZstdDataWithoutAFrameMagic) {
  const size_t i = first_chunk_with(2);
  std::string f = file_;
  f[chunk(i).payload() + 12] ^= 0xff;
  FixCrcs(f, chunk(i).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(i).payload() + 12) + ": RAM chunk " +
                          std::to_string(i) +
                          ": data does not start with a zstd frame (magic 28 b5 2f fd)");
}

TEST_F(SmallSnapshot, ZstdFrameOfTheWrongContentSize) {
  // A valid frame of 4095 bytes where the chunk is 4096.
  const size_t i = first_chunk_with(2);
  std::string frame(ZSTD_COMPRESSBOUND(4095), '\0');
  frame.resize(ZSTD_compress(frame.data(), frame.size(), ram_.data() + i * 4096, 4095, 3));
  std::string f =
      file_.substr(0, chunk(i).payload() + 12) + frame + "????" + file_.substr(chunk(i).end());
  PutU32(f, chunk(i).offset + 4, static_cast<uint32_t>(12 + frame.size()));
  FixCrcs(f, chunk(i).offset);
  EXPECT_EQ(Error(f), "snap: offset " + std::to_string(chunk(i).payload() + 12) + ": RAM chunk " +
                          std::to_string(i) + ": zstd frame holds 4095 bytes, the chunk is 4096");
}

TEST_F(SmallSnapshot, ZstdFrameFollowedByMoreData) {
  const size_t i = first_chunk_with(2);
  std::string f = file_.substr(0, chunk(i).end() - 4) + "junk" + file_.substr(chunk(i).end() - 4);
  PutU32(f, chunk(i).offset + 4, chunk(i).length + 4);
  FixCrcs(f, chunk(i).offset);
  EXPECT_TRUE(Contains(Error(f), "the data is not exactly one zstd frame"));
}

TEST_F(SmallSnapshot, ZstdFrameCorruptInside) {
  // Damage inside the frame's one block, checksums fixed: the frame and
  // block headers are intact, so only decompression itself fails, and that
  // is reported at the chunk's data.
  const size_t i = first_chunk_with(2);
  std::string f = file_;
  const size_t data = chunk(i).payload() + 12;
  const size_t n = chunk(i).length - 12;
  // RFC 8878 frame header: magic, descriptor, window, dictionary id, size.
  const uint8_t fhd = static_cast<uint8_t>(f[data + 4]);
  const bool single_segment = fhd & 0x20;
  const size_t did_sizes[] = {0, 1, 2, 4};
  const size_t fcs_sizes[] = {single_segment ? 1u : 0u, 2, 4, 8};
  const size_t header = 5 + (single_segment ? 0 : 1) + did_sizes[fhd & 3] + fcs_sizes[fhd >> 6];
  const uint32_t block = static_cast<uint8_t>(f[data + header]) |
                         (static_cast<uint8_t>(f[data + header + 1]) << 8) |
                         (static_cast<uint8_t>(f[data + header + 2]) << 16);
  ASSERT_EQ(block & 1, 1u) << "expected a single, last block";
  ASSERT_EQ(header + 3 + (block >> 3), n);
  for (size_t k = header + 3; k < n; ++k) f[data + k] = static_cast<char>(0xff);
  FixCrcs(f, chunk(i).offset);
  const std::string e = Error(f);
  EXPECT_TRUE(Contains(
      e, "snap: offset " + std::to_string(data) + ": RAM chunk " + std::to_string(i) + ": zstd"))
      << e;
}

TEST_F(SmallSnapshot, EverySingleBitFlipIsDetected) {
  for (size_t byte = 0; byte < chunk(3).offset; ++byte) {
    std::string f = file_;
    f[byte] ^= static_cast<char>(1 << (byte % 8));
    auto d = decode_snapshot(Bytes(f), "snap");
    ASSERT_FALSE(d.ok()) << "flip at " << byte;
  }
}

}  // namespace
}  // namespace ftvm::vm
