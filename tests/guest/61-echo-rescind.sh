# timeout: 600
# 100 hot-add/rescind cycles of one echo device from the simulated host,
# each rescind landing while its channel carries traffic, beside a second
# echo device that carries traffic throughout; every rescind removes the
# device and is answered with RELID_RELEASED. Then 20 module load/unload
# cycles with open channels. No leak.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=echo0,echo1
victim=$VMBUS_DEVICES/$(echo_id 0)
present() { [ -e $victim ] && [ -e $SIM_DEBUGFS/echo30 ]; }
absent() { [ ! -e $victim ]; }

echo "send 2000000000 0 1024" > $SIM_DEBUGFS/echo31 2> /dev/null &
steady=$!
i=0
while [ $i -lt 100 ]; do
  wait_for 10 "echo0 to appear (cycle $i)" present
  echo_send 0 20 0 4096
  # Traffic in flight when the rescind comes: the sender stops with ENODEV.
  echo "send 100000 0 2048" > $SIM_DEBUGFS/echo30 2> /dev/null &
  sender=$!
  sleep 0.0$((i % 5))
  released=$(sim_counter relids_released)
  sim_ctl "rescind echo0"
  wait_for 10 "echo0 to go (cycle $i)" absent
  wait_for 10 "RELID_RELEASED (cycle $i)" sim_counter_above relids_released "$released"
  wait $sender
  sim_ctl "offer echo0"
  i=$((i + 1))
done
wait_for 10 "echo0 to appear" present
echo_send 0 100 0 65536
kill -0 $steady || fail "the steady echo traffic stopped"
expect_eq "rescinds" 100 "$(sim_counter rescinds)"
expect_eq "relids released" 100 "$(sim_counter relids_released)"
expect_eq "echo errors" 0 "$(echo_counter errors)"
# Stop the steady sender with a rescind of its device too.
sim_ctl "rescind echo1"
wait $steady && fail "the steady sender did not notice the rescind"
expect_eq "devices left" "$(echo_id 0)" "$(ls $VMBUS_DEVICES)"
rustic_unload

i=0
while [ $i -lt 20 ]; do
  sim_load sim_devices=echo0,echo1,echo2
  echo_send 0 50 0 8192 &
  echo_send 2 50 0 8192
  wait $! || fail "echo traffic in load cycle $i"
  rustic_unload
  i=$((i + 1))
done
kmemleak_check
echo "100 rescind/offer cycles under traffic, 20 load/unload cycles"
