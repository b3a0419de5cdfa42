# timeout: 90
# hv_rustic installed the way `make install` installs it (qemu/boot.sh stages
# that tree under /installed): kmod's depmod finds it under updates/,
# modprobe loads it by name and by the ACPI VMBus alias, the installed
# modprobe.d keeps the C stack's modules (the test kernel has them) from
# loading for their aliases, and modprobe -r unloads it.
. /tests/lib.sh

export PATH=/usr/libexec/kmod:$PATH
kver=$(uname -r)
updates=/lib/modules/$kver/updates
[ -f "/installed$updates/hv_rustic.ko" ] || fail "no installed tree for $kver under /installed"
[ -f /installed/etc/modprobe.d/hv-rustic.conf ] || fail "no modprobe.d file under /installed"

uninstall() {
  modprobe -r hv_rustic 2> /dev/null
  rm -rf "$updates" /etc/modprobe.d/hv-rustic.conf
  depmod -a
}
trap 'uninstall; kill -KILL $(jobs -p) 2> /dev/null; wait' EXIT

mkdir -p "$updates" /etc/modprobe.d
cp "/installed$updates/hv_rustic.ko" "$updates/"
cp /installed/etc/modprobe.d/hv-rustic.conf /etc/modprobe.d/
depmod -a || fail "depmod failed"
expect_eq "modinfo -n hv_rustic" "$updates/hv_rustic.ko" "$(modinfo -n hv_rustic)"

# The C stack is there, and blacklisted for its aliases.
[ -n "$(modinfo -n hv_vmbus 2> /dev/null)" ] || fail "the test kernel has no hv_vmbus module to keep out"
loads() { modprobe -n -v -b "$1" 2>&1 | sed -n 's|^insmod .*/\([^/]*\)\.ko.*|\1|p' | tr '\n' ' '; }
expect_eq "modules for acpi:VMBUS:" "hv_rustic " "$(loads acpi:VMBUS:)"
expect_eq "modules for netvsc's vmbus: alias" "" "$(loads vmbus:635161f83edfc546913ff2d2f965ed0e)"

modprobe hv_rustic simulate=1 sim_devices=test || fail "modprobe hv_rustic failed"
[ -d /sys/module/hv_rustic ] || fail "hv_rustic not loaded after modprobe"
[ -n "$(ls /sys/bus/vmbus/devices)" ] || fail "no VMBus device after modprobe hv_rustic simulate=1"
grep -q '^hv_vmbus ' /proc/modules && fail "hv_vmbus got loaded"
modprobe -r hv_rustic || fail "modprobe -r hv_rustic failed"
[ ! -d /sys/module/hv_rustic ] || fail "hv_rustic still loaded after modprobe -r"
echo "installed hv_rustic $(modinfo -F version hv_rustic) loaded and unloaded with kmod's modprobe"
