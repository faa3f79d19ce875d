#!/usr/bin/env bash
# Runs one differential program on QEMU and on ftvm (each of its engines:
# FTVM_ENGINES, default "interp jit") and compares them: the UART output
# byte for byte and the exit status.
#
#   isa/diff_qemu.sh PROG.elf FTVM_BINARY
#
# QEMU runs as the `virt` machine with a plain RV64GC hart (qemu_cpu.txt turns
# off the extensions ftvm does not implement) and enters the ELF in M-mode.
# Every run is bounded by `timeout` (ISA_DIFF_TIMEOUT seconds, default 60).
# Exit status: 0 when both agree, 1 when they differ, 2 on a usage error.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 PROG.elf FTVM_BINARY" >&2
  exit 2
fi
elf=$1
ftvm=$2
limit=${ISA_DIFF_TIMEOUT:-60}
here=$(cd "$(dirname "$0")" && pwd)
cpu=$(cat "$here/qemu_cpu.txt")
qemu=${QEMU:-qemu-system-riscv64}

for f in "$elf" "$ftvm"; do
  if [ ! -e "$f" ]; then
    echo "diff_qemu: $f does not exist" >&2
    exit 2
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

timeout "$limit" "$qemu" -machine virt -cpu "$cpu" -bios none -nographic -m 256M \
  -kernel "$elf" </dev/null >"$tmp/qemu.out" 2>"$tmp/qemu.err"
qemu_status=$?
name=$(basename "$elf")
if [ "$qemu_status" -eq 124 ]; then
  echo "diff_qemu: $name: QEMU timed out after ${limit}s" >&2
  exit 1
fi

engines=${FTVM_ENGINES:-interp jit}
[ "$(uname -m)" = x86_64 ] || engines=interp  # the translator needs an x86-64 host
ok=1
for engine in $engines; do
  # --entropy none: no rng-seed and no virtio-rng, so nothing from the host
  # reaches the program and the comparison is the same on every run.
  timeout "$limit" "$ftvm" run --engine "$engine" --entropy none --elf "$elf" </dev/null \
    >"$tmp/ftvm.out" 2>"$tmp/ftvm.err"
  ftvm_status=$?
  this=1
  if ! cmp -s "$tmp/qemu.out" "$tmp/ftvm.out"; then
    this=0
    qemu_lines=$(wc -l <"$tmp/qemu.out")
    ftvm_lines=$(wc -l <"$tmp/ftvm.out")
    # First differing line (1-based), or the first line one output lacks.
    line=$(cmp "$tmp/qemu.out" "$tmp/ftvm.out" 2>/dev/null | sed -n 's/.*line \([0-9]*\).*/\1/p')
    if [ -z "$line" ]; then
      line=$((qemu_lines < ftvm_lines ? qemu_lines + 1 : ftvm_lines + 1))
    fi
    echo "diff_qemu: $name: output differs at line $line (QEMU ${qemu_lines} lines, ftvm --engine $engine ${ftvm_lines} lines)"
    echo "  qemu: $(sed -n "${line}p" "$tmp/qemu.out")"
    echo "  ftvm: $(sed -n "${line}p" "$tmp/ftvm.out")"
  fi
  if [ "$qemu_status" -ne "$ftvm_status" ]; then
    this=0
    echo "diff_qemu: $name: exit status differs: QEMU $qemu_status, ftvm --engine $engine $ftvm_status"
  fi
  if [ "$this" -eq 0 ]; then
    ok=0
    if [ -s "$tmp/ftvm.err" ]; then
      echo "  ftvm --engine $engine stderr (last lines):"
      tail -n 5 "$tmp/ftvm.err" | sed 's/^/    /'
    fi
  fi
done
[ "$ok" -eq 1 ] || exit 1
echo "diff_qemu: $name: identical on $engines ($(wc -l <"$tmp/qemu.out") lines, exit status $qemu_status)"
exit 0
