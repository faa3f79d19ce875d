// Entropy choices and getrandom(2) behind vm::EntropySource; see entropy.h.
#include "hostio/entropy.h"

#include <fmt/format.h>
#include <sys/random.h>

#include <cerrno>
#include <charconv>

namespace ftvm::hostio {

void HostEntropy::fill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    // getrandom returns at most 32 MiB - 1 per call, and may return less.
    const ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    FTVM_CHECK(n > 0);
    done += static_cast<size_t>(n);
  }
}

Result<EntropyChoice> parse_entropy_choice(std::string_view text) {
  if (text == "none") return EntropyChoice{EntropyMode::kNone, 0};
  if (text == "host") return EntropyChoice{EntropyMode::kHost, 0};
  constexpr std::string_view kSeedPrefix = "seed:";
  if (text.starts_with(kSeedPrefix)) {
    std::string_view digits = text.substr(kSeedPrefix.size());
    int base = 10;
    if (digits.starts_with("0x") || digits.starts_with("0X")) {
      digits.remove_prefix(2);
      base = 16;
    }
    uint64_t seed = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seed, base);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size()) {
      return EntropyChoice{EntropyMode::kSeed, seed};
    }
    return make_error(fmt::format("--entropy {}: the seed must be a number from 0 to 2^64-1 "
                                  "(decimal, or hex with 0x)",
                                  text));
  }
  return make_error(fmt::format("--entropy {}: use none, host (the default) or seed:N", text));
}

std::string to_string(const EntropyChoice& choice) {
  switch (choice.mode) {
    case EntropyMode::kNone: return "none";
    case EntropyMode::kHost: return "host";
    case EntropyMode::kSeed: return fmt::format("seed:{}", choice.seed);
  }
  FTVM_CHECK(false);
  return {};
}

std::vector<uint8_t> rng_seed_for(const EntropyChoice& choice) {
  std::vector<uint8_t> seed;
  if (choice.mode == EntropyMode::kNone) return seed;
  seed.resize(kRngSeedBytes);
  if (choice.mode == EntropyMode::kHost) {
    HostEntropy().fill(seed);
  } else {
    vm::SeededEntropy(choice.seed).fill(seed);
  }
  return seed;
}

std::unique_ptr<vm::EntropySource> entropy_source_for(const EntropyChoice& choice) {
  switch (choice.mode) {
    case EntropyMode::kNone: return nullptr;
    case EntropyMode::kHost: return std::make_unique<HostEntropy>();
    case EntropyMode::kSeed: {
      auto source = std::make_unique<vm::SeededEntropy>(choice.seed);
      std::vector<uint8_t> skip(kRngSeedBytes);
      source->fill(skip);  // rng_seed_for's bytes
      return source;
    }
  }
  FTVM_CHECK(false);
  return nullptr;
}

}  // namespace ftvm::hostio
