#!/usr/bin/env bash
# The main job: set everything up, then boot the guest to an interactive
# shell on this terminal (Ctrl-A then X quits). Extra arguments go to
# `ftvm run`, e.g. `scripts/demo.sh -- uname -a`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/ftvm run "$@"
