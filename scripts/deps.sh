#!/usr/bin/env bash
# Install everything RustIC's build and tests need on a Debian 12 machine.
# Idempotent: each step checks first, and `apt-get update` runs only when a
# package is actually missing.
set -euo pipefail

APT_PACKAGES=(
  # kernel build
  linux-source-6.12 kmod bc flex bison libelf-dev libssl-dev cpio xz-utils
  clang-16 libclang-16-dev llvm-16 lld-16
  # guest
  qemu-system-x86 busybox-static
  # tools copied into the guest initramfs
  iproute2 ethtool iperf3 fio e2fsprogs evtest python3 netcat-openbsd lsscsi
  hyperv-daemons linuxptp
  # layout tests, benchmarks
  gcc make
  # packaging checks: DKMS, the Debian package, the install tree
  dkms dh-dkms debhelper dpkg-dev lintian
)

say() { printf 'deps: %s\n' "$*"; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  say "adding rust-src"
  rustup component add rust-src
fi

if ! command -v bindgen >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/bindgen" ]; then
  say "installing bindgen-cli"
  LIBCLANG_PATH=$(llvm-config-16 --libdir) cargo install --locked bindgen-cli
fi

if [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
  say "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
say "ok"
