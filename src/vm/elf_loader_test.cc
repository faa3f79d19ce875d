// The ELF loader against hand-built files: a valid program, every prefix of
// it (each must fail cleanly), and one corruption per test. When the RISC-V
// cross toolchain is installed, a linker-built program is loaded too.
#include "vm/elf_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace ftvm::vm {
namespace {

void put(std::vector<uint8_t>& f, size_t off, uint64_t v, unsigned n) {
  if (f.size() < off + n) f.resize(off + n);
  for (unsigned i = 0; i < n; ++i) f[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Layout of the file that make_elf() builds.
constexpr size_t kPhoff = 64;
constexpr size_t kPhnum = 3;  // text (PT_LOAD), data+bss (PT_LOAD), GNU_STACK
constexpr size_t kTextOff = kPhoff + 56 * kPhnum;  // 232
constexpr size_t kTextSize = 16;
constexpr size_t kDataOff = kTextOff + kTextSize;  // 248
constexpr size_t kDataSize = 8;
constexpr size_t kSymOff = kDataOff + kDataSize;  // 256
constexpr size_t kNumSyms = 4;
constexpr size_t kStrOff = kSymOff + 24 * kNumSyms;  // 352
constexpr char kStrtab[] = "\0tohost\0fromhost\0_start";  // names at 1, 8, 17
constexpr size_t kStrSize = sizeof kStrtab;
constexpr size_t kShstrOff = kStrOff + kStrSize;
constexpr char kShstrtab[] = "\0.text\0.symtab\0.strtab\0.shstrtab";  // 1, 7, 15, 23
constexpr size_t kShstrSize = sizeof kShstrtab;
constexpr size_t kShoff = (kShstrOff + kShstrSize + 7) & ~size_t{7};
constexpr size_t kShnum = 5;
constexpr uint64_t kEntry = 0x8000'0000;
constexpr uint64_t kToHost = 0x8000'1000;
constexpr uint64_t kFromHost = 0x8000'1040;

void put_phdr(std::vector<uint8_t>& f, size_t i, uint32_t type, uint32_t flags, uint64_t off,
              uint64_t addr, uint64_t filesz, uint64_t memsz) {
  const size_t p = kPhoff + 56 * i;
  put(f, p + 0, type, 4);
  put(f, p + 4, flags, 4);
  put(f, p + 8, off, 8);
  put(f, p + 16, addr, 8);  // vaddr
  put(f, p + 24, addr, 8);  // paddr
  put(f, p + 32, filesz, 8);
  put(f, p + 40, memsz, 8);
  put(f, p + 48, 8, 8);
}

void put_shdr(std::vector<uint8_t>& f, size_t i, uint32_t name, uint32_t type, uint64_t off,
              uint64_t size, uint32_t link, uint64_t entsize) {
  const size_t s = kShoff + 64 * i;
  put(f, s + 0, name, 4);
  put(f, s + 4, type, 4);
  put(f, s + 24, off, 8);
  put(f, s + 32, size, 8);
  put(f, s + 40, link, 4);
  put(f, s + 56, entsize, 8);
}

void put_sym(std::vector<uint8_t>& f, size_t i, uint32_t name, uint64_t value) {
  const size_t s = kSymOff + 24 * i;
  put(f, s + 0, name, 4);
  put(f, s + 4, 0x10, 1);  // STB_GLOBAL, STT_NOTYPE
  put(f, s + 6, 1, 2);     // in .text
  put(f, s + 8, value, 8);
}

// A small RISC-V executable in the layout gcc and ld produce: headers, then
// segment data, then symbols and strings, with section headers last.
std::vector<uint8_t> make_elf() {
  std::vector<uint8_t> f(kShoff + 64 * kShnum, 0);
  const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  std::copy(std::begin(ident), std::end(ident), f.begin());
  put(f, 16, 2, 2);    // ET_EXEC
  put(f, 18, 243, 2);  // EM_RISCV
  put(f, 20, 1, 4);
  put(f, 24, kEntry, 8);
  put(f, 32, kPhoff, 8);
  put(f, 40, kShoff, 8);
  put(f, 48, 0x5, 4);  // RVC, double-float ABI
  put(f, 52, 64, 2);
  put(f, 54, 56, 2);
  put(f, 56, kPhnum, 2);
  put(f, 58, 64, 2);
  put(f, 60, kShnum, 2);
  put(f, 62, 4, 2);

  put_phdr(f, 0, 1, 5, kTextOff, kEntry, kTextSize, kTextSize);
  put_phdr(f, 1, 1, 6, kDataOff, 0x8000'2000, kDataSize, 64);
  put_phdr(f, 2, 0x6474e551, 6, 0, 0, 0, 0);  // PT_GNU_STACK
  for (size_t i = 0; i < kTextSize; ++i) f[kTextOff + i] = static_cast<uint8_t>(0xa0 + i);
  for (size_t i = 0; i < kDataSize; ++i) f[kDataOff + i] = static_cast<uint8_t>(0xd0 + i);

  put_sym(f, 1, 1, kToHost);
  put_sym(f, 2, 8, kFromHost);
  put_sym(f, 3, 17, kEntry);
  std::copy(std::begin(kStrtab), std::end(kStrtab), f.begin() + kStrOff);
  std::copy(std::begin(kShstrtab), std::end(kShstrtab), f.begin() + kShstrOff);

  put_shdr(f, 1, 1, 1, kTextOff, kTextSize, 0, 0);             // .text PROGBITS
  put_shdr(f, 2, 7, 2, kSymOff, 24 * kNumSyms, 3, 24);        // .symtab -> .strtab
  put_shdr(f, 3, 15, 3, kStrOff, kStrSize, 0, 0);              // .strtab
  put_shdr(f, 4, 23, 3, kShstrOff, kShstrSize, 0, 0);          // .shstrtab
  return f;
}

std::string error_of(const std::vector<uint8_t>& f) {
  auto r = load_elf(f);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error();
}

TEST(ElfLoaderTest, LoadsValidFile) {
  const auto f = make_elf();
  auto r = load_elf(f);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->entry, kEntry);
  ASSERT_EQ(r->segments.size(), 2u);  // GNU_STACK is not loadable
  const ElfSegment& text = r->segments[0];
  EXPECT_EQ(text.paddr, kEntry);
  EXPECT_EQ(text.vaddr, kEntry);
  EXPECT_EQ(text.memsz, kTextSize);
  EXPECT_EQ(text.flags, 5u);
  EXPECT_EQ(text.data, std::vector<uint8_t>(f.begin() + kTextOff,
                                            f.begin() + kTextOff + kTextSize));
  const ElfSegment& data = r->segments[1];
  EXPECT_EQ(data.paddr, 0x8000'2000u);
  EXPECT_EQ(data.data.size(), kDataSize);
  EXPECT_EQ(data.data[0], 0xd0);
  EXPECT_EQ(data.memsz, 64u);  // the rest is bss
  EXPECT_EQ(r->tohost, kToHost);
  EXPECT_EQ(r->fromhost, kFromHost);
}

TEST(ElfLoaderTest, EveryProperPrefixFailsCleanly) {
  const auto f = make_elf();
  for (size_t len = 0; len < f.size(); ++len) {
    auto r = load_elf(std::span<const uint8_t>(f.data(), len));
    EXPECT_FALSE(r.ok()) << "prefix of " << len << " bytes was accepted";
    if (!r.ok()) {
      EXPECT_FALSE(r.error().empty());
    }
  }
}

TEST(ElfLoaderTest, LooksLikeElf) {
  EXPECT_TRUE(looks_like_elf(make_elf()));
  const std::vector<uint8_t> magic = {0x7f, 'E', 'L', 'F'};
  EXPECT_TRUE(looks_like_elf(magic));
  const std::vector<uint8_t> short_magic = {0x7f, 'E', 'L'};
  EXPECT_FALSE(looks_like_elf(short_magic));
  const std::vector<uint8_t> image = {'M', 'Z', 0, 0, 0, 0};
  EXPECT_FALSE(looks_like_elf(image));
  EXPECT_FALSE(looks_like_elf({}));
}

TEST(ElfLoaderTest, NotAnElf) {
  std::vector<uint8_t> f = make_elf();
  f[1] = 'X';
  EXPECT_EQ(error_of(f), "not an ELF file");
  EXPECT_EQ(error_of({}), "not an ELF file");
}

TEST(ElfLoaderTest, TruncatedHeader) {
  auto f = make_elf();
  f.resize(40);
  EXPECT_EQ(error_of(f), "truncated: the ELF header needs 64 bytes, file size 40");
}

TEST(ElfLoaderTest, Elf32IsRejected) {
  auto f = make_elf();
  f[4] = 1;
  EXPECT_EQ(error_of(f), "ELF is 32-bit (ELFCLASS32), not 64-bit");
}

TEST(ElfLoaderTest, InvalidClass) {
  auto f = make_elf();
  f[4] = 7;
  EXPECT_EQ(error_of(f), "ELF has invalid class 7");
}

TEST(ElfLoaderTest, BigEndianIsRejected) {
  auto f = make_elf();
  f[5] = 2;
  EXPECT_EQ(error_of(f), "ELF is big-endian, not little-endian");
}

TEST(ElfLoaderTest, WrongMachineNamesIt) {
  auto f = make_elf();
  put(f, 18, 62, 2);
  EXPECT_EQ(error_of(f), "ELF is for machine 62 (x86-64), not RISC-V");
  put(f, 18, 183, 2);
  EXPECT_EQ(error_of(f), "ELF is for machine 183 (AArch64), not RISC-V");
  put(f, 18, 9999, 2);
  EXPECT_EQ(error_of(f), "ELF is for machine 9999 (unknown), not RISC-V");
}

TEST(ElfLoaderTest, SharedObjectIsRejected) {
  auto f = make_elf();
  put(f, 16, 3, 2);
  EXPECT_EQ(error_of(f),
            "ELF type is 3 (shared object or position-independent executable), not an "
            "executable (ET_EXEC)");
}

TEST(ElfLoaderTest, RelocatableObjectIsRejected) {
  auto f = make_elf();
  put(f, 16, 1, 2);
  EXPECT_NE(error_of(f).find("relocatable object"), std::string::npos);
}

TEST(ElfLoaderTest, NoProgramHeaders) {
  auto f = make_elf();
  put(f, 56, 0, 2);
  EXPECT_EQ(error_of(f), "ELF has no program headers");
}

TEST(ElfLoaderTest, WrongProgramHeaderSize) {
  auto f = make_elf();
  put(f, 54, 32, 2);
  EXPECT_EQ(error_of(f), "ELF program header size is 32, expected 56");
}

TEST(ElfLoaderTest, ProgramHeaderPastEnd) {
  auto f = make_elf();
  put(f, 32, f.size() - 100, 8);  // header 0 fits, header 1 does not
  EXPECT_EQ(error_of(f), "truncated: program header 1 extends past end of file (offset 0x" +
                             ([&] {
                               char b[32];
                               std::snprintf(b, sizeof b, "%zx", f.size() - 100 + 56);
                               return std::string(b);
                             })() +
                             ", file size " + std::to_string(f.size()) + ")");
}

TEST(ElfLoaderTest, ProgramHeaderOffsetNearTwoToSixtyFour) {
  auto f = make_elf();
  put(f, 32, ~uint64_t{0} - 10, 8);
  EXPECT_NE(error_of(f).find("truncated: program header 0"), std::string::npos);
}

TEST(ElfLoaderTest, SegmentDataPastEnd) {
  auto f = make_elf();
  put(f, kPhoff + 56 + 8, f.size() - 4, 8);  // segment 1's 8 bytes run 4 past the end
  EXPECT_NE(error_of(f).find("truncated: segment 1 extends past end of file"), std::string::npos);
}

TEST(ElfLoaderTest, SegmentOffsetPlusSizeOverflows) {
  auto f = make_elf();
  put(f, kPhoff + 8, 0x10, 8);
  put(f, kPhoff + 32, ~uint64_t{0}, 8);  // filesz
  put(f, kPhoff + 40, ~uint64_t{0}, 8);  // memsz
  EXPECT_NE(error_of(f).find("truncated: segment 0"), std::string::npos);
}

TEST(ElfLoaderTest, FileSizeLargerThanMemorySize) {
  auto f = make_elf();
  put(f, kPhoff + 40, 4, 8);
  EXPECT_EQ(error_of(f), "segment 0: file size 0x10 exceeds memory size 0x4");
}

TEST(ElfLoaderTest, SegmentAddressWraps) {
  auto f = make_elf();
  put(f, kPhoff + 56 + 24, ~uint64_t{0} - 8, 8);  // paddr of segment 1, memsz 64
  EXPECT_NE(error_of(f).find("wraps"), std::string::npos);
}

TEST(ElfLoaderTest, SegmentEndingExactlyAtTopIsAccepted) {
  auto f = make_elf();
  put(f, kPhoff + 56 + 24, ~uint64_t{0} - 63, 8);
  EXPECT_TRUE(load_elf(f).ok());
}

TEST(ElfLoaderTest, NoLoadableSegments) {
  auto f = make_elf();
  put(f, kPhoff, 4, 4);       // PT_NOTE
  put(f, kPhoff + 56, 4, 4);  // PT_NOTE
  EXPECT_EQ(error_of(f), "ELF has no loadable segments");
}

TEST(ElfLoaderTest, EmptyLoadSegmentIsSkipped) {
  auto f = make_elf();
  put(f, kPhoff + 56 + 32, 0, 8);
  put(f, kPhoff + 56 + 40, 0, 8);
  auto r = load_elf(f);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->segments.size(), 1u);
}

TEST(ElfLoaderTest, WithoutSectionHeadersThereAreNoSymbols) {
  auto f = make_elf();
  put(f, 40, 0, 8);
  put(f, 60, 0, 2);
  f.resize(kSymOff);
  auto r = load_elf(f);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->tohost.has_value());
  EXPECT_FALSE(r->fromhost.has_value());
}

TEST(ElfLoaderTest, MissingSymbolsAreOptional) {
  auto f = make_elf();
  put(f, kSymOff + 24 * 1, 17, 4);  // tohost renamed to _start
  put(f, kSymOff + 24 * 2, 17, 4);
  auto r = load_elf(f);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_FALSE(r->tohost.has_value());
  EXPECT_FALSE(r->fromhost.has_value());
}

TEST(ElfLoaderTest, SectionHeaderPastEnd) {
  auto f = make_elf();
  put(f, 60, kShnum + 1, 2);
  EXPECT_NE(error_of(f).find("truncated: section header 5 extends past end of file"),
            std::string::npos);
}

TEST(ElfLoaderTest, WrongSectionHeaderSize) {
  auto f = make_elf();
  put(f, 58, 40, 2);
  EXPECT_EQ(error_of(f), "ELF section header size is 40, expected 64");
}

TEST(ElfLoaderTest, SectionDataPastEnd) {
  auto f = make_elf();
  put(f, kShoff + 64 * 3 + 32, 1'000'000, 8);  // .strtab size
  EXPECT_NE(error_of(f).find("truncated: section 3 extends past end of file"),
            std::string::npos);
}

TEST(ElfLoaderTest, NobitsSectionNeedsNoFileData) {
  auto f = make_elf();
  put_shdr(f, 1, 1, 8, 0, 1'000'000, 0, 0);  // .text turned into a huge .bss
  EXPECT_TRUE(load_elf(f).ok());
}

TEST(ElfLoaderTest, SymbolTableLinkOutOfRange) {
  auto f = make_elf();
  put(f, kShoff + 64 * 2 + 40, 9, 4);
  EXPECT_NE(error_of(f).find("links to section 9, which does not exist"), std::string::npos);
}

TEST(ElfLoaderTest, SymbolTableLinkNotStringTable) {
  auto f = make_elf();
  put(f, kShoff + 64 * 2 + 40, 1, 4);
  EXPECT_NE(error_of(f).find("which is not a string table"), std::string::npos);
}

TEST(ElfLoaderTest, SymbolTableWrongEntrySize) {
  auto f = make_elf();
  put(f, kShoff + 64 * 2 + 56, 16, 8);
  EXPECT_NE(error_of(f).find("entry size 16"), std::string::npos);
}

TEST(ElfLoaderTest, SymbolNameOutsideStringTable) {
  auto f = make_elf();
  put(f, kSymOff + 24 * 3, 5000, 4);
  EXPECT_NE(error_of(f).find("symbol 3 of section 2 has a name outside its string table"),
            std::string::npos);
}

TEST(ElfLoaderTest, UnterminatedSymbolName) {
  auto f = make_elf();
  put(f, kShoff + 64 * 3 + 32, kStrSize - 1, 8);  // drop the final NUL of "_start"
  EXPECT_NE(error_of(f).find("unterminated name"), std::string::npos);
}

// A program linked by the real toolchain, when it is installed.
TEST(ElfLoaderTest, LoadsLinkerOutput) {
  if (std::system("command -v riscv64-linux-gnu-gcc >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "riscv64-linux-gnu-gcc not installed";
  }
  char dir[] = "/tmp/ftvm-elf-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir;
  {
    std::ofstream s(d + "/t.S");
    s << ".section .text.init\n.globl _start\n_start:\n  la t0, tohost\n  li t1, 1\n"
         "  sd t1, 0(t0)\n1: j 1b\n"
         ".data\n.align 6\n.globl tohost\ntohost: .dword 0\n"
         ".align 6\n.globl fromhost\nfromhost: .dword 0\n"
         ".bss\nbuf: .space 4096\n";
    std::ofstream l(d + "/t.ld");
    l << "ENTRY(_start)\nSECTIONS {\n . = 0x80000000;\n .text : { *(.text.init) *(.text) }\n"
         " . = ALIGN(0x1000);\n .data : { *(.data) }\n .bss : { *(.bss) }\n}\n";
  }
  const std::string cmd = "riscv64-linux-gnu-gcc -march=rv64gc -mabi=lp64d -nostdlib -static -Wl,--build-id=none "
                          "-T " + d + "/t.ld -o " + d + "/t.elf " + d + "/t.S 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(d + "/t.elf", std::ios::binary);
  const std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  std::system(("rm -rf " + d).c_str());

  auto r = load_elf(f);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->entry, 0x8000'0000u);
  ASSERT_TRUE(r->tohost.has_value());
  ASSERT_TRUE(r->fromhost.has_value());
  EXPECT_EQ(*r->tohost, 0x8000'1000u);
  EXPECT_EQ(*r->fromhost, 0x8000'1040u);
  uint64_t bss_end = 0;
  for (const auto& s : r->segments) bss_end = std::max(bss_end, s.paddr + s.memsz);
  EXPECT_GE(bss_end, 0x8000'1048u + 4096);
  for (size_t len = 0; len < f.size(); ++len) {
    EXPECT_FALSE(load_elf(std::span<const uint8_t>(f.data(), len)).ok()) << len;
  }
}

}  // namespace
}  // namespace ftvm::vm
