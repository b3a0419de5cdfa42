# timeout: 240
# Subchannels: the echo driver asks the host for three over its primary
# channel, opens each as it is offered and spreads checked traffic over
# them. A rescind of the device takes the subchannels first (each answered
# with RELID_RELEASED); the relids are offered again afterwards; unbinding
# closes every channel; nothing leaks. A channel moves between CPUs.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=echo0,echo1
offers=$(sim_counter offers_sent)
echo_cmd 0 "subchannels 3 30000"
expect_eq "subchannel offers" $((offers + 3)) "$(sim_counter offers_sent)"
expect_eq "channels opened" 5 "$(sim_counter opens)"
echo_cmd 0 "send 1000 0 1024"
echo_cmd 1 "subchannels 2 10000"
expect_eq "echo errors" 0 "$(echo_counter errors)"
dmesg | grep -q "subchannel relid .* has no device" && fail "a subchannel offer went astray"

# A channel moved to another CPU (MODIFYCHANNEL, answered from 5.3) keeps
# working there.
map=$VMBUS_DEVICES/$(echo_id 0)/channel_vp_mapping
expect_eq "echo0's channels in channel_vp_mapping" 4 "$(wc -l < $map)"
for cpu in $(( $(nproc) - 1 )) 0; do
  echo_cmd 0 "retarget $cpu"
  expect_eq "echo0 CPU after retarget" "30:$cpu" "$(grep '^30:' $map)"
  echo_cmd 0 "send 2000 0 1024"
done
expect_eq "MODIFYCHANNEL messages" 2 "$(sim_counter modifies)"
echo "retarget 4096" > $SIM_DEBUGFS/echo30 2> /dev/null && fail "retarget to a CPU that is not there succeeded"

# Rescind echo0 with its subchannels open: four relids come back.
released=$(sim_counter relids_released)
sim_ctl "rescind echo0"
wait_for 10 "echo0 to go" [ ! -e $VMBUS_DEVICES/$(echo_id 0) ]
wait_for 10 "four RELID_RELEASED" sim_counter_is relids_released $((released + 4))
sim_ctl "offer echo0"
wait_for 10 "echo0 back" [ -e $SIM_DEBUGFS/echo30 ]
echo_cmd 0 "subchannels 3 3000"

# Unbinding echo1 closes its primary and both subchannels.
closes=$(sim_counter closes)
echo $(echo_id 1) > /sys/bus/vmbus/drivers/rustic_echo/unbind || fail "unbind echo1"
expect_eq "channels closed by the unbind" $((closes + 3)) "$(sim_counter closes)"
expect_eq "echo errors" 0 "$(echo_counter errors)"
rustic_unload
kmemleak_check
echo "3 + 2 subchannels opened and used; rescinded, re-offered and closed"
