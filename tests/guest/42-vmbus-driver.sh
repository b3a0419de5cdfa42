# timeout: 90
# The test driver binds devices of its class GUID and no others, shows as
# the `driver` link, unbinds and rebinds through sysfs, binds a foreign
# class through driver_override, and gets remove on device removal and
# rescind-then-remove on a rescind.
. /tests/lib.sh
. /tests/vmbus-lib.sh

rustic_load
drv=/sys/bus/vmbus/drivers/rustic_test
[ -d $drv ] || fail "no $drv"
expect_eq "probes at load" 0 "$(test_counter probes)"

A=aaaaaaaa-0000-0000-0000-000000000001
B=aaaaaaaa-0000-0000-0000-000000000002
N=aaaaaaaa-0000-0000-0000-000000000003
vmbus_ctl "add class=$TEST_CLASS instance=$A relid=21"
vmbus_ctl "add class=$TEST_CLASS instance=$B relid=22 monitor=1"
vmbus_ctl "add class=$NET_CLASS instance=$N relid=23"
expect_eq "probes" 2 "$(test_counter probes)"
expect_eq "A driver link" "$drv" "$(readlink -f $VMBUS_DEVICES/$A/driver)"
expect_eq "B driver link" "$drv" "$(readlink -f $VMBUS_DEVICES/$B/driver)"
[ ! -e $VMBUS_DEVICES/$N/driver ] || fail "the NIC bound to the test driver"
expect_eq "devices bound" "$(printf '%s\n' $A $B | sort | xargs)" "$(ls $drv | grep -- - | sort | xargs)"
expect_eq "A uevent" "DRIVER=rustic_test
MODALIAS=$(modalias_of $TEST_CLASS)" "$(cat $VMBUS_DEVICES/$A/uevent)"

# Unbind and bind through sysfs.
echo $A > $drv/unbind || fail "unbind refused"
[ ! -e $VMBUS_DEVICES/$A/driver ] || fail "A still bound after unbind"
expect_eq "removes after unbind" 1 "$(test_counter removes)"
echo $A > $drv/bind || fail "bind refused"
expect_eq "A rebound" "$drv" "$(readlink -f $VMBUS_DEVICES/$A/driver)"
expect_eq "probes after bind" 3 "$(test_counter probes)"

# driver_override lets the test driver take a NIC.
echo rustic_test > $VMBUS_DEVICES/$N/driver_override
echo $N > /sys/bus/vmbus/drivers_probe
expect_eq "NIC bound by override" "$drv" "$(readlink -f $VMBUS_DEVICES/$N/driver)"
expect_eq "probes after override" 4 "$(test_counter probes)"

# Removing a bound device calls remove; a rescind calls rescind, then remove.
vmbus_ctl "remove $N"
expect_eq "removes after device removal" 2 "$(test_counter removes)"
vmbus_ctl "rescind $B"
expect_eq "rescinds" 1 "$(test_counter rescinds)"
expect_eq "removes after rescind" 3 "$(test_counter removes)"
[ ! -e $VMBUS_DEVICES/$B ] || fail "B still there after rescind"
# A rescind of an unbound device removes it without a driver call.
U=aaaaaaaa-0000-0000-0000-000000000004
vmbus_ctl "add class=$HEARTBEAT_CLASS instance=$U relid=24"
vmbus_ctl "rescind $U"
expect_eq "rescinds after an unbound rescind" 1 "$(test_counter rescinds)"
expect_eq "mismatched driver data" 0 "$(test_counter mismatches)"

# A refused probe leaves the device on the bus, unbound; removing it then
# calls no remove.
R=bad0bad0-0000-0000-0000-000000000005
vmbus_ctl "add class=$TEST_CLASS instance=$R relid=25"
expect_eq "probe failures" 1 "$(test_counter probe_failures)"
[ -d $VMBUS_DEVICES/$R ] || fail "a device whose probe failed is gone"
[ ! -e $VMBUS_DEVICES/$R/driver ] || fail "a device whose probe failed is bound"
expect_eq "probes after a refused probe" 4 "$(test_counter probes)"
vmbus_ctl "remove $R"
expect_eq "removes after removing an unbound device" 3 "$(test_counter removes)"

# Unloading with A still bound unbinds it (remove runs) and removes it.
dmesg -c > /dev/null
rustic_unload
dmesg | grep -q "test driver: remove $A" || fail "no remove of $A at unload"
echo "bind, unbind, override, remove and rescind reached the test driver"
