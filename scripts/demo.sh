#!/usr/bin/env bash
# The main job: set everything up, start a fault-tolerant pair running Redis
# (`ftvm up`), drive it with redis-benchmark, kill the primary in the middle
# of a write load, and show the backup taking over with every acknowledged
# write intact. Everything runs in network namespaces this script makes and
# removes again.
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

step "a write load on 4 connections for 10 s; the primary is killed (SIGKILL) after 4 s"
out=$(mktemp)
scripts/ftnet.sh exec "$pair" client build/ftvm-redis-load --connections 4 --duration 10 \
  --out "$out" >/dev/null &
load=$!
# Wait until the load is flowing through the primary, then kill it.
for _ in $(seq 1 100); do
  if "$ftvm" status --name "$pair" --json | grep -q '"frames": [1-9][0-9][0-9][0-9]'; then break; fi
  sleep 0.1
done
sleep 4
"$ftvm" kill primary --name "$pair"
status=0
wait "$load" || status=$?

step "after the failover"
"$ftvm" status --name "$pair"
python3 - "$out" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["verify"]
print(f"write load: {r['acked']} SETs acknowledged on {r['connections']} connections, "
      f"{r['connections_alive']} still open, {r['reconnects']} reconnects, {len(r['errors'])} errors")
print(f"after the failover every acknowledged key was read back: {v['ok']} ok, "
      f"{v['missing']} missing, {v['wrong']} wrong")
print(f"longest pause between replies (the failover, as a client saw it): {r['max_stall_ms']:.0f} ms; "
      f"latency p50 {r['latency_us']['p50']} us, p99 {r['latency_us']['p99']} us")
EOF
rm -f "$out"

step "redis-benchmark again, now served by the new primary on host b (running solo)"
scripts/ftnet.sh exec "$pair" client redis-benchmark -h 10.77.0.15 -c 50 -n 20000 -t set,get -q
echo
echo "The logs of both nodes and the arbiter are in /run/ftvm/$pair/ (kept after the pair stops)."
exit "$status"
