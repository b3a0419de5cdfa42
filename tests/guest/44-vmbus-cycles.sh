# timeout: 240
# 100 add/remove cycles (bound and unbound devices, removes and rescinds),
# then an unload with devices present: every device and driver binding is
# torn down and nothing leaks.
. /tests/lib.sh
. /tests/vmbus-lib.sh

kmemleak_reset
rustic_load
i=0
while [ $i -lt 100 ]; do
  vmbus_ctl "add class=$TEST_CLASS instance=cccccccc-0000-0000-0000-$(printf %012d $i) relid=$((i + 1)) monitor=$((i % 128)) cpu=$((i % $(nproc)))"
  vmbus_ctl "add class=$NET_CLASS instance=dddddddd-0000-0000-0000-$(printf %012d $i) relid=$((i + 1000))"
  cat $VMBUS_DEVICES/cccccccc-0000-0000-0000-$(printf %012d $i)/channel_vp_mapping > /dev/null
  if [ $((i % 2)) -eq 0 ]; then
    vmbus_ctl "remove cccccccc-0000-0000-0000-$(printf %012d $i)"
  else
    vmbus_ctl "rescind cccccccc-0000-0000-0000-$(printf %012d $i)"
  fi
  vmbus_ctl "remove dddddddd-0000-0000-0000-$(printf %012d $i)"
  i=$((i + 1))
done
expect_eq "devices after cycles" "" "$(ls $VMBUS_DEVICES)"
expect_eq "probes" 100 "$(test_counter probes)"
expect_eq "removes" 100 "$(test_counter removes)"
expect_eq "rescinds" 50 "$(test_counter rescinds)"
expect_eq "mismatches" 0 "$(test_counter mismatches)"
# Unload with bound and unbound devices present, one sysfs file held open.
vmbus_ctl "add class=$TEST_CLASS instance=eeeeeeee-0000-0000-0000-000000000001 relid=1"
vmbus_ctl "add class=$NET_CLASS instance=eeeeeeee-0000-0000-0000-000000000002 relid=2"
exec 3< $VMBUS_DEVICES/eeeeeeee-0000-0000-0000-000000000002/channels/2/cpu
dmesg -c > /dev/null
rustic_unload
# The open file outlives the device: reading it now fails, without a crash.
read -r cpu <&3 && fail "read a removed device's file: '$cpu'"
exec 3<&-
dmesg | grep -q "test driver: remove eeeeeeee-0000-0000-0000-000000000001" || fail "no remove at unload"
[ ! -e /sys/bus/vmbus ] || fail "/sys/bus/vmbus left after unload"
# Once more, so the second load finds the bus name free again.
rustic_load
rustic_unload
kmemleak_check
echo "$i cycles, unload with devices present, no leaks"
