#!/usr/bin/env bash
# Builds the ftvm guest image from Debian sources and caches it by the hash of
# its inputs. See docs/guest-image.md.
#
#   guest/build.sh [--force] [--print-hash]
#
# Output: ${FTVM_CACHE:-/var/cache/ftvm}/guest/<hash>/ holding
#   Image               Linux 6.1 (linux-source-6.1), uncompressed RISC-V Image
#   initramfs.cpio.gz   busybox and Redis (Debian sources), /init, ftvm-poweroff,
#                       cpubench
#   data.img            64 MiB ext4 data disk (README, empty redis/), for vda
#   manifest.txt        versions, hash, sizes, sha256s, build times
#   System.map, linux.config, busybox.config, build.log   for debugging
# <hash> is the sha256 over every file in guest/ and the versions of the
# Debian packages used. A complete cache entry is reused without building
# (--force rebuilds it). ${FTVM_CACHE}/guest/current links to the entry.
# Progress goes to stderr; the entry's directory is the one line on stdout.
#
# Builds happen in ${FTVM_CACHE}/guest/.work-*, one at a time (flock), and the
# finished entry is moved into place with a single rename: an interrupted or
# failed build never leaves a partial entry. A failed build keeps its work
# directory (and build.log) until the next build starts.
set -euo pipefail

readonly guest_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly cache_root=${FTVM_CACHE:-/var/cache/ftvm}
readonly cache_dir=$cache_root/guest
readonly cross=riscv64-linux-gnu-
readonly linux_tarball=/usr/src/linux-source-6.1.tar.xz
readonly stages=7

say() { printf '%s\n' "$*" >&2; }
die() {
  say "guest/build.sh: error: $*"
  exit 1
}

usage() { # EXIT_STATUS
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit "$1"
}

force=0
print_hash=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --print-hash) print_hash=1 ;;
    -h | --help) usage 0 ;;
    *) say "guest/build.sh: unknown argument: $arg"; usage 2 ;;
  esac
done

# --- Inputs and their hash -------------------------------------------------

pkg_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null ||
    die "Debian package $1 is not installed; run scripts/install-deps.sh"
}

# The newest version of source package $1 that apt knows; `apt-get source` is
# pinned to it.
source_version() {
  local v best=
  for v in $(apt-cache showsrc --only-source "$1" 2>/dev/null | sed -n 's/^Version: //p'); do
    if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done
  [[ -n $best ]] ||
    die "apt knows no $1 source package; enable deb-src (scripts/install-deps.sh does) and run apt-get update"
  printf '%s' "$best"
}

linux_version=$(pkg_version linux-source-6.1)
gcc_version=$(pkg_version gcc-riscv64-linux-gnu)
libc_version=$(pkg_version libc6-dev-riscv64-cross)
binutils_version=$(pkg_version binutils-riscv64-linux-gnu)
e2fsprogs_version=$(pkg_version e2fsprogs)
busybox_version=$(source_version busybox)
redis_version=$(source_version redis)
compiler=$("${cross}gcc" --version | head -n 1)

# The hash input: one line per file of the recipe directory $1 (its sha256
# and path), then one line per package version. Changing any of them gives a
# new cache entry.
hash_input() {
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  printf 'linux-source-6.1 %s\n' "$linux_version"
  printf 'busybox (source) %s\n' "$busybox_version"
  printf 'redis (source) %s\n' "$redis_version"
  printf 'gcc-riscv64-linux-gnu %s\n' "$gcc_version"
  printf 'compiler %s\n' "$compiler"
  printf 'libc6-dev-riscv64-cross %s\n' "$libc_version"
  printf 'binutils-riscv64-linux-gnu %s\n' "$binutils_version"
  printf 'e2fsprogs %s\n' "$e2fsprogs_version"
}
inputs=$(hash_input "$guest_dir")
hash=$(printf '%s\n' "$inputs" | sha256sum | cut -d' ' -f1)
readonly out=$cache_dir/$hash

