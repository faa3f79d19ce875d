// Tests for the live state transfer: the messages' encodings and their
// refusals, then a whole transfer between two machines while the sending
// one keeps running a program that writes RAM, proved by state hashes.
#include "ft/transfer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "vm/snapshot.h"
#include "vm/test_program.h"

namespace ftvm::ft {
namespace {

std::span<const uint8_t> S(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// ---- a tiny RV64 program ----
using namespace vm::testing;

constexpr uint32_t T0 = 5, T1 = 6, T2 = 7, T3 = 28;
constexpr uint64_t kRam = 1 << 20;

// Forever: stores a growing counter every 36 bytes across 128 KiB of RAM
// from 64 KiB on, so every slice dirties pages all over that range.
std::vector<uint32_t> WriterProgram() {
  return {
      Addi(T0, 0, 1),     // 0x00 addi t0, zero, 1
      Slli(T0, T0, 31),   // 0x04 slli t0, t0, 31   (0x80000000)
      Lui(T3, 0x10),      // 0x08 lui  t3, 0x10     (64 KiB)
      Add(T0, T0, T3),    // 0x0c add  t0, t0, t3
      Lui(T3, 0x20),      // 0x10 lui  t3, 0x20     (128 KiB)
      Add(T2, T0, T3),    // 0x14 add  t2, t0, t3   (the end)
      Addi(T1, T1, 1),    // 0x18 addi t1, t1, 1
      Sw(T1, T0),         // 0x1c sw   t1, 0(t0)
      Addi(T0, T0, 36),   // 0x20 addi t0, t0, 36
      Blt(T0, T2, -12),   // 0x24 blt  t0, t2, 0x18
      Addi(T0, 0, 1),     // 0x28 addi t0, zero, 1
      Slli(T0, T0, 31),   // 0x2c slli t0, t0, 31
      Lui(T3, 0x10),      // 0x30 lui  t3, 0x10
      Add(T0, T0, T3),    // 0x34 add  t0, t0, t3
      Jal0(-0x1c),        // 0x38 j    0x1c
  };
}

struct Running {
  std::unique_ptr<vm::MemoryBlockBackend> disk;
  std::unique_ptr<vm::Machine> m;
};

Running MakeMachine(std::vector<uint8_t> disk_bytes, bool with_program) {
  Running r;
  vm::MachineConfig c;
  c.ram_size = kRam;
  if (!disk_bytes.empty()) {
    r.disk = std::make_unique<vm::MemoryBlockBackend>(std::move(disk_bytes));
    c.disk = r.disk.get();
  }
  r.m = std::make_unique<vm::Machine>(c);
  if (with_program) {
    const std::vector<uint32_t> prog = WriterProgram();
    std::memcpy(r.m->bus().ram(), prog.data(), prog.size() * 4);
    r.m->bus().mark_dirty(vm::kRamBase, prog.size() * 4);
    vm::MachineState s = r.m->capture();
    s.hart.pc = vm::kRamBase;
    s.hart.priv = vm::Priv::kMachine;
    r.m->restore(s);
  }
  return r;
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + i / 4096);
  return v;
}

// Runs a whole transfer from `src` (running `slice` instructions between
// pumps) into `dst`; returns the sender's progress.
TransferProgress Transfer(vm::Machine& src, vm::BlockBackend* src_disk, vm::Machine& dst,
                          vm::BlockBackend* dst_disk, uint64_t slice, SenderOptions o = {},
                          bool drained_replies = false) {
  TransferSender sender(src, src_disk, o);
  TransferReceiver receiver(dst, dst_disk);
  Result<std::vector<std::string>> hashes = receiver.disk_hash_replies();
  EXPECT_TRUE(hashes.ok());
  for (const std::string& h : *hashes) EXPECT_TRUE(sender.on_reply(S(h)).ok());
  for (int step = 0; step < 100000; ++step) {
    std::vector<std::string> out;
    Result<bool> converged = sender.pump(out);
    EXPECT_TRUE(converged.ok()) << converged.error();
    for (const std::string& m : out) {
      Result<bool> r = receiver.apply(S(m));
      EXPECT_TRUE(r.ok()) << r.error();
      EXPECT_FALSE(*r);
    }
    if (std::optional<std::string> reply = receiver.take_reply(drained_replies)) {
      EXPECT_TRUE(sender.on_reply(S(*reply)).ok());
    }
    if (*converged) {
      (void)src.run(slice);  // more writes after the last round: the pause must carry them
      break;
    }
    if (out.empty()) {
      // The window is full: the receiver's acknowledgement is due.
      ADD_FAILURE() << "the sender stalled with its window full";
      break;
    }
    (void)src.run(slice);  // the guest keeps running between pumps
  }
  Result<std::vector<std::string>> rest = sender.finish();
  EXPECT_TRUE(rest.ok()) << rest.error();
  for (size_t i = 0; i < rest->size(); ++i) {
    Result<bool> r = receiver.apply(S((*rest)[i]));
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(*r, i + 1 == rest->size());
  }
  EXPECT_EQ(receiver.final_instret(), src.instret());
  return sender.progress();
}

TEST(Transfer, ARunningMachineArrivesWholeAndBothContinueIdentically) {
  Running a = MakeMachine({}, /*with_program=*/true);
  Running b = MakeMachine({}, /*with_program=*/false);
  (void)a.m->run(100'000);
  SenderOptions o;
  o.converged_units = 4;  // the program dirties ~32 pages a slice: several rounds
  o.max_rounds = 5;
  o.window = 4;
  const TransferProgress p = Transfer(*a.m, nullptr, *b.m, nullptr, 20'000, o);
  EXPECT_GT(p.rounds, 1u);
  EXPECT_GE(p.pages, kRam / kTransferUnitSize);  // every page once, and re-sent ones
  EXPECT_EQ(b.m->instret(), a.m->instret());
  EXPECT_EQ(b.m->state_hash(), a.m->state_hash());
  EXPECT_EQ(b.m->state_digest(), b.m->state_digest_uncached());
  for (int i = 0; i < 3; ++i) {
    (void)a.m->run(50'000);
    (void)b.m->run(50'000);
    EXPECT_EQ(b.m->state_hash(), a.m->state_hash()) << i;
  }
}

// A sender whose window is smaller than the receiver's batch of replies
// (one reply per four messages) gets a reply each time the receiver has
// applied all it received; before, a window of 1-3 waited forever.
TEST(Transfer, ASenderWithAWindowSmallerThanTheReplyBatchFinishes) {
  for (uint32_t window : {1u, 2u, 3u}) {
    Running a = MakeMachine({}, /*with_program=*/true);
    Running b = MakeMachine({}, /*with_program=*/false);
    (void)a.m->run(100'000);
    SenderOptions o;
    o.converged_units = 4;
    o.max_rounds = 5;
    o.window = window;
    o.bytes_per_pump = 64 * kTransferUnitSize;  // several messages a round
    const TransferProgress p =
        Transfer(*a.m, nullptr, *b.m, nullptr, 20'000, o, /*drained_replies=*/true);
    EXPECT_GT(p.rounds, 1u) << window;
    EXPECT_EQ(b.m->state_hash(), a.m->state_hash()) << window;
  }
}

TEST(Transfer, OnlyDiskBlocksTheBackupLacksAreSentAndTheCopiesEndEqual) {
  const size_t disk_size = 64 * 4096 + 512;  // a last partial block
  std::vector<uint8_t> theirs = Pattern(disk_size, 1);
  std::vector<uint8_t> mine = theirs;
  for (size_t b : {0u, 5u, 64u}) mine[b * 4096 + 3] ^= 0xff;  // three blocks differ
  std::fill(mine.begin() + 10 * 4096, mine.begin() + 11 * 4096, 0);  // a zero block differs
  Running a = MakeMachine(mine, true);
  Running b = MakeMachine(theirs, false);
  (void)a.m->run(10'000);
  const TransferProgress p = Transfer(*a.m, a.disk.get(), *b.m, b.disk.get(), 10'000);
  EXPECT_EQ(p.blocks, 4u);
  EXPECT_EQ(p.blocks_equal, 61u);
  EXPECT_EQ(b.disk->bytes(), a.disk->bytes());
  EXPECT_EQ(b.m->state_hash(), a.m->state_hash());
}

TEST(Transfer, ACopyOfAnotherSizeIsRefused) {
  Running a = MakeMachine(std::vector<uint8_t>(8 * 4096, 1), true);
  Running b = MakeMachine(std::vector<uint8_t>(9 * 4096, 1), false);
  TransferSender sender(*a.m, a.disk.get());
  TransferReceiver receiver(*b.m, b.disk.get());
  Result<std::vector<std::string>> hashes = receiver.disk_hash_replies();
  ASSERT_TRUE(hashes.ok());
  Status s = sender.on_reply(S(hashes->front()));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "has 9 blocks, this one 8")) << s.error();
}

// ---- encodings ----

TEST(TransferMessages, UnitsRoundTrip) {
  TransferUnits u;
  u.kind = TransferKind::kBlocks;
  u.round = 3;
  u.index = {7, 1, 9};
  u.zero = {0, 1, 0};
  u.data = std::string(2 * kTransferUnitSize, 'x');
  const std::string e = encode_transfer_units(u);
  Result<TransferUnits> d = decode_transfer_units(S(e));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->kind, TransferKind::kBlocks);
  EXPECT_EQ(d->round, 3u);
  EXPECT_EQ(d->index, u.index);
  EXPECT_EQ(d->zero, u.zero);
  EXPECT_EQ(d->data, u.data);
}

TEST(TransferMessages, MalformedUnitsAreRefused) {
  TransferUnits u;
  u.index = {1};
  u.zero = {0};
  u.data = std::string(kTransferUnitSize, 'x');
  std::string e = encode_transfer_units(u);
  auto error_of = [](const std::string& b) {
    Result<TransferUnits> d = decode_transfer_units(S(b));
    return d.ok() ? std::string("decoded") : d.error();
  };
  std::string bad = e;
  bad[13] = 2;  // the zero flag
  EXPECT_TRUE(Contains(error_of(bad), "zero flag is 2")) << error_of(bad);
  EXPECT_TRUE(Contains(error_of(e.substr(0, e.size() - 1)), "carry data")) << error_of(e);
  bad = e;
  bad[0] = 3;
  EXPECT_TRUE(Contains(error_of(bad), "kind 3")) << error_of(bad);
  bad = e;
  bad[5] = 0;  // count 0
  EXPECT_TRUE(Contains(error_of(bad), "count 0")) << error_of(bad);
  EXPECT_TRUE(Contains(error_of(e.substr(0, 6)), "bytes end at offset")) << error_of(e.substr(0, 6));
}

TEST(TransferMessages, AtMost256UnitsCarryData) {
  TransferUnits u;
  for (uint32_t i = 0; i < 300; ++i) {
    u.index.push_back(i);
    u.zero.push_back(i < 257 ? 0 : 1);
  }
  u.data = std::string(257 * kTransferUnitSize, 'x');
  Result<TransferUnits> d = decode_transfer_units(S(encode_transfer_units(u)));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(Contains(d.error(), "257 units carry data, more than 256")) << d.error();
  u.zero[0] = 1;  // 256 with data, 44 zero: fine
  u.data.resize(256 * kTransferUnitSize);
  EXPECT_TRUE(decode_transfer_units(S(encode_transfer_units(u))).ok());
}

TEST(TransferMessages, AnIndexBeyondTheMachineIsRefused) {
  Running b = MakeMachine({}, false);
  TransferReceiver receiver(*b.m, nullptr);
  TransferUnits u;
  u.index = {static_cast<uint32_t>(kRam / kTransferUnitSize)};
  u.zero = {1};
  Result<bool> r = receiver.apply(S(encode_transfer_units(u)));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error(), "page 256, beyond this machine's 256")) << r.error();
  u.kind = TransferKind::kBlocks;
  u.index = {0};
  r = receiver.apply(S(encode_transfer_units(u)));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error(), "block 0, beyond this machine's 0")) << r.error();
}

TEST(TransferMessages, FinalRoundTripsAndChecksItsInstret) {
  Running a = MakeMachine({}, true);
  (void)a.m->run(1000);
  TransferFinal f;
  f.rounds = 2;
  f.state = a.m->capture();
  f.instret = f.state.hart.instret;
  f.ram_pages = 256;
  Result<std::string> e = encode_transfer_final(f);
  ASSERT_TRUE(e.ok()) << e.error();
  Result<TransferFinal> d = decode_transfer_final(S(*e));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->instret, f.instret);
  EXPECT_EQ(d->state.hart.pc, f.state.hart.pc);
  std::string bad = *e;
  bad[5] ^= 1;  // the final's instret
  Result<TransferFinal> d2 = decode_transfer_final(S(bad));
  ASSERT_FALSE(d2.ok());
  EXPECT_TRUE(Contains(d2.error(), "the state's instret")) << d2.error();
  Result<TransferFinal> d3 = decode_transfer_final(S(e->substr(0, e->size() - 1)));
  ASSERT_FALSE(d3.ok());
  EXPECT_TRUE(Contains(d3.error(), "machine state")) << d3.error();
}

TEST(TransferMessages, RepliesRoundTripAndLiesAreRefused) {
  TransferReply r;
  r.kind = TransferReply::Kind::kHashes;
  r.total_blocks = 10;
  r.first = 8;
  r.hashes.resize(2);
  r.hashes[1][0] = 9;
  Result<TransferReply> d = decode_transfer_reply(S(encode_transfer_reply(r)));
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->hashes, r.hashes);
  r.first = 9;  // two hashes from block 9 of 10
  Result<TransferReply> d2 = decode_transfer_reply(S(encode_transfer_reply(r)));
  ASSERT_FALSE(d2.ok());
  EXPECT_TRUE(Contains(d2.error(), "beyond the 10 blocks")) << d2.error();

  Running a = MakeMachine({}, true);
  TransferSender sender(*a.m, nullptr);
  TransferReply applied;
  applied.applied = 5;  // nothing was sent yet
  Status s = sender.on_reply(S(encode_transfer_reply(applied)));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "applied 5 transfer messages; 0 were sent")) << s.error();
  r.first = 0;
  s = sender.on_reply(S(encode_transfer_reply(r)));
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.error(), "disk hashes it was not asked for")) << s.error();
}

}  // namespace
}  // namespace ftvm::ft
