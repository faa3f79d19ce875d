// ELF64 parsing with every read bounds-checked; see elf_loader.h.
#include "vm/elf_loader.h"

#include <fmt/format.h>

#include <string_view>

namespace ftvm::vm {
namespace {

constexpr uint8_t kMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr uint64_t kEhdrSize = 64;
constexpr uint64_t kPhdrSize = 56;
constexpr uint64_t kShdrSize = 64;
constexpr uint64_t kSymSize = 24;

constexpr uint8_t kClass32 = 1;
constexpr uint8_t kClass64 = 2;
constexpr uint8_t kDataLsb = 1;
constexpr uint8_t kDataMsb = 2;
constexpr uint16_t kTypeExec = 2;
constexpr uint16_t kMachineRiscv = 243;
constexpr uint16_t kPnXnum = 0xffff;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kShtSymtab = 2;
constexpr uint32_t kShtStrtab = 3;
constexpr uint32_t kShtNobits = 8;

// Little-endian field reads; callers have checked that the bytes exist.
uint64_t le(std::span<const uint8_t> f, uint64_t off, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v |= uint64_t{f[off + i]} << (8 * i);
  return v;
}
uint16_t le16(std::span<const uint8_t> f, uint64_t off) {
  return static_cast<uint16_t>(le(f, off, 2));
}
uint32_t le32(std::span<const uint8_t> f, uint64_t off) {
  return static_cast<uint32_t>(le(f, off, 4));
}
uint64_t le64(std::span<const uint8_t> f, uint64_t off) { return le(f, off, 8); }

// [off, off+len) lies inside a file of `size` bytes; no overflow possible.
bool in_file(uint64_t off, uint64_t len, uint64_t size) {
  return off <= size && len <= size - off;
}

std::string_view machine_name(uint16_t m) {
  switch (m) {
    case 3: return "x86";
    case 8: return "MIPS";
    case 20: return "PowerPC";
    case 21: return "PowerPC64";
    case 22: return "S/390";
    case 40: return "ARM";
    case 62: return "x86-64";
    case 183: return "AArch64";
    case 243: return "RISC-V";
    case 258: return "LoongArch";
    default: return "unknown";
  }
}

std::string_view type_name(uint16_t t) {
  switch (t) {
    case 0: return "no file type";
    case 1: return "relocatable object";
    case 2: return "executable";
    case 3: return "shared object or position-independent executable";
    case 4: return "core dump";
    default: return "unknown";
  }
}

Error fail(std::string message) { return make_error(std::move(message)); }

// Finds `tohost` and `fromhost` in every SHT_SYMTAB section. Section
// headers and the data of every section have been bounds-checked.
Status read_symbols(std::span<const uint8_t> f, uint64_t shoff, uint16_t shnum, ElfImage& image) {
  for (uint16_t i = 0; i < shnum; ++i) {
    const uint64_t sh = shoff + i * kShdrSize;
    if (le32(f, sh + 4) != kShtSymtab) continue;
    const uint64_t sym_off = le64(f, sh + 24);
    const uint64_t sym_size = le64(f, sh + 32);
    const uint32_t link = le32(f, sh + 40);
    const uint64_t entsize = le64(f, sh + 56);
    if (entsize != kSymSize) {
      return fail(fmt::format("section {} (symbol table) has entry size {}, expected {}", i,
                              entsize, kSymSize));
    }
    if (link >= shnum) {
      return fail(fmt::format("section {} (symbol table) links to section {}, which does not "
                              "exist ({} sections)",
                              i, link, shnum));
    }
    const uint64_t str_sh = shoff + link * kShdrSize;
    if (le32(f, str_sh + 4) != kShtStrtab) {
      return fail(fmt::format("section {} (symbol table) links to section {}, which is not a "
                              "string table",
                              i, link));
    }
    const uint64_t str_off = le64(f, str_sh + 24);
    const uint64_t str_size = le64(f, str_sh + 32);
    for (uint64_t s = 0; s + kSymSize <= sym_size; s += kSymSize) {
      const uint64_t name = le32(f, sym_off + s);
      if (name >= str_size) {
        return fail(fmt::format("symbol {} of section {} has a name outside its string table "
                                "(offset {}, table size {})",
                                s / kSymSize, i, name, str_size));
      }
      // The name runs to the first NUL inside the string table.
      const auto* begin = reinterpret_cast<const char*>(f.data() + str_off + name);
      const std::string_view rest(begin, str_size - name);
      const size_t nul = rest.find('\0');
      if (nul == std::string_view::npos) {
        return fail(fmt::format("symbol {} of section {} has an unterminated name", s / kSymSize,
                                i));
      }
      const std::string_view sym = rest.substr(0, nul);
      const uint64_t value = le64(f, sym_off + s + 8);
      if (sym == "tohost") image.tohost = value;
      if (sym == "fromhost") image.fromhost = value;
    }
  }
  return {};
}

}  // namespace

bool looks_like_elf(std::span<const uint8_t> file) {
  return file.size() >= 4 && file[0] == kMagic[0] && file[1] == kMagic[1] &&
         file[2] == kMagic[2] && file[3] == kMagic[3];
}

Result<ElfImage> load_elf(std::span<const uint8_t> f) {
  const uint64_t size = f.size();
  if (!looks_like_elf(f)) return fail("not an ELF file");
  if (size < kEhdrSize) {
    return fail(fmt::format("truncated: the ELF header needs {} bytes, file size {}", kEhdrSize,
                            size));
  }
  if (f[4] == kClass32) return fail("ELF is 32-bit (ELFCLASS32), not 64-bit");
  if (f[4] != kClass64) return fail(fmt::format("ELF has invalid class {}", f[4]));
  if (f[5] == kDataMsb) return fail("ELF is big-endian, not little-endian");
  if (f[5] != kDataLsb) return fail(fmt::format("ELF has invalid data encoding {}", f[5]));
  if (f[6] != 1) return fail(fmt::format("ELF has unknown version {}", f[6]));
  const uint16_t machine = le16(f, 18);
  if (machine != kMachineRiscv) {
    return fail(fmt::format("ELF is for machine {} ({}), not RISC-V", machine,
                            machine_name(machine)));
  }
  const uint16_t type = le16(f, 16);
  if (type != kTypeExec) {
    return fail(fmt::format("ELF type is {} ({}), not an executable (ET_EXEC)", type,
                            type_name(type)));
  }

  ElfImage image;
  image.entry = le64(f, 24);
  const uint64_t phoff = le64(f, 32);
  const uint64_t shoff = le64(f, 40);
  const uint16_t phentsize = le16(f, 54);
  const uint16_t phnum = le16(f, 56);
  const uint16_t shentsize = le16(f, 58);
  const uint16_t shnum = le16(f, 60);

  if (phnum == 0) return fail("ELF has no program headers");
  if (phnum == kPnXnum) return fail("ELF uses extended program header numbering (unsupported)");
  if (phentsize != kPhdrSize) {
    return fail(fmt::format("ELF program header size is {}, expected {}", phentsize, kPhdrSize));
  }
  for (uint16_t i = 0; i < phnum; ++i) {
    if (!in_file(phoff, (i + 1) * kPhdrSize, size)) {
      return fail(fmt::format(
          "truncated: program header {} extends past end of file (offset {:#x}, file size {})", i,
          phoff + i * kPhdrSize, size));
    }
  }

  if (shnum != 0) {
    if (shentsize != kShdrSize) {
      return fail(fmt::format("ELF section header size is {}, expected {}", shentsize, kShdrSize));
    }
    for (uint16_t i = 0; i < shnum; ++i) {
      if (!in_file(shoff, (i + 1) * kShdrSize, size)) {
        return fail(fmt::format(
            "truncated: section header {} extends past end of file (offset {:#x}, file size {})",
            i, shoff + i * kShdrSize, size));
      }
    }
    for (uint16_t i = 0; i < shnum; ++i) {
      const uint64_t sh = shoff + i * kShdrSize;
      const uint32_t sh_type = le32(f, sh + 4);
      const uint64_t off = le64(f, sh + 24);
      const uint64_t len = le64(f, sh + 32);
      if (i != 0 && sh_type != kShtNobits && !in_file(off, len, size)) {
        return fail(fmt::format("truncated: section {} extends past end of file (offset {:#x}, "
                                "size {:#x}, file size {})",
                                i, off, len, size));
      }
    }
  }

  for (uint16_t i = 0; i < phnum; ++i) {
    const uint64_t ph = phoff + i * kPhdrSize;
    if (le32(f, ph) != kPtLoad) continue;
    ElfSegment seg;
    seg.flags = le32(f, ph + 4);
    const uint64_t off = le64(f, ph + 8);
    seg.vaddr = le64(f, ph + 16);
    seg.paddr = le64(f, ph + 24);
    const uint64_t filesz = le64(f, ph + 32);
    seg.memsz = le64(f, ph + 40);
    if (filesz > seg.memsz) {
      return fail(fmt::format("segment {}: file size {:#x} exceeds memory size {:#x}", i, filesz,
                              seg.memsz));
    }
    if (!in_file(off, filesz, size)) {
      return fail(fmt::format("truncated: segment {} extends past end of file (offset {:#x}, "
                              "size {:#x}, file size {})",
                              i, off, filesz, size));
    }
    if (seg.memsz == 0) continue;
    if (seg.paddr + (seg.memsz - 1) < seg.paddr) {
      return fail(fmt::format("segment {}: address {:#x} + size {:#x} wraps past 2^64", i,
                              seg.paddr, seg.memsz));
    }
    seg.data.assign(f.begin() + static_cast<ptrdiff_t>(off),
                    f.begin() + static_cast<ptrdiff_t>(off + filesz));
    image.segments.push_back(std::move(seg));
  }
  if (image.segments.empty()) return fail("ELF has no loadable segments");

  if (shnum != 0) {
    if (Status s = read_symbols(f, shoff, shnum, image); !s) return make_error(s.error());
  }
  return image;
}

}  // namespace ftvm::vm
