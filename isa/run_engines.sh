#!/usr/bin/env bash
# Runs one bare-metal test program on each of ftvm's engines (the
# interpreter and the translator): every run must exit with WANT, and the
# machine state hashes at exit must be identical.
#
#   isa/run_engines.sh FTVM_BINARY PROG.elf WANT [ftvm run options...]
#
# Exit status: 0 when every engine passes and all agree, 1 otherwise, 2 on a
# usage error.
set -u

if [ $# -lt 3 ]; then
  echo "usage: $0 FTVM_BINARY PROG.elf WANT [ftvm run options...]" >&2
  exit 2
fi
ftvm=$1 elf=$2 want=$3
shift 3
engines=${FTVM_ENGINES:-interp jit}
[ "$(uname -m)" = x86_64 ] || engines=interp  # the translator needs an x86-64 host

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
first_hash=
status=0
for e in $engines; do
  "$ftvm" run --engine "$e" --entropy none --state-hash --elf "$elf" "$@" </dev/null \
    >"$tmp/$e.out" 2>"$tmp/$e.err"
  s=$?
  cat "$tmp/$e.out"
  hash=$(sed -n 's/^ftvm: state_hash=//p' "$tmp/$e.err")
  if [ "$s" -ne "$want" ]; then
    echo "run_engines: --engine $e exited $s, expected $want; its stderr:"
    cat "$tmp/$e.err"
    status=1
  fi
  if [ -z "$hash" ]; then
    echo "run_engines: --engine $e printed no state hash"
    status=1
  elif [ -z "$first_hash" ]; then
    first_hash=$hash first_engine=$e
  elif [ "$hash" != "$first_hash" ]; then
    echo "run_engines: state hash at exit differs: $first_engine $first_hash, $e $hash"
    status=1
  fi
done
[ $status -eq 0 ] && echo "run_engines: $engines agree (state_hash=$first_hash)"
exit $status
