// A copy of a disk image's current contents, for `ftvm run --record` with a
// writable disk: the log names the copy's hash, and `ftvm replay` starts the
// guest from it (under a copy-on-write overlay) while the live run goes on
// writing the original.
//
// The copy is a reflink (FICLONE: shared blocks, instant, no space used
// until either side changes) where the filesystem has them; otherwise a
// sparse copy (only the data regions, holes stay holes), refused up front
// when the destination's filesystem lacks the room. It is written under a
// temporary name, synced, then renamed into place: a failed copy leaves
// nothing behind and never a half-made file under `dst`.
#pragma once

#include <cstdint>
#include <string>

#include "util/result.h"

namespace ftvm::hostio {

struct DiskCopy {
  bool reflinked = false;
  uint64_t bytes = 0;         // the image's size
  uint64_t copied_bytes = 0;  // data bytes copied (0 for a reflink)
};

Result<DiskCopy> copy_disk_image(const std::string& src, const std::string& dst);

}  // namespace ftvm::hostio
