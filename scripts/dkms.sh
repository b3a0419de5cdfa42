#!/usr/bin/env bash
# `make dkms`: register RustIC's sources with DKMS, then build and install
# hv_rustic.ko for one kernel through DKMS.
#   dkms.sh [build|install]    default install (build only: build)
# Environment:
#   KVER     the kernel release (default: KDIR's, else the running kernel's)
#   KDIR     its build tree (default: /lib/modules/KVER/build)
#   DKMS_ROOT  a private root for DKMS's trees (sources, builds, installed
#            modules) instead of the system's; the tests use it
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "dkms: $*" >&2; exit 1; }
command -v dkms > /dev/null || die "dkms missing: apt-get install dkms (or run 'make deps')"

action=${1:-install}
case "$action" in build|install) ;; *) die "usage: dkms.sh [build|install]" ;; esac
version=$(cat "$RUSTIC_ROOT/VERSION")
conf_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$RUSTIC_ROOT/dkms.conf")
[ "$conf_version" = "$version" ] || die "dkms.conf says version '$conf_version', VERSION says '$version'"

KDIR=${KDIR:-}
KVER=${KVER:-}
if [ -z "$KVER" ]; then
  if [ -n "$KDIR" ]; then KVER=$(make -s -C "$KDIR" kernelrelease); else KVER=$(uname -r); fi
fi
KDIR=${KDIR:-/lib/modules/$KVER/build}
bash "$RUSTIC_ROOT/scripts/module.sh" check "$KDIR"

trees=()
srcroot=/usr/src
if [ -n "${DKMS_ROOT:-}" ]; then
  # DKMS_ROOT/root/lib/modules stands in for /lib/modules; DKMS's own depmod
  # would index the system's, so it is run here on the private one instead.
  mkdir -p "$DKMS_ROOT"/{src,dkms} "$DKMS_ROOT/root/lib/modules/$KVER"
  srcroot=$DKMS_ROOT/src
  trees=(--sourcetree "$srcroot" --dkmstree "$DKMS_ROOT/dkms"
         --installtree "$DKMS_ROOT/root/lib/modules" --no-depmod)
fi
# DKMS takes the sources from SRCROOT/hv-rustic-VERSION: a fresh copy of what
# the module is built from.
src=$srcroot/hv-rustic-$version
rm -rf "$src"
bash "$RUSTIC_ROOT/scripts/install.sh" source "$src"
dkms "${trees[@]}" remove -m hv-rustic -v "$version" --all > /dev/null 2>&1 || true
dkms "${trees[@]}" add -m hv-rustic -v "$version"
dkms "${trees[@]}" build -m hv-rustic -v "$version" -k "$KVER" --kernelsourcedir "$KDIR"
if [ "$action" = install ]; then
  dkms "${trees[@]}" install -m hv-rustic -v "$version" -k "$KVER" --kernelsourcedir "$KDIR"
  [ -z "${DKMS_ROOT:-}" ] || depmod -b "$DKMS_ROOT/root" -a "$KVER"
fi
dkms "${trees[@]}" status -m hv-rustic -v "$version" -k "$KVER"
