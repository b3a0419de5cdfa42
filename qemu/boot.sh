#!/usr/bin/env bash
# Boot RustIC's guest under QEMU: the cached test kernel, a two-layer
# initramfs, and hv_rustic.ko. Builds whatever is missing first.
#
#   boot.sh shell                 interactive shell on the serial console
#   boot.sh cmd 'COMMAND'         run COMMAND in the guest, exit with its status
#   boot.sh test CONSOLE_LOG      run tests/guest/*.sh; KTAP on stdout,
#                                 the kernel console into CONSOLE_LOG
#
# In shell and cmd modes the guest's /init loads hv_rustic.ko with the
# simulated Hyper-V host (simulate=1) offering RUSTIC_SIM_DEVICES, and
# KUnit is off (kunit.enable=0: the module's suites run in the test mode's
# scenarios, not at every load). In test mode the scenarios load the module.
#
# Environment: KDIR (another Rust-enabled 6.12 tree); RUSTIC_ACCEL=auto (the
# default: KVM with Hyper-V enlightenments where a probe shows they really
# work, else TCG), tcg, or kvm; RUSTIC_SMP, RUSTIC_MEM; RUSTIC_SCENARIOS
# (test mode: only the scenarios with these numbers, e.g. "60 61");
# RUSTIC_SIM_DEVICES (shell and cmd modes): the module's sim_devices, a
# list of names such as nic0,nic1 (tests/sim/mod.rs has them), `default`
# (net, scsi, kbd, heartbeat, test; when unset), `none` (the simulated host
# offers nothing), or `off` (no simulator: the bus stays empty unless the
# machine is Hyper-V); RUSTIC_KERNEL_ARGS: more kernel command line, last
# (`kunit.enable=1` there brings KUnit back).
#
# RUSTIC_VMBUS=qemu (shell and cmd modes): QEMU's own VMBus instead of the
# simulator: KVM with SynIC, `kvm=off` (else the guest takes KVM's
# signature and never sets up its Hyper-V support), the hv-* enlightenments
# and `-device vmbus-bridge`, and the production module, loaded without
# simulate=1. Only where KVM offers SynIC (KVM_CAP_HYPERV_SYNIC); elsewhere
# it stops with a one-line reason. Not exercised by CI (its KVM has none).
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

die() { echo "boot: $*" >&2; exit 1; }

mode=${1:-shell}
vmbus=${RUSTIC_VMBUS:-sim}
case "$vmbus" in
  sim) ;;
  qemu)
    [ "$mode" != test ] || die "RUSTIC_VMBUS=qemu is for shell and cmd modes (the scenarios need the simulator)"
    reason=$(bash "$RUSTIC_ROOT/qemu/kvm-synic.sh") || die "RUSTIC_VMBUS=qemu: $reason"
    RUSTIC_SIM_DEVICES=off
    ;;
  *) die "RUSTIC_VMBUS must be sim or qemu" ;;
esac
# The module's parameters for /init to load it with (shell and cmd modes);
# a wrong device list is refused before anything is built.
sim_devices=${RUSTIC_SIM_DEVICES:-default}
case "$sim_devices" in
  off) module_args= ;;
  *[!a-z0-9,]*) die "RUSTIC_SIM_DEVICES='$sim_devices': device names (a-z, 0-9) separated by commas, or default, none, off" ;;
  *) module_args="simulate=1 sim_devices=$sim_devices" ;;
esac
kdir=${KDIR:-$(bash "$RUSTIC_ROOT/scripts/kernel.sh" build)}
# Guests get the test build: the debugfs control, the test drivers and the
# simulated host. Plain `make` builds the production module, which QEMU's
# VMBus gets.
if [ "$vmbus" = qemu ]; then
  ko=$(bash "$RUSTIC_ROOT/scripts/module.sh" build "$kdir")
else
  ko=$(RUSTIC_TEST_BUILD=1 bash "$RUSTIC_ROOT/scripts/module.sh" build "$kdir")
fi
kernel_image="$kdir/arch/x86/boot/bzImage"
[ -f "$kernel_image" ] || die "$kernel_image missing: build the kernel in KDIR first"
# Modules of the test kernel live beside its tree in the cache; another KDIR
# brings none, and the guest then has only hv_rustic.ko.
moddir="$kdir/../modules"
[ -d "$moddir/lib/modules" ] || { moddir=$(mktemp -d); mkdir -p "$moddir/lib/modules"; }

build="$RUSTIC_ROOT/build"
mkdir -p "$build"
base_key=$( { echo "$kdir"; cat "$RUSTIC_ROOT/qemu/initramfs.sh"; stat -c %Y "$kernel_image"; } | sha256sum | cut -c1-12)
base="$build/initramfs-base-$base_key.cpio"
if [ ! -f "$base" ]; then
  rm -f "$build"/initramfs-base-*.cpio
  bash "$RUSTIC_ROOT/qemu/initramfs.sh" base "$kdir" "$moddir" "$base"
fi

overlay_files=()
append="console=ttyS0 rustic.mode=$mode panic=-1"
# Shell and cmd modes: /init loads the module with module_args, and KUnit
# stays out of these boots.
case "$mode" in
  shell|cmd)
    printf '%s\n' "$module_args" > "$build/module-args-$mode"
    overlay_files+=("$build/module-args-$mode=/etc/rustic/module-args")
    append="$append kunit.enable=0"
    ;;
