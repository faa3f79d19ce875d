// virtio-rng request handling and the seeded entropy source; see virtio_rng.h.
#include "vm/virtio_rng.h"

#include <algorithm>
#include <vector>

#include "util/result.h"

namespace ftvm::vm {

uint64_t SeededEntropy::next() {
  // SplitMix64 (Steele, Lea, Flood 2014), as in java.util.SplittableRandom.
  uint64_t z = (state_ += 0x9e37'79b9'7f4a'7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58'476d'1ce4'e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d0'49bb'1331'11ebull;
  return z ^ (z >> 31);
}

void SeededEntropy::fill(std::span<uint8_t> out) {
  for (uint8_t& b : out) {
    if (left_ == 0) {
      word_ = next();
      left_ = 8;
    }
    b = static_cast<uint8_t>(word_);
    word_ >>= 8;
    --left_;
  }
}

VirtioRng::VirtioRng(EntropySource* source) : source_(source) { FTVM_CHECK(source != nullptr); }

void VirtioRng::on_notify(Virtqueue& queue) {
  std::vector<uint8_t> bytes;
  while (std::optional<DescriptorChain> chain = queue.pop()) {
    const uint32_t n =
        static_cast<uint32_t>(std::min<uint64_t>(chain->writable_len, kMaxRequestBytes));
    bytes.resize(n);
    if (n != 0) {
      source_->fill(bytes);
      FTVM_CHECK(queue.write(*chain, 0, bytes));  // pop() checked the buffers are RAM
    }
    queue.push(*chain, n);
  }
}

}  // namespace ftvm::vm
