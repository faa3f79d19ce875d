#!/usr/bin/env bash
# Installs every Debian package ftvm needs to build, test and build its guest
# image. Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config
  libfdt-dev libcli11-dev libfmt-dev nlohmann-json3-dev libssl-dev libzstd-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev libxbyak-dev
  clang libclang-rt-14-dev
  # guest image
  linux-source-6.1 gcc-riscv64-linux-gnu libc6-dev-riscv64-cross binutils-riscv64-linux-gnu
  flex bison bc libelf-dev cpio xz-utils e2fsprogs dpkg-dev fakeroot
  # tests and peers
  qemu-system-misc opensbi iproute2 iputils-ping redis-tools hyperfine device-tree-compiler etcd-server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "ftvm: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Source packages (busybox, redis) need a deb-src entry mirroring the
# machine's own Debian entry.
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  for f in /etc/apt/sources.list.d/debian.sources; do
    [ -f "$f" ] || continue
    echo "ftvm: adding deb-src to $f"
    sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
    apt-get update -q
  done
fi
