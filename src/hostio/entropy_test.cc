// The host entropy source fills whole buffers, large and small; entropy
// choices parse, print, and give the rng-seed and device bytes they promise.
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

TEST(EntropyChoice, ParsesEachForm) {
  EXPECT_EQ(*parse_entropy_choice("none"), (EntropyChoice{EntropyMode::kNone, 0}));
  EXPECT_EQ(*parse_entropy_choice("host"), (EntropyChoice{EntropyMode::kHost, 0}));
  EXPECT_EQ(*parse_entropy_choice("seed:7"), (EntropyChoice{EntropyMode::kSeed, 7}));
  EXPECT_EQ(*parse_entropy_choice("seed:0x10"), (EntropyChoice{EntropyMode::kSeed, 16}));
  EXPECT_EQ(*parse_entropy_choice("seed:18446744073709551615"),
            (EntropyChoice{EntropyMode::kSeed, ~uint64_t{0}}));
}

TEST(EntropyChoice, TheDefaultIsHost) { EXPECT_EQ(EntropyChoice{}.mode, EntropyMode::kHost); }

TEST(EntropyChoice, BadTextIsRefusedNamingTheForms) {
  for (const char* bad : {"", "bogus", "Host", "seed", "seed:", "seed:x", "seed:-1", "seed:1x",
                          "seed:18446744073709551616", "seed:0x"}) {
    Result<EntropyChoice> r = parse_entropy_choice(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().find(std::string("--entropy ") + bad), std::string::npos) << r.error();
  }
  EXPECT_NE(parse_entropy_choice("bogus").error().find("none, host"), std::string::npos);
}

TEST(EntropyChoice, PrintsWhatItParses) {
  for (const char* text : {"none", "host", "seed:0", "seed:42"}) {
    EXPECT_EQ(to_string(*parse_entropy_choice(text)), text);
  }
}

TEST(EntropyChoice, NoneGivesNoSeedAndNoDevice) {
  const EntropyChoice none{EntropyMode::kNone, 0};
  EXPECT_TRUE(rng_seed_for(none).empty());
  EXPECT_EQ(entropy_source_for(none), nullptr);
}

TEST(EntropyChoice, HostSeedsDifferEveryTime) {
  const EntropyChoice host{EntropyMode::kHost, 0};
  const std::vector<uint8_t> a = rng_seed_for(host), b = rng_seed_for(host);
  EXPECT_EQ(a.size(), kRngSeedBytes);
  EXPECT_NE(a, b);
  EXPECT_NE(entropy_source_for(host), nullptr);
}

TEST(EntropyChoice, OneSeededStreamFeedsTheRngSeedThenTheDevice) {
  const EntropyChoice seeded{EntropyMode::kSeed, 7};
  std::vector<uint8_t> stream(kRngSeedBytes + 100);
  vm::SeededEntropy(7).fill(stream);
  const std::vector<uint8_t> seed = rng_seed_for(seeded);
  EXPECT_EQ(seed, std::vector<uint8_t>(stream.begin(), stream.begin() + kRngSeedBytes));
  EXPECT_EQ(rng_seed_for(seeded), seed) << "not reproducible";
  std::unique_ptr<vm::EntropySource> device = entropy_source_for(seeded);
  ASSERT_NE(device, nullptr);
  std::vector<uint8_t> rest(100);
  device->fill(rest);
  EXPECT_EQ(rest, std::vector<uint8_t>(stream.begin() + kRngSeedBytes, stream.end()));
  EXPECT_NE(rng_seed_for({EntropyMode::kSeed, 8}), seed);
}

}  // namespace
}  // namespace ftvm::hostio
