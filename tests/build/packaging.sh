#!/usr/bin/env bash
# How a distro or an administrator installs RustIC, checked without Hyper-V:
# `make install` into a staging root and `make uninstall` out of it, the
# module's metadata (modinfo), the modprobe.d file against the test kernel's
# own C Hyper-V modules (kmod's dry run), the initramfs-tools hook, and the
# Debian package (`make deb`, lintian-clean). KTAP on stdout.
#
#   packaging.sh KDIR    the kernel tree hv_rustic.ko was just built against
set -u
cd "$(dirname "$0")/../.."
. scripts/env.sh
kdir=${1:?usage: packaging.sh KDIR}
kver=$(make -s -C "$kdir" kernelrelease)
version=$(cat VERSION)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cases=(install-stages-module-and-config modinfo-metadata log-lines-have-prefix
       modprobe-d-keeps-c-stack-out uninstall-removes-all initramfs-hook-loads-early
       deb-package-lintian-clean deb-package-contents)
echo "KTAP version 1"
echo "1..${#cases[@]}"
n=0
# result OK_OR_WHY: one KTAP line for the next case; an empty WHY passes.
result() {
  n=$((n + 1))
  if [ -z "$1" ]; then echo "ok $n ${cases[$((n - 1))]}"; else echo "not ok $n ${cases[$((n - 1))]} # $1"; fi
}

stage=$work/stage
ko=$stage/lib/modules/$kver/updates/hv_rustic.ko
# 1. make install DESTDIR=...: the three files and a depmod that knows the module.
why=
if ! make -s install DESTDIR="$stage" KDIR="$kdir" > "$work/install.log" 2>&1; then
  why="make install failed: $(tail -n 1 "$work/install.log")"
else
  [ -f "$ko" ] || why="no $ko"
  [ -f "$stage/etc/modprobe.d/hv-rustic.conf" ] || why="${why:+$why; }no modprobe.d file"
  [ -x "$stage/etc/initramfs-tools/hooks/hv-rustic" ] || why="${why:+$why; }no executable initramfs hook"
  grep -q "^updates/hv_rustic.ko:" "$stage/lib/modules/$kver/modules.dep" 2> /dev/null ||
    why="${why:+$why; }depmod's modules.dep does not list updates/hv_rustic.ko"
fi
result "$why"

# 2. modinfo: version, license, description, the ACPI aliases of the VMBus
#    device, and a description for every parameter.
why=
if [ -f "$ko" ]; then
  info=$(modinfo "$ko")
  [ "$(modinfo -F version "$ko")" = "$version" ] || why="version '$(modinfo -F version "$ko")', not $version"
  [ "$(modinfo -F license "$ko")" = GPL ] || why="${why:+$why; }license '$(modinfo -F license "$ko")'"
  [ -n "$(modinfo -F description "$ko")" ] || why="${why:+$why; }no description"
  for alias in 'acpi*:VMBUS:*' 'acpi*:VMBus:*'; do
    grep -qxF "$alias" <<<"$(modinfo -F alias "$ko")" || why="${why:+$why; }no alias $alias"
  done
  # `parm: NAME:DESCRIPTION (TYPE)`; parmtype lines name every parameter.
  for p in $(modinfo -F parmtype "$ko" | cut -d: -f1); do
    grep -qE "^parm: +$p:[^ (]" <<<"$info" || why="${why:+$why; }parameter $p has no description"
  done
else
  why="no installed module"
fi
result "$why"

# 3. The C shims' log lines carry the module's name as Rust's pr_* macros do.
bad=$(grep -nE '\bpr_(emerg|alert|crit|err|warn|notice|info|debug)(_ratelimited)?\("' \
        $(git ls-files 'rust/*.c' 'tests/*.c' 2>/dev/null || find rust tests -name '*.c') |
      grep -v 'pr_[a-z_]*("hv_rustic: ' || true)
result "${bad:+$(grep -c . <<<"$bad") without the hv_rustic: prefix, e.g. $(head -n 1 <<<"$bad" | cut -c1-120)}"

# 4. Against the test kernel's own C Hyper-V modules: with the installed
#    modprobe.d, the ACPI VMBus alias resolves to hv_rustic alone and a
#    device's vmbus: alias to nothing; without it, to hv_vmbus (so the check
#    can fail).
why=
moddir=$kdir/../modules/lib/modules/$kver
root=$work/root
if [ ! -d "$moddir/kernel/drivers/hv" ]; then
  why="no C Hyper-V modules in $moddir"
