# timeout: 180
# Issue 17, defect 9 (buffers): the guest revokes its receive and send
# buffers (NVSP REVOKE_RECV_BUF, REVOKE_SEND_BUF) while the channel is
# still open, before their GPADLs are torn down, as the C driver does: at
# an MTU change (the NIC is taken apart and set up again) and at unbind.
# The simulated host counts the revokes (sim_net_revoked) and each buffer
# still mapped when its NIC's channel closes (sim_net_unrevoked, with a
# complaint in the log). The NIC works after each; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

sim_load sim_devices=nic0,nic1
nic_pair_wait
expect_eq "revoked, unrevoked at start" "0 0" "$(sim_counter net_revoked) $(sim_counter net_unrevoked)"

ip link set $n0 up || fail "ip link set $n0 up"
ip link set $n0 mtu 1400 || { dmesg | tail -n 20; fail "MTU change on $n0"; }
expect_eq "revoked, unrevoked after an MTU change" "2 0" "$(sim_counter net_revoked) $(sim_counter net_unrevoked)"
wait_for 20 "$NIC_QUEUES queues on $n0 again" has_nic_queues $n0 $NIC_QUEUES

drv=/sys/bus/vmbus/drivers/hv_netvsc
id1=$(nic_id 1)
echo $id1 > $drv/unbind || fail "unbind nic1"
expect_eq "revoked, unrevoked after an unbind" "4 0" "$(sim_counter net_revoked) $(sim_counter net_unrevoked)"
echo $id1 > $drv/bind || fail "bind nic1 again"
wait_for 20 "nic1's interface" has_nic_ifname 1
n1=$(nic_ifname 1)
wait_for 20 "$NIC_QUEUES queues on $n1" has_nic_queues $n1 $NIC_QUEUES

nic_pair_netns 10.78.0
ip netns exec a ping -c 2 -W 5 10.78.0.2 > /dev/null || fail "ping from a to b"
ip netns exec b ping -c 2 -W 5 10.78.0.1 > /dev/null || fail "ping from b to a"
dmesg | grep -q "not revoked" && { dmesg | grep "not revoked"; fail "the host saw a buffer not revoked"; }
expect_eq "netvsp guest errors" 0 "$(sim_counter net_errors)"
ip netns del a
ip netns del b
rustic_unload
echo "buffers revoked before their GPADLs went: at an MTU change and at unbind"
