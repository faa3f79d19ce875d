#!/usr/bin/env bash
# The guest LAN for `ftvm run --net` and the tests, built from network
# namespaces so that nothing touches the host's own network.
#
#   NAME-host    br0 10.77.0.1/24, a bridge with two ports:
#                  tap0         persistent TAP; ftvm runs here and opens it
#                  veth-client  one end of a veth pair
#   NAME-client  eth0 10.77.0.2/24, the other end: clients run here
#   the guest    10.77.0.15/24 on its eth0, reached through tap0
#
# 10.77.0.0/24 is private; neither namespace has a default route, IPv4
# forwarding is off, there is no NAT, and no link leads to the host's
# namespace, so no packet can leave. IPv6 is off in both namespaces to keep
# the LAN free of router solicitations and multicast reports (every frame
# that reaches the guest is an input to log). docs/networking.md has more.
#
# Usage:
#   scripts/netns.sh up NAME                build the LAN; fails if NAME is taken
#   scripts/netns.sh down NAME              ends processes left in the two
#                                           namespaces, removes everything;
#                                           fine if nothing is there
#   scripts/netns.sh exec-host NAME CMD...  run CMD in NAME-host
#   scripts/netns.sh exec-client NAME CMD... run CMD in NAME-client
#
# Needs root (ip netns).
set -euo pipefail

readonly BRIDGE_ADDR=10.77.0.1
readonly CLIENT_ADDR=10.77.0.2
readonly GUEST_ADDR=10.77.0.15
readonly PREFIX=24
readonly GUEST_MAC=52:54:00:77:00:0f  # vm::kDefaultGuestMac
readonly KILL_DEADLINE_S=5

die() {
  echo "netns.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '/^# Usage:/,/^# Needs root/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_name() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] ||
    die "bad NAME '$1': use 1-32 letters, digits, '-' or '_'"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# Writes a sysctl of namespace $1 if the kernel has it (IPv6 may be absent).
ns_sysctl() {
  local ns=$1 key=$2 value=$3
  ip netns exec "$ns" sh -c "f=/proc/sys/${key//.//}; [ ! -e \$f ] || echo $value > \$f"
}

# Ends the processes still in namespace $1: TERM, then KILL after the
# deadline.
end_processes() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  local deadline=$((SECONDS + KILL_DEADLINE_S))
  while [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ] && ((SECONDS < deadline)); do
    sleep 0.1
  done
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}

do_down() {
  local name=$1 ns
  for ns in "$name-client" "$name-host"; do
    ns_exists "$ns" || continue
    end_processes "$ns"
    # Deleting the namespace deletes its interfaces: br0, tap0 and the veth
    # pair (both ends go together).
    ip netns del "$ns"
  done
}

# EXIT trap of `up`: removes a half-built LAN if the script is failing.
undo_failed_up() {
  local rc=$?
  [ "$rc" -ne 0 ] || return 0
  echo "netns.sh: up $1 failed; removing what was made" >&2
  do_down "$1" || true
}

do_up() {
  local name=$1
  local h="$name-host" c="$name-client"
  ns_exists "$h" && die "$h already exists; run: $0 down $name"
  ns_exists "$c" && die "$c already exists; run: $0 down $name"

  # Whatever happens from here on, a failed `up` leaves nothing behind.
  trap 'undo_failed_up "$name"' EXIT

  ip netns add "$h"
  ip netns add "$c"
  local ns
  for ns in "$h" "$c"; do
    ns_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 1
    ns_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 1
    ns_sysctl "$ns" net.ipv4.ip_forward 0
    ip -n "$ns" link set lo up
  done

  # The bridge forwards at once (no STP, no forwarding delay).
  ip -n "$h" link add br0 type bridge stp_state 0 forward_delay 0
  ip -n "$h" tuntap add dev tap0 mode tap
  ip -n "$h" link set tap0 master br0
  # Created inside NAME-host with its peer inside NAME-client: neither end
  # ever exists in the host's namespace.
  ip -n "$h" link add veth-client type veth peer name eth0 netns "$c"
  ip -n "$h" link set veth-client master br0
  ip -n "$h" addr add "$BRIDGE_ADDR/$PREFIX" dev br0
  ip -n "$h" link set br0 up
  ip -n "$h" link set tap0 up
  ip -n "$h" link set veth-client up
  ip -n "$c" addr add "$CLIENT_ADDR/$PREFIX" dev eth0
  ip -n "$c" link set eth0 up

  trap - EXIT
  cat <<EOF
ftvm LAN '$name' is up (10.77.0.0/$PREFIX, nothing routes out):
  $h   br0 $BRIDGE_ADDR/$PREFIX; ports tap0 (for ftvm) and veth-client
  $c  eth0 $CLIENT_ADDR/$PREFIX (clients run here)
  guest      $GUEST_ADDR/$PREFIX on the guest's eth0 (default MAC $GUEST_MAC)
Run a guest on it (ftvm enters $h and opens tap0 itself):
  build/ftvm run --net --lan $name ...
Reach the guest from a client:
  $0 exec-client $name redis-cli -h $GUEST_ADDR
Remove it all:
  $0 down $name
EOF
}

do_exec() {
  local ns=$1
  shift
  ns_exists "$ns" || die "$ns does not exist; run: $0 up ${ns%-*}"
  [ $# -gt 0 ] || usage
  exec ip netns exec "$ns" "$@"
}

[ $# -ge 2 ] || usage
cmd=$1
name=$2
shift 2
check_name "$name"
[ "$(id -u)" -eq 0 ] || die "needs root (ip netns)"

case "$cmd" in
  up) [ $# -eq 0 ] || usage; do_up "$name" ;;
  down) [ $# -eq 0 ] || usage; do_down "$name" ;;
  exec-host) do_exec "$name-host" "$@" ;;
  exec-client) do_exec "$name-client" "$@" ;;
  *) usage ;;
esac