if ((print_hash)); then
  printf '%s\n' "$hash"
  exit 0
fi

is_complete() {
  [[ -f $1/Image && -f $1/initramfs.cpio.gz && -f $1/data.img && -f $1/manifest.txt ]]
}

# Best effort: a read-only cache still serves its entries.
point_current() {
  if ! { ln -sfn "$hash" "$cache_dir/.current.$$" &&
    mv -fT "$cache_dir/.current.$$" "$cache_dir/current"; } 2>/dev/null; then
    rm -f "$cache_dir/.current.$$" 2>/dev/null || true
    say "guest/build.sh: warning: cannot point $cache_dir/current at $hash"
  fi
}

finish_cached() {
  say "guest image is cached: $out"
  point_current
  printf '%s\n' "$out"
  exit 0
}

if ((!force)) && is_complete "$out"; then finish_cached; fi

# --- Build ------------------------------------------------------------------

mkdir -p "$cache_dir" || die "cannot create $cache_dir (set FTVM_CACHE to a writable directory)"
exec 9>"$cache_dir/.lock"
if ! flock -n 9; then
  say "waiting for another guest build to finish..."
  flock 9
fi
if ((!force)) && is_complete "$out"; then finish_cached; fi

rm -rf "$cache_dir"/.work-* # failed or interrupted builds; we hold the lock
work=$(mktemp -d "$cache_dir/.work-${hash:0:12}.XXXXXX")
log=$work/build.log
: >"$log"
build_ok=0
on_exit() {
  local rc=$?
  if ((build_ok)); then
    rm -rf "$work"
  elif ((rc != 0)); then
    say "guest/build.sh: build failed; work directory kept: $work"
  fi
}
# Commands started by run() get their own process group (job control), so an
# interrupt stops the whole command, compilers included, and nothing keeps
# writing into the work directory after we exit.
set -m
run_pid=
on_signal() {
  [[ -n $run_pid ]] && kill -TERM -- "-$run_pid" 2>/dev/null
  say "guest/build.sh: interrupted"
  exit 130
}
trap on_exit EXIT
trap on_signal INT TERM HUP

stage() { say "[$1/$stages] $2"; }

# Runs a command with its output appended to the build log, printing the
# elapsed time every 15 s. On failure, prints the log's tail and stops.
run() {
  local start=$SECONDS pid
  printf '\n$ %s\n' "$*" >>"$log"
  "$@" </dev/null >>"$log" 2>&1 &
  pid=$!
  run_pid=$pid
  while kill -0 "$pid" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      sleep 1
      kill -0 "$pid" 2>/dev/null || break
    done
    kill -0 "$pid" 2>/dev/null && say "      ... $((SECONDS - start)) s"
  done
  if ! wait "$pid"; then
    run_pid=
    say "---- last lines of $log ----"
    tail -n 40 "$log" >&2
    say "----"
    die "command failed: $*"
  fi
  run_pid=
}

# Checks that every "CONFIG_X=..." and "# CONFIG_X is not set" line of a
# fragment holds in a final .config (an unset option may also be absent).
verify_fragment() {
  local fragment=$1 config=$2 line name got bad=0
  while IFS= read -r line; do
    case $line in
      CONFIG_*=*)
        name=${line%%=*}
        got=$(grep -E "^$name=|^# $name is not set" "$config" || true)
        ;;
      "# CONFIG_"*" is not set")
        name=${line#\# }
        name=${name%% *}
        got=$(grep -E "^$name=" "$config" || true)
        [[ -z $got ]] && got=$line
        ;;
      *) continue ;;
    esac
    if [[ $got != "$line" ]]; then
      say "  $(basename "$fragment"): wanted '$line', got '${got:-<absent>}'"
      bad=1
    fi
  done <"$fragment"
  ((!bad)) || die "$config does not match $fragment (a dependency is missing or a name is wrong)"
}

