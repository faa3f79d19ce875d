#!/usr/bin/env bash
# Boots the guest image under QEMU (the reference machine) and checks the init
# protocol of docs/guest-image.md: the marker line, ftvm.cmd decoding, exit
# status through the finisher, the interactive shell, cpubench's checksum
# against the same source built for the host, the data disk on /data
# (read-write, read-only, absent), ftvm.net on eth0 (with a TCP connection
# from the host through QEMU's user-mode network, forwarded from a port on
# 127.0.0.1 only), and the redis service. Then boots the same image on the
# ftvm machine (build/ftvm, or $FTVM) for the disk and redis checks, if it is
# built. Prints boot timings.
#
#   guest/test-qemu.sh
#
# Uses the cached image (guest/build.sh returns at once when it is cached, and
# builds it otherwise); the data disk is attached as a copy. Every wait has a
# deadline. Exits 0 if all checks pass.
set -euo pipefail

guest_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image_dir=$("$guest_dir/build.sh")
ftvm=${FTVM:-$guest_dir/../build/ftvm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

readonly boot_deadline=60 # seconds, per QEMU run
readonly marker='ftvm-guest: init'
qemu=(qemu-system-riscv64 -machine virt -bios default -m 256M -nographic
  -kernel "$image_dir/Image" -initrd "$image_dir/initramfs.cpio.gz")

failures=0
pass() { printf 'PASS %s\n' "$1"; }
fail() {
  printf 'FAIL %s: %s\n' "$1" "$2"
  if [[ -n ${3:-} && -f $3 ]]; then
    printf -- '---- guest console (last 25 lines) ----\n'
    tail -n 25 "$3" | tr -d '\r'
    printf -- '----\n'
  fi
  failures=$((failures + 1))
}

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; } # microseconds
seconds() { printf '%d.%03d' $(($1 / 1000000)) $(($1 % 1000000 / 1000)); }

# QEMU options added to every boot() while set: devices (disk, network).
qemu_devices=()

# A fresh copy of the image's data disk at $tmp/$1.img.
disk_copy() { cp "$image_dir/data.img" "$tmp/$1.img"; }
# QEMU options for the disk $tmp/$1.img as virtio-blk; $2 is "ro" for read-only.
disk_opts() {
  local ro=
  [[ ${2:-} == ro ]] && ro=,readonly=on
  printf '%s\n' -drive "file=$tmp/$1.img,format=raw,if=none,id=d0$ro" \
    -device virtio-blk-device,drive=d0
}
# QEMU options for a virtio-net device on QEMU's user-mode network (the guest
# side only, unless $1 adds options such as hostfwd).
net_opts() { printf '%s\n' -netdev "user,id=n0${1:+,$1}" -device virtio-net-device,netdev=n0; }

# Boots with the given kernel arguments after console=ttyS0. Sets run_status
# (QEMU's exit status), run_log (the console, CRs kept), run_marker_us and
# run_total_us.
boot() {
  local name=$1 append=$2
  run_log=$tmp/$name.log
  run_marker_us=
  local start line t
  start=$(now)
  set +e
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$run_log"
    if [[ -z $run_marker_us && $line == "$marker"* ]]; then
      t=$(now)
      run_marker_us=$((t - start))
    fi
  done < <(timeout "$boot_deadline" "${qemu[@]}" ${qemu_devices[@]+"${qemu_devices[@]}"} \
    -append "console=ttyS0 $append" </dev/null 2>&1
  echo "qemu-status=$?")
  set -e
  t=$(now)
  run_total_us=$((t - start))
  run_status=$(sed -n 's/^qemu-status=//p' "$run_log")
}

# Prints the first of the extended regular expressions $2... that no line of
# file $1 (CRs removed) matches; fails if they all match.
missing_line() {
  local file=$1 pattern
  shift
  for pattern; do
    if ! tr -d '\r' <"$file" | grep -qE -- "$pattern"; then
      printf '%s' "$pattern"
      return 0
    fi
  done
  return 1
}

# Expects a boot with kernel arguments "ftvm.marker APPEND" to make QEMU exit
# with STATUS, print the marker once and, for each extended regular
# expression PATTERN, a line matching it.
check_boot() {
  local name=$1 append=$2 status=$3 missing
  shift 3
  boot "$name" "ftvm.marker $append"
  if [[ $run_status == 124 ]]; then
    fail "$name" "no exit within ${boot_deadline} s" "$run_log"
  elif [[ $run_status != "$status" ]]; then
    fail "$name" "QEMU exited with $run_status, expected $status" "$run_log"
  elif [[ $(grep -c "^$marker" "$run_log") != 1 ]]; then
    fail "$name" "expected exactly one '$marker' line" "$run_log"
  elif missing=$(missing_line "$run_log" "$@"); then
    fail "$name" "no output line matches /$missing/" "$run_log"
  else
    pass "$name (status $run_status)"
  fi
}

