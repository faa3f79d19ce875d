#!/usr/bin/env bash
# The network of an FT pair (primary, backup, arbiter, clients), built from
# network namespaces so that nothing touches the host's own network.
#
#   NAME-lan     br0 (no address): the LAN switch
#   NAME-client  eth0 10.77.0.2/24 on br0: clients run here
#   NAME-pri     the primary's host:
#                  brlan (no address), ports tap0 (persistent TAP, the
#                    guest's NIC opens it) and lan0 (veth to br0)
#                  log0  10.78.0.1/30, the logging link to NAME-bak
#                  mgmt0 10.79.0.2/24 on brm, the arbiter network
#   NAME-bak     the backup's host: the same, with log0 10.78.0.2/30 and
#                  mgmt0 10.79.0.3/24
#   NAME-arb     brm 10.79.0.1/24: the arbiter runs here
#   the guest    10.77.0.15/24 on its eth0, behind the tap0 of whichever
#                host runs it live; no host interface has that address
#
# All addresses are private, no namespace has a default route, IPv4
# forwarding is off, there is no NAT and no link leads to the host's
# namespace, so no packet can leave. IPv6 is off in every namespace, and the
# bridges run neither STP nor multicast snooping, so the LAN carries only
# what the guest and the clients send (every frame that reaches the guest
# is an input to log). docs/networking.md has a picture.
#
# Usage:
#   scripts/ftnet.sh up NAME              build it; on an existing or half-made
#                                         topology, repairs what is missing or
#                                         wrong and keeps the rest
#   scripts/ftnet.sh down NAME            ends processes left in its
#                                         namespaces, removes everything;
#                                         fine if nothing is there
#   scripts/ftnet.sh exec NAME ROLE CMD...   run CMD in NAME-ROLE (ROLE: lan,
#                                         client, pri, bak or arb); CMD
#                                         keeps this process's PID
#   scripts/ftnet.sh cut-log NAME         take log0 down on both ends
#   scripts/ftnet.sh heal-log NAME        bring log0 up again on both ends
#   scripts/ftnet.sh cut-arb NAME ROLE    take ROLE's (pri or bak) link to
#                                         the arbiter network down, both ends
#   scripts/ftnet.sh heal-arb NAME ROLE   bring it up again
#   scripts/ftnet.sh show NAME            addresses, links, bridge ports and
#                                         learned MACs
#
# NAME: 1-8 letters, digits, '-' or '_'. Needs root (ip netns).
set -euo pipefail

readonly CLIENT_ADDR=10.77.0.2/24
readonly GUEST_ADDR=10.77.0.15/24
readonly LOG_ADDR_PRI=10.78.0.1/30
readonly LOG_ADDR_BAK=10.78.0.2/30
readonly ARB_ADDR=10.79.0.1/24
readonly MGMT_ADDR_PRI=10.79.0.2/24
readonly MGMT_ADDR_BAK=10.79.0.3/24
readonly GUEST_MAC=52:54:00:77:00:0f  # vm::kDefaultGuestMac
readonly ROLES="lan client pri bak arb"
readonly KILL_DEADLINE_S=5
readonly FORWARDING_DEADLINE_S=5

die() {
  echo "ftnet.sh: $*" >&2
  exit 1
}

usage() {
  [ $# -eq 0 ] || echo "ftnet.sh: $*" >&2
  sed -n '/^# Usage:/,/^# NAME:/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

say() { echo "ftnet.sh: $*" >&2; }

check_name() {
  [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,7}$ ]] ||
    usage "bad NAME '$1': use 1-8 letters, digits, '-' or '_'"
}

