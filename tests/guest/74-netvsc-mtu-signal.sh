# timeout: 120
# Issue 17: a signal ends a netvsc control request at once. The simulated
# NIC's channel stops answering (`stall nic0`); `ip link set IF mtu N`
# then waits in its first control request (the RNDIS filter, sent before
# the NIC is set up again), up to 5 s, under rtnl. A SIGTERM to it ends the
# wait with EINTR and the command promptly, where the wait used to spin out
# its 5 s. The interrupted change puts the NIC back at its old MTU (on a
# fresh channel, which answers); the next MTU change works; no oops; the
# module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

# uptime_cs: the time since boot in hundredths of a second.
uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }
not_running() { ! kill -0 $1 2> /dev/null; }

sim_load sim_devices=nic0
wait_for 20 "nic0's interface" has_nic_ifname 0
n=$(nic_ifname 0)
wait_for 20 "$NIC_QUEUES queues on $n" has_nic_queues $n $NIC_QUEUES
ip link set $n up || fail "ip link set $n up"


dmesg -c > /dev/null
sim_ctl "stall nic0"
ip link set $n mtu 1400 2> /tmp/mtu.err &
ip_pid=$!
sleep 0.5
kill -0 $ip_pid 2> /dev/null || { cat /tmp/mtu.err; fail "the MTU change did not wait on the stalled host"; }
start=$(uptime_cs)
kill -TERM $ip_pid
wait_for 10 "ip to end after SIGTERM" not_running $ip_pid
took=$(( $(uptime_cs) - start ))
wait $ip_pid 2> /dev/null
echo "ip ended $took cs after SIGTERM"
[ $took -le 250 ] || fail "ip took $took cs to end after SIGTERM (the request ignored the signal)"

# The NIC is up again, at either MTU, and takes the next change.
mtu=$(cat /sys/class/net/$n/mtu)
[ "$mtu" = 1500 ] || [ "$mtu" = 1400 ] || fail "MTU $mtu after the interrupted change"
dmesg | grep -q "did not come back" && { dmesg | tail -n 20; fail "the NIC stayed down"; }
ip link set $n mtu 1300 || { dmesg | tail -n 20; fail "MTU change after the interrupted one"; }
expect_eq "MTU" 1300 "$(cat /sys/class/net/$n/mtu)"
wait_for 20 "$NIC_QUEUES queues on $n again" has_nic_queues $n $NIC_QUEUES
rustic_unload
echo "SIGTERM ended an MTU change on a stalled NIC in $took cs; MTU $mtu after it"