# Expects ftvm.cmd=hex(COMMAND) to exit with STATUS and print a line matching
# each PATTERN.
check_cmd() {
  local name=$1 cmd=$2 status=$3
  shift 3
  check_boot "$name" "ftvm.cmd=$(hex "$cmd")" "$status" "$@"
}

printf 'image: %s\n' "$image_dir"

check_cmd hello 'echo hello; exit 7' 7 '^hello$'
boot_to_marker=$run_marker_us
check_cmd exit0 'exit 0' 0 "^$marker\$"
boot_exit0_marker=$run_marker_us boot_exit0_total=$run_total_us
check_cmd quoting "printf '%s|%d\\n' \"it's a \\\"test\\\" 100%\" 42" 0 \
  '^it'"'"'s a "test" 100%[|]42$'
check_cmd status255 'false || exit 255' 255 "^$marker\$"
check_boot bad-hex 'ftvm.cmd=65786974203G' 127 'ftvm.cmd is not lowercase hex'

# Without ftvm.marker: no marker, and the command's output arrives byte for
# byte (no CR before LF).
boot raw-output "quiet ftvm.cmd=$(hex 'printf "a\nb\n"; exit 5')"
if [[ $run_status != 5 ]]; then
  fail raw-output "QEMU exited with $run_status, expected 5" "$run_log"
elif grep -q "^$marker" "$run_log"; then
  fail raw-output "marker printed without ftvm.marker" "$run_log"
elif ! grep -qx 'a' "$run_log" || ! grep -qx 'b' "$run_log"; then
  fail raw-output "expected the lines 'a' and 'b' with no CR" "$run_log"
else
  pass "raw-output (status $run_status)"
fi

# cpubench must give the same checksum as the same source built for the host.
host_bench=$tmp/cpubench-host
if cc -O2 -o "$host_bench" "$guest_dir/tools/cpubench.c" 2>"$tmp/cc.log"; then
  expected=$("$host_bench" 200)
  check_cmd cpubench 'cpubench 200' 0 "^${expected}\$"
else
  fail cpubench "host compiler failed: $(head -n 3 "$tmp/cc.log")"
fi
check_cmd cpubench-default 'time cpubench' 0 '^cpubench: iterations=[0-9]+ checksum=0x[0-9a-f]{16}$'
bench_line=$(tr -d '\r' <"$run_log" | grep -E '^(real|cpubench:)' | tr '\n' ' ')

# Interactive: no ftvm.cmd, so init starts a login shell on the console. Input
# is sent only once the prompt is visible, through a FIFO on QEMU's stdin.
interactive() {
  local name=interactive log=$tmp/interactive.log status= ok=1
  mkfifo "$tmp/console.in"
  : >"$log"
  timeout "$boot_deadline" "${qemu[@]}" -append "console=ttyS0 ftvm.marker" \
    <"$tmp/console.in" >"$log" 2>&1 &
  local qpid=$!
  exec 3>"$tmp/console.in"
  wait_for() { # PATTERN SECONDS
    local deadline=$((SECONDS + $2))
    until tr -d '\r' <"$log" | grep -qE -- "$1"; do
      ((SECONDS < deadline)) && kill -0 "$qpid" 2>/dev/null || return 1
      sleep 0.1
    done
  }
  if ! wait_for '^root@ftvm:~# ' 30; then
    fail "$name" "no shell prompt" "$log"
    ok=0
  else
    printf 'echo ftvm-$((6 * 7)) $(id -u)\n' >&3
    if ! wait_for '^ftvm-42 0$' 10; then
      fail "$name" "the shell did not run a command" "$log"
      ok=0
    fi
    printf 'exit\n' >&3
  fi
  exec 3>&-
  set +e
  wait "$qpid"
  status=$?
  set -e
  if [[ $status != 0 ]]; then
    fail "$name" "QEMU exited with $status after 'exit', expected 0" "$log"
  elif ((ok)); then
    pass "$name (prompt, command, exit with status 0)"
  fi
}
interactive

# --- Data disk, network, services -------------------------------------------

net_arg='ftvm.net=10.0.2.15/24,10.0.2.2'

