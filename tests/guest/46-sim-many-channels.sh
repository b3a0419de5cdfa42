# timeout: 300
# Issue 16 item 5: the guest's tables grow as the host offers. Two NICs
# (each taking one queue per CPU of the host's 8), an echo device with 64
# channels (63 subchannels, Linux's most for one device) and one with 40,
# all open at once with traffic on every channel: well beyond the 32
# channels and 32 GPADLs the connection once held, and beyond the 16
# subchannels a device could have waiting.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

kmemleak_reset
sim_load sim_devices=nic0,nic1,echo0,echo1
nic_pair_wait
echo_cmd 0 "subchannels 63 6300"
echo_cmd 1 "subchannels 39 3900"
channels=$((2 * NIC_QUEUES + 64 + 40))
expect_eq "channels opened" $channels "$(sim_counter opens)"
live=$(( $(sim_counter gpadls_created) - $(sim_counter gpadls_torn_down) ))
# A ring per channel, each NIC's receive and send buffers and each echo
# device's shared buffer.
gpadls=$((channels + 2 * 2 + 2))
expect_eq "GPADLs mapped at once" $gpadls $live
expect_eq "echo0's channels in sysfs" 64 "$(ls $VMBUS_DEVICES/$(echo_id 0)/channels | wc -l)"
expect_eq "echo1's channels in lsvmbus -vv" 40 "$(lsvmbus -vv | sed -n '/^VMBUS ID 31:/,/^$/p' | grep -c 'Rel_ID=')"
echo_send 0 200 0 1024
nic_pair_netns 10.46.0
ip netns exec a ping -c 3 -W 5 10.46.0.2 > /dev/null || fail "ping between the NICs"
expect_eq "echo errors" 0 "$(echo_counter errors)"
expect_eq "host saw nothing unexpected" 0 "$(sim_counter unexpected)"

# The rescind of a device with 64 open channels gives every relid back.
released=$(sim_counter relids_released)
sim_ctl "rescind echo0"
wait_for 20 "echo0 to go" [ ! -e $VMBUS_DEVICES/$(echo_id 0) ]
wait_for 20 "64 RELID_RELEASED" sim_counter_is relids_released $((released + 64))
ip netns del a
ip netns del b
rustic_unload
kmemleak_check
echo "$channels channels open at once ($gpadls GPADLs), traffic on each; 64 released at a rescind"
