#!/usr/bin/env bash
# Boots the guest image under QEMU (the reference machine) and checks the init
# protocol of docs/guest-image.md: the marker line, ftvm.cmd decoding, exit
# status through the finisher, the interactive shell, and cpubench's checksum
# against the same source built for the host. Prints boot timings.
#
#   guest/test-qemu.sh
#
# Uses the cached image (guest/build.sh returns at once when it is cached, and
# builds it otherwise). Every wait has a deadline. Exits 0 if all checks pass.
set -euo pipefail

guest_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image_dir=$("$guest_dir/build.sh")
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
  done < <(timeout "$boot_deadline" "${qemu[@]}" \
    -append "console=ttyS0 $append" </dev/null 2>&1
  echo "qemu-status=$?")
  set -e
  t=$(now)
  run_total_us=$((t - start))
  run_status=$(sed -n 's/^qemu-status=//p' "$run_log")
}

# Expects a boot with kernel arguments "ftvm.marker APPEND" to make QEMU exit
# with STATUS, print the marker once and a line matching the extended regular
# expression PATTERN.
check_boot() {
  local name=$1 append=$2 status=$3 pattern=$4
  boot "$name" "ftvm.marker $append"
  if [[ $run_status == 124 ]]; then
    fail "$name" "no exit within ${boot_deadline} s" "$run_log"
  elif [[ $run_status != "$status" ]]; then
    fail "$name" "QEMU exited with $run_status, expected $status" "$run_log"
  elif [[ $(grep -c "^$marker" "$run_log") != 1 ]]; then
    fail "$name" "expected exactly one '$marker' line" "$run_log"
  elif ! tr -d '\r' <"$run_log" | grep -qE -- "$pattern"; then
    fail "$name" "no output line matches /$pattern/" "$run_log"
  else
    pass "$name (status $run_status)"
  fi
}

# Expects ftvm.cmd=hex(COMMAND) to exit with STATUS and print PATTERN.
check_cmd() { check_boot "$1" "ftvm.cmd=$(hex "$2")" "$3" "$4"; }

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

printf '\ntimings under QEMU (wall clock, this host):\n'
printf '  QEMU start to "%s": %s s (hello run), %s s (exit 0 run)\n' "$marker" \
  "$(seconds "$boot_to_marker")" "$(seconds "$boot_exit0_marker")"
printf '  QEMU start to QEMU exit for "exit 0": %s s\n' "$(seconds "$boot_exit0_total")"
printf '  cpubench default: %s\n' "$bench_line"

if ((failures)); then
  printf '\n%d check(s) failed\n' "$failures"
  exit 1
fi
printf '\nall checks passed\n'
