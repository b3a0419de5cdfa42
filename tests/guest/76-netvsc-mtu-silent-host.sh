# timeout: 180
# Issue 17, defect 7: an MTU change against a host that answers nothing
# (its NIC channel stalled, `stall nic0`, and its control plane silent,
# `silent`). The change's first control request times out (5 s); the host
# is then taken for unresponsive and the change ends there, under rtnl for
# little more than that one timeout, where it used to wait out every
# request, GPADL and open of taking the NIC apart and setting it up twice
# (about 30 s and more). The MTU stays as it was; no oops; once the control
# plane answers again the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh

uptime_cs() { awk '{ split($1, t, "."); print t[1] * 100 + t[2] }' /proc/uptime; }

sim_load sim_devices=nic0
wait_for 20 "nic0's interface" has_nic_ifname 0
n=$(nic_ifname 0)
wait_for 20 "$NIC_QUEUES queues on $n" has_nic_queues $n $NIC_QUEUES
ip link set $n up || fail "ip link set $n up"

dmesg -c > /dev/null
sim_ctl "stall nic0"
sim_ctl silent
start=$(uptime_cs)
ip link set $n mtu 1400 2> /tmp/mtu.err && fail "the MTU change succeeded against a silent host"
took=$(( $(uptime_cs) - start ))
echo "the MTU change against a silent host ended after $took cs: $(cat /tmp/mtu.err)"
[ $took -le 1200 ] || { dmesg | tail -n 20; fail "the MTU change held rtnl for $took cs against a silent host"; }
expect_eq "MTU after the failed change" 1500 "$(cat /sys/class/net/$n/mtu)"
dmesg | grep -q "netvsc: relid 40: the host does not answer; MTU 1500 kept" || { dmesg | tail -n 20; fail "no message for the silent host"; }
# rtnl is free: other interfaces can be changed at once.
ip link set lo mtu 65535 || fail "ip link on lo after the failed change"

sim_ctl clear
rustic_unload
echo "MTU change against a silent host: ended in $took cs, MTU kept"
