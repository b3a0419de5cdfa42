# timeout: 300
# Issue 17, defect 5: a host that stops draining the guest's outbound ring
# (debugfs `sim`: `nodrain nic0`) while it goes on delivering frames. The
# guest's receive completions fill the ring; NAPI must then stop and wait
# for the host's signal (pending_send_sz), not poll at full budget for as
# long as the host does not drain: the NET_RX softirqs counted while the
# host holds still stay few. When the host drains again (`drain nic0`) the
# waiting completions go out and traffic flows both ways; the host gets
# every receive slot back; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

net_rx_softirqs() { awk '$1 == "NET_RX:" { for (i = 2; i <= NF; i++) n += $i; print n }' /proc/softirqs; }
out_full() { cat $VMBUS_DEVICES/$(nic_id 0)/channels/40/out_full_first; }
ring_filled() { [ "$(out_full)" -gt 0 ]; }

sim_load sim_devices=nic0,nic1
nic_pair_wait
# One queue each: every frame for a comes on nic0's primary channel.
ethtool -L $n0 combined 1 || fail "ethtool -L $n0 combined 1"
ethtool -L $n1 combined 1 || fail "ethtool -L $n1 combined 1"
nic_pair_netns 10.77.0
ip netns exec b ping -c 2 -W 5 10.77.0.1 > /dev/null || fail "ping from b to a"
expect_eq "outbound ring full before the fault" 0 "$(out_full)"

sim_ctl "nodrain nic0"
# Small datagrams from b to a until a's completions have filled the ring
# (about 8200 of them: 32 bytes each in 256 KiB).
ip netns exec b python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(200000):
    try:
        s.sendto(b"x" * 18, ("10.77.0.1", 9))
    except OSError:
        pass
' &
sender=$!
echo "flooding a from b; the host does not drain a's ring"
wait_for 120 "a's outbound ring to fill with receive completions" ring_filled
kill $sender 2> /dev/null
wait $sender 2> /dev/null
echo "a's outbound ring is full ($(out_full) sends found it so)"
sleep 1
before=$(net_rx_softirqs)
sleep 3
spins=$(( $(net_rx_softirqs) - before ))
echo "NET_RX softirqs in 3 s while the host does not drain: $spins"
[ $spins -le 300 ] || fail "NAPI kept polling while the host did not drain the ring ($spins NET_RX softirqs in 3 s)"

sim_ctl "drain nic0"
ip netns exec a ping -c 2 -W 5 10.77.0.2 > /dev/null || fail "ping from a to b after the host drains again"
ip netns exec b ping -c 2 -W 5 10.77.0.1 > /dev/null || fail "ping from b to a after the host drains again"
wait_for 20 "the host's receive slots back" sim_counter_is net_rx_slots 0
ip netns del a
ip netns del b
rustic_unload
echo "undrained outbound ring: $spins NET_RX softirqs in 3 s, traffic back after draining"
