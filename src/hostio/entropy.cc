// getrandom(2) behind vm::EntropySource; see entropy.h.
#include "hostio/entropy.h"

#include <sys/random.h>

#include <cerrno>

#include "util/result.h"

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

}  // namespace ftvm::hostio