else
  mkdir -p "$root/lib/modules"
  cp -a "$moddir" "$root/lib/modules/"
  DESTDIR=$root KVER=$kver bash scripts/install.sh install "$stage/lib/modules/$kver/updates/hv_rustic.ko" > /dev/null
  dry() { # CONFDIR ALIAS: what modprobe would insmod, module names only
    modprobe -d "$root" -S "$kver" -C "$1" -n -v -b "$2" 2>&1 |
      sed -n 's|^insmod .*/\([^/]*\)\.ko.*|\1|p' | sort | tr '\n' ' '
  }
  netvsc_alias=vmbus:635161f83edfc546913ff2d2f965ed0e
  got=$(dry "$root/etc/modprobe.d" acpi:VMBUS:)
  [ "$got" = "hv_rustic " ] || why="acpi:VMBUS: would load '$got', not hv_rustic alone"
  got=$(dry "$root/etc/modprobe.d" "$netvsc_alias")
  [ -z "$got" ] || why="${why:+$why; }$netvsc_alias would load '$got'"
  mkdir -p "$work/noconf"
  got=$(dry "$work/noconf" acpi:VMBUS:)
  grep -q hv_vmbus <<<"$got" || why="${why:+$why; }without the file acpi:VMBUS: would load '$got', not hv_vmbus: the check proves nothing"
  got=$(dry "$work/noconf" "$netvsc_alias")
  grep -q hv_netvsc <<<"$got" || why="${why:+$why; }without the file $netvsc_alias would load '$got'"
fi
result "$why"

# 5. make uninstall takes out all that install put in, and depmod forgets it.
why=
make -s uninstall DESTDIR="$stage" KVER="$kver" > "$work/uninstall.log" 2>&1 || why="make uninstall failed"
left=$(cd "$stage" && find . -type f -not -name 'modules.*')
[ -z "$left" ] || why="${why:+$why; }left behind: $(tr '\n' ' ' <<<"$left")"
! grep -q hv_rustic "$stage/lib/modules/$kver/modules.dep" 2> /dev/null || why="${why:+$why; }modules.dep still lists hv_rustic"
result "$why"

# 6. The initramfs-tools hook, run as mkinitramfs runs it, with
#    hook-functions' force_load recorded: it adds and force-loads hv_rustic
#    when the kernel has the module, and says so when it has not.
why=
hook=$work/hook
sed "s|^\. /usr/share/initramfs-tools/hook-functions|. $work/hook-functions|" \
  packaging/initramfs-tools/hv-rustic > "$hook"
cat > "$work/hook-functions" <<STUB
force_load() { echo "force_load \$*" >> "$work/hook.calls"; }
modinfo() { [ "\$3" = hv_rustic ] && [ "\$2" = "\$HAVE_KVER" ]; }
STUB
[ "$(sh "$hook" prereqs)" = "" ] || why="prereqs printed something"
version=$kver HAVE_KVER=$kver sh "$hook" 2> /dev/null
[ "$(cat "$work/hook.calls" 2> /dev/null)" = "force_load hv_rustic" ] || why="${why:+$why; }with the module: calls '$(cat "$work/hook.calls" 2> /dev/null)'"
rm -f "$work/hook.calls"
msg=$(version=$kver HAVE_KVER=none sh "$hook" 2>&1)
[ ! -e "$work/hook.calls" ] || why="${why:+$why; }without the module it still force-loads"
grep -q "no hv_rustic module for kernel $kver" <<<"$msg" || why="${why:+$why; }without the module it says '$msg'"
result "$why"

# 7-8. make deb: the source and binary packages, lintian-clean (deb.sh fails
#      otherwise), holding the module's sources for DKMS and the files that
#      make it the VMBus driver, and nothing of the test build.
deb=
if deb=$(bash scripts/deb.sh "$work/deb" 2> "$work/deb.err" | tail -n 1) && [ -f "$deb" ]; then
  result ""
  why=
  contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|')
  for f in /usr/src/hv-rustic-$version/dkms.conf /usr/src/hv-rustic-$version/Kbuild \
           /usr/src/hv-rustic-$version/rustic.rs /usr/src/hv-rustic-$version/vmbus/connection.rs \
           /etc/modprobe.d/hv-rustic.conf /usr/share/initramfs-tools/hooks/hv-rustic; do
    grep -qxF "$f" <<<"$contents" || why="${why:+$why; }no $f"
  done
  test_parts=$(grep -E "^/usr/src/hv-rustic-$version/(tests/|rust/sim/|drivers/.*/sim/)" <<<"$contents" | head -n 1)
  [ -z "$test_parts" ] || why="${why:+$why; }ships test-build sources, e.g. $test_parts"
  dpkg-deb -f "$deb" Depends | grep -q dkms || why="${why:+$why; }does not depend on dkms"
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst 2> /dev/null | grep -q 'dkms' ||
    why="${why:+$why; }postinst does not hand the sources to DKMS"
  result "$why"
else
  result "$(tail -n 3 "$work/deb.err" | tr '\n' ' ')"
  result "no package built"
fi