check_host_role() {
  [[ "$1" == pri || "$1" == bak ]] || usage "bad ROLE '$1': use pri or bak"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

need_ns() {
  ns_exists "$1" || die "$1 does not exist; run: $0 up ${1%-*}"
}

# Writes a sysctl of namespace $1 if the kernel has it (IPv6 may be absent).
ns_sysctl() {
  local ns=$1 key=$2 value=$3
  ip netns exec "$ns" sh -c "f=/proc/sys/${key//.//}; [ ! -e \$f ] || echo $value > \$f"
}

has_link() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

# Prints the kind of link $2 in namespace $1: bridge, veth, tap or other.
link_kind() {
  local details
  details=$(ip -n "$1" -d -o link show dev "$2" 2>/dev/null) || return 0
  case "$details" in
    *'\    bridge '*) echo bridge ;;
    *'\    veth'*) echo veth ;;
    *'tun type tap'*) echo tap ;;
    *) echo other ;;
  esac
}

sys_net() { ip netns exec "$1" cat "/sys/class/net/$2/$3" 2>/dev/null; }

# Ends the processes still in namespace $1: TERM, then KILL after the
# deadline.
end_processes() {
  local ns=$1 pids
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  say "ending processes in $ns: ${pids//$'\n'/ }"
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
  local name=$1 role
  for role in client pri bak arb lan; do
    ns_exists "$name-$role" || continue
    end_processes "$name-$role"
    # Deleting a namespace deletes its interfaces; a veth goes with its peer.
    ip netns del "$name-$role"
    say "removed $name-$role"
  done
}

# --- up: every step makes what is missing and leaves what is right -------

ensure_ns() {
  local ns=$1
  if ! ns_exists "$ns"; then
    ip netns add "$ns"
    say "made namespace $ns"
  fi
  ns_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 1
  ns_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 1
  ns_sysctl "$ns" net.ipv4.ip_forward 0
  ip -n "$ns" link set lo up
}

# A bridge without STP, forwarding delay or multicast snooping: its ports
# forward as soon as they have a carrier, and it floods multicast like a
# plain switch instead of querying for group members.
ensure_bridge() {
  local ns=$1 br=$2
  if has_link "$ns" "$br" && [ "$(link_kind "$ns" "$br")" != bridge ]; then
    ip -n "$ns" link del "$br"
  fi
  if ! has_link "$ns" "$br"; then
    ip -n "$ns" link add "$br" type bridge
    say "made bridge $br in $ns"
  fi
  ip -n "$ns" link set "$br" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
}

ensure_tap() {
  local ns=$1 tap=$2
  if has_link "$ns" "$tap" && [ "$(link_kind "$ns" "$tap")" != tap ]; then
    ip -n "$ns" link del "$tap"
  fi
  if ! has_link "$ns" "$tap"; then
    # Persistent, owned by root, no packet information header: what
    # hostio::Tap::open expects.
    ip -n "$ns" tuntap add dev "$tap" mode tap
    say "made TAP $tap in $ns"
  fi
}

# A veth pair with end $2 in namespace $1 and end $4 in namespace $3. The
# pair is created inside $1 with its peer created directly in $3, so no end
# ever exists in the host's namespace. An end without its right peer is
# removed and the pair made again.
ensure_veth() {
  local ns_a=$1 a=$2 ns_b=$3 b=$4
  if has_link "$ns_a" "$a" && has_link "$ns_b" "$b" &&
    [ "$(link_kind "$ns_a" "$a")" = veth ] && [ "$(link_kind "$ns_b" "$b")" = veth ] &&
    [ "$(sys_net "$ns_a" "$a" iflink)" = "$(sys_net "$ns_b" "$b" ifindex)" ] &&
    [ "$(sys_net "$ns_b" "$b" iflink)" = "$(sys_net "$ns_a" "$a" ifindex)" ]; then
    return 0
  fi
  ! has_link "$ns_a" "$a" || ip -n "$ns_a" link del "$a"
  ! has_link "$ns_b" "$b" || ip -n "$ns_b" link del "$b"
  ip -n "$ns_a" link add "$a" type veth peer name "$b" netns "$ns_b"
  say "made veth $ns_a/$a <-> $ns_b/$b"
}

