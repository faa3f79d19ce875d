// Physical address space (see bus.h).
#include "vm/bus.h"

#include <sys/mman.h>

#include "util/result.h"

namespace ftvm::vm {

Bus::Bus(uint64_t ram_base, uint64_t ram_size) : ram_base_(ram_base), ram_size_(ram_size) {
  // Anonymous mappings are zero-filled, so RAM starts in a defined state.
  void* p = mmap(nullptr, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  FTVM_CHECK(p != MAP_FAILED);
  ram_ = static_cast<uint8_t*>(p);
  dirty_.assign((ram_size + kPageSize - 1) >> kPageShift, 1);
}

Bus::~Bus() { munmap(ram_, ram_size_); }

void Bus::map(uint64_t base, uint64_t size, Device* dev, std::string name) {
  FTVM_CHECK(base + size <= ram_base_ || base >= ram_base_ + ram_size_);
  for (const Window& w : windows_) FTVM_CHECK(base + size <= w.base || base >= w.base + w.size);
  windows_.push_back(Window{base, size, dev, std::move(name)});
}

const Bus::Window* Bus::find(uint64_t pa, unsigned size) const {
  for (const Window& w : windows_) {
    if (pa >= w.base && pa - w.base < w.size && size <= w.size - (pa - w.base)) return &w;
  }
  return nullptr;
}

bool Bus::mmio_read(uint64_t pa, unsigned size, uint64_t& value) {
  const Window* w = find(pa, size);
  value = 0;
  if (w == nullptr || (pa & (size - 1)) != 0) return false;
  return w->dev->read(pa - w->base, size, value);
}

bool Bus::mmio_write(uint64_t pa, unsigned size, uint64_t value) {
  const Window* w = find(pa, size);
  if (w == nullptr || (pa & (size - 1)) != 0) return false;
  if (size < 8) value &= (uint64_t{1} << (size * 8)) - 1;
  return w->dev->write(pa - w->base, size, value);
}

}  // namespace ftvm::vm
