# timeout: 240
# A GPADL or an open the host does not answer in time: the open fails,
# and the ring the host may map is kept (vmbus_held_bytes), never freed
# under the host and never lost: it is freed when the host rescinds the
# channel, or when the late answer comes (the channel is then closed and
# the GPADL torn down). The answers are withheld or delayed with the
# simulator's faults aimed at one message type (`fault drop@open-result`). Nothing is freed
# while the host maps it (sim_freed_while_mapped) and nothing leaks
# (kmemleak).
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
# Channel requests time out after 5 s (not the module's own, longer
# deadline), so that the delays below (7 s) come late.
sim_load sim_devices=echo0,echo1 sim_channel_timeout_ms=5000
drv=/sys/bus/vmbus/drivers/rustic_echo
id0=$(echo_id 0)
held() { cat $SIM_DEBUGFS/vmbus_held_bytes; }
held_is() { [ "$(held)" -eq "$1" ]; }
# Both rings of an echo channel and their header pages: 130 pages.
RING_BYTES=$((130 * 4096))

# GPADL_CREATED withheld, then the channel rescinded.
echo $id0 > $drv/unbind || fail "unbind echo0"
dmesg -c > /dev/null
sim_ctl "fault drop"
echo $id0 > $drv/bind 2> /tmp/bind.err && fail "bind succeeded without GPADL_CREATED"
dmesg | grep -q "GPADL of 130 pages failed: Timeout" || fail "no GPADL timeout"
expect_eq "bytes held for the host" $RING_BYTES "$(held)"
dmesg | grep -q "keeping $RING_BYTES bytes the host may still map" || fail "no message for the held ring"
released=$(sim_counter relids_released)
sim_ctl "rescind echo0"
wait_for 10 "RELID_RELEASED for echo0" sim_counter_is relids_released $((released + 1))
expect_eq "bytes held after the rescind" 0 "$(held)"
dmesg | grep -q "the host let go of GPADL .*; $RING_BYTES bytes freed" || fail "no message for the freed ring"
echo "withheld GPADL_CREATED: $RING_BYTES bytes kept, freed at the rescind"

# GPADL_CREATED late: the GPADL is torn down and the ring freed.
sim_ctl "offer echo0"
wait_for 10 "echo0 back" [ -e $SIM_DEBUGFS/echo30 ]
echo $id0 > $drv/unbind || fail "unbind echo0"
torn=$(sim_counter gpadls_torn_down)
sim_ctl "fault delay=7000"
echo $id0 > $drv/bind 2> /dev/null && fail "bind succeeded with GPADL_CREATED late"
expect_eq "bytes held before the late answer" $RING_BYTES "$(held)"
wait_for 10 "the late answer to free the ring" held_is 0
expect_eq "GPADLs torn down after the late answer" $((torn + 1)) "$(sim_counter gpadls_torn_down)"
echo $id0 > $drv/bind || fail "bind after the late answer"
echo_send 0 100 0 4096
echo_send 1 100 0 4096
echo "late GPADL_CREATED: the GPADL torn down, the ring freed"

# OPENCHANNEL_RESULT late: the host opened the channel after all, so the
# guest closes it, tears the ring's GPADL down and frees the ring.
echo $id0 > $drv/unbind || fail "unbind echo0"
closes=$(sim_counter closes)
torn=$(sim_counter gpadls_torn_down)
dmesg -c > /dev/null
sim_ctl "fault delay=7000@open-result"
echo $id0 > $drv/bind 2> /dev/null && fail "bind succeeded with OPENCHANNEL_RESULT late"
dmesg | grep -q "relid 30: open failed: Timeout" || fail "no open timeout"
expect_eq "bytes held before the late answer" $RING_BYTES "$(held)"
wait_for 10 "the late answer to free the ring" held_is 0
expect_eq "CLOSECHANNEL after the late open" $((closes + 1)) "$(sim_counter closes)"
expect_eq "GPADLs torn down after the late open" $((torn + 1)) "$(sim_counter gpadls_torn_down)"
echo $id0 > $drv/bind || fail "bind after the late open"
echo_send 0 100 0 4096
echo "late OPENCHANNEL_RESULT: the channel closed, the ring freed"

# OPENCHANNEL_RESULT withheld, then the channel rescinded.
echo $id0 > $drv/unbind || fail "unbind echo0"
sim_ctl "fault drop@open-result"
echo $id0 > $drv/bind 2> /dev/null && fail "bind succeeded without OPENCHANNEL_RESULT"
expect_eq "bytes held for the unanswered open" $RING_BYTES "$(held)"
released=$(sim_counter relids_released)
sim_ctl "rescind echo0"
wait_for 10 "RELID_RELEASED for echo0" sim_counter_is relids_released $((released + 1))
expect_eq "bytes held after the rescind" 0 "$(held)"
echo "withheld OPENCHANNEL_RESULT: the ring freed at the rescind"

expect_eq "pages freed while the host mapped them" 0 "$(sim_counter freed_while_mapped)"
echo_send 1 100 0 4096
rustic_unload
kmemleak_check
echo "nothing freed under the host, nothing leaked"
