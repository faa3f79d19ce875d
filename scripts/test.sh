#!/usr/bin/env bash
# The test command: set everything up, then run every test: unit tests, ISA
# tests on ftvm and QEMU, differential runs, integration tests; then the
# ISA tests and a boot again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
echo "== ftvm tests"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 600 -LE sanitize

echo "== fault campaign: the checker's unit tests, then 3 seeded schedules (bench/campaign.py)"
python3 bench/linearizability_test.py
python3 bench/campaign.py --schedules 3 --seed 1 --out build/campaign-ci

echo "== ftvm tests under ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFTVM_SANITIZE=ON >/dev/null
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 900 \
    -E '^(qemu\.|RunGuest\.|RunBadInput\.|FtPair\.)'

echo "== ftvm fuzz smoke (libFuzzer, every parser of untrusted bytes)"
scripts/fuzz-smoke.sh 15
