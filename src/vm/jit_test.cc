// The translator against the interpreter: random instruction streams,
// self-modifying code and exact budgets, run on both engines side by side
// and compared register by register and by the machines' state digests.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "vm/jit.h"
#include "vm/machine.h"

namespace ftvm::vm {
namespace {

uint32_t r_type(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
  return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
uint32_t i_type(int imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op) {
  return (static_cast<uint32_t>(imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
}
uint32_t s_type(int imm, unsigned rs2, unsigned rs1, unsigned f3) {
  const uint32_t u = static_cast<uint32_t>(imm);
  return (((u >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((u & 0x1f) << 7) |
         0x23;
}
uint32_t b_type(int off, unsigned rs2, unsigned rs1, unsigned f3) {
  const uint32_t u = static_cast<uint32_t>(off);
  return (((u >> 12) & 1) << 31) | (((u >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
         (f3 << 12) | (((u >> 1) & 0xf) << 8) | (((u >> 11) & 1) << 7) | 0x63;
}
uint32_t j_type(int off, unsigned rd) {
  const uint32_t i = static_cast<uint32_t>(off);
  return (((i >> 20) & 1) << 31) | (((i >> 1) & 0x3ff) << 21) | (((i >> 11) & 1) << 20) |
         (((i >> 12) & 0xff) << 12) | (rd << 7) | 0x6f;
}

constexpr unsigned kDataReg = 5;   // t0: the data page's address
constexpr unsigned kLoopReg = 30;  // t5: the counter of the programs' loops
constexpr unsigned kTrapReg = 31;  // t6: the trap handler's scratch
constexpr uint64_t kCode = kRamBase + 0x1000;
constexpr uint64_t kData = kRamBase + 0x20000;
constexpr unsigned kCodeWords = 2048;  // two pages: blocks end at the page boundary

// A register the generated code may write: any but t0, t5 and t6.
unsigned pick_rd(std::mt19937_64& rng) {
  for (;;) {
    const unsigned r = static_cast<unsigned>(rng() % 32);
    if (r != kDataReg && r != kLoopReg && r != kTrapReg) return r;
  }
}

// One random F or D instruction: loads and stores at the data page, and
// every computational one, with static rounding modes (some reserved) and
// the dynamic one.
uint32_t random_fp_insn(std::mt19937_64& rng) {
  const unsigned frd = static_cast<unsigned>(rng() % 32), rs1 = static_cast<unsigned>(rng() % 32),
                 rs2 = static_cast<unsigned>(rng() % 32), rs3 = static_cast<unsigned>(rng() % 32);
  static const unsigned rms[] = {0, 1, 2, 3, 4, 7, 7, 7, 5};
  const unsigned rm = rms[rng() % std::size(rms)];
  const unsigned dbl = static_cast<unsigned>(rng() % 2);
  const unsigned kind = static_cast<unsigned>(rng() % 20);
  if (kind < 3) {  // flw, fld
    const int off = static_cast<int>(rng() % 2 ? (rng() % 256) * 8 : rng() % 2048);
    return i_type(off, kDataReg, 2 + dbl, frd, 0x07);
  }
  if (kind < 5) {  // fsw, fsd
    const int off = static_cast<int>(rng() % 2 ? (rng() % 256) * 8 : rng() % 2048);
    return s_type(off, rs2, kDataReg, 2 + dbl) | 0x04;  // STORE-FP
  }
  if (kind < 7) {  // fmadd, fmsub, fnmsub, fnmadd
    static const unsigned ops[] = {0x43, 0x47, 0x4b, 0x4f};
    return (rs3 << 27) | (dbl << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (frd << 7) |
           ops[rng() % 4];
  }
  // OP-FP: funct7 without the format bit, the rs2 field (or -1: a register),
  // the funct3 (or -1: the rounding mode), and whether rd/rs1 are integer.
  static const struct { unsigned f5; int rs2, f3; bool xd, xs; } ops[] = {
      {0x00, -1, -1, false, false}, {0x04, -1, -1, false, false}, {0x08, -1, -1, false, false},
      {0x0c, -1, -1, false, false}, {0x2c, 0, -1, false, false},  {0x10, -1, 0, false, false},
      {0x10, -1, 1, false, false},  {0x10, -1, 2, false, false},  {0x14, -1, 0, false, false},
      {0x14, -1, 1, false, false},  {0x20, 1, -1, false, false},  {0x50, -1, 2, true, false},
      {0x50, -1, 1, true, false},   {0x50, -1, 0, true, false},   {0x60, 0, -1, true, false},
      {0x60, 1, -1, true, false},   {0x60, 2, -1, true, false},   {0x60, 3, -1, true, false},
      {0x68, 0, -1, false, true},   {0x68, 1, -1, false, true},   {0x68, 2, -1, false, true},
      {0x68, 3, -1, false, true},   {0x70, 0, 0, true, false},    {0x70, 0, 1, true, false},
      {0x78, 0, 0, false, true}};
  const auto& o = ops[rng() % std::size(ops)];
  // fcvt.s.d has fmt S and rs2 1; fcvt.d.s fmt D and rs2 0.
  const unsigned f2 = dbl;
  const unsigned r2 = o.f5 == 0x20 ? 1 - dbl : o.rs2 < 0 ? rs2 : static_cast<unsigned>(o.rs2);
  const unsigned f3 = o.f3 < 0 ? rm : static_cast<unsigned>(o.f3);
  const unsigned rd = o.xd ? pick_rd(rng) : frd;
  return r_type(o.f5 | f2, r2, rs1, f3, rd, 0x53);
}

// One random instruction, mostly of the kinds the translator compiles,
// some it leaves to the interpreter, a few random words (most illegal).
uint32_t random_insn(std::mt19937_64& rng, unsigned index) {
  const unsigned rd = pick_rd(rng), rs1 = static_cast<unsigned>(rng() % 32),
                 rs2 = static_cast<unsigned>(rng() % 32);
  // Small immediates half the time, so that comparisons meet equal values.
  const int imm = rng() % 2 ? static_cast<int>(rng() % 20) - 4 : static_cast<int>(rng() % 4096) - 2048;
  const unsigned kind = static_cast<unsigned>(rng() % 115);
  if (kind >= 100) {
    // Now and then the dynamic rounding mode changes (csrrwi x0, frm, imm;
    // 5-7 are reserved).
    if (kind == 114) return i_type(0x002, static_cast<unsigned>(rng() % 8), 5, 0, 0x73);
    return random_fp_insn(rng);
  }
  if (kind < 30) {  // OP and OP-32, with M
    static const struct { unsigned f7, f3, op; } ops[] = {
        {0, 0, 0x33}, {0x20, 0, 0x33}, {0, 1, 0x33}, {0, 2, 0x33}, {0, 3, 0x33}, {0, 4, 0x33},
        {0, 5, 0x33}, {0x20, 5, 0x33}, {0, 6, 0x33}, {0, 7, 0x33}, {1, 0, 0x33}, {1, 1, 0x33},
        {1, 2, 0x33}, {1, 3, 0x33}, {1, 4, 0x33}, {1, 5, 0x33}, {1, 6, 0x33}, {1, 7, 0x33},
        {0, 0, 0x3b}, {0x20, 0, 0x3b}, {0, 1, 0x3b}, {0, 5, 0x3b}, {0x20, 5, 0x3b},
        {1, 0, 0x3b}, {1, 4, 0x3b}, {1, 5, 0x3b}, {1, 6, 0x3b}, {1, 7, 0x3b}};
    const auto& o = ops[rng() % std::size(ops)];
    return r_type(o.f7, rs2, rs1, o.f3, rd, o.op);
  }
  if (kind < 50) {  // OP-IMM and OP-IMM-32
    const unsigned f3 = static_cast<unsigned>(rng() % 8);
    if (f3 == 1) return i_type(static_cast<int>(rng() % 64), rs1, 1, rd, 0x13);
    if (f3 == 5) {
      return i_type(static_cast<int>((rng() % 2 ? 0x400 : 0) | (rng() % 64)), rs1, 5, rd, 0x13);
    }
    if (rng() % 4 == 0) {
      const unsigned w = static_cast<unsigned>(rng() % 3);
      if (w == 0) return i_type(imm, rs1, 0, rd, 0x1b);
      if (w == 1) return i_type(static_cast<int>(rng() % 32), rs1, 1, rd, 0x1b);
      return i_type(static_cast<int>((rng() % 2 ? 0x400 : 0) | (rng() % 32)), rs1, 5, rd, 0x1b);
    }
    return i_type(imm, rs1, f3, rd, 0x13);
  }
  if (kind < 62) {  // loads from the data page, some misaligned or across its end
    static const unsigned f3s[] = {0, 1, 2, 3, 4, 5, 6};
    const int off = static_cast<int>(rng() % 2 ? (rng() % 512) * 8 : rng() % 4100);
    return i_type(off < 2048 ? off : off - 4096, kDataReg, f3s[rng() % 7], rd, 0x03);
  }
  if (kind < 72) {  // stores to the data page
    const int off = static_cast<int>(rng() % 2 ? (rng() % 256) * 8 : rng() % 2048);
    return s_type(off, rs2, kDataReg, static_cast<unsigned>(rng() % 4));
  }
  if (kind < 82) {  // branches
    // Forward only: a backward one taken for good would spin the rest of
    // the run (loops are the ISA tests' and the Linux boot's).
    const int off = static_cast<int>(rng() % 10 + 1) * 4;
    static const unsigned f3s[] = {0, 1, 4, 5, 6, 7};
    const int target = static_cast<int>(index) + off / 4;
    if (target < 0 || target >= static_cast<int>(kCodeWords)) return i_type(0, 0, 0, 0, 0x13);
    return b_type(off, rs2, rs1, f3s[rng() % 6]);
  }
  if (kind < 85) {  // jal forward
    const int off = static_cast<int>(rng() % 16 + 1) * 4;
    if (index + off / 4 >= kCodeWords) return i_type(0, 0, 0, 0, 0x13);
    return j_type(off, rd);
  }
  if (kind < 89) return (static_cast<uint32_t>(rng() % (1 << 20)) << 12) | (rd << 7) | 0x37;  // lui
  if (kind < 92) return (static_cast<uint32_t>(rng() % (1 << 20)) << 12) | (rd << 7) | 0x17;  // auipc
  if (kind < 93) return i_type(0, 0, 0, 0, 0x0f);                                           // fence
  if (kind < 97) {  // AMOs, LR and SC (.w and .d), mostly at the data page, some anywhere
    static const unsigned f5s[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c};
    const unsigned f5 = f5s[rng() % std::size(f5s)];
    const unsigned base = rng() % 4 == 0 ? rs1 : kDataReg;
    return (f5 << 27) | ((f5 == 0x02 ? 0 : rs2) << 20) | (base << 15) |
           ((rng() % 2 ? 3u : 2u) << 12) | (rd << 7) | 0x2f;
  }
  if (kind < 98) return i_type(0xb00, 0, 2, rd, 0x73);  // csrrs rd, mcycle, x0
  return static_cast<uint32_t>(rng());                  // anything
}

// A machine in M-mode at kCode with a random program, a trap handler that
// skips the faulting instruction, t0 at the data page filled with random
// bytes, and random registers.
std::unique_ptr<Machine> make_machine(uint64_t seed, Engine engine) {
  MachineConfig config;
  config.ram_size = 1u << 20;
  config.engine = engine;
  auto m = std::make_unique<Machine>(config);
  std::mt19937_64 rng(seed);
  uint8_t* ram = m->bus().ram();
  // Trap handler at kRamBase: mepc += 4; mret.
  const uint32_t handler[] = {
      i_type(0x341, 0, 2, kTrapReg, 0x73),                 // csrrs t6, mepc, x0
      i_type(4, kTrapReg, 0, kTrapReg, 0x13),              // addi t6, t6, 4
      i_type(0x341, kTrapReg, 1, 0, 0x73),                 // csrrw x0, mepc, t6
      0x30200073,                                          // mret
  };
  std::memcpy(ram, handler, sizeof handler);
  std::vector<uint32_t> code(kCodeWords + 1);
  for (unsigned i = 0; i < kCodeWords; ++i) {
    // Now and then a counted loop around a few random instructions:
    // "t5 = K; body; t5 -= 1; bne t5, x0, body". Its back edge makes a
    // block that branches to its own start.
    const unsigned body = 1 + static_cast<unsigned>(rng() % 12);
    if (rng() % 40 == 0 && i + body + 3 <= kCodeWords) {
      code[i++] = i_type(1 + static_cast<int>(rng() % 6), 0, 0, kLoopReg, 0x13);
      const unsigned start = i;
      for (unsigned k = 0; k < body; ++k, ++i) code[i] = random_insn(rng, i);
      code[i++] = i_type(-1, kLoopReg, 0, kLoopReg, 0x13);
      code[i] = b_type(-static_cast<int>(i - start) * 4, 0, kLoopReg, 1);
      continue;
    }
    code[i] = random_insn(rng, i);
  }
  code[kCodeWords] = j_type(0, 0);  // the end: a jump to itself
  std::memcpy(ram + (kCode - kRamBase), code.data(), code.size() * 4);
  for (unsigned i = 0; i < 8192; ++i) ram[kData - kRamBase + i] = static_cast<uint8_t>(rng());
  MachineState s = m->capture();
  s.hart.pc = kCode;
  s.hart.priv = Priv::kMachine;
  s.hart.mtvec = kRamBase;
  // The FPU on (initial, clean or dirty), or now and then off: every F/D
  // instruction then traps.
  const uint64_t fs = rng() % 8 == 0 ? 0 : 1 + rng() % 3;
  s.hart.mstatus = (s.hart.mstatus & ~mstatus::kFs) | fs << mstatus::kFsShift;
  s.hart.frm = static_cast<uint32_t>(rng() % 6);
  for (unsigned r = 1; r < 32; ++r) s.hart.x[r] = rng() % 3 == 0 ? rng() % 16 : rng();
  // FP registers: NaN-boxed singles, doubles, small integers' doubles, and
  // now and then a value that is neither (an unboxed single reads as NaN).
  static const uint64_t kDoubles[] = {0x3ff0000000000000, 0xc000000000000000, 0x7ff0000000000000,
                                      0x0000000000000001, 0x8000000000000000, 0x7ff4000000000000};
  for (unsigned r = 0; r < 32; ++r) {
    const unsigned k = static_cast<unsigned>(rng() % 4);
    s.hart.f[r] = k == 0   ? 0xffffffff00000000ull | static_cast<uint32_t>(rng())
                  : k == 1 ? rng()
                  : k == 2 ? kDoubles[rng() % std::size(kDoubles)]
                           : rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : 0x4010000000000000;
  }
  s.hart.x[kDataReg] = kData;
  m->restore(s);
  return m;
}

std::string differences(Machine& a, Machine& b) {
  const HartState& x = a.hart().state();
  const HartState& y = b.hart().state();
  std::string out;
  if (x.pc != y.pc) out += " pc " + std::to_string(x.pc) + "/" + std::to_string(y.pc);
  if (x.instret != y.instret) {
    out += " instret " + std::to_string(x.instret) + "/" + std::to_string(y.instret);
  }
  for (unsigned r = 0; r < 32; ++r) {
    if (x.x[r] != y.x[r]) out += " x" + std::to_string(r);
    if (x.f[r] != y.f[r]) out += " f" + std::to_string(r);
  }
  if (x.fflags != y.fflags || x.frm != y.frm) out += " fcsr";
  if (x.mstatus != y.mstatus) out += " mstatus";
  if (x.mcause != y.mcause || x.mepc != y.mepc || x.mtval != y.mtval) out += " trap CSRs";
  return out;
}

TEST(Jit, RandomProgramsRunIdenticallyOnBothEngines) {
  if (!jit_supported()) GTEST_SKIP() << "the translator needs an x86-64 host";
  uint64_t jitted = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    std::unique_ptr<Machine> interp = make_machine(seed, Engine::kInterp);
    std::unique_ptr<Machine> jit = make_machine(seed, Engine::kJit);
    std::mt19937_64 steps(seed * 7919);
    uint64_t done = 0;
    while (done < 6'000) {
      // Budgets of every size, so that slices end inside blocks too.
      const uint64_t budget = steps() % 4 == 0 ? 1 + steps() % 3 : 1 + steps() % 700;
      const RunResult a = interp->run(budget);
      const RunResult b = jit->run(budget);
      ASSERT_EQ(a.status, b.status) << "seed " << seed << " after " << done;
      ASSERT_EQ(a.retired, b.retired) << "seed " << seed << " after " << done;
      const std::string diff = differences(*interp, *jit);
      ASSERT_TRUE(diff.empty()) << "seed " << seed << " after " << done << ":" << diff;
      done += a.retired;
      if (a.status != RunStatus::kBudget) break;
    }
    ASSERT_EQ(interp->state_digest(), jit->state_digest()) << "seed " << seed;
    jitted += jit->hart().jit_stats().instructions;
    // The interpreter's share is counted, and is a part of what ran.
    const uint64_t interpreted = jit->hart().jit_stats().interpreted;
    EXPECT_GT(interpreted, 0u) << "seed " << seed;
    EXPECT_LT(interpreted, done) << "seed " << seed;
    EXPECT_EQ(interp->hart().jit_stats().interpreted, 0u);
  }
  EXPECT_GT(jitted, 20'000u) << "the translator compiled too little to be tested";
}

TEST(Jit, AStoreIntoTheRunningBlockIsSeenByItsNextInstruction) {
  if (!jit_supported()) GTEST_SKIP() << "the translator needs an x86-64 host";
  for (Engine e : {Engine::kInterp, Engine::kJit}) {
    MachineConfig config;
    config.ram_size = 1u << 20;
    config.engine = e;
    Machine m(config);
    // x1 = the word "addi x3, x0, 42"; store it over the next instruction
    // (addi x3, x0, 1), which must then run as the new one. Twice: the
    // second pass runs through a block translated after the first store.
    const uint32_t program[] = {
        i_type(0, 0, 0, 4, 0x13),                   // 0: addi x4, x0, 0
        s_type(16, 1, 2, 2),                        // 4: sw x1, 16(x2)  (x2 = kRamBase)
        i_type(1, 0, 0, 3, 0x13),                   // 8: addi x3, x0, 1 -> 42
        i_type(1, 4, 0, 4, 0x13),                   // 12: addi x4, x4, 1
        i_type(1, 0, 0, 5, 0x13),                   // 16: addi x5, x0, 1  (overwritten)
        b_type(-16, 6, 4, 4),                       // 20: blt x4, x6, 4
        j_type(0, 0),                               // 24: jal x0, 0
    };
    std::memcpy(m.bus().ram(), program, sizeof program);
    MachineState s = m.capture();
    s.hart.pc = kRamBase;
    s.hart.priv = Priv::kMachine;
    s.hart.x[1] = i_type(42, 0, 0, 5, 0x13);  // addi x5, x0, 42
    s.hart.x[2] = kRamBase;
    s.hart.x[6] = 3;
    m.restore(s);
    ASSERT_EQ(m.run(200).status, RunStatus::kBudget);
    EXPECT_EQ(m.hart().state().x[5], 42u) << engine_name(e);
    EXPECT_EQ(m.hart().state().x[4], 3u) << engine_name(e);
    EXPECT_EQ(m.hart().state().pc, kRamBase + 24) << engine_name(e);
  }
}

// F/D loads and stores in a translated block: a load marks the FPU dirty
// (mstatus.FS = 3) whatever its state before; a store does not; with the
// FPU off each of them traps (the handler skips it) and changes nothing.
TEST(Jit, FpLoadsAndStoresMarkTheFpuAsTheInterpreterDoes) {
  if (!jit_supported()) GTEST_SKIP() << "the translator needs an x86-64 host";
  const uint32_t program[] = {
      // An integer load and store first: their misses fill the TLBs the
      // translated F/D accesses then hit.
      i_type(8, kDataReg, 3, 7, 0x03),         // ld t2, 8(t0)
      s_type(24, 7, kDataReg, 3),              // sd t2, 24(t0)
      s_type(8, 1, kDataReg, 3) | 0x04,        // fsd f1, 8(t0)
      s_type(16, 1, kDataReg, 2) | 0x04,       // fsw f1, 16(t0)
      i_type(8, kDataReg, 2, 2, 0x07),         // flw f2, 8(t0)
      i_type(16, kDataReg, 3, 3, 0x07),        // fld f3, 16(t0)
      i_type(1, 0, 0, 4, 0x13),                // addi x4, x0, 1
      j_type(0, 0),                            // jal x0, 0
  };
  for (uint64_t fs : {0ull, 1ull, 2ull, 3ull}) {
    for (bool stores_only : {false, true}) {
      std::vector<std::unique_ptr<Machine>> machines;
      for (Engine e : {Engine::kInterp, Engine::kJit}) {
        auto m = make_machine(1, e);
        std::memcpy(m->bus().ram() + (kCode - kRamBase), program, sizeof program);
        MachineState s = m->capture();
        s.hart.mstatus = (s.hart.mstatus & ~mstatus::kFs) | fs << mstatus::kFsShift;
        s.hart.f[1] = 0x400921fb54442d18;  // pi
        m->restore(s);
        // To the F/D stores, or the whole block and more.
        const RunResult r = m->run(stores_only ? 4 : 40);
        ASSERT_EQ(r.status, RunStatus::kBudget);
        machines.push_back(std::move(m));
      }
      const std::string diff = differences(*machines[0], *machines[1]);
      EXPECT_TRUE(diff.empty()) << "FS " << fs << (stores_only ? ", stores" : "") << ":" << diff;
      EXPECT_EQ(machines[0]->state_digest(), machines[1]->state_digest()) << "FS " << fs;
      const HartState& h = machines[1]->hart().state();
      EXPECT_EQ(h.mstatus & mstatus::kFs,
                fs == 0 || stores_only ? fs << mstatus::kFsShift : mstatus::kFs)
          << "FS " << fs << (stores_only ? ", stores" : "");
      if (fs != 0 && !stores_only) {
        EXPECT_EQ(h.f[2], 0xffffffff54442d18u);  // the low word, NaN-boxed
        EXPECT_EQ(h.f[3] & 0xffffffffu, 0x54442d18u);  // the stored word, then data
      }
    }
  }
}

// An AMO or SC that writes into the page of code it runs from clears that
// page's decoded instructions, its own included: it must still use its own
// operands, and the machine must do the same wherever its slices end.
TEST(Jit, AnAmoOrScIntoItsOwnCodePageUsesItsOwnOperandsOnEverySliceSplit) {
  const uint32_t program[] = {
      0x00000f97,                                  // 0: auipc t6, 0
      i_type(64, 31, 0, 31, 0x13),                 // 4: addi t6, t6, 64
      i_type(0x70, 0, 0, 14, 0x13),                // 8: addi a4, x0, 0x70
      (0x08u << 27) | (14u << 20) | (31u << 15) | (3u << 12) | (17u << 7) | 0x2f,  // 12: amoor.d a7, a4, (t6)
      i_type(1, 17, 0, 15, 0x13),                  // 16: addi a5, a7, 1
      (0x02u << 27) | (31u << 15) | (3u << 12) | (16u << 7) | 0x2f,                // 20: lr.d a6, (t6)
      (0x03u << 27) | (15u << 20) | (31u << 15) | (3u << 12) | (13u << 7) | 0x2f,  // 24: sc.d a3, a5, (t6)
      i_type(0, 0, 0, 12, 0x13) | (0u << 15),      // 28: addi a2, x0, 0
      j_type(0, 0),                                // 32: jal x0, 0
  };
  constexpr uint64_t kWord = 0x1234;
  for (Engine e : {Engine::kInterp, Engine::kJit}) {
    if (e == Engine::kJit && !jit_supported()) continue;
    for (uint64_t split = 0; split <= 9; ++split) {
      MachineConfig config;
      config.ram_size = 1u << 20;
      config.engine = e;
      Machine m(config);
      std::memcpy(m.bus().ram(), program, sizeof program);
      std::memcpy(m.bus().ram() + 64, &kWord, 8);
      MachineState s = m.capture();
      s.hart.pc = kRamBase;
      s.hart.priv = Priv::kMachine;
      m.restore(s);
      if (split > 0) {
        ASSERT_EQ(m.run(split).status, RunStatus::kBudget);
      }
      ASSERT_EQ(m.run(20 - split).status, RunStatus::kBudget);
      const HartState& h = m.hart().state();
      const std::string where = std::string(engine_name(e)) + ", split after " + std::to_string(split);
      EXPECT_EQ(h.x[0], 0u) << where;
      EXPECT_EQ(h.x[17], kWord) << where;           // a7: the old word
      EXPECT_EQ(h.x[15], kWord + 1) << where;       // a5
      EXPECT_EQ(h.x[16], kWord | 0x70) << where;    // a6: lr.d saw the AMO's result
      EXPECT_EQ(h.x[13], 0u) << where;              // a3: sc.d succeeded
      uint64_t word = 0;
      std::memcpy(&word, m.bus().ram() + 64, 8);
      EXPECT_EQ(word, kWord + 1) << where;          // sc.d stored a5
      EXPECT_EQ(h.pc, kRamBase + 32) << where;
    }
  }
}

TEST(Jit, ItsCodeBufferIsBoundedAndReported) {
  if (!jit_supported()) GTEST_SKIP() << "the translator needs an x86-64 host";
  std::unique_ptr<Machine> m = make_machine(3, Engine::kJit);
  ASSERT_EQ(m->run(20'000).status, RunStatus::kBudget);
  const JitStats s = m->hart().jit_stats();
  EXPECT_GT(s.blocks_compiled, 0u);
  EXPECT_GT(s.code_bytes, 0u);
  EXPECT_LE(s.code_bytes, s.code_capacity);
  EXPECT_EQ(s.flushes, 0u);
}

TEST(Jit, EnginesParseByName) {
  Engine e = Engine::kInterp;
  EXPECT_TRUE(parse_engine("jit", e));
  EXPECT_EQ(e, Engine::kJit);
  EXPECT_TRUE(parse_engine("interp", e));
  EXPECT_EQ(e, Engine::kInterp);
  EXPECT_FALSE(parse_engine("fast", e));
  EXPECT_STREQ(engine_name(Engine::kJit), "jit");
  EXPECT_EQ(default_engine(), jit_supported() ? Engine::kJit : Engine::kInterp);
}

}  // namespace
}  // namespace ftvm::vm