jobs=$(nproc)
# Reproducible builds: the build date is the date of the kernel source package.
epoch=$(stat -c %Y "$linux_tarball")
build_date=$(date -u -d "@$epoch" '+%Y-%m-%d %H:%M:%S UTC')
export SOURCE_DATE_EPOCH=$epoch KBUILD_BUILD_TIMESTAMP=$build_date
export KBUILD_BUILD_USER=ftvm KBUILD_BUILD_HOST=ftvm KBUILD_BUILD_VERSION=1
export LC_ALL=C

say "building guest image $hash"
say "  work directory: $work (log: $log)"
t_start=$SECONDS

# Build from a snapshot of guest/, so that edits made during the build cannot
# mix into an entry filed under the old hash.
recipe=$work/recipe
mkdir "$recipe"
cp -R "$guest_dir/." "$recipe/"
[[ $(hash_input "$recipe") == "$inputs" ]] || die "guest/ changed while the build started; run it again"

# Unpacks Debian source package $1 at version $2 into directory $3. The
# package (.dsc and tarballs) is kept under ${FTVM_CACHE}/src/$1/<version>, so
# later builds need no network; `dpkg-source -x` checks it against its .dsc
# and applies Debian's patches.
unpack_source() {
  local name=$1 version=$2 dest=$3 pkg dl
  pkg=$cache_root/src/$name/${version//:/_}
  if ! compgen -G "$pkg/${name}_*.dsc" >/dev/null; then
    say "      downloading the $name source package (apt-get source)"
    mkdir -p "$cache_root/src/$name"
    dl=$(mktemp -d "$cache_root/src/$name/.download.XXXXXX")
    run sh -c "cd '$dl' && apt-get source --download-only '$name=$version'"
    rm -rf "$pkg"
    mv -T "$dl" "$pkg"
  fi
  run dpkg-source -x "$(compgen -G "$pkg/${name}_*.dsc" | head -n 1)" "$dest"
}

stage 1 "sources: linux-source-6.1 $linux_version, busybox $busybox_version, redis $redis_version"
run tar -xf "$linux_tarball" -C "$work"
ksrc=$work/linux-source-6.1
[[ -f $ksrc/Makefile ]] || die "$linux_tarball did not unpack to linux-source-6.1/"
bsrc=$work/busybox
unpack_source busybox "$busybox_version" "$bsrc"
rsrc=$work/redis
unpack_source redis "$redis_version" "$rsrc"

stage 2 "kernel: configuring (allnoconfig + guest/kernel.config)"
kmake() { make -C "$ksrc" ARCH=riscv CROSS_COMPILE="$cross" "$@"; }
# -n: `make allnoconfig` with the fragment forced (KCONFIG_ALLCONFIG).
run sh -c "cd '$ksrc' && ARCH=riscv CROSS_COMPILE='$cross' scripts/kconfig/merge_config.sh -n '$recipe/kernel.config'"
run kmake olddefconfig
verify_fragment "$recipe/kernel.config" "$ksrc/.config"

stage 3 "kernel: compiling (this takes ~2 min)"
t_kernel=$SECONDS
run kmake -j"$jobs" Image
t_kernel=$((SECONDS - t_kernel))
kernel_release=$(cat "$ksrc/include/config/kernel.release")

stage 4 "busybox: configuring and compiling (this takes ~30 s)"
t_busybox=$SECONDS
bmake() { make -C "$bsrc" CROSS_COMPILE="$cross" BB_EXTRA_VERSION="ftvm" "$@"; }
run bmake defconfig
while IFS= read -r line; do
  case $line in
    CONFIG_*=*) name=${line%%=*} ;;
    "# CONFIG_"*" is not set") name=${line#\# } name=${name%% *} ;;
    *) continue ;;
  esac
  sed -i -e "/^$name=/d" -e "/^# $name is not set/d" "$bsrc/.config"
  printf '%s\n' "$line" >>"$bsrc/.config"
