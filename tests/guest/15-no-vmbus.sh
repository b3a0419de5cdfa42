# timeout: 60
# The module's production path on a machine without VMBus: the test build
# loaded without simulate=1 takes the real backend's probe, and QEMU (with
# no vmbus-bridge) describes no ACPI VMBus device. The module loads all the
# same, says why in exactly one line, leaves the bus empty, and unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh

dmesg -c > /dev/null
rustic_load
said=$(dmesg | grep -c "vmbus: ")
line=$(dmesg | grep "vmbus: ")
expect_eq "lines from vmbus" 1 "$said"
case "$line" in
  *"vmbus: no ACPI VMBus device on this machine: the bus stays empty") ;;
  *) fail "unexpected line: $line" ;;
esac
expect_eq "devices on the bus" 0 "$(ls $VMBUS_DEVICES | wc -l)"
[ -d /sys/bus/vmbus ] || fail "no vmbus bus"
rustic_unload
# The module's own lines only (KUnit's results, which run at load in test
# boots, say "fail:0").
! dmesg | grep "hv_rustic: " | grep -qi "error\|fail" || { dmesg | grep "hv_rustic: "; fail "an error line"; }
echo "no VMBus: loaded with an empty bus and one line"
