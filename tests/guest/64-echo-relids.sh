# timeout: 180
# Issue 17: the connection's table of channel signal ids must free a
# channel's slot when its relid is released. The simulated host hot-adds
# one echo device at 40 distinct relids (40..79) in turn, more than the
# connection tracks at once (32); each is opened by the echo driver,
# carries traffic, is rescinded and answered with RELID_RELEASED. Then a
# released relid is reused. Before the fix, the 33rd relid's open failed
# (ENODEV: no signal id) and its echo control never appeared.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load sim_devices=none
dev=$VMBUS_DEVICES/$(echo_id 0)
gone() { [ ! -e $dev ]; }

# cycle RELID: offer echo0 at RELID, send over its channel, rescind it.
cycle() {
  released=$(sim_counter relids_released)
  sim_ctl "offer echo0 relid=$1"
  wait_for 10 "echo0 open at relid $1" test -e $SIM_DEBUGFS/echo$1
  (echo "send 5 0 1024" > $SIM_DEBUGFS/echo$1) || fail "echo$1: send failed"
  sim_ctl "rescind echo0"
  wait_for 10 "echo0 to go (relid $1)" gone
  wait_for 10 "RELID_RELEASED of $1" sim_counter_above relids_released "$released"
}

r=40
while [ $r -lt 80 ]; do
  cycle $r
  r=$((r + 1))
done
cycle 45
# Its registry relid, after all that.
sim_ctl "offer echo0"
wait_for 10 "echo0 open at relid 30" test -e $SIM_DEBUGFS/echo30
echo_send 0 5 0 1024
expect_eq "relids released" 41 "$(sim_counter relids_released)"
expect_eq "echo errors" 0 "$(echo_counter errors)"
# A relid in use or out of range is refused.
echo "offer echo1 relid=30" > $SIM_DEBUGFS/sim 2> /dev/null && fail "offer at a relid in use accepted"
echo "offer echo1 relid=100" > $SIM_DEBUGFS/sim 2> /dev/null && fail "offer at relid 100 accepted"
rustic_unload
echo "41 offers at 40 distinct relids opened and released"
