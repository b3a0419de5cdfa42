# timeout: 90
# A host that accepts no version: every proposal is refused and the module
# load fails (-ENODEV) at once with a clear message. A host that never
# answers: the load fails (-ETIMEDOUT) within the 5 s request timeout,
# bounded. Neither leaves the module or the bus behind.
#
# Busybox's insmod tries finit_module and, when that fails, init_module:
# every failed load below runs twice, so the silent host costs 2 x 5 s.
. /tests/lib.sh
. /tests/vmbus-lib.sh

dmesg -c > /dev/null
start=$(date +%s)
insmod $RUSTIC_KO simulate=1 sim_versions=none 2> /tmp/err && fail "load succeeded with sim_versions=none"
grep -q "No such device" /tmp/err || { cat /tmp/err; fail "sim_versions=none: expected ENODEV"; }
dmesg | grep -q "vmbus: version negotiation failed: NoCommonVersion" || { dmesg | tail; fail "no NoCommonVersion message"; }
[ ! -d /sys/module/hv_rustic ] || fail "module loaded after sim_versions=none"
[ ! -e /sys/bus/vmbus ] || fail "/sys/bus/vmbus left behind"

dmesg -c > /dev/null
start=$(date +%s)
insmod $RUSTIC_KO simulate=1 sim_versions=silent 2> /tmp/err && fail "load succeeded with sim_versions=silent"
took=$(( $(date +%s) - start ))
grep -q "timed out" /tmp/err || { cat /tmp/err; fail "sim_versions=silent: expected ETIMEDOUT"; }
dmesg | grep -q "vmbus: the host did not answer INITIATE_CONTACT within 5000 ms" || { dmesg | tail; fail "no timeout message"; }
attempts=$(dmesg | grep -c "did not answer INITIATE_CONTACT")
[ "$attempts" -ge 1 ] && [ "$attempts" -le 2 ] || fail "$attempts load attempts"
[ "$took" -ge $((attempts * 4)) ] && [ "$took" -le $((attempts * 7)) ] \
  || fail "silent host: $attempts load attempts failed after $took s, expected about 5 s each"
[ ! -d /sys/module/hv_rustic ] || fail "module loaded after sim_versions=silent"

# The module still loads normally afterwards.
rustic_load simulate=1
expect_eq "devices after the failed loads" 5 "$(ls $VMBUS_DEVICES | wc -l)"
rustic_unload
echo "no common version: ENODEV at once; silent host: ETIMEDOUT, $attempts attempts in $took s"
