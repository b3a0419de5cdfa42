#!/usr/bin/env bash
# Build RustIC's test kernel from Debian's linux-source-6.12 into the cache.
#
#   kernel.sh build   build if missing; print the kernel tree (KDIR) last
#   kernel.sh kdir    print where the tree is (or would be); build nothing
#
# The cache key is the kernel version plus a hash of the config fragment, the
# recipe version and the rustc version, so a change to any of them builds a
# fresh tree beside the old one.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "kernel: $*" >&2; exit 1; }

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing: run 'make deps'"
# RUSTIC_SOURCE_VERSION stands in for the package's version in tests.
version=${RUSTIC_SOURCE_VERSION:-$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null | sed 's/-.*//')}
[ -n "$version" ] || die "cannot tell the version of linux-source-6.12"
if [ "$(printf '%s\n%s\n' "$RUSTIC_MIN_KERNEL" "$version" | sort -V | head -n1)" != "$RUSTIC_MIN_KERNEL" ]; then
  die "linux-source-6.12 is $version; RustIC needs $RUSTIC_MIN_KERNEL or newer (the first with the backports rustc 1.95 needs)"
fi

fragment="$RUSTIC_ROOT/qemu/kernel.config"
# Bump when the build recipe below changes what it produces.
recipe=1
# The kernel's Rust artefacts are tied to the rustc that built them.
rustc_version=$(rustc --version 2>/dev/null || echo none)
key=$( { cat "$fragment"; echo "recipe $recipe"; echo "$rustc_version"; } | sha256sum | cut -c1-12)
dir="$RUSTIC_CACHE/kernel-$version-$key"
tree="$dir/linux"

case "${1:-build}" in
  kdir) echo "$tree"; exit 0 ;;
  build) ;;
  *) die "usage: kernel.sh build|kdir" ;;
esac

if [ -f "$dir/.built" ]; then
  echo "$tree"
  exit 0
fi

jobs=$(( $(nproc) + 1 ))
mkdir -p "$dir"
# A tree built before for the same source (another config fragment) seeds
# the new one: Kbuild then rebuilds only what the changed options touch
# (and all of the Rust side if rustc changed), not the whole kernel.
seed=""
for d in "$RUSTIC_CACHE"/kernel-"$version"-*; do
  if [ "$d" != "$dir" ] && [ ! -L "$d" ] && [ -f "$d/.built" ]; then seed=$d; fi
done
if [ ! -f "$tree/Makefile" ] && [ -n "$seed" ]; then
  echo "kernel: seeding $dir from $seed" >&2
  rm -rf "$tree" "$dir/seed"
  cp -a "$seed/linux" "$dir/seed"
  mv "$dir/seed" "$tree"
fi
if [ ! -f "$tree/Makefile" ]; then
  echo "kernel: unpacking linux-source-$version into $dir" >&2
  rm -rf "$tree" "$dir/unpack"
  mkdir -p "$dir/unpack"
  tar -C "$dir/unpack" -xf "$tarball"
  mv "$dir/unpack"/linux-source-6.12 "$tree"
  rmdir "$dir/unpack"
fi

cd "$tree"
echo "kernel: configuring (tinyconfig + qemu/kernel.config)" >&2
make -s tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config "$fragment" >/dev/null
make -s olddefconfig >/dev/null

# Every option the fragment asks for must have survived olddefconfig.
bad=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) want=$line ;;
    "# CONFIG_"*" is not set") want=$line ;;
    *) continue ;;
  esac
  opt=${want#\# }; opt=${opt%%[= ]*}
  got=$(grep -E "^($opt=|# $opt is not set)" .config || true)
  if [ "$got" != "$want" ] && ! { [ -z "$got" ] && [[ "$want" == *"is not set" ]]; }; then
    echo "kernel: config wants '$want' but got '${got:-unset}'" >&2
    bad=1
  fi
done < "$fragment"
[ "$bad" = 0 ] || die "the config fragment did not apply; see the lines above"

make -s rustavailable >/dev/null || die "Rust is not available to the kernel build (run 'make deps')"

echo "kernel: building $version with $jobs jobs (about 10-15 minutes from scratch)" >&2
start=$(date +%s)
make -j"$jobs" bzImage modules > "$dir/build.log" 2>&1 || { tail -n 40 "$dir/build.log" >&2; die "kernel build failed; full log in $dir/build.log"; }
rm -rf "$dir/modules"
make -s INSTALL_MOD_PATH="$dir/modules" INSTALL_MOD_STRIP=1 modules_install >/dev/null
echo "kernel: built in $(( $(date +%s) - start )) s" >&2
touch "$dir/.built"
echo "$tree"
