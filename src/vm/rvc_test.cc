// Tests of the compressed-instruction expansion (rvc.cc).
//
// The exhaustive test compares every one of the 49152 compressed encodings
// with testdata/rvc_golden.bin, whose expansions gen_rvc_golden.sh checked
// against GNU objdump's disassembly. The tests before it pin single
// encodings, each checked against the assembler, with a comment naming the
// instruction.
#include "vm/rvc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace ftvm::vm {
namespace {

TEST(Rvc, AllZeroIsIllegal) { EXPECT_EQ(expand_compressed(0x0000), 0u); }

TEST(Rvc, NotCompressedGivesZero) {
  EXPECT_EQ(expand_compressed(0x0003), 0u);
  EXPECT_EQ(expand_compressed(0xffff), 0u);
}

TEST(Rvc, Addi4spn) {
  EXPECT_EQ(expand_compressed(0x0040), 0x00410413u);  // addi s0,sp,4
}

TEST(Rvc, Addi4spnZeroImmediateIsReserved) {
  EXPECT_EQ(expand_compressed(0x0004), 0u);
  EXPECT_EQ(expand_compressed(0x001c), 0u);
}

TEST(Rvc, Quadrant0Funct3100IsReserved) {
  EXPECT_EQ(expand_compressed(0x8000), 0u);
  EXPECT_EQ(expand_compressed(0x9ffc), 0u);
}

TEST(Rvc, LdWithLargestOffset) {
  EXPECT_EQ(expand_compressed(0x7de8), 0x0f85b503u);  // c.ld a0,248(a1)
}

TEST(Rvc, AddiwZeroImmediateIsSextW) {
  EXPECT_EQ(expand_compressed(0x2501), 0x0005051bu);  // c.addiw a0,0
}

TEST(Rvc, AddiwRdZeroIsReserved) {
  EXPECT_EQ(expand_compressed(0x2001), 0u);
  EXPECT_EQ(expand_compressed(0x307d), 0u);
}

TEST(Rvc, Addi16spNegative) {
  EXPECT_EQ(expand_compressed(0x717d), 0xff010113u);  // c.addi16sp sp,-16
}

TEST(Rvc, Addi16spZeroIsReserved) {
  // objdump decodes this as "c.addi16sp sp,0"; the specification reserves it.
  EXPECT_EQ(expand_compressed(0x6101), 0u);
}

TEST(Rvc, LuiNegative) {
  EXPECT_EQ(expand_compressed(0x757d), 0xfffff537u);  // c.lui a0,0xfffff
}

TEST(Rvc, LuiZeroImmediateIsReserved) {
  EXPECT_EQ(expand_compressed(0x6001), 0u);
  EXPECT_EQ(expand_compressed(0x6501), 0u);
}

TEST(Rvc, LuiRdZeroIsHint) {
  EXPECT_EQ(expand_compressed(0x6005), 0x00001037u);  // lui zero,0x1
}

TEST(Rvc, SrliShamtZeroIsHint) {
  EXPECT_EQ(expand_compressed(0x8001), 0x00045413u);  // c.srli64 s0: srli s0,s0,0
}

TEST(Rvc, SraiShamt63) {
  EXPECT_EQ(expand_compressed(0x957d), 0x43f55513u);  // c.srai a0,63
}

TEST(Rvc, SlliRdZeroIsHint) {
  EXPECT_EQ(expand_compressed(0x0002), 0x00001013u);  // c.slli64 zero
}

TEST(Rvc, Subw) {
  EXPECT_EQ(expand_compressed(0x9c01), 0x4084043bu);  // c.subw s0,s0
}

TEST(Rvc, ReservedArithmeticSlots) {
  EXPECT_EQ(expand_compressed(0x9c41), 0u);
  EXPECT_EQ(expand_compressed(0x9c61), 0u);
}

TEST(Rvc, JumpBackward) {
  EXPECT_EQ(expand_compressed(0xbffd), 0xfffff06fu);  // c.j -2
}

TEST(Rvc, BeqzSmallestOffset) {
  EXPECT_EQ(expand_compressed(0xd001), 0xf00400e3u);  // c.beqz s0,-256
}

TEST(Rvc, LwspAndLdspRdZeroAreReserved) {
  EXPECT_EQ(expand_compressed(0x4002), 0u);
  EXPECT_EQ(expand_compressed(0x6002), 0u);
}

TEST(Rvc, FldspAndFsdsp) {
  EXPECT_EQ(expand_compressed(0x357e), 0x1f813507u);  // c.fldsp fa0,504(sp)
  EXPECT_EQ(expand_compressed(0xa422), 0x00813427u);  // c.fsdsp fs0,8(sp)
}

TEST(Rvc, JrZeroIsReserved) { EXPECT_EQ(expand_compressed(0x8002), 0u); }

TEST(Rvc, JalrAndEbreak) {
  EXPECT_EQ(expand_compressed(0x9082), 0x000080e7u);  // c.jalr ra
  EXPECT_EQ(expand_compressed(0x9002), 0x00100073u);  // c.ebreak
}

TEST(Rvc, MvAndAdd) {
  EXPECT_EQ(expand_compressed(0x852e), 0x00b00533u);  // c.mv a0,a1
  EXPECT_EQ(expand_compressed(0x952e), 0x00b50533u);  // c.add a0,a1
}

std::vector<uint8_t> read_golden() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "testdata" / "rvc_golden.bin";
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file) << "cannot open " << path;
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST(Rvc, EveryEncodingMatchesGolden) {
  const std::vector<uint8_t> golden = read_golden();
  ASSERT_EQ(golden.size(), 4u * 49152);
  size_t i = 0;
  int mismatches = 0;
  int legal = 0;
  for (uint32_t v = 0; v < 65536; ++v) {
    if ((v & 3) == 3) continue;
    const uint32_t want = golden[i] | (golden[i + 1] << 8) | (golden[i + 2] << 16) |
                          (static_cast<uint32_t>(golden[i + 3]) << 24);
    i += 4;
    const uint32_t got = expand_compressed(static_cast<uint16_t>(v));
    legal += got != 0;
    if (got != want && ++mismatches <= 20) {
      ADD_FAILURE() << std::hex << "0x" << v << ": got 0x" << got << ", want 0x" << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(legal, 46743);
}

// Run with
//   ftvm_vm_tests --gtest_also_run_disabled_tests --gtest_filter='RvcBench.*'
TEST(RvcBench, DISABLED_ExpandAll) {
  constexpr int kRounds = 200;
  uint32_t sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    for (uint32_t v = 0; v < 65536; ++v) sink ^= expand_compressed(static_cast<uint16_t>(v));
  }
  const auto end = std::chrono::steady_clock::now();
  EXPECT_NE(sink, 1u);
  std::printf("expand_compressed: %.2f ns\n",
              std::chrono::duration<double, std::nano>(end - start).count() / (kRounds * 65536.0));
}

}  // namespace
}  // namespace ftvm::vm
