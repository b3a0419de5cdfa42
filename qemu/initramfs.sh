#!/usr/bin/env bash
# Build the guest's initramfs in two layers that the kernel unpacks in turn:
#
#   initramfs.sh base KDIR MODDIR OUT     busybox, real Debian tools with their
#                                         libraries, python3 + lsvmbus, the
#                                         kernel's modules (slow; cached by key)
#   initramfs.sh overlay KO OUT [FILE..]  /init, hv_rustic.ko and per-boot files
#                                         (fast; made every boot)
#
# An overlay FILE is SRC=DEST (DEST inside the guest).
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

die() { echo "initramfs: $*" >&2; exit 1; }

# Tools copied from the host into the guest, at the same paths.
TOOLS=(/bin/bash /bin/ip /usr/sbin/ethtool /usr/bin/iperf3 /usr/bin/fio /usr/sbin/mke2fs
       /usr/sbin/e2fsck /usr/bin/evtest /usr/bin/nc.openbsd /usr/bin/python3.11
       /usr/bin/sha256sum /usr/bin/timeout /usr/bin/kmod /usr/bin/lsscsi
       # hyperv-daemons, unmodified, with the scripts the KVP daemon runs;
       # linuxptp's phc_ctl reads the time-sync service's PTP clock
       /usr/sbin/hv_kvp_daemon /usr/sbin/hv_vss_daemon
       /usr/libexec/hypervkvpd/hv_get_dhcp_info /usr/libexec/hypervkvpd/hv_get_dns_info
       /usr/sbin/phc_ctl)

copy_with_libs() { # FILE STAGING: copy FILE and every shared library it needs
  local file=$1 root=$2
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
  { ldd "$file" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

pack() { # DIR OUT
  (cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) > "$2.tmp"
  mv "$2.tmp" "$2"
}

case "${1:-}" in
base)
  kdir=$2 moddir=$3 out=$4
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,lib/modules}
  cp /bin/busybox "$stage/bin/busybox"
  for t in "${TOOLS[@]}"; do
    [ -x "$t" ] || die "$t missing: run 'make deps'"
    copy_with_libs "$t" "$stage"
  done
  ln -s nc.openbsd "$stage/usr/bin/nc"
  ln -s python3.11 "$stage/usr/bin/python3"
  ln -s mke2fs "$stage/usr/sbin/mkfs.ext4"
  # kmod's modprobe, depmod and modinfo (they read modprobe.d as a distro's
  # do), apart from busybox's, which the scenarios otherwise use.
  mkdir -p "$stage/usr/libexec/kmod"
  for t in modprobe depmod modinfo lsmod; do ln -s /usr/bin/kmod "$stage/usr/libexec/kmod/$t"; done
  # Python's standard library, without what a guest test never imports.
  (cd /usr/lib && tar --exclude=__pycache__ --exclude='python3.11/test' \
     --exclude='python3.11/idlelib' --exclude='python3.11/tkinter' \
     --exclude='python3.11/ensurepip' --exclude='python3.11/lib2to3' \
     --exclude='python3.11/pydoc_data' --exclude='python3.11/config-*' \
     --exclude='python3.11/site-packages' --exclude='python3.11/dist-packages' \
     -cf - python3.11) | tar -C "$stage/usr/lib" -xf -
  for so in "$stage"/usr/lib/python3.11/lib-dynload/*.so; do
    { ldd "$so" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
      [ -e "$stage$lib" ] || { mkdir -p "$stage$(dirname "$lib")"; cp -L "$lib" "$stage$lib"; }
    done
  done
  # The kernel's own lsvmbus, unmodified.
  install -m 755 "$kdir/tools/hv/lsvmbus" "$stage/usr/sbin/lsvmbus"
  cp -a "$moddir/lib/modules/." "$stage/lib/modules/"
  for v in "$stage"/lib/modules/*/; do depmod -b "$stage" "$(basename "$v")"; done
  echo "root:x:0:0:root:/root:/bin/sh" > "$stage/etc/passwd"
  echo "root:x:0:" > "$stage/etc/group"
  pack "$stage" "$out"
  ;;
overlay)
  ko=$2 out=$3; shift 3
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/lib/modules/rustic"
  install -m 755 "$RUSTIC_ROOT/qemu/init" "$stage/init"
  install -m 644 "$ko" "$stage/lib/modules/rustic/hv_rustic.ko"
  for spec in "$@"; do
    src=${spec%%=*} dest=${spec#*=}
    mkdir -p "$stage$(dirname "$dest")"
    cp -a "$src" "$stage$dest"
  done
  pack "$stage" "$out"
  ;;
*) die "usage: initramfs.sh base KDIR MODDIR OUT | overlay KO OUT [SRC=DEST...]" ;;
esac
