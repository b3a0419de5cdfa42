# timeout: 150
# Unload and start-up as real hosts make them (vmbus/connection.rs):
# - a host may answer UNLOAD long after any other request's 5 s (an Azure
#   host writes back its disk cache first; the C driver documents up to
#   50 s): an answer 7 s late is still taken;
# - a host older than 3.0 gets no UNLOAD (the C driver sends it none);
#   a 3.0 host does;
# - a message already in the SINT2 slot when the guest starts, its
#   interrupt lost before the handler was registered (sim_stale_message=1:
#   a synthetic timer's expiration), is read all the same, and as what it
#   is: not a channel message. Were it left there, nothing would come
#   through the slot again and the load would fail.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

# A late UNLOAD_RESPONSE.
sim_load sim_devices=none
sim_ctl "fault delay=7000"
start=$(date +%s)
rustic_unload
took=$(( $(date +%s) - start ))
dmesg | grep -q "sim: injecting Delay(7000) into the next host message" || { dmesg | tail; fail "the delay was not injected"; }
dmesg | grep -q "vmbus: unloaded, the host acknowledged" || { dmesg | tail; fail "a 7 s late UNLOAD_RESPONSE was not taken"; }
[ "$took" -ge 6 ] || fail "unload took $took s: the answer was not late"
echo "UNLOAD answered 7 s late: taken after $took s"

# Hosts older than 3.0 get no UNLOAD; 3.0 hosts do.
sim_load sim_versions=2.4 sim_devices=none
dmesg | grep -q "vmbus: connected, version 2.4\$" || { dmesg | tail; fail "not connected at 2.4"; }
rustic_unload
dmesg | grep -q "vmbus: unloading without UNLOAD: version 2.4 is older than 3.0" || { dmesg | tail; fail "2.4: no line about skipping UNLOAD"; }
! dmesg | grep -q "sim host: UNLOAD received" || fail "2.4: the host got an UNLOAD"
sim_load sim_versions=3.0 sim_devices=none
dmesg | grep -q "vmbus: connected, version 3.0\$" || { dmesg | tail; fail "not connected at 3.0"; }
rustic_unload
dmesg | grep -q "sim host: UNLOAD received" || { dmesg | tail; fail "3.0: the host got no UNLOAD"; }
dmesg | grep -q "vmbus: unloaded, the host acknowledged" || fail "3.0: unload not acknowledged"
echo "2.4: no UNLOAD; 3.0: UNLOAD answered"

# A timer message in the slot before the handler is there.
start=$(date +%s)
sim_load sim_stale_message=1
took=$(( $(date +%s) - start ))
dmesg | grep -q "sim: a timer message waits in the SINT2 slot" || { dmesg | tail; fail "no stale message was left"; }
dmesg | grep -q "vmbus: SynIC message of type 0x80000010 (timer expired) is no channel message; ignored" ||
  { dmesg | tail -n 20; fail "the timer message was not read as one"; }
! dmesg | grep -q "host message rejected\|malformed SynIC message" || { dmesg | tail; fail "the timer message was parsed as a channel message"; }
dmesg | grep -q "vmbus: connected, version 5.3\$" || { dmesg | tail; fail "not connected"; }
expect_eq "devices" 5 "$(ls $VMBUS_DEVICES | wc -l)"
rustic_unload
dmesg | grep -q "vmbus: unloaded, the host acknowledged" || fail "stale message: unload not acknowledged"
echo "a message waiting at start-up was read (load took $took s)"