# The data disk read-write, eth0 configured, Redis started before the command
# (init waits until it listens, so the command needs no delay).
disk_copy rw
mapfile -t qemu_devices < <(disk_opts rw; net_opts)
check_boot redis-disk-net "$net_arg ftvm.service=redis ftvm.cmd=$(hex \
  'redis-cli ping; redis-cli set k v; redis-cli get k; redis-cli --raw config get dir; ls /data | cat;
   grep " /data " /proc/mounts; ip -4 -o addr show dev eth0; ip route')" 0 \
  '^PONG$' '^OK$' '^"v"$' '^/data/redis$' '^README$' '^redis$' '^lost\+found$' \
  '^/dev/vda /data ext4 rw[ ,]' 'inet 10\.0\.2\.15/24 ' '^default via 10\.0\.2\.2 dev eth0'
boot_redis_total=$run_total_us
# The services start before the command even with the command line's words in
# another order, and an unknown name costs one line and nothing else.
check_boot redis-unknown-service \
  "ftvm.service=nope,redis ftvm.cmd=$(hex 'sleep 1; redis-cli ping') ftvm.service=also-nope" 0 \
  "^ftvm-guest: unknown service 'nope' in ftvm.service" \
  "^ftvm-guest: unknown service 'also-nope' in ftvm.service" '^PONG$'

# What Redis saves on request is on the disk at the next boot.
disk_copy persist
mapfile -t qemu_devices < <(disk_opts persist)
check_boot redis-save "ftvm.service=redis ftvm.cmd=$(hex 'redis-cli set kept 42 && redis-cli save && ls /data/redis | cat')" 0 \
  '^OK$' '^dump\.rdb$'
check_boot redis-load "ftvm.service=redis ftvm.cmd=$(hex 'redis-cli --raw get kept')" 0 '^42$'

# A read-only device is mounted read-only, and Redis works in /tmp instead.
disk_copy ro
mapfile -t qemu_devices < <(disk_opts ro ro)
check_boot data-read-only "ftvm.service=redis ftvm.cmd=$(hex 'grep " /data " /proc/mounts; redis-cli --raw config get dir; cat /data/README')" 0 \
  '^/dev/vda /data ext4 ro[ ,]' '^/tmp$' '^ftvm data disk$'

# A disk that is not ext4: one line, and the command still runs.
head -c 1048576 /dev/zero >"$tmp/zero.img"
mapfile -t qemu_devices < <(disk_opts zero)
check_cmd data-not-ext4 'grep -c " /data " /proc/mounts' 1 \
  '^ftvm-guest: cannot mount /dev/vda on /data' '^0$'

# Without a disk and without ftvm.net: nothing from init, /data empty, eth0
# present but down with no address, lo up.
mapfile -t qemu_devices < <(net_opts)
boot no-disk-no-net "quiet ftvm.cmd=$(hex 'ls -A /data | wc -l; ip -4 -o addr | cut -d" " -f2; cat /sys/class/net/eth0/operstate')"
if [[ $run_status != 0 ]]; then
  fail no-disk-no-net "QEMU exited with $run_status, expected 0" "$run_log"
elif grep -q 'ftvm-guest' "$run_log"; then
  fail no-disk-no-net "init printed something" "$run_log"
elif [[ $(grep -v '^qemu-status=' "$run_log" | sed -n '/^0$/,$p') != $'0\nlo\ndown' ]]; then
  fail no-disk-no-net "expected the lines '0', 'lo', 'down' (empty /data, only lo with an address, eth0 down)" "$run_log"
else
  pass "no-disk-no-net (status $run_status)"
fi

# A malformed ftvm.net: one line, eth0 untouched, the command still runs.
check_boot bad-net "ftvm.net=10.0.2.15 ftvm.cmd=$(hex 'ip -4 -o addr | grep -c eth0')" 1 \
  '^ftvm-guest: ftvm.net=10\.0\.2\.15 is not ADDR/PREFIX\[,GATEWAY\]$' '^0$'

