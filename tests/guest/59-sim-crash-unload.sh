# timeout: 120
# The crash-path unload (kexec, kdump, panic; vmbus/connection.rs
# `crash_unload`): the debugfs command `crash-unload` runs it with
# interrupts off on the writer's CPU while the simulated host serves it
# from another, as Hyper-V runs beside a crashing guest. UNLOAD is posted
# and its answer found by polling the message pages, with no lock, sleep
# or other CPU's help; afterwards the host holds no GPADL and no open
# channel of the guest. The module then unloads at once, sending nothing
# more (no request waits for a host that forgot the guest).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

[ "$(nproc)" -ge 2 ] || { echo "needs two CPUs (the host serves from the other)"; exit 77; }
sim_load sim_devices=echo0,echo1
expect_eq "devices" 2 "$(ls $VMBUS_DEVICES | wc -l)"
wait_for 10 "the echo channels open" sim_counter_is channels_open 2
[ "$(sim_counter gpadls_held)" -ge 2 ] || fail "the host holds $(sim_counter gpadls_held) GPADLs before the crash path"
echo_send 0 10 1 64
sim_ctl crash-unload
dmesg | grep -q "sim host: UNLOAD received" || { dmesg | tail; fail "the host got no UNLOAD"; }
dmesg | grep -q "sim: crash-path unload answered after about [0-9]* ms, with interrupts off" || { dmesg | tail; fail "no answer on the crash path"; }
expect_eq "GPADLs the host holds" 0 "$(sim_counter gpadls_held)"
expect_eq "channels the host has open" 0 "$(sim_counter channels_open)"
# It runs once per connection.
! echo crash-unload > $SIM_DEBUGFS/sim 2> /dev/null || fail "a second crash-path unload ran"
start=$(date +%s)
rustic_unload
took=$(( $(date +%s) - start ))
[ "$took" -le 5 ] || fail "unload after the crash path took $took s"
dmesg | grep -q "vmbus: unloading: the crash path already sent UNLOAD" || { dmesg | tail; fail "unload sent UNLOAD again"; }
expect_eq "UNLOADs the host got" 1 "$(dmesg | grep -c 'sim host: UNLOAD received')"
echo "crash-path unload answered; the host holds nothing; unload took $took s"