esac
case "$mode" in
  shell) ;;
  cmd)
    [ $# -ge 2 ] || die "usage: boot.sh cmd 'COMMAND'"
    printf '%s\n' "$2" > "$build/cmd"
    overlay_files+=("$build/cmd=/etc/rustic/cmd")
    append="$append quiet"
    ;;
  test)
    [ $# -ge 2 ] || die "usage: boot.sh test CONSOLE_LOG"
    tests_dir=$RUSTIC_ROOT/tests/guest
    # RUSTIC_SCENARIOS="60 61": only the scenarios with those numbers.
    if [ -n "${RUSTIC_SCENARIOS:-}" ]; then
      tests_dir=$build/tests-selected
      rm -rf "$tests_dir" && mkdir -p "$tests_dir"
      cp "$RUSTIC_ROOT"/tests/guest/*[!0-9]*.sh "$RUSTIC_ROOT"/tests/guest/*.py "$tests_dir"/ 2>/dev/null
      rm -f "$tests_dir"/[0-9]*.sh
      for n in ${RUSTIC_SCENARIOS//,/ }; do
        cp "$RUSTIC_ROOT"/tests/guest/"$n"-*.sh "$tests_dir"/ || die "no scenario $n"
      done
    fi
    overlay_files+=("$tests_dir=/tests" "$RUSTIC_ROOT/VERSION=/tests/VERSION")
    # What `make install` writes for this kernel, under /installed: the
    # scenario that loads hv_rustic with modprobe installs it from there.
    installed=$build/guest-install
    rm -rf "$installed"
    DESTDIR=$installed KVER=$(make -s -C "$kdir" kernelrelease) \
      bash "$RUSTIC_ROOT/scripts/install.sh" install "$ko" > /dev/null
    overlay_files+=("$installed=/installed")
    # Tests read everything the kernel says through the console log.
    append="$append loglevel=7"
    ;;
  *) die "unknown mode '$mode' (shell, cmd or test)" ;;
esac
# RUSTIC_KERNEL_ARGS: more kernel command line, after the above so that it
# can override them (bench-net turns debugging off).
[ -n "${RUSTIC_KERNEL_ARGS:-}" ] && append="$append $RUSTIC_KERNEL_ARGS"
overlay="$build/initramfs-overlay-$mode.cpio"
bash "$RUSTIC_ROOT/qemu/initramfs.sh" overlay "$ko" "$overlay" "${overlay_files[@]}"
cat "$base" "$overlay" > "$build/initramfs-$mode.cpio"

tcg=(-accel tcg -cpu max)
kvm=(-accel kvm -cpu host,hv-relaxed,hv-vapic,hv-time,hv-vpindex,hv-runtime,hv-synic,hv-stimer)

# kvm_works: whether KVM with the Hyper-V enlightenments really boots this
# kernel here. Many /dev/kvm (nested, PVM-flavoured) refuse ordinary guests or
# lack SynIC; the probe boots the kernel with no init and waits for it to
# start printing, bounded by a timeout. The answer is kept per kernel image.
kvm_works() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
  local stamp="$build/kvm-probe-$(stat -c %Y "$kernel_image")"
  if [ ! -f "$stamp" ]; then
    if timeout 20 qemu-system-x86_64 -machine q35 "${kvm[@]}" -m 256 -nodefaults -display none \
         -no-reboot -kernel "$kernel_image" -append "console=ttyS0 panic=-1 rdinit=/none" \
         -serial stdio < /dev/null 2>/dev/null | grep -q -m1 'Linux version'; then
      echo yes > "$stamp"
    else
      echo no > "$stamp"
    fi
  fi
  [ "$(cat "$stamp")" = yes ]
}

case "${RUSTIC_ACCEL:-auto}" in
  tcg) accel=("${tcg[@]}") ;;
  kvm) accel=("${kvm[@]}") ;;
  auto) if kvm_works; then accel=("${kvm[@]}"); else accel=("${tcg[@]}"); fi ;;
  *) die "RUSTIC_ACCEL must be auto, tcg or kvm" ;;
esac
if [ "$vmbus" = qemu ]; then
  # kvm=off hides KVM's signature: Linux then finds Hyper-V's and sets up
  # hypercalls and SynIC, which the VMBus bridge needs.
  accel=(-accel kvm -cpu host,kvm=off,hv-relaxed,hv-vapic,hv-time,hv-vpindex,hv-runtime,hv-synic,hv-stimer
         -device vmbus-bridge)
fi
qemu=(qemu-system-x86_64 -machine q35 "${accel[@]}" -smp "${RUSTIC_SMP:-4}"
      -m "${RUSTIC_MEM:-2048}" -kernel "$kernel_image"
      -initrd "$build/initramfs-$mode.cpio" -no-reboot -nodefaults -display none)

case "$mode" in
  shell)
    exec "${qemu[@]}" -append "$append" -serial mon:stdio
    ;;
  cmd)
    out="$build/cmd-console.log"
    "${qemu[@]}" -append "$append" -serial stdio -monitor none < /dev/null | tee "$out" | grep -v '^RUSTIC-EXIT: ' || true
    status=$(sed -n 's/^RUSTIC-EXIT: \([0-9]*\).*/\1/p' "$out" | tail -n1)
    [ -n "$status" ] || die "the guest ended without reporting the command's status"
    [ "$status" = 0 ] || echo "boot: guest command exited with status $status" >&2
    exit "$status"
    ;;
  test)
    exec "${qemu[@]}" -append "$append" -serial "file:$2" -serial stdio -monitor none < /dev/null
    ;;
esac
