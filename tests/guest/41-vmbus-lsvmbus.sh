# timeout: 90
# The kernel's own lsvmbus (tools/hv/lsvmbus, unmodified) lists exactly the
# offered devices, sorted by relid, with their class names, device ids,
# sysfs paths and channel-to-CPU mappings.
. /tests/lib.sh
. /tests/vmbus-lib.sh

rustic_load
SCSI_ID=00000000-0000-8899-0000-000000000000
KBD_ID=d34b2567-b9b6-42b9-8778-0a4ec0b955bf
TEST_ID=01234567-89ab-cdef-0123-456789abcdef
vmbus_ctl "add class=$SCSI_CLASS instance=$SCSI_ID relid=15 monitor=4 cpu=1"
vmbus_ctl "add class=$KBD_CLASS instance=$KBD_ID relid=3"
vmbus_ctl "add class=$TEST_CLASS instance=$TEST_ID relid=200 cpu=1"

out=$(lsvmbus -vv) || fail "lsvmbus -vv failed"
expected="VMBUS ID  3: Class_ID = {$KBD_CLASS} - Synthetic keyboard
	Device_ID = {$KBD_ID}
	Sysfs path: /sys/bus/vmbus/devices/$KBD_ID
	Rel_ID=3, target_cpu=0

VMBUS ID 15: Class_ID = {$SCSI_CLASS} - Synthetic SCSI Controller
	Device_ID = {$SCSI_ID}
	Sysfs path: /sys/bus/vmbus/devices/$SCSI_ID
	Rel_ID=15, target_cpu=1

VMBUS ID 200: Class_ID = {$TEST_CLASS} - Unknown
	Device_ID = {$TEST_ID}
	Sysfs path: /sys/bus/vmbus/devices/$TEST_ID
	Rel_ID=200, target_cpu=1"
if [ "$out" != "$expected" ]; then
  echo "lsvmbus -vv printed:"; echo "$out"
  echo "expected:"; echo "$expected"
  fail "lsvmbus -vv output differs"
fi
expect_eq "lsvmbus" "VMBUS ID  3: Synthetic keyboard
VMBUS ID 15: Synthetic SCSI Controller
VMBUS ID 200: Unknown" "$(lsvmbus)"

vmbus_ctl "remove $KBD_ID"
expect_eq "lsvmbus after a remove" "VMBUS ID 15: Synthetic SCSI Controller
VMBUS ID 200: Unknown" "$(lsvmbus)"
rustic_unload
echo "lsvmbus -vv listed the 3 offered devices"
