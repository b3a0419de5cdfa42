# timeout: 180
# An allocation failure at channel open (sim `fault open-nomem=N`: the Nth
# next channel open fails to allocate): the open fails with ENOMEM and
# nothing the host maps is freed under it (the simulated host holds a
# reference to every page it maps and counts those the guest freed
# meanwhile, `sim_freed_while_mapped`). The device binds again afterwards.
# A subchannel open failing half-way gives the offers it took back, so the
# next try opens all of them. Nothing leaks (kmemleak).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=echo0,echo1
drv=/sys/bus/vmbus/drivers/rustic_echo
id0=$(echo_id 0)
held() { cat $SIM_DEBUGFS/vmbus_held_bytes; }

# The primary channel's allocation fails.
echo $id0 > $drv/unbind || fail "unbind echo0"
dmesg -c > /dev/null
sim_ctl "fault open-nomem=1"
echo $id0 > $drv/bind 2> /tmp/bind.err && fail "bind succeeded with the channel's allocation failing"
grep -q "Cannot allocate memory" /tmp/bind.err || { cat /tmp/bind.err; fail "expected ENOMEM"; }
dmesg | grep -q "injecting an allocation failure into a channel open" || fail "the fault did not fire"
expect_eq "pages freed while the host mapped them" 0 "$(sim_counter freed_while_mapped)"
expect_eq "bytes held for the host" 0 "$(held)"
echo $id0 > $drv/bind || fail "bind after the fault"
echo_send 0 200 0 4096
echo "open-nomem: the open failed cleanly; echo0 bound again"

# Three subchannels asked for; the second's open fails.
sim_ctl "fault open-nomem=2"
opens=$(sim_counter opens)
(echo "subchannels 3 300" > $SIM_DEBUGFS/echo31) 2> /dev/null && fail "subchannels opened with an allocation failing"
expect_eq "subchannels opened before the failure" $((opens + 1)) "$(sim_counter opens)"
# The host offers each subchannel once: all three must be there to open.
start=$(date +%s)
echo_cmd 1 "subchannels 3 3000"
took=$(( $(date +%s) - start ))
[ $took -le 5 ] || fail "reopening the subchannels took $took s"
expect_eq "echo errors" 0 "$(echo_counter errors)"
expect_eq "pages freed while the host mapped them" 0 "$(sim_counter freed_while_mapped)"
rustic_unload
kmemleak_check
echo "subchannels: the offers of a failed open were kept; all 3 opened on the next try"