set_master() { ip -n "$1" link set dev "$2" master "$3"; }

# Interface $2 of namespace $1 has address $3 (and keeps any others, so a
# repair does not disturb a running process).
set_addr() { ip -n "$1" addr replace "$3" dev "$2"; }

# Interface $2 of namespace $1 has no IPv4 address: the bridges stay silent
# on the LAN (no ARP, no IGMP of their own).
no_addr() { ip -n "$1" -4 addr flush dev "$2"; }

links_up() {
  local ns=$1 dev
  shift
  for dev in "$@"; do ip -n "$ns" link set dev "$dev" up; done
}

# Waits until port $2 of a bridge in namespace $1 forwards. A port whose
# link has no carrier (tap0 while no process holds it) stays disabled; it
# forwards as soon as the carrier comes, since no bridge has a delay.
wait_forwarding() {
  local ns=$1 port=$2
  local deadline=$((SECONDS + FORWARDING_DEADLINE_S))
  until bridge -n "$ns" link show dev "$port" 2>/dev/null | grep -q 'state forwarding'; do
    ((SECONDS < deadline)) || die "port $port in $ns is not forwarding after ${FORWARDING_DEADLINE_S} s"
    sleep 0.05
  done
}

# EXIT trap of `up`: removes a topology that this `up` began from nothing
# and could not finish. One that existed before is left as it is, since
# processes may be running in it.
undo_failed_up() {
  local rc=$? name=$1 fresh=$2
  [ "$rc" -ne 0 ] || return 0
  if [ "$fresh" = yes ]; then
    say "up $name failed; removing what was made"
    do_down "$name" || true
  else
    say "up $name failed; the topology is left as it is (run: $0 down $name)"
  fi
}

do_up() {
  local name=$1 role fresh=yes
  for role in $ROLES; do
    ! ns_exists "$name-$role" || fresh=no
  done
  [ "$fresh" = yes ] || say "$name exists (in part or whole); checking and repairing it"
  trap 'undo_failed_up "$name" "$fresh"' EXIT

  local lan="$name-lan" client="$name-client" pri="$name-pri" bak="$name-bak" arb="$name-arb"
  for role in $ROLES; do ensure_ns "$name-$role"; done

  # The LAN switch and the clients.
  ensure_bridge "$lan" br0
  no_addr "$lan" br0
  ensure_veth "$lan" veth-client "$client" eth0
  set_master "$lan" veth-client br0
  set_addr "$client" eth0 "$CLIENT_ADDR"
  links_up "$client" eth0

  # The arbiter network.
  ensure_bridge "$arb" brm
  set_addr "$arb" brm "$ARB_ADDR"

  # The two hosts: the guest's port on the LAN, the logging link and the
  # link to the arbiter.
  ensure_veth "$pri" log0 "$bak" log0
  set_addr "$pri" log0 "$LOG_ADDR_PRI"
  set_addr "$bak" log0 "$LOG_ADDR_BAK"
  local host mgmt_addr
  for role in pri bak; do
    host="$name-$role"
    ensure_bridge "$host" brlan
    no_addr "$host" brlan
    ensure_tap "$host" tap0
    set_master "$host" tap0 brlan
    ensure_veth "$lan" "veth-$role" "$host" lan0
    set_master "$lan" "veth-$role" br0
    set_master "$host" lan0 brlan
    ensure_veth "$arb" "veth-$role" "$host" mgmt0
    set_master "$arb" "veth-$role" brm
    if [ "$role" = pri ]; then mgmt_addr=$MGMT_ADDR_PRI; else mgmt_addr=$MGMT_ADDR_BAK; fi
    set_addr "$host" mgmt0 "$mgmt_addr"
    links_up "$host" brlan tap0 lan0 log0 mgmt0
  done
  links_up "$lan" br0 veth-client veth-pri veth-bak
  links_up "$arb" brm veth-pri veth-bak

  for port in veth-client veth-pri veth-bak; do wait_forwarding "$lan" "$port"; done
  for port in veth-pri veth-bak; do wait_forwarding "$arb" "$port"; done
  for role in pri bak; do wait_forwarding "$name-$role" lan0; done

  trap - EXIT
  {
    echo "ftvm FT network '$name' is up (nothing routes out):"
    printf '  %-14s %s\n' \
      "$lan" "br0 (the LAN switch), ports veth-client, veth-pri, veth-bak" \
      "$client" "eth0 $CLIENT_ADDR (clients run here)" \
      "$pri" "brlan: tap0 + lan0 (to br0); log0 $LOG_ADDR_PRI; mgmt0 $MGMT_ADDR_PRI" \
      "$bak" "brlan: tap0 + lan0 (to br0); log0 $LOG_ADDR_BAK; mgmt0 $MGMT_ADDR_BAK" \
      "$arb" "brm $ARB_ADDR, ports veth-pri, veth-bak" \
      "guest" "$GUEST_ADDR (MAC $GUEST_MAC) behind tap0 of the live host"
    echo "Run a command in a namespace: $0 exec $name ROLE CMD..."
    echo "Remove it all:                $0 down $name"
  } >&2
}

