#!/usr/bin/env bash
# `make intree KSRC=/path`: put RustIC into a Linux 6.12 source tree as
# drivers/hv/rustic/, with a Kconfig entry (HV_RUSTIC) sourced from
# drivers/hv/Kconfig and a line in drivers/hv/Makefile. Idempotent: running
# it again refreshes the sources. Then: enable HV_RUSTIC=m (menuconfig, or
# scripts/config --module HV_RUSTIC && make olddefconfig) and build.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "intree: $*" >&2; exit 1; }

ksrc=${1:-}
[ -n "$ksrc" ] || die "usage: intree.sh KSRC (or make intree KSRC=/path/to/linux-6.12)"
[ -f "$ksrc/Makefile" ] && [ -f "$ksrc/drivers/hv/Kconfig" ] && [ -f "$ksrc/drivers/hv/Makefile" ] ||
  die "$ksrc is not a Linux source tree with drivers/hv"
version=$(sed -n 's/^VERSION = //p' "$ksrc/Makefile").$(sed -n 's/^PATCHLEVEL = //p' "$ksrc/Makefile")
[ "$version" = 6.12 ] || die "$ksrc is Linux $version; RustIC targets 6.12"

dest=$ksrc/drivers/hv/rustic
rm -rf "$dest"
bash "$RUSTIC_ROOT/scripts/install.sh" source "$dest"
rm -f "$dest/dkms.conf"
install -m 644 "$RUSTIC_ROOT/packaging/intree/Kconfig" "$dest/Kconfig"

kconfig=$ksrc/drivers/hv/Kconfig
if ! grep -q '^source "drivers/hv/rustic/Kconfig"' "$kconfig"; then
  # Inside the Hyper-V menu: before its closing endmenu.
  last=$(grep -n '^endmenu' "$kconfig" | tail -n 1 | cut -d: -f1)
  [ -n "$last" ] || die "no endmenu in $kconfig"
  sed -i "${last}i source \"drivers/hv/rustic/Kconfig\"\n" "$kconfig"
fi
makefile=$ksrc/drivers/hv/Makefile
grep -q '^obj-$(CONFIG_HV_RUSTIC)' "$makefile" ||
  printf '\nobj-$(CONFIG_HV_RUSTIC)\t\t+= rustic/\n' >> "$makefile"
echo "intree: RustIC $(cat "$RUSTIC_ROOT/VERSION") is in $dest (config HV_RUSTIC)"
