// Reads a bare-metal RISC-V program (an ISA test, a firmware, a kernel
// vmlinux) from ELF bytes: its loadable segments, entry point, and the
// `tohost`/`fromhost` symbols that riscv-tests style programs use to report.
//
// The bytes are untrusted: every header, offset and size is checked against
// the file, without overflow, before anything is read, and a bad file gives
// a one-line error naming what is wrong. The loader does not place anything
// in memory; the caller copies the segments into RAM and rejects segments
// that fall outside it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "util/result.h"

namespace ftvm::vm {

struct ElfSegment {
  uint64_t paddr = 0;         // where the segment goes in physical memory
  uint64_t vaddr = 0;         // where the program expects it (informational)
  std::vector<uint8_t> data;  // the file's bytes for it (p_filesz of them)
  uint64_t memsz = 0;         // >= data.size(); the rest is zero-filled
  uint32_t flags = 0;         // PF_R / PF_W / PF_X
};

struct ElfImage {
  uint64_t entry = 0;
  std::vector<ElfSegment> segments;  // PT_LOAD segments in file order, memsz > 0
  std::optional<uint64_t> tohost;    // symbol values from .symtab, when present
  std::optional<uint64_t> fromhost;
};

// True if `file` starts with the ELF magic; says nothing about validity.
bool looks_like_elf(std::span<const uint8_t> file);

// Parses an ELF64 little-endian RISC-V executable (ET_EXEC). Fails if any
// header is inconsistent or out of the file, if a segment's file size
// exceeds its memory size or its addresses wrap, or if nothing is loadable.
Result<ElfImage> load_elf(std::span<const uint8_t> file);

}  // namespace ftvm::vm