done <"$recipe/busybox.config"
run sh -c "yes '' | make -C '$bsrc' CROSS_COMPILE='$cross' oldconfig"
verify_fragment "$recipe/busybox.config" "$bsrc/.config"
run bmake -j"$jobs"
t_busybox=$((SECONDS - t_busybox))

stage 5 "redis: compiling redis-server and redis-cli (this takes ~40 s)"
t_redis=$SECONDS
# Static, libc malloc (no jemalloc), no TLS, no systemd; the bundled lua,
# hiredis, linenoise and hdr_histogram. The build ID in release.h comes from
# SOURCE_DATE_EPOCH and the git fields are pinned (GIT_DIR points nowhere);
# -ffile-prefix-map keeps the work directory out of the debug information,
# which the linker's GNU build ID note hashes. So the binaries do not depend
# on the build's time or place. PYTHON=: keeps the checked-in commands.c.
# uname_S/uname_M describe the target, not the host.
run env GIT_DIR=/nonexistent make -C "$rsrc/src" -j"$jobs" \
  CC="${cross}gcc" AR="${cross}ar" RANLIB="${cross}ranlib" \
  uname_S=Linux uname_M=riscv64 MALLOC=libc USE_JEMALLOC=no BUILD_TLS=no USE_SYSTEMD=no \
  CFLAGS="-ffile-prefix-map=$rsrc=redis" LDFLAGS=-static DEBUG= PYTHON=: V=1 \
  redis-server redis-cli
t_redis=$((SECONDS - t_redis))
redis_release=$(sed -n 's/^#define REDIS_VERSION "\(.*\)"$/\1/p' "$rsrc/src/version.h")

stage 6 "initramfs: tools, /init, cpio"
root=$work/rootfs
run bmake CONFIG_PREFIX="$root" install
rm -f "$root/linuxrc"
mkdir -p "$root"/{dev,proc,sys,tmp,run,root,mnt,etc,data,usr/bin}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp -R "$recipe/rootfs/." "$root/"
install -m 0755 "$recipe/init" "$root/init"
tools_cflags=(-O2 -static -Wall -Wextra -s)
run "${cross}gcc" "${tools_cflags[@]}" -o "$root/sbin/ftvm-poweroff" "$recipe/tools/ftvm-poweroff.c"
run "${cross}gcc" "${tools_cflags[@]}" -o "$root/bin/cpubench" "$recipe/tools/cpubench.c"
for prog in redis-server redis-cli; do
  run "${cross}strip" -o "$root/usr/bin/$prog" "$rsrc/src/$prog"
done
# gen_init_cpio takes regular files' mtimes from the files themselves.
find "$root" -exec touch -h -d "@$epoch" {} +
# Device nodes the kernel needs before /init mounts devtmpfs over /dev.
printf '%s\n' 'nod /dev/console 0600 0 0 c 5 1' 'nod /dev/null 0666 0 0 c 1 3' >"$work/nodes.list"
run sh -c "cd '$ksrc' && usr/gen_initramfs.sh -o '$work/initramfs.cpio' -u squash -g squash '$root' '$work/nodes.list'"

mkdir "$work/out"
cp "$ksrc/arch/riscv/boot/Image" "$work/out/Image"
gzip -n -9 <"$work/initramfs.cpio" >"$work/out/initramfs.cpio.gz"

