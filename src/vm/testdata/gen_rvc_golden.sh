#!/bin/bash
# Regenerates rvc_golden.bin: for each of the 49152 16-bit values whose low
# two bits are not 0b11 (in increasing order), the 32-bit instruction that
# expand_compressed() gives for it, or 0 for an illegal or reserved encoding,
# as little-endian uint32s.
#
# Before writing the file it checks every expansion against GNU objdump:
# the disassembly of each compressed encoding must denote the same
# instruction (mnemonic without "c.", same operands, same branch offset) as
# the disassembly of its expansion, and an encoding expands to 0 exactly when
# objdump does not decode it -- except for the reserved encodings listed in
# KNOWN_RESERVED below, which objdump decodes anyway.
#
# Needs g++, riscv64-linux-gnu-objdump and python3.
# Usage: src/vm/testdata/gen_rvc_golden.sh
set -euo pipefail
cd "$(dirname "$0")"
src=$(cd ../.. && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/dump.cc" <<'CC'
#include <cstdio>
#include "vm/rvc.h"
int main() {
  FILE* compressed = std::fopen("compressed.bin", "wb");
  FILE* expanded = std::fopen("expanded.bin", "wb");
  FILE* golden = std::fopen("golden.bin", "wb");
  for (unsigned v = 0; v < 65536; ++v) {
    if ((v & 3) == 3) continue;
    const unsigned char c[2] = {static_cast<unsigned char>(v), static_cast<unsigned char>(v >> 8)};
    std::fwrite(c, 1, 2, compressed);
    const uint32_t x = ftvm::vm::expand_compressed(static_cast<uint16_t>(v));
    const unsigned char e[4] = {static_cast<unsigned char>(x), static_cast<unsigned char>(x >> 8),
                                static_cast<unsigned char>(x >> 16), static_cast<unsigned char>(x >> 24)};
    if (x) std::fwrite(e, 1, 4, expanded);
    std::fwrite(e, 1, 4, golden);
  }
  return std::fclose(compressed) | std::fclose(expanded) | std::fclose(golden);
}
CC
g++ -std=c++20 -O2 -I"$src" -o "$tmp/dump" "$tmp/dump.cc" "$src/vm/rvc.cc"
(cd "$tmp" && ./dump)
objdump="riscv64-linux-gnu-objdump -D -b binary -m riscv:rv64 -M no-aliases"
$objdump "$tmp/compressed.bin" > "$tmp/compressed.txt"
$objdump "$tmp/expanded.bin" > "$tmp/expanded.txt"
riscv64-linux-gnu-objdump --version | head -1

python3 - "$tmp" <<'PY'
import struct, sys

tmp = sys.argv[1]

# Reserved in RV64GC, yet decoded by objdump.
KNOWN_RESERVED = {
    ("c.addi16sp", "sp,0"),  # nzimm = 0 is reserved (spec: C.ADDI16SP)
}

def parse(path):
    out = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 3 or not parts[0].strip().endswith(":"):
            continue
        addr = int(parts[0].strip()[:-1], 16)
        mnemonic = parts[2].strip()
        operands = parts[3].split("#")[0].strip() if len(parts) > 3 else ""
        out[addr] = (mnemonic, operands)
    return out

def translate(mn, ops, addr):
    """The 32-bit form objdump should print for compressed (mn, ops) at addr."""
    o = ops.split(",") if ops else []
    name = mn[2:]
    same = {"fld", "lw", "ld", "fsd", "sw", "sd", "lui"}
    sp_mem = {"fldsp": "fld", "lwsp": "lw", "ldsp": "ld", "fsdsp": "fsd", "swsp": "sw", "sdsp": "sd"}
    two_to_three = {"addi", "addiw", "slli", "srli", "srai", "andi", "sub", "xor", "or", "and",
                    "subw", "addw", "add"}
    if name in same:
        return name, ops
    if name in sp_mem:
        return sp_mem[name], ops
    if name in two_to_three:
        return name, f"{o[0]},{o[0]},{o[1]}"
    if name in ("slli64", "srli64", "srai64"):
        return name[:-2], f"{o[0]},{o[0]},0x0"
    if name == "nop":
        return "addi", "zero,zero,0"
    if name == "addi4spn":
        return "addi", ops
    if name == "addi16sp":
        return "addi", f"sp,sp,{o[1]}"
    if name == "li":
        return "addi", f"{o[0]},zero,{o[1]}"
    if name == "mv":
        return "add", f"{o[0]},zero,{o[1]}"
    if name == "jr":
        return "jalr", f"zero,0({o[0]})"
    if name == "jalr":
        return "jalr", f"ra,0({o[0]})"
    if name == "ebreak":
        return "ebreak", ""
    if name == "j":
        return "jal", f"zero,{int(o[0], 16) - addr}"
    if name == "beqz":
        return "beq", f"{o[0]},zero,{int(o[1], 16) - addr}"
    if name == "bnez":
        return "bne", f"{o[0]},zero,{int(o[1], 16) - addr}"
    return None

def relative(mn, ops, addr):
    """Branch and jump targets of an expanded instruction, as offsets."""
    o = ops.split(",")
    if mn == "jal":
        return mn, f"{o[0]},{int(o[1], 16) - addr}"
    if mn in ("beq", "bne"):
        return mn, f"{o[0]},{o[1]},{int(o[2], 16) - addr}"
    return mn, ops

compressed = parse(f"{tmp}/compressed.txt")
expanded = parse(f"{tmp}/expanded.txt")
golden = open(f"{tmp}/golden.bin", "rb").read()
values = [v for v in range(65536) if v & 3 != 3]
assert len(golden) == 4 * len(values) == 4 * 49152

errors = []
legal = 0
known = 0
for i, v in enumerate(values):
    (x,) = struct.unpack_from("<I", golden, 4 * i)
    mn, ops = compressed[2 * i]
    illegal_in_objdump = mn in (".2byte", "c.unimp")
    if x == 0:
        if illegal_in_objdump:
            continue
        if (mn, ops) in KNOWN_RESERVED:
            known += 1
            continue
        errors.append(f"{v:04x}: objdump decodes '{mn} {ops}', expansion is 0")
        continue
    if illegal_in_objdump:
        errors.append(f"{v:04x}: objdump says '{mn} {ops}', expansion is {x:08x}")
        legal += 1
        continue
    want = translate(mn, ops, 2 * i)
    got = relative(*expanded[4 * legal], 4 * legal)
    legal += 1
    if want != got:
        errors.append(f"{v:04x}: '{mn} {ops}' should be {want}, expansion {x:08x} is {got}")

if errors:
    print("\n".join(errors[:40]))
    print(f"{len(errors)} mismatches; rvc_golden.bin not written")
    sys.exit(1)
open("rvc_golden.bin", "wb").write(golden)
print(f"rvc_golden.bin: {len(values)} encodings, {legal} legal, all match objdump "
      f"({known} reserved encodings that objdump decodes)")
PY
