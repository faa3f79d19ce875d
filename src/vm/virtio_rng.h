// virtio entropy device (virtio-rng, device id 4, virtio 1.1 §5.4) and the
// EntropySource seam through which its bytes enter the machine.
//
// The device has one queue ("requestq") and no configuration space or
// feature bits. Each chain the driver makes available is answered at once,
// inside the notifying register write: the device asks its EntropySource
// for exactly as many bytes as it will write (the chain's writable length,
// at most kMaxRequestBytes), in one call, writes them in order into the
// writable buffers and returns the chain with that length. Chains with no
// writable buffer are returned with length 0 and consume no entropy.
//
// Determinism: the guest sees only bytes the EntropySource gave, in the
// order it gave them, so a run is reproducible when the source is: on a
// live run the machine backs it with the host's getrandom()
// (hostio/entropy.h) and logs what it returned; on replay it returns the
// logged bytes.
#pragma once

#include <cstdint>
#include <span>

#include "vm/virtio_mmio.h"

namespace ftvm::vm {

// Where entropy for the guest comes from.
class EntropySource {
 public:
  virtual ~EntropySource() = default;
  // Fills all of `out`. Cannot fail: a source that has no more to give (a
  // replay log that ran dry) must say so through its own channel and still
  // fill `out`.
  virtual void fill(std::span<uint8_t> out) = 0;
};

// A deterministic EntropySource for tests and reproducible runs: the
// SplitMix64 stream of `seed`, little-endian, continuing across calls.
class SeededEntropy final : public EntropySource {
 public:
  explicit SeededEntropy(uint64_t seed) : state_(seed) {}
  void fill(std::span<uint8_t> out) override;

 private:
  uint64_t next();
  uint64_t state_;
  uint64_t word_ = 0;
  unsigned left_ = 0;  // unused bytes of word_, low ones first
};

class VirtioRng final : public VirtioDeviceBackend {
 public:
  // Bytes given per request at most; a longer buffer is filled in part.
  static constexpr uint32_t kMaxRequestBytes = 4096;

  // The device keeps no state of its own (all of it is the transport's);
  // State exists so snapshot code can treat every device alike.
  struct State {
    bool operator==(const State&) const = default;
    template <typename F>
    void for_each_field(F&&) const {}
  };

  // `source` must outlive the device.
  explicit VirtioRng(EntropySource* source);

  uint32_t device_id() const override { return kVirtioIdEntropy; }
  uint64_t device_features() const override { return 0; }
  unsigned num_queues() const override { return 1; }
  uint32_t config_size() const override { return 0; }
  void read_config(uint32_t offset, std::span<uint8_t> out) const override {}
  void on_notify(Virtqueue& queue) override;

  State state() const { return {}; }
  void restore(const State&) {}

 private:
  EntropySource* source_;
};

}  // namespace ftvm::vm
