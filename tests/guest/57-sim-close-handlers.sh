# timeout: 120
# Closing a channel waits until its handler is not running: when the
# driver's close returns, no handler call of that channel runs or starts.
# The echo driver's `slow MS` makes each handler call sleep first; a close
# comes while one sleeps (counted in echo_slow_started), and the driver
# counts handler calls that run after its close returned
# (echo_late_handlers).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load sim_devices=echo0
drv=/sys/bus/vmbus/drivers/rustic_echo
id0=$(echo_id 0)
# Off the CPU that takes the host's messages: the close's own requests
# must not queue behind the sleeping handler.
[ $(nproc) -gt 1 ] && echo_cmd 0 "retarget 1"
echo_send 0 10 0 64
started=$(echo_counter slow_started)
echo_cmd 0 "slow 1500"
# One round trip whose echo the handler sleeps on; it ends with ENODEV.
(echo "send 1 0 64" > $SIM_DEBUGFS/echo30) 2> /dev/null &
sender=$!
echo_slow_running() { [ "$(echo_counter slow_started)" -gt "$started" ]; }
wait_for 10 "a handler call under way" echo_slow_running
# Milliseconds since boot (busybox date has no %N).
uptime_ms() { local u; u=$(cut -d' ' -f1 /proc/uptime); echo $(( ${u%.*} * 1000 + 10#${u#*.} * 10 )); }
t0=$(uptime_ms)
echo $id0 > $drv/unbind || fail "unbind echo0"
took=$(( $(uptime_ms) - t0 ))
wait $sender
echo_slow_done() { [ "$(echo_counter slow_finished)" -eq "$(echo_counter slow_started)" ]; }
wait_for 10 "the slow handler calls to end" echo_slow_done
expect_eq "handler calls after the close returned" 0 "$(echo_counter late_handlers)"
echo "the close waited $took ms for the handler"
echo $id0 > $drv/bind || fail "bind echo0 again"
echo_cmd 0 "slow 0"
echo_send 0 100 0 1024
expect_eq "echo errors" 0 "$(echo_counter errors)"
rustic_unload
