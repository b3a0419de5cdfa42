# timeout: 600
# Unload removes the offered devices, sends UNLOAD and waits for the
# response (the host counts it and says so in the log); 20 load/unload
# cycles with the simulator leave no leak (kmemleak) and no lockdep report
# (the runner fails on any splat).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load
expect_eq "UNLOADs before unload" 0 "$(sim_counter unload)"
rustic_unload
dmesg | grep -q "test driver: remove $SIM_TEST_ID" || fail "test device not removed at unload"
dmesg | grep -q "sim host: UNLOAD received (1 so far), answering UNLOAD_RESPONSE" || { dmesg | tail; fail "host saw no UNLOAD"; }
dmesg | grep -q "vmbus: unloaded, the host acknowledged" || { dmesg | tail; fail "guest saw no UNLOAD_RESPONSE"; }
# Removal happens before UNLOAD, as in the C driver's vmbus_exit.
order=$(dmesg | grep -n -e "test driver: remove" -e "sim host: UNLOAD" | cut -d: -f1 | xargs)
set -- $order
[ "$1" -lt "$2" ] || fail "UNLOAD sent before the devices were removed"

kmemleak_reset
i=0
while [ $i -lt 20 ]; do
  sim_load
  expect_eq "cycle $i devices" 5 "$(ls $VMBUS_DEVICES | wc -l)"
  expect_eq "cycle $i UNLOADs so far" 0 "$(sim_counter unload)"
  rustic_unload
  dmesg | grep -q "vmbus: unloaded, the host acknowledged" || fail "cycle $i: no acknowledged unload"
  i=$((i + 1))
done
kmemleak_check
echo "UNLOAD counted and answered; $i cycles without leaks"