# TCP from the host to Redis in the guest: QEMU forwards a port on the host's
# 127.0.0.1 to the guest's 6379. The guest command waits (with a deadline) for
# the host to set "stop", then prints what the host stored.
host_to_guest() {
  local name=host-to-guest port log=$tmp/host-to-guest.log status ok=1 deadline
  port=$((20000 + RANDOM % 20000))
  disk_copy fwd
  mapfile -t qemu_devices < <(disk_opts fwd; net_opts "hostfwd=tcp:127.0.0.1:$port-:6379")
  local cmd='i=0; until [ "$(redis-cli get stop)" = 1 ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i+1)); done; redis-cli --raw get fromhost'
  timeout "$boot_deadline" "${qemu[@]}" "${qemu_devices[@]}" \
    -append "console=ttyS0 $net_arg ftvm.service=redis ftvm.cmd=$(hex "$cmd")" </dev/null >"$log" 2>&1 &
  local qpid=$!
  deadline=$((SECONDS + 30))
  until [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; do
    if ((SECONDS >= deadline)) || ! kill -0 "$qpid" 2>/dev/null; then
      fail "$name" "no PONG from 127.0.0.1:$port within 30 s" "$log"
      ok=0
      break
    fi
    sleep 0.2
  done
  if ((ok)); then
    timeout 10 redis-cli -h 127.0.0.1 -p "$port" set fromhost hello-from-host >/dev/null || true
    timeout 10 redis-cli -h 127.0.0.1 -p "$port" set stop 1 >/dev/null || true
  fi
  set +e
  wait "$qpid"
  status=$?
  set -e
  if ((!ok)); then
    return
  elif [[ $status != 0 ]]; then
    fail "$name" "QEMU exited with $status, expected 0" "$log"
  elif ! tr -d '\r' <"$log" | grep -qx 'hello-from-host'; then
    fail "$name" "the guest did not print what the host stored" "$log"
  else
    pass "$name (redis-cli on the host, port $port, to Redis in the guest)"
  fi
}
if command -v redis-cli >/dev/null; then
  host_to_guest
else
  fail host-to-guest "no redis-cli on the host (scripts/install-deps.sh installs redis-tools)"
fi
qemu_devices=()

# --- The same guest on the ftvm machine ---------------------------------------

# Expects `ftvm run OPTIONS... -- COMMAND` (OPTIONS and COMMAND separated by a
# lone "--") to exit with STATUS and print a line matching each PATTERN.
check_ftvm() {
  local name=ftvm-$1 status=$2 log=$tmp/ftvm-$1.log args=() rc missing
  shift 2
  while [[ $1 != -- ]]; do args+=("$1"); shift; done
  args+=(-- "$2")
  shift 2
  set +e
  timeout "$boot_deadline" "$ftvm" run "${args[@]}" </dev/null >"$log" 2>&1
  rc=$?
  set -e
  if [[ $rc == 124 ]]; then
    fail "$name" "no exit within ${boot_deadline} s" "$log"
  elif [[ $rc != "$status" ]]; then
    fail "$name" "ftvm exited with $rc, expected $status" "$log"
  elif missing=$(missing_line "$log" "$@"); then
    fail "$name" "no output line matches /$missing/" "$log"
  else
    pass "$name (status $rc)"
  fi
}

if [[ -x $ftvm ]]; then
  disk_copy ftvm
  common=(--kernel "$image_dir/Image" --initrd "$image_dir/initramfs.cpio.gz")
  check_ftvm disk 0 "${common[@]}" --disk "$tmp/ftvm.img" -- \
    'ls /data | cat; redis-server --version' '^README$' '^redis$' '^Redis server v=[0-9.]+ .*malloc=libc'
  check_ftvm redis 0 "${common[@]}" --disk "$tmp/ftvm.img" --append ftvm.service=redis -- \
    'redis-cli ping; redis-cli set k v; redis-cli get k; redis-cli --raw config get dir' \
    '^PONG$' '^OK$' '^"v"$' '^/data/redis$'
  check_ftvm read-only 0 "${common[@]}" --disk "$tmp/ftvm.img" --disk-read-only --append ftvm.service=redis -- \
    'grep " /data " /proc/mounts; redis-cli -h 127.0.0.1 ping; redis-cli --raw config get dir' \
    '^/dev/vda /data ext4 ro[ ,]' '^PONG$' '^/tmp$'
  check_ftvm no-disk 0 "${common[@]}" -- 'ls -A /data | wc -l' '^0$'
  if grep -q ftvm-guest "$tmp/ftvm-no-disk.log"; then
    fail ftvm-no-disk "init printed something without a disk" "$tmp/ftvm-no-disk.log"
  fi
else
  printf 'SKIP ftvm checks: %s is not built\n' "$ftvm"
fi

printf '\ntimings under QEMU (wall clock, this host):\n'
printf '  QEMU start to "%s": %s s (hello run), %s s (exit 0 run)\n' "$marker" \
  "$(seconds "$boot_to_marker")" "$(seconds "$boot_exit0_marker")"
printf '  QEMU start to QEMU exit for "exit 0": %s s\n' "$(seconds "$boot_exit0_total")"
printf '  QEMU start to QEMU exit for the redis-disk-net run: %s s\n' "$(seconds "$boot_redis_total")"
printf '  cpubench default: %s\n' "$bench_line"

if ((failures)); then
  printf '\n%d check(s) failed\n' "$failures"
  exit 1
fi
printf '\nall checks passed\n'
