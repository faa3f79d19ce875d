// The guest's randomness on a live run: where it comes from, and the host's
// getrandom() as one such source.
//
// Every live run chooses an EntropyChoice (`--entropy none|host|seed:N`).
// It decides two inputs of the machine: the device tree's /chosen/rng-seed,
// which Linux reads at boot to seed its CRNG, and the source behind the
// virtio-rng device. Both are inputs: a recording or a primary logs them
// (the rng-seed in the log header, the device's bytes as Entropy records)
// so a replay or a backup gives the guest the same bytes. `host` (the
// default) makes every live run's guest randomness its own; `none` and
// `seed:N` make a run reproducible without a log.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"
#include "vm/virtio_rng.h"

namespace ftvm::hostio {

// getrandom(2) with no flags: blocks only until the host's pool is
// initialised at boot, never fails on Linux >= 3.17 (a failure is a broken
// invariant and aborts).
class HostEntropy final : public vm::EntropySource {
 public:
  void fill(std::span<uint8_t> out) override;
};

enum class EntropyMode : uint8_t {
  kNone,  // no virtio-rng device and no rng-seed: the guest has no outside randomness
  kHost,  // both from the host's getrandom(): differs on every run
  kSeed,  // both from vm::SeededEntropy(seed): the same on every run
};

struct EntropyChoice {
  EntropyMode mode = EntropyMode::kHost;
  uint64_t seed = 0;  // kSeed only
  bool operator==(const EntropyChoice&) const = default;
};

// Parses "none", "host" or "seed:N" (N decimal, or hex with 0x, up to
// 2^64 - 1). The error names the text and the accepted forms.
Result<EntropyChoice> parse_entropy_choice(std::string_view text);
// The text parse_entropy_choice reads back: "none", "host", "seed:N".
std::string to_string(const EntropyChoice& choice);

// Bytes in the device tree's rng-seed: what QEMU's virt machine gives, and
// 256 bits, so a kernel that trusts the boot loader (guest/kernel.config)
// has its CRNG ready at once.
inline constexpr size_t kRngSeedBytes = 32;

// The bytes for /chosen/rng-seed: none for kNone; kRngSeedBytes from
// getrandom() for kHost; the first kRngSeedBytes of SeededEntropy(seed) for
// kSeed.
std::vector<uint8_t> rng_seed_for(const EntropyChoice& choice);

// The source behind the virtio-rng device: null for kNone (no device);
// HostEntropy for kHost; for kSeed, SeededEntropy(seed) past the bytes
// rng_seed_for took, so one seeded stream feeds both and they never repeat
// each other.
std::unique_ptr<vm::EntropySource> entropy_source_for(const EntropyChoice& choice);

}  // namespace ftvm::hostio
