#!/bin/bash
# Regenerates fpu_golden.bin, the FPU results recorded from QEMU that
# fpu_test.cc compares ftvm with. Builds fpu_golden_gen.c as a bare-metal
# RISC-V program, runs it on qemu-system-riscv64's virt machine and packs its
# UART output in the format described in fpu_cases.h.
#
# Needs riscv64-linux-gnu-gcc, qemu-system-riscv64 and python3.
# Usage: src/vm/testdata/gen_fpu_golden.sh
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# QEMU's virt machine without firmware starts at the beginning of RAM.
cat > "$tmp/link.ld" <<'LD'
ENTRY(_start)
SECTIONS {
  . = 0x80000000;
  .text : { *(.text.init) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.* .srodata .srodata.* .sdata .sdata.* .data .data.*) }
  .bss : { *(.sbss .sbss.* .bss .bss.* COMMON) }
}
LD
riscv64-linux-gnu-gcc -O2 -std=c11 -Wall -Wextra -ffreestanding -nostdlib -nostartfiles -static \
  -fno-pic -march=rv64gc -mabi=lp64d -mcmodel=medany -T "$tmp/link.ld" -Wl,--build-id=none \
  -Wl,--no-warn-rwx-segments -o "$tmp/fpu_golden_gen.elf" fpu_golden_gen.c

timeout 120 qemu-system-riscv64 -machine virt -bios none -nographic -m 256M \
  -kernel "$tmp/fpu_golden_gen.elf" > "$tmp/out.txt"
qemu-system-riscv64 --version | head -1

python3 - "$tmp/out.txt" fpu_golden.bin <<'PY'
import struct, sys
lines = open(sys.argv[1], encoding="ascii", errors="replace").read().split("\n")
lines = [l.strip("\r") for l in lines]
out = bytearray()
blocks = 0
i = 0
while not lines[i].startswith("B "):
    i += 1
while lines[i] != "END":
    _, op, rm, n = lines[i].split()
    op, rm, n = int(op), int(rm), int(n)
    out += struct.pack("<BBHI", op, rm, 0, n)
    for line in lines[i + 1 : i + 1 + n]:
        value, flags = line.split()
        out += int(value, 16).to_bytes(len(value) // 2, "little") + bytes([int(flags, 16)])
    i += 1 + n
    blocks += 1
with open(sys.argv[2], "wb") as f:
    f.write(b"FTVMFPU1" + struct.pack("<I", blocks) + out)
print(f"{sys.argv[2]}: {blocks} blocks, {len(out) + 12} bytes")
PY