# --- faults ---------------------------------------------------------------

set_log_link() {
  local name=$1 state=$2
  need_ns "$name-pri"
  need_ns "$name-bak"
  ip -n "$name-pri" link set dev log0 "$state"
  ip -n "$name-bak" link set dev log0 "$state"
  say "log0 $state in $name-pri and $name-bak"
}

set_arb_link() {
  local name=$1 role=$2 state=$3
  need_ns "$name-$role"
  need_ns "$name-arb"
  ip -n "$name-$role" link set dev mgmt0 "$state"
  ip -n "$name-arb" link set dev "veth-$role" "$state"
  if [ "$state" = up ]; then wait_forwarding "$name-arb" "veth-$role"; fi
  say "mgmt0 of $name-$role and veth-$role of $name-arb $state"
}

# --- show -----------------------------------------------------------------

do_show() {
  local name=$1 role ns br any=no
  for role in $ROLES; do
    ns=$name-$role
    ns_exists "$ns" || { echo "== $ns: absent"; continue; }
    any=yes
    echo "== $ns"
    echo "-- links"
    ip -n "$ns" -br link show | sed 's/^/  /'
    echo "-- IPv4 addresses"
    ip -n "$ns" -4 -br addr show | sed 's/^/  /'
    for br in br0 brlan brm; do
      has_link "$ns" "$br" || continue
      echo "-- bridge $br ports"
      bridge -n "$ns" link show master "$br" | sed 's/^/  /'
      echo "-- bridge $br learned MACs"
      bridge -n "$ns" fdb show br "$br" | grep -v permanent | sed 's/^/  /' || true
    done
  done
  [ "$any" = yes ] || die "nothing of '$name' exists"
}

do_exec() {
  local name=$1 role=$2
  shift 2
  [[ " $ROLES " == *" $role "* ]] || usage "bad ROLE '$role': use one of: $ROLES"
  [ $# -gt 0 ] || usage "exec needs a command"
  need_ns "$name-$role"
  exec ip netns exec "$name-$role" "$@"
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
  exec) [ $# -ge 1 ] || usage "exec needs ROLE and a command"; do_exec "$name" "$@" ;;
  cut-log) [ $# -eq 0 ] || usage; set_log_link "$name" down ;;
  heal-log) [ $# -eq 0 ] || usage; set_log_link "$name" up ;;
  cut-arb) [ $# -eq 1 ] || usage; check_host_role "$1"; set_arb_link "$name" "$1" down ;;
  heal-arb) [ $# -eq 1 ] || usage; check_host_role "$1"; set_arb_link "$name" "$1" up ;;
  show) [ $# -eq 0 ] || usage; do_show "$name" ;;
  *) usage "unknown command '$cmd'" ;;
esac
