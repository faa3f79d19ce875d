#!/usr/bin/env bash
# The main job: set everything up, start a fault-tolerant pair running Redis
# (`ftvm up`), drive it with redis-benchmark, kill the primary in the middle
# of a write load, show the backup taking over, a new backup joining it by
# state transfer, and the same again on the other host, with every
# acknowledged write intact. Everything runs in network namespaces this
# script makes and removes again.
#
#   scripts/demo.sh            the failover demo
#   scripts/demo.sh --shell    instead: boot the guest to an interactive shell
#                              (extra arguments go to `ftvm run`)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if [ "${1:-}" = "--shell" ]; then
  shift
  exec build/ftvm run "$@"
fi

pair=demo
ftvm=build/ftvm
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { "$ftvm" down --name "$pair" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

step "ftvm up: arbiter, primary (host a), backup (host b), LAN and client namespaces; Redis in the guest"
"$ftvm" up --name "$pair" --fresh
"$ftvm" status --name "$pair"

step "redis-benchmark from the client namespace, through the primary (every reply waits for the backup's acknowledgement)"
scripts/ftnet.sh exec "$pair" client redis-benchmark -h 10.77.0.15 -c 50 -n 20000 -t set,get -q
"$ftvm" status --name "$pair"

step "a write load on 4 connections for 24 s; the primary is killed (SIGKILL) twice"
out=$(mktemp)
scripts/ftnet.sh exec "$pair" client build/ftvm-redis-load --connections 4 --duration 24 \
  --out "$out" >/dev/null &
load=$!
# Waits (up to 60 s) until `ftvm status` says the pair is protected again:
# a primary, a backup that joined it, and a state hash matched since.
wait_protected() {
  for _ in $(seq 1 600); do
    if "$ftvm" status --name "$pair" --json | grep -q '"paired": true'; then return 0; fi
    sleep 0.1
  done
  echo "demo: the pair was not protected again within 60 s" >&2
  return 1
}
# Wait until the load is flowing through the primary, then kill it.
for _ in $(seq 1 100); do
  if "$ftvm" status --name "$pair" --json | grep -q '"frames": [1-9][0-9][0-9][0-9]'; then break; fi
  sleep 0.1
done
sleep 4
"$ftvm" kill primary --name "$pair"
wait_protected
step "host b took over; the supervisor started a new backup on host a, which joined by state transfer"
"$ftvm" status --name "$pair"
sleep 2
"$ftvm" kill primary --name "$pair"
wait_protected
step "host a took over in turn; host b is its new backup"
"$ftvm" status --name "$pair"
status=0
wait "$load" || status=$?

step "after two failovers"
"$ftvm" status --name "$pair"
python3 - "$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["verify"]
print(f"write load: {r['acked']} SETs acknowledged on {r['connections']} connections, "
      f"{r['connections_alive']} still open, {r['reconnects']} reconnects, {len(r['errors'])} errors")
print(f"after the failovers every acknowledged key was read back: {v['ok']} ok, "
      f"{v['missing']} missing, {v['wrong']} wrong")
print(f"longest pause between replies (a failover, as a client saw it): {r['max_stall_ms']:.0f} ms; "
      f"latency p50 {r['latency_us']['p50']} us, p99 {r['latency_us']['p99']} us")
EOF
rm -f "$out"

step "redis-benchmark again, served by the primary on host a and protected by host b"
scripts/ftnet.sh exec "$pair" client redis-benchmark -h 10.77.0.15 -c 50 -n 20000 -t set,get -q
echo
echo "The logs of both nodes and the arbiter are in /run/ftvm/$pair/ (kept after the pair stops)."
exit "$status"
