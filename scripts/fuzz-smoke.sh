#!/usr/bin/env bash
# Builds every libFuzzer target (clang, -DFTVM_FUZZ=ON) in BUILD, which is
# build-fuzz/ unless FTVM_FUZZ_BUILD names another directory, and runs each
# for a bounded time, starting from a seed corpus of valid inputs that its
# *_seeds program writes. Fails on the first crash, leak, sanitizer
# report or failed check; the input that caused it is kept in
# BUILD/artifacts/ and the fuzzer's output in BUILD/NAME.log.
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
build=${FTVM_FUZZ_BUILD:-build-fuzz}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DFTVM_FUZZ=ON >/dev/null
ninja -C "$build" fuzz

mkdir -p "$build/artifacts"
shopt -s nullglob
targets=("$build"/*_fuzz)
if ((${#targets[@]} == 0)); then
  echo "fuzz-smoke: no fuzz targets in $build/" >&2
  exit 1
fi
for fuzzer in "${targets[@]}"; do
  name=$(basename "$fuzzer")
  corpus=$build/corpus/$name
  mkdir -p "$corpus"
  if [[ -x ${fuzzer}_seeds ]]; then
    "${fuzzer}_seeds" "$corpus"
  fi
  echo "== $name: ${seconds}s from $(ls "$corpus" | wc -l) corpus inputs"
  status=0
  "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" "$corpus" >"$build/$name.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::|Done )' "$build/$name.log" || true
  if ((status != 0)); then
    tail -n 40 "$build/$name.log" >&2
    echo "fuzz-smoke: $name failed (exit $status); input in $build/artifacts/, log in $build/$name.log" >&2
    exit "$status"
  fi
done
echo "fuzz-smoke: all targets ran clean"
