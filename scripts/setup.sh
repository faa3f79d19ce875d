#!/usr/bin/env bash
# Sets up everything ftvm needs on a Debian 12 machine, idempotently:
# Debian packages, the build (build/ftvm), and the guest image (cached by
# its recipe's hash under ${FTVM_CACHE:-/var/cache/ftvm}).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ftvm setup: Debian packages"
scripts/install-deps.sh

echo "== ftvm setup: building ftvm (build/ftvm)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build

echo "== ftvm setup: guest image"
guest/build.sh
