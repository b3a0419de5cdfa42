# timeout: 360
# Chaos on a synthetic NIC (issue 17): `chaos nic0 SECONDS [SEED]` draws
# faults at random from every fault the simulator registers (the control
# plane's, the rings', the NIC model's: each NVSP/RNDIS fault kind, the
# link going down) while pings of two sizes run both ways between nic0 (in
# namespace a) and nic1 (in b); a nic0 the host resets comes back as a new
# interface, which is moved into a and set up again while chaos goes on;
# a probe a fault failed is tried again.
# 30 s of chaos here (`make chaos SECONDS=N SEED=S` runs longer). No oops,
# BUG, WARN or lockdep report (the runner fails on them) and no leak.
# Afterwards nic0 carries pings again, or it is unbound (a fault failed
# its probe) or gone; then the host resets it (rescind and a fresh offer)
# and the new interface carries pings both ways; the module unloads.
. /tests/lib.sh
. /tests/vmbus-lib.sh
. /tests/sim-lib.sh
. /tests/chaos-lib.sh

chaos_args 30
kmemleak_reset
sim_load sim_devices=nic0,nic1
nic_pair_wait
nic_pair_netns 10.91.0
ip netns exec a ping -c 2 -W 5 10.91.0.2 > /dev/null || fail "ping from a to b"
victim=$VMBUS_DEVICES/$(nic_id 0)
absent() { [ ! -e $victim ]; }

# rehome: a new interface of nic0 (the host reset it) goes into a, set up.
rehome() {
  local n
  n=$(nic_ifname 0)
  [ -n "$n" ] || return 1
  ip link set $n netns a 2> /dev/null || return 1
  ip -n a addr add 10.91.0.1/24 dev $n
  ip -n a link set $n up
  n0=$n
}
# pings_both_ways: a to b and b to a, small and fragmented.
pings_both_ways() {
  ip netns exec a ping -c 2 -W 2 10.91.0.2 > /dev/null 2>&1 &&
    ip netns exec b ping -c 2 -W 2 -s 3000 10.91.0.1 > /dev/null 2>&1
}

rm -f /tmp/chaos-stop
(
  while [ ! -e /tmp/chaos-stop ]; do
    ip netns exec a ping -c 20 -i 0.05 -W 1 10.91.0.2 > /dev/null 2>&1
    ip netns exec b ping -c 5 -i 0.1 -W 1 -s 6000 10.91.0.1 > /dev/null 2>&1
    rehome
    # A probe that a fault failed is tried again (the faults meet probes too).
    [ -e $victim ] && [ ! -e $victim/driver ] && { echo $(nic_id 0) > /sys/bus/vmbus/drivers/hv_netvsc/bind; } 2> /dev/null
  done
) &
traffic=$!

chaos_run nic0
touch /tmp/chaos-stop
echo "[$SECONDS s] chaos over"
wait $traffic
rehome
# The traffic's shell may have moved a new interface into a: a's one.
n0=$(ip -n a -o link show | awk -F': ' '$2 ~ /^eth/ { print $2 }' | head -n 1)
echo "[$SECONDS s] traffic stopped; nic0's interface in a: ${n0:-none}"

# nic0 after chaos: carrying pings, or left unbound by a failed probe, or
# gone. Its link is up again (chaos's end brought it up).
if [ -e $victim/driver ] && [ -n "$n0" ]; then
  wait_for 10 "carrier on $n0" nic_carrier a $n0
  wait_for 10 "pings both ways after chaos" pings_both_ways
  echo "after chaos: nic0 ($n0) carries pings both ways"
elif [ -e $victim ]; then
  echo "after chaos: nic0 is offered, without an interface (a fault failed its probe)"
else
  echo "after chaos: nic0 is gone"
fi

# The host resets nic0: it goes, comes back and carries pings.
echo "[$SECONDS s] resetting nic0"
chaos_reset nic0 $(nic_id 0)
wait_for 30 "nic0's interface" has_nic_ifname 0
n0=$(nic_ifname 0)
wait_for 20 "$NIC_QUEUES queues on $n0" has_nic_queues $n0 $NIC_QUEUES
rehome || fail "moving $n0 into namespace a"
wait_for 10 "carrier on $n0" nic_carrier a $n0
ip netns exec a ping -c 3 -W 5 10.91.0.2 > /dev/null || fail "ping from a to b after the reset"
ip netns exec b ping -c 3 -W 5 -s 3000 10.91.0.1 > /dev/null || fail "ping from b to a after the reset"
echo "after a reset: nic0 ($n0) carries pings both ways"
ip netns del a
ip netns del b
faults=$(sim_counter chaos_faults)
rustic_unload
kmemleak_check
echo "chaos on nic0: $faults faults injected; no oops, unloaded"
