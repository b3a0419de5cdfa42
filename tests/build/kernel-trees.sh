#!/usr/bin/env bash
# RustIC built the two other ways a distro builds a module, against the
# cached test kernel: through DKMS (`make dkms`'s script, with DKMS's trees
# in a private root), and in the kernel tree itself (`make intree` into a
# copy of the tree, HV_RUSTIC=m, the module built by the kernel's own
# make). KTAP on stdout.
#
#   kernel-trees.sh KDIR
set -u
cd "$(dirname "$0")/../.."
. scripts/env.sh
kdir=${1:?usage: kernel-trees.sh KDIR}
kver=$(make -s -C "$kdir" kernelrelease)
version=$(cat VERSION)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cases=(dkms-builds-and-installs intree-configures intree-builds)
echo "KTAP version 1"
echo "1..${#cases[@]}"
n=0
result() {
  n=$((n + 1))
  if [ -z "$1" ]; then echo "ok $n ${cases[$((n - 1))]}"; else echo "not ok $n ${cases[$((n - 1))]} # $1"; fi
}

# 1. dkms add, build, install for the test kernel.
why=
if DKMS_ROOT=$work/dkms KDIR=$kdir KVER=$kver bash scripts/dkms.sh install > "$work/dkms.log" 2>&1; then
  ko=$(find "$work/dkms/root/lib/modules/$kver" -name 'hv_rustic.ko*' | head -n 1)
  if [ -z "$ko" ]; then
    why="dkms installed no hv_rustic.ko under its install tree"
  else
    grep -q '^updates/dkms/hv_rustic.ko' "$work/dkms/root/lib/modules/$kver/modules.dep" ||
      why="depmod does not list updates/dkms/hv_rustic.ko" 
    [ "$(modinfo -F version "$ko")" = "$version" ] || why="DKMS's module has version '$(modinfo -F version "$ko")'"
    [ "$(modinfo -F vermagic "$ko" | cut -d' ' -f1)" = "$kver" ] || why="${why:+$why; }DKMS's module is for '$(modinfo -F vermagic "$ko")'"
  fi
  grep -q "hv-rustic/$version, $kver, .*: installed" "$work/dkms.log" || why="${why:+$why; }dkms status does not say installed"
else
  sed 's/^/# /' "$work/dkms.log" | tail -n 20
  why="scripts/dkms.sh failed"
fi
result "$why"

# 2-3. make intree into a copy of the tree (the cache stays as it is), twice
#      (it must be idempotent); then HV_RUSTIC=m and the kernel's make.
tree=$work/linux
cp -a "$kdir" "$tree"
why=
if make -s intree KSRC="$tree" > "$work/intree.log" 2>&1 && make -s intree KSRC="$tree" >> "$work/intree.log" 2>&1; then
  [ "$(grep -c '^source "drivers/hv/rustic/Kconfig"' "$tree/drivers/hv/Kconfig")" = 1 ] ||
    why="drivers/hv/Kconfig sources the entry $(grep -c 'rustic/Kconfig' "$tree/drivers/hv/Kconfig") times"
  [ "$(grep -c 'CONFIG_HV_RUSTIC' "$tree/drivers/hv/Makefile")" = 1 ] || why="${why:+$why; }drivers/hv/Makefile names it $(grep -c 'CONFIG_HV_RUSTIC' "$tree/drivers/hv/Makefile") times"
  (cd "$tree" && ./scripts/config --module HV_RUSTIC && make -s olddefconfig) > "$work/config.log" 2>&1
  grep -qx 'CONFIG_HV_RUSTIC=m' "$tree/.config" || why="${why:+$why; }HV_RUSTIC=m did not stick: $(grep HV_RUSTIC "$tree/.config")"
else
  why="make intree failed: $(tail -n 2 "$work/intree.log" | tr '\n' ' ')"
fi
result "$why"
why=
if grep -qx 'CONFIG_HV_RUSTIC=m' "$tree/.config" &&
   make -C "$tree" -j"$(( $(nproc) + 1 ))" drivers/hv/rustic/hv_rustic.ko > "$work/build.log" 2>&1; then
  ko=$tree/drivers/hv/rustic/hv_rustic.ko
  [ "$(modinfo -F intree "$ko")" = Y ] || why="the module is not marked in-tree"
  [ "$(modinfo -F version "$ko")" = "$version" ] || why="${why:+$why; }version '$(modinfo -F version "$ko")'"
else
  grep -vE '^make|^  [A-Z]' "$work/build.log" | tail -n 20 | sed 's/^/# /'
  why="the in-tree build failed"
fi
result "$why"