stage 7 "data disk: data.img (ext4)"
# The files come from guest/data/ (plus an empty redis/ for Redis's dir). The
# UUID and directory hash seed are fixed, E2FSPROGS_FAKE_TIME fixes the
# superblock's and new inodes' times, and debugfs then sets every copied
# inode's owner to root and its times to the build date (`mke2fs -d` copies
# each file's owner and ctime from the host), so the same recipe gives the
# same bytes whoever builds it and whenever.
data=$work/data
mkdir -p "$data"
cp -R "$recipe/data/." "$data/"
mkdir -p "$data/redis"
chmod -R u=rwX,go=rX "$data"
export E2FSPROGS_FAKE_TIME=$epoch
# ext4 with its journal, so a guest killed in the middle of a write (a pair
# stopped with `ftvm down`) leaves a file system the next boot recovers;
# inode tables and journal are written out now rather than by the guest's
# lazy-init thread after its first mount.
run mke2fs -q -F -t ext4 -b 4096 -I 256 -m 0 -L ftvm-data \
  -U 6674766d-6461-7461-0000-000000000001 \
  -E hash_seed=6674766d-6461-7461-0000-000000000002,root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0 \
  -d "$data" "$work/out/data.img" 64M
(cd "$data" && find . -print | LC_ALL=C sort) | while IFS= read -r path; do
  path=/${path#./}
  path=${path%/.}
  for field in atime mtime ctime; do printf 'sif "%s" %s @%s\n' "${path:-/}" "$field" "$epoch"; done
  printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "${path:-/}" "${path:-/}"
done >"$work/debugfs.cmds"
run debugfs -w -f "$work/debugfs.cmds" "$work/out/data.img"
run e2fsck -fn "$work/out/data.img"
unset E2FSPROGS_FAKE_TIME
cp "$ksrc/System.map" "$work/out/System.map"
cp "$ksrc/.config" "$work/out/linux.config"
cp "$bsrc/.config" "$work/out/busybox.config"

size_of() { stat -c %s "$1"; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }
{
  printf 'ftvm guest image\n'
  printf 'hash: %s\n' "$hash"
  printf 'built: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  printf 'build date inside the image: %s\n' "$build_date"
  printf '\n[inputs]\n'
  printf '%s\n' "$inputs" | sed 's/^/  /'
  printf '\n[kernel]\n'
  printf 'release: %s\n' "$kernel_release"
  printf 'Image: %s bytes, sha256 %s\n' "$(size_of "$work/out/Image")" "$(sha_of "$work/out/Image")"
  printf '\n[initramfs]\n'
  printf 'initramfs.cpio.gz: %s bytes (%s uncompressed), sha256 %s\n' \
    "$(size_of "$work/out/initramfs.cpio.gz")" "$(size_of "$work/initramfs.cpio")" \
    "$(sha_of "$work/out/initramfs.cpio.gz")"
  printf 'busybox: %s bytes\n' "$(size_of "$root/bin/busybox")"
  printf 'ftvm-poweroff: %s bytes\n' "$(size_of "$root/sbin/ftvm-poweroff")"
  printf 'cpubench: %s bytes\n' "$(size_of "$root/bin/cpubench")"
  printf 'redis-server: %s bytes (%s)\n' "$(size_of "$root/usr/bin/redis-server")" "$redis_release"
  printf 'redis-cli: %s bytes\n' "$(size_of "$root/usr/bin/redis-cli")"
  printf '\n[data disk]\n'
  printf 'data.img: %s bytes, sha256 %s\n' "$(size_of "$work/out/data.img")" "$(sha_of "$work/out/data.img")"
  printf '\n[build]\n'
  printf 'host: %s cores (make -j%s)\n' "$(nproc)" "$jobs"
  printf 'kernel compile: %s s\n' "$t_kernel"
  printf 'busybox compile: %s s\n' "$t_busybox"
  printf 'redis compile: %s s\n' "$t_redis"
  printf 'total: %s s\n' "$((SECONDS - t_start))"
} >"$work/out/manifest.txt"
cp "$log" "$work/out/build.log"

if [[ -e $out ]]; then # only with --force: swap the old entry out first
  mv -T "$out" "$work/replaced"
fi
mv -T "$work/out" "$out"
point_current
build_ok=1
say "guest image built in $((SECONDS - t_start)) s: $out"
printf '%s\n' "$out"
