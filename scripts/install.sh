#!/usr/bin/env bash
# Install RustIC the way an out-of-tree driver is installed, and take it out.
#
#   install.sh install   [KO]   the module under /lib/modules/KVER/updates/,
#                               the modprobe.d file that keeps the C Hyper-V
#                               stack from loading, the initramfs-tools hook;
#                               then depmod (and update-initramfs on /)
#   install.sh uninstall        remove all of that; depmod again
#   install.sh source DIR       copy the module's sources (what Kbuild and
#                               DKMS need, nothing of the tests) into DIR
#   install.sh files            list those sources, one per line
#
# Environment: DESTDIR (a staging root; empty means this machine), KVER (the
# kernel release; default: KDIR's, else the running kernel's), KDIR.
# KO defaults to a fresh production build against KDIR.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }

DESTDIR=${DESTDIR:-}
KDIR=${KDIR:-}
KVER=${KVER:-}

# The module's sources: the Kbuild crate and its C shims. Host-only parts
# (benchmarks, fuzz targets, host tests) and the test build's parts (the
# simulator, the debugfs control, KUnit) stay out.
source_files() {
  (cd "$RUSTIC_ROOT" &&
    { printf '%s\n' Kbuild VERSION rustic.rs dkms.conf
      find rust vmbus drivers -type f \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name 'Cargo.toml' \) \
        -not -path '*/bench/*' -not -path '*/fuzz/*' -not -path '*/target/*' \
        -not -path '*/tests/*' -not -path '*/sim/*' -not -path 'rust/base/debugfs.*' \
        -not -path 'rust/base/kunit.rs' -not -name 'bindings_generated.rs' -not -name '*.mod.c'
    } | LC_ALL=C sort)
}

kernel_release() { # KDIR
  make -s -C "$1" kernelrelease 2>/dev/null || die "cannot read the kernel release of $1"
}

resolve_kver() {
  if [ -n "$KVER" ]; then return; fi
  if [ -n "$KDIR" ]; then KVER=$(kernel_release "$KDIR"); else KVER=$(uname -r); fi
}

files=(
  "etc/modprobe.d/hv-rustic.conf"
  "etc/initramfs-tools/hooks/hv-rustic"
)

run_depmod() {
  if [ -n "$DESTDIR" ]; then
    # A staging root has no modules.order or modules.builtin; depmod's
    # warnings about them say nothing about the module.
    depmod -b "$DESTDIR" -a "$KVER" 2> >(grep -v 'could not open modules\.' >&2)
  else
    depmod -a "$KVER"
  fi
}

case "${1:-}" in
install)
  ko=${2:-}
  if [ -z "$ko" ]; then
    if [ -z "$KDIR" ]; then
      KDIR=/lib/modules/$(uname -r)/build
      [ -d "$KDIR" ] || die "no KDIR given and no build tree for the running kernel at $KDIR"
    fi
    ko=$(bash "$RUSTIC_ROOT/scripts/module.sh" build "$KDIR" | tail -n 1)
  fi
  [ -f "$ko" ] || die "$ko does not exist"
  resolve_kver
  root=${DESTDIR%/}
  install -D -m 644 "$ko" "$root/lib/modules/$KVER/updates/hv_rustic.ko"
  install -D -m 644 "$RUSTIC_ROOT/packaging/modprobe.d/hv-rustic.conf" "$root/${files[0]}"
  install -D -m 755 "$RUSTIC_ROOT/packaging/initramfs-tools/hv-rustic" "$root/${files[1]}"
  run_depmod
  say "installed hv_rustic.ko for $KVER under ${root}/lib/modules/$KVER/updates"
  if [ -z "$DESTDIR" ]; then
    if command -v update-initramfs > /dev/null 2>&1; then
      update-initramfs -u -k "$KVER"
    else
      say "no update-initramfs here: rebuild the initramfs of $KVER so that it loads hv_rustic"
    fi
  fi
  ;;
uninstall)
  resolve_kver
  root=${DESTDIR%/}
  rm -f "$root/lib/modules/$KVER/updates/hv_rustic.ko" "$root/${files[0]}" "$root/${files[1]}"
  rmdir "$root/lib/modules/$KVER/updates" 2> /dev/null || true
  if [ -d "$root/lib/modules/$KVER" ]; then run_depmod; fi
  say "removed hv_rustic for $KVER from ${root:-/}"
  if [ -z "$DESTDIR" ] && command -v update-initramfs > /dev/null 2>&1; then
    update-initramfs -u -k "$KVER"
  fi
  ;;
source)
  dest=${2:-}
  [ -n "$dest" ] || die "usage: install.sh source DIR"
  mkdir -p "$dest"
  source_files | (cd "$RUSTIC_ROOT" && xargs cp --parents -t "$dest")
  ;;
files)
  source_files
  ;;
*)
  die "usage: install.sh install [KO] | uninstall | source DIR | files"
  ;;
esac
