// The host's randomness as the guest's entropy source.
//
// HostEntropy backs the virtio-rng device on a live run. It is one of the
// machine's inputs: whatever it returns must be logged so a replay can give
// the guest the same bytes (the replay side uses its own EntropySource).
#pragma once

#include <cstdint>
#include <span>

#include "vm/virtio_rng.h"

namespace ftvm::hostio {

// getrandom(2) with no flags: blocks only until the host's pool is
// initialised at boot, never fails on Linux >= 3.17 (a failure is a broken
// invariant and aborts).
class HostEntropy final : public vm::EntropySource {
 public:
  void fill(std::span<uint8_t> out) override;
};

}  // namespace ftvm::hostio
