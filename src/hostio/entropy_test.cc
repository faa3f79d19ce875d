// The host entropy source fills whole buffers, large and small.
#include "hostio/entropy.h"

#include <gtest/gtest.h>

#include <vector>

namespace ftvm::hostio {
namespace {

TEST(HostEntropy, FillsLargeBuffersCompletely) {
  HostEntropy e;
  // Zero-initialised; 1 MiB of host randomness is all zero with
  // probability 2^-8388608, and every 4 KiB block has non-zero bytes.
  std::vector<uint8_t> b(1 << 20);
  e.fill(b);
  for (size_t block = 0; block < b.size(); block += 4096) {
    bool any = false;
    for (size_t i = block; i < block + 4096; ++i) any |= b[i] != 0;
    EXPECT_TRUE(any) << "block at " << block;
  }
}

TEST(HostEntropy, EmptyFillIsANoOp) {
  HostEntropy e;
  e.fill({});
}

TEST(HostEntropy, TwoFillsDiffer) {
  HostEntropy e;
  std::vector<uint8_t> a(32), b(32);
  e.fill(a);
  e.fill(b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace ftvm::hostio
