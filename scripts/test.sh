#!/usr/bin/env bash
# The test command: set everything up, then run every test: unit tests, ISA
# tests on ftvm and QEMU, differential runs, integration tests; then the
# ISA tests and a boot again under AddressSanitizer + UndefinedBehaviorSanitizer;
# the ft, arbiter and channel unit tests under ThreadSanitizer; the fuzzers.
# Prints how long each stage took, and the total.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -a stage_names=() stage_secs=()
stage_start=$SECONDS
total_start=$SECONDS
# Ends the running stage (named $1) and records its time.
stage_done() {
  stage_names+=("$1")
  stage_secs+=($((SECONDS - stage_start)))
  echo "== $1: $((SECONDS - stage_start)) s"
  stage_start=$SECONDS
}
print_times() {
  local status=$?
  echo "== stage times"
  for i in "${!stage_names[@]}"; do
    printf '   %-6s %5d s\n' "${stage_names[$i]}" "${stage_secs[$i]}"
  done
  printf '   %-6s %5d s%s\n' total $((SECONDS - total_start)) "$( ((status == 0)) || echo " (failed)")"
}
trap print_times EXIT

scripts/setup.sh
stage_done setup

jobs=$(nproc)
echo "== ftvm tests"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 -LE sanitize
stage_done tests

echo "== fault campaign: the checker's unit tests, then 3 seeded schedules (bench/campaign.py)"
python3 bench/linearizability_test.py
python3 bench/campaign.py --schedules 3 --seed 1 --out build/campaign-ci
stage_done campaign

echo "== ftvm tests under ASan+UBSan"
# -O1, the level the sanitizers' documentation suggests, and line tables
# only (-g1: reports keep file:line): the sanitizer build, most of this
# stage, compiles in about half the time it takes at -O2 -g.
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DFTVM_OPT_FLAGS=-O1 -g1")
cmake -S . -B build-asan -G Ninja "${sanitizer_flags[@]}" -DFTVM_SANITIZE=ON >/dev/null
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900 \
    -E '^(qemu\.|RunGuest\.|RunBadInput\.|FtPair\.|sim\.seeds$)'
stage_done asan

echo "== ft, arbiter and channel unit tests, and one FT pair, under ThreadSanitizer"
cmake -S . -B build-tsan -G Ninja "${sanitizer_flags[@]}" -DFTVM_TSAN=ON >/dev/null
ninja -C build-tsan ftvm_channel_tests ftvm_ft_tests ftvm_arbiter_tests ftvm_integration_tests
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j "$jobs" --timeout 900 \
    -R '^(Ft|Arbiter)\.|^FtPair\.KillingThePrimaryUnderLoad'
stage_done tsan

echo "== ftvm fuzz smoke (libFuzzer, every parser of untrusted bytes)"
scripts/fuzz-smoke.sh 15
stage_done fuzz
