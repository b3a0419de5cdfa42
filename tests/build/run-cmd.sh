#!/usr/bin/env bash
# `make run CMD=...` boots the guest with hv_rustic loaded and the simulated
# host offering its default devices, KUnit off, runs the command (unexpanded
# by make) and reports its status; `qemu/boot.sh cmd` exits with that status
# exactly, and RUSTIC_SIM_DEVICES (make's SIM_DEVICES) picks the devices.
# Two guest boots. KTAP on stdout.
set -u
cd "$(dirname "$0")/../.."
echo "KTAP version 1"
echo "1..8"
# The serial console ends the guest's lines with CR LF.
uncr() { tr -d '\r' <<<"$1"; }

# expect_lines N NAME EXPECTED ACTUAL: case N passes when ACTUAL is EXPECTED.
expect_lines() {
  if [ "$4" = "$3" ]; then
    echo "ok $1 $2"
  else
    printf 'expected:\n%s\ngot:\n%s\n' "$3" "$4" | sed 's/^/# /'
    echo "not ok $1 $2 # the guest said otherwise"
  fi
}

# Boot 1: make run CMD=..., the default devices.
out=$(make --no-print-directory run CMD='grep -q "^hv_rustic " /proc/modules || exit 1; echo "guest-says: $(uname -r)"; lsvmbus | sed "s/^/lsvmbus: /"; echo "kunit: $(ls /sys/kernel/debug/kunit 2>/dev/null | grep -c "^rustic") rustic suites, $(dmesg | grep -c "# Subtest:") subtests, disabled $(dmesg | grep -q "kunit: disabled" && echo yes || echo no)"; exit 7' 2>&1)
rc=$?
out=$(uncr "$out")
if [ "$rc" -ne 0 ] && printf '%s\n' "$out" | grep -q '^boot: guest command exited with status 7$'; then
  echo "ok 1 make-run-cmd-reports-status"
else
  printf '%s\n' "$out" | tail -n 10 | sed 's/^/# /'
  echo "not ok 1 make-run-cmd-reports-status # make exited $rc"
fi
if printf '%s\n' "$out" | grep -q '^guest-says: 6\.12\.'; then
  echo "ok 2 make-run-cmd-output"
else
  echo "not ok 2 make-run-cmd-output # the command's output did not come back"
fi
# lsvmbus names the classes it knows; the simulator's test class is Unknown.
expect_lines 3 make-run-offers-default-devices "VMBUS ID  3: Synthetic keyboard
VMBUS ID  7: [Heartbeat]
VMBUS ID 14: Synthetic network adapter
VMBUS ID 15: Synthetic SCSI Controller
VMBUS ID 200: Unknown" "$(printf '%s\n' "$out" | sed -n 's/^lsvmbus: //p')"
# KUnit would have made debugfs entries for the module's suites and printed
# subtests; with kunit.enable=0 it says "disabled" instead.
expect_lines 4 make-run-runs-no-kunit "0 rustic suites, 0 subtests, disabled yes" \
  "$(printf '%s\n' "$out" | sed -n 's/^kunit: //p')"

# Boot 2: boot.sh cmd with a device set of its own; the command reloads the
# module with other parameters, as bench-net and developers do.
out=$(RUSTIC_SIM_DEVICES=nic0,nic1 bash qemu/boot.sh cmd 'lsvmbus | sed "s/^/first: /"; rmmod hv_rustic && insmod /lib/modules/rustic/hv_rustic.ko simulate=1 sim_devices=kbd && lsvmbus | sed "s/^/second: /"; exit 5' 2>&1)
rc=$?
out=$(uncr "$out")
if [ "$rc" -eq 5 ]; then
  echo "ok 5 boot-cmd-exit-status"
else
  printf '%s\n' "$out" | tail -n 10 | sed 's/^/# /'
  echo "not ok 5 boot-cmd-exit-status # expected 5, got $rc"
fi
expect_lines 6 boot-cmd-sim-devices "VMBUS ID 40: Synthetic network adapter
VMBUS ID 41: Synthetic network adapter" "$(printf '%s\n' "$out" | sed -n 's/^first: //p')"
expect_lines 7 boot-cmd-reload-with-other-devices "VMBUS ID  3: Synthetic keyboard" \
  "$(printf '%s\n' "$out" | sed -n 's/^second: //p')"

# make's SIM_DEVICES (or RUSTIC_SIM_DEVICES from the environment) reaches
# boot.sh; no boot needed to see it.
a=$(make -n --no-print-directory run SIM_DEVICES=nic0,nic1 CMD=true 2>&1)
b=$(RUSTIC_SIM_DEVICES=echo0 make -n --no-print-directory run 2>&1)
if grep -q "RUSTIC_SIM_DEVICES='nic0,nic1' bash qemu/boot.sh cmd" <<<"$a" &&
   grep -q "RUSTIC_SIM_DEVICES='echo0' bash qemu/boot.sh shell" <<<"$b"; then
  echo "ok 8 make-run-sim-devices-variable"
else
  printf '%s\n' "$a" "$b" | tail -n 4 | sed 's/^/# /'
  echo "not ok 8 make-run-sim-devices-variable # SIM_DEVICES did not reach boot.sh"
fi
